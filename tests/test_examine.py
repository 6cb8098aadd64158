"""The examine stage and the batch writer, on their own: workers judge as the poller does,
under the memory limit; a batch is written whole, its inner duplicates found, and when
one message cannot be written the batch is written one message at a time."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from intake import db
from intake import examine as examine_module
from intake.config import load_settings
from intake.examine import IN_PROCESS_BELOW, WORKER_ADDRESS_SPACE, Examiner, examine
from intake.mailbox import RawMessage
from intake.models import InboundMessage
from intake.record import Place, enter_folder, record_batch
from intake.store import BlobStore
from tests.support.corpus import mixed
from tests.support.intake_env import write_config
from tests.support.waiting import poll_until, wait_until


def _messages(count: int) -> list[RawMessage]:
    return [
        RawMessage(uid=i + 1, received_at=s.received_at, size=len(s.raw), raw=s.raw)
        for i, s in enumerate(mixed(count, with_faults=False))
    ]


def _settings(tmp_path: Path, url: str = "sqlite:///unused.db"):  # type: ignore[no-untyped-def]
    return load_settings(write_config(tmp_path, "127.0.0.1", 1, "u", "p", url).config_path, env={})


def test_workers_judge_as_the_poller_does_and_in_order(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    messages = _messages(IN_PROCESS_BELOW + 4)
    here = [examine(m, settings.event, 2**30) for m in messages]
    with Examiner(settings.event, 2**30, workers=2) as examiner:
        examination = examiner.submit(messages)
        assert examination.in_workers, "a batch this large goes to the workers"
        there = examination.results()
    assert [e.message.uid for e in there] == [m.uid for m in messages]
    assert [e.message.raw for e in there] == [m.raw for m in messages]  # the poller's bytes, put back
    assert [(e.verdict, e.digest, e.body_sha) for e in there] == [
        (e.verdict, e.digest, e.body_sha) for e in here
    ]


def test_a_small_batch_stays_in_the_poller_and_workers_run_under_the_memory_limit(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with Examiner(settings.event, 2**30, workers=1) as examiner:
        assert not examiner.submit(_messages(3)).in_workers
        examiner.submit(_messages(IN_PROCESS_BELOW)).results()
        (worker,) = examiner._pool
        limits = Path(f"/proc/{worker.process.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert line.split()[3:5] == [str(WORKER_ADDRESS_SPACE)] * 2, line


def test_the_poller_examines_the_back_of_the_batch_while_its_worker_is_behind(tmp_path: Path) -> None:
    """Asked for the results before the workers are done, the poller examines messages from
    the back of the batch itself: here its only worker is frozen (SIGSTOP) with the first
    chunk in hand, so the poller examines all the rest, and the results are the same, in order."""
    import signal
    import threading

    settings = _settings(tmp_path)
    messages = _messages(40)
    here = [examine(m, settings.event, 2**30) for m in messages]
    started: list[examine_module._Worker] = []
    with Examiner(settings.event, 2**30, workers=1) as examiner:
        start = examiner._start

        def frozen_start() -> examine_module._Worker:
            worker = start()
            os.kill(worker.process.pid, signal.SIGSTOP)
            started.append(worker)
            return worker

        examiner._start = frozen_start  # type: ignore[method-assign]
        examination = examiner.submit(messages)

        def thaw() -> None:  # once nothing is left for the poller to take (or after a minute)
            poll_until(lambda: started and not examination.todo, timeout=60, every=0.01)
            for worker in started:
                os.kill(worker.process.pid, signal.SIGCONT)

        thawer = threading.Thread(target=thaw)
        thawer.start()
        there = examination.results()
        thawer.join(60)
    assert examination.stolen >= len(messages) - examine_module.CHUNK_MESSAGES, (
        f"the poller examined {examination.stolen} of {len(messages)} while its worker was frozen"
    )
    assert [e.message.uid for e in there] == [m.uid for m in messages]
    assert [(e.verdict, e.digest, e.body_sha) for e in there] == [
        (e.verdict, e.digest, e.body_sha) for e in here
    ]


def test_a_message_the_poller_fails_to_examine_goes_to_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The poller's own examination raising (here: made to, for the batch's last message, the
    first it takes) costs nothing: a worker examines that message, and the result is its."""
    import signal
    import threading

    settings = _settings(tmp_path)
    messages = _messages(IN_PROCESS_BELOW + 4)
    here = [examine(m, settings.event, 2**30) for m in messages]
    failing = messages[-1].uid
    real = examine_module.examine

    failed = threading.Event()

    def examine_here(message: RawMessage, event, limit):  # type: ignore[no-untyped-def]
        if message.uid == failing:
            failed.set()
            raise RuntimeError("a bug the poller hits")
        return real(message, event, limit)

    monkeypatch.setattr(examine_module, "examine", examine_here)  # the poller's; a worker has its own
    caplog.set_level(logging.WARNING, logger="intake.examine")
    started: list[examine_module._Worker] = []
    with Examiner(settings.event, 2**30, workers=1) as examiner:
        start = examiner._start

        def frozen_start() -> examine_module._Worker:
            worker = start()
            os.kill(worker.process.pid, signal.SIGSTOP)  # so the poller takes the back of the batch
            started.append(worker)
            return worker

        examiner._start = frozen_start  # type: ignore[method-assign]
        examination = examiner.submit(messages)

        def thaw() -> None:  # once the poller has failed on its message (or after a minute)
            poll_until(lambda: started and failed.is_set(), timeout=60, every=0.01)
            os.kill(started[0].process.pid, signal.SIGCONT)

        thawer = threading.Thread(target=thaw)
        thawer.start()
        there = examination.results()
        thawer.join(60)
    assert failed.is_set(), "the poller never took the batch's last message"
    assert (
        f"UID {failing}: examining it in the poller failed (RuntimeError: a bug the poller hits)"
        in caplog.text
    )
    assert [e.message.uid for e in there] == [m.uid for m in messages]
    assert [(e.verdict, e.digest) for e in there] == [(e.verdict, e.digest) for e in here]


def test_the_poller_leaves_large_messages_and_those_that_cost_a_worker_to_the_workers(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    small, large, unlucky = _messages(3)
    large = RawMessage(
        uid=large.uid,
        received_at=large.received_at,
        size=0,
        raw=large.raw + b" " * examine_module.STEAL_BYTES,
    )
    with Examiner(settings.event, 2**30, workers=1) as examiner:
        examination = examine_module.Examination(examiner, [small, large, unlucky], in_workers=True)
        examination.losses[2] = 1  # a worker died on it once
        assert examination._steal() is None, "a message that cost a worker is not the poller's to take"
        examination.todo.remove(2)
        assert examination._steal() is None, "a message over STEAL_BYTES is not the poller's to take"
        examination.todo.remove(1)
        assert examination._steal() == 0 and not examination.todo


def test_workers_write_the_blobs_and_say_so_or_leave_them_to_the_poller(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the data directory, a worker writes each message's bytes and files to the blob store
    (unsynced: the poller syncs before its commit) and marks it `stored`; when it cannot write
    there, it examines all the same and leaves the writing to the poller (`stored` false)."""
    settings = _settings(tmp_path)
    messages = _messages(IN_PROCESS_BELOW)
    monkeypatch.setattr(examine_module, "STEAL_BYTES", 0)  # the workers examine every message
    with Examiner(settings.event, 2**30, workers=1, data_dir=tmp_path / "data") as examiner:
        there = examiner.submit(messages).results()
    store = BlobStore(tmp_path / "data")
    here = [examine(m, settings.event, 2**30) for m in messages]
    assert all(e.stored for e in there)
    assert [(e.verdict, e.digest) for e in there] == [(e.verdict, e.digest) for e in here]
    for e, own in zip(there, here, strict=True):
        assert store.get(e.digest) == e.message.raw
        for doc in own.verdict.documents:  # the files' bytes are in the store, not sent back
            payload = doc.payload if doc.payload is not None else own.inbound.parts[doc.part_index].payload
            assert store.get(doc.sha256) == payload
        assert e.inbound is not None and not any(p.payload for p in e.inbound.parts)
    assert any(e.verdict.documents for e in there)

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "blobs").write_text("a file where the store's directory should be")
    with Examiner(settings.event, 2**30, workers=1, data_dir=tmp_path / "full") as examiner:
        there = examiner.submit(messages).results()
    assert [e.message.uid for e in there] == [m.uid for m in messages]
    assert not any(e.stored for e in there)


@pytest.fixture
def writer(tmp_path: Path, migrated_url: str):  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, migrated_url)
    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    enter_folder(sessions, "m", "INBOX", 1)
    place = Place(settings.event.id, "m", "INBOX", 1)
    try:
        yield settings, sessions, place, BlobStore(tmp_path / "data")
    finally:
        engine.dispose()


def test_a_batch_finds_its_own_duplicates(writer) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, place, store = writer
    first = _messages(3)
    copy = RawMessage(uid=4, received_at=datetime(2026, 4, 20, tzinfo=UTC), size=1, raw=first[0].raw)
    batch = [examine(m, settings.event, 2**30) for m in [*first, copy]]
    recorded = record_batch(sessions, store, place, batch, settings.event)
    assert [r.uid for r in recorded] == [1, 2, 3, 4] and all(r.new for r in recorded)
    with sessions() as session:
        rows = {r.uid: r for r in session.scalars(select(InboundMessage))}
    assert rows[4].status == "duplicate" and rows[4].duplicate_of_id == rows[1].id
    assert rows[1].status != "duplicate"
    for row in rows.values():
        assert store.get(row.sha256)  # the bytes of every row committed are in the store


def test_a_batch_that_cannot_be_written_whole_is_written_one_message_at_a_time(
    writer, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """The unique (mailbox, folder, UIDVALIDITY, UID) key refuses a batch that holds one UID
    twice: the whole transaction fails, and the messages are recorded one by one instead."""
    settings, sessions, place, store = writer
    messages = _messages(4)
    twice = RawMessage(uid=2, received_at=messages[1].received_at, size=1, raw=messages[3].raw)
    batch = [examine(m, settings.event, 2**30) for m in [*messages[:2], twice, messages[2]]]
    with caplog.at_level(logging.WARNING, logger="intake.record"):
        recorded = record_batch(sessions, store, place, batch, settings.event)
    assert "recording them one transaction each" in caplog.text
    assert [(r.uid, r.new) for r in recorded] == [(1, True), (2, True), (2, False), (3, True)]
    with sessions() as session:
        uids = sorted(session.scalars(select(InboundMessage.uid)))
    assert uids == [1, 2, 3]


def test_a_batch_is_written_while_its_bytes_are_flushed_and_commits_only_after(
    writer, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The flush of the batch's blobs (syncfs) runs in a thread while the rows are written:
    the rows are written before the flush has ended, and nothing is committed until it has.
    A slow disk is made by holding the real flush until the test lets it go."""
    import threading

    from intake import record as record_module
    from intake import store as store_module

    settings, sessions, place, store = writer
    batch = [examine(m, settings.event, 2**30) for m in _messages(3)]
    flushing, let_go, written = threading.Event(), threading.Event(), threading.Event()
    real_syncfs, real_write = store_module._syncfs, record_module._write

    def slow_syncfs(path: Path) -> None:
        flushing.set()
        assert let_go.wait(60), "the test never let the flush end"
        real_syncfs(path)

    def write(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_write(*args, **kwargs)
        written.set()
        return out

    monkeypatch.setattr(store_module, "_syncfs", slow_syncfs)
    monkeypatch.setattr(record_module, "_write", write)
    done: list[object] = []
    recording = threading.Thread(
        target=lambda: done.append(record_batch(sessions, store, place, batch, settings.event))
    )
    recording.start()
    try:
        wait_until(flushing.is_set, 60, message="the flush of the batch's blobs never started")
        wait_until(written.is_set, 60, message="the rows were not written while the flush ran")
        with sessions() as session:
            committed = session.scalars(select(InboundMessage.uid)).all()
        assert committed == [], f"rows committed before their bytes were flushed: {committed}"
    finally:
        let_go.set()
        recording.join(60)
    assert len(done) == 1 and [r.uid for r in done[0]] == [1, 2, 3]  # type: ignore[attr-defined]
    with sessions() as session:
        assert sorted(session.scalars(select(InboundMessage.uid))) == [1, 2, 3]


def test_a_batch_whose_bytes_cannot_be_flushed_is_not_committed(
    writer, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """syncfs failing (the disk gone bad under the data directory: EIO) stops the recording
    with the store's one line, and the rows written meanwhile are rolled back."""
    import errno

    from intake import store as store_module
    from intake.store import StoreError

    settings, sessions, place, store = writer
    batch = [examine(m, settings.event, 2**30) for m in _messages(3)]

    def failing_syncfs(path: Path) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(store_module, "_syncfs", failing_syncfs)
    with pytest.raises(StoreError, match="cannot be written: Input/output error"):
        record_batch(sessions, store, place, batch, settings.event)
    with sessions() as session:
        assert session.scalars(select(InboundMessage.uid)).all() == []


def test_the_examine_stage_does_not_load_the_database_layer() -> None:
    """Each worker imports intake.examine (and what it needs): SQLAlchemy and the models would
    add about 24 MB to every worker and a second to its start, for nothing it does."""
    import subprocess
    import sys

    code = (
        "import sys, intake.examine, intake.judge; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'intake.models'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_worker_killed_with_messages_in_hand_costs_only_the_one_it_was_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker is sent a few messages at a time and answers them in order: killed, only the
    first it had not answered counts a loss (examined again in a fresh worker); the others it
    held are examined as if nothing happened. Killed twice, on two different messages, nothing
    is quarantined (a loss counted on every message it held would quarantine the second)."""
    import signal
    import threading
    from collections.abc import Callable

    settings = _settings(tmp_path)
    messages = _messages(60)
    here = [examine(m, settings.event, 2**30) for m in messages]
    kills: list[int] = []
    # The first two workers start frozen (SIGSTOP), so each kill lands while the worker holds
    # messages it has not answered, however loaded the machine: a worker killed after it had
    # answered the whole batch would cost nothing, and prove nothing.
    started: list[examine_module._Worker] = []

    def frozen_start() -> examine_module._Worker:
        worker = start()
        if len(started) < 2:
            os.kill(worker.process.pid, signal.SIGSTOP)
        started.append(worker)
        return worker

    def holding(count: int) -> Callable[[], bool]:
        return lambda: len(started) >= count and bool(started[count - 1].tasks)

    def kill_twice() -> None:
        # First: the frozen worker holds its first chunk; it dies on the first message.
        if not poll_until(holding(1), timeout=120, every=0.001):
            return
        first = started[0]
        kills.append(first.tasks[0])
        os.kill(first.process.pid, signal.SIGKILL)
        # Second: the fresh worker answers that message again, then is frozen with the rest of
        # its chunk (or the next one) in hand and killed on a message after it.
        if not poll_until(holding(2), timeout=120, every=0.001):
            return
        second = started[1]
        os.kill(second.process.pid, signal.SIGCONT)
        if not poll_until(lambda: examination.found[kills[0]] is not None, timeout=120, every=0.001):
            return
        os.kill(second.process.pid, signal.SIGSTOP)
        if not poll_until(holding(2), timeout=120, every=0.001):
            return
        kills.append(second.tasks[0])
        os.kill(second.process.pid, signal.SIGKILL)

    caplog.set_level(logging.WARNING, logger="intake.examine")
    with Examiner(settings.event, 2**30, workers=1) as examiner:
        start = examiner._start
        examiner._start = frozen_start  # type: ignore[method-assign]
        examination = examiner.submit(messages)
        killer = threading.Thread(target=kill_twice)
        killer.start()
        there = examination.results()
        killer.join(60)
    assert len(kills) == 2, f"the worker was killed {len(kills)} times"
    assert [e.message.uid for e in there] == [m.uid for m in messages]
    assert [(e.verdict, e.digest) for e in there] == [(e.verdict, e.digest) for e in here]
    again = [
        r.getMessage() for r in caplog.records if "examining it again in a fresh worker" in r.getMessage()
    ]
    assert len(again) == 2 and again[0] != again[1], again
    assert not [r for r in caplog.records if "a second time" in r.getMessage()], caplog.text


def test_the_workers_start_when_messages_are_expected_before_the_first_batch(tmp_path: Path) -> None:
    """`expect` (the fetch says how many new messages there are before it fetches the first)
    starts the workers at once, so that their start-up overlaps the fetch; the batch then goes
    to the worker already started. Fewer than a worker's worth start nothing (an empty or
    small poll of `intake run` costs no process)."""
    settings = _settings(tmp_path)
    messages = _messages(IN_PROCESS_BELOW)
    with Examiner(settings.event, 2**30, workers=1) as examiner:
        examiner.expect(IN_PROCESS_BELOW - 1)
        assert examiner._thread is None and examiner._pool == []
        examiner.expect(IN_PROCESS_BELOW)
        wait_until(
            lambda: len(examiner._pool) == 1,
            60,
            message=lambda: f"a worker started before any batch; the pool holds {examiner._pool}",
        )
        (worker,) = examiner._pool
        assert worker.process.poll() is None, "the worker started early has ended"
        found = examiner.submit(messages).results()
        assert examiner._pool == [worker], "the batch did not go to the worker started early"
    assert [e.message.uid for e in found] == [m.uid for m in messages]


def test_a_worker_that_dies_while_it_starts_is_started_again_then_the_poll_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed before it has read what to run makes its start fail with a broken
    pipe (seen in the fault suite: kill -9 of every busy worker, fresh ones included).
    The start is tried again; when it keeps failing, the poll stops with ExamineError (the
    CLI's one line, exit 1), never a BrokenPipeError that `main` took for `intake log | head`
    and answered with exit 0 and nothing recorded. The failure is simulated at the start:
    the moment a real kill lands inside it cannot be chosen."""
    settings = _settings(tmp_path)
    start = examine_module._Worker.__init__
    failures = {"left": 2}

    def dying_start(self, examiner) -> None:  # type: ignore[no-untyped-def]
        if failures["left"] > 0:
            failures["left"] -= 1
            raise BrokenPipeError(32, "Broken pipe")
        start(self, examiner)

    monkeypatch.setattr(examine_module._Worker, "__init__", dying_start)
    messages = _messages(IN_PROCESS_BELOW)
    with Examiner(settings.event, 2**30, workers=1) as examiner:
        found = examiner.submit(messages).results()
    assert [e.message.uid for e in found] == [m.uid for m in messages]
    assert failures["left"] == 0

    failures["left"] = examine_module.START_ATTEMPTS
    with (
        Examiner(settings.event, 2**30, workers=1) as examiner,
        pytest.raises(examine_module.ExamineError, match="no worker process could be started"),
    ):
        examiner.submit(messages).results()


def test_a_worker_whose_poller_went_away_before_its_answer_ends_quietly(tmp_path: Path) -> None:
    """The pipe's other end closed while the worker examines (its poller was killed before the
    worker's watch noticed): the answer meets a broken pipe and the worker returns, without an
    exception (which would print a traceback into the service's log, its stderr)."""
    import threading
    from multiprocessing import Pipe

    settings = _settings(tmp_path)
    poller_end, worker_end = Pipe()
    poller_end.send(_messages(1))  # a chunk of one
    poller_end.close()  # the message is in the socket's buffer; nobody will read the answer
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            # The watch looks at this process (alive), so only the pipe can end the worker.
            examine_module._serve(worker_end, settings.event, 2**30, os.getpid(), 0, None)
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the worker did not end after its answer found no poller"
    assert failures == []

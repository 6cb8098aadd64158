"""kill -9 inside the batch's transaction, and kill -9 of the worker processes that examine mail.

The poller records a whole fetched batch in one transaction (intake/record.py)
and examines it in worker processes (intake/examine.py). Here the batch is 40
messages (over the 16 from which workers are used), and:

- the poller is killed while its batch transaction is open (PostgreSQL: its
  session has written and is still in a transaction; SQLite: it holds the write
  lock), before anything is committed: nothing of the batch may be left, no
  worker may outlive it, and a clean run records everything exactly once;
- a worker is killed while it examines: the poll goes on, examines the rest of
  the batch one message at a time in a fresh worker, and finishes with every
  message recorded once with its own outcome;
- every worker is killed as soon as it works: a message lost twice is
  quarantined with the finding `message.worker_lost`, every message is recorded
  once, and the poll still ends cleanly. (The poller examines messages from the
  back of the batch itself while it waits, never one that has cost a worker, so
  not every message passes through a killed worker.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from intake.models import Finding, InboundMessage
from tests.faults.conftest import Running, service_config, start
from tests.faults.corpus import mail
from tests.faults.ledger import LEDGER_APP, Ledger
from tests.support.dovecot import Dovecot
from tests.support.smtp import SmtpSink
from tests.support.waiting import poll_until

pytestmark = [pytest.mark.dovecot]

BATCH = 40


@pytest.fixture
def ledger(dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Ledger]:
    """The fault suite's ledger, with batches large enough to be examined by workers."""
    env = service_config(tmp_path, dovecot, migrated_url, smtp_sink)
    env.config_path.write_text(
        env.config_path.read_text().replace("batch_messages = 10", f"batch_messages = {BATCH}")
    )
    book = Ledger(dovecot, env, smtp_sink)
    try:
        yield book
    finally:
        book.close()


# --- the process tree ---------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children(child)
    return out


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def workers(poller: int) -> list[int]:
    """The examining workers: the poller's children that run intake.examine's worker_main."""
    return [pid for pid in children(poller) if _examining(pid)]


def _examining(pid: int) -> bool:
    try:
        return b"worker_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def busy(pid: int) -> bool:
    """Running (examining, while nothing of the batch is recorded yet: see the callers)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "R"
    except OSError:
        return False


# --- inside the batch transaction ---------------------------------------------------------------
def in_batch_transaction(ledger: Ledger) -> bool:
    """The poller has an open transaction that has written, and nothing is committed yet."""
    if ledger.recorded():
        return False
    url = ledger.env.database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(path, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        else:
            conn.rollback()
            return False
        finally:
            conn.close()
    with ledger.engine.connect() as conn:
        writing = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name <> :me AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
                "AND query NOT ILIKE '%mailbox_state%'"
            ),
            {"me": LEDGER_APP},
        ).scalar_one()
    return bool(writing)


def test_kill_9_inside_the_batch_transaction_leaves_nothing_and_no_worker(
    ledger: Ledger, tmp_path: Path
) -> None:
    ledger.append(mail(BATCH))
    poll = start(ledger.env, "poll", "--once", log_dir=tmp_path / "logs")
    tree: set[int] = set()
    seen_workers: set[int] = set()

    def inside() -> bool:
        tree.update(descendants(poll.pid))
        seen_workers.update(workers(poll.pid))
        # Workers start when the batch is submitted, before it is recorded: a write seen
        # after that, with nothing committed, is the batch's transaction.
        return bool(seen_workers) and in_batch_transaction(ledger) or not poll.alive()

    try:
        assert poll_until(inside, timeout=120, every=0.002), "the batch transaction never opened"
        assert poll.alive(), f"the poll ended before its batch transaction was seen:\n{poll.stderr()}"
        tree.update(descendants(poll.pid))
    finally:
        poll.kill()
    assert seen_workers, "no worker process was seen under the poller"
    # The transaction died with the poller: nothing of the batch is committed...
    ledger.wait_for_sessions_to_end()
    assert ledger.recorded() == 0, (
        "a row of the batch was committed although the poller died before its commit"
    )
    # ...and no process of its tree (the workers) outlives it.
    assert poll_until(lambda: not any(alive(p) for p in tree), timeout=30, every=0.05), (
        f"processes of the killed poller still run: {[p for p in tree if alive(p)]}"
    )
    ledger.note_fault()
    ledger.let_time_pass()
    recovery = ledger.env.run("poll", "--once", check=True)
    assert "Traceback" not in recovery.stderr, recovery.stderr
    ledger.check()


def started(pid: int) -> bool:
    """Past its start: the examine stack imported (libmagic mapped). A worker killed before
    that is a failed start, which the poller retries a few times and then gives up on
    (`START_ATTEMPTS`, tested in tests/test_examine.py); on a loaded machine a loop that
    kills every running worker could kill five starts in a row."""
    try:
        return b"libmagic" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


def _kill_busy_workers(poll: Running, once: bool, examining: Callable[[], bool]) -> int:
    """kill -9 workers while they examine (the batch is not recorded yet); the first one only,
    or every one until the poll ends."""
    killed = 0
    while poll.alive():
        for pid in workers(poll.pid):
            if busy(pid) and started(pid) and examining():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended (or was replaced) meanwhile
                    continue
                killed += 1
                if once:
                    return killed
        time.sleep(0.002)
    return killed


def test_kill_9_of_a_busy_worker_loses_nothing(ledger: Ledger, tmp_path: Path) -> None:
    ledger.append(mail(BATCH))
    poll = start(ledger.env, "poll", "--once", log_dir=tmp_path / "logs")
    try:
        assert _kill_busy_workers(poll, once=True, examining=lambda: ledger.recorded() == 0) == 1, (
            f"no busy worker was seen:\n{poll.stderr()}"
        )
        assert poll.wait(300) == 0, poll.stderr()
    finally:
        poll.kill()
    stderr = poll.stderr()
    assert "Traceback" not in stderr, stderr
    # (The log says "examining it again in a fresh worker" unless the kill landed just after
    # the worker had written its answer: then nothing was lost, and nothing is examined again.)
    with ledger.engine.connect() as conn:
        lost = conn.execute(
            select(func.count()).select_from(Finding).where(Finding.code == "message.worker_lost")
        ).scalar_one()
    assert lost == 0, "a message lost its worker once, and once only: its retry must examine it"
    ledger.wait_for_sessions_to_end()
    ledger.let_time_pass()
    ledger.env.run("poll", "--once", check=True)
    ledger.check()


def test_a_message_that_kills_its_worker_twice_is_quarantined(
    dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    env = service_config(tmp_path, dovecot, migrated_url, smtp_sink)
    env.config_path.write_text(
        env.config_path.read_text().replace("batch_messages = 10", "batch_messages = 16")
    )
    batch = [m for m in mail(40) if m.kind != "duplicate"][:16]
    dovecot.append_many("INBOX", [(m.raw, m.received_at) for m in batch])
    poll = start(env, "poll", "--once", log_dir=tmp_path / "logs")
    book = Ledger(dovecot, env, smtp_sink)
    try:
        killed = _kill_busy_workers(poll, once=False, examining=lambda: book.recorded() == 0)
        assert poll.wait(60) == 0, poll.stderr()
    finally:
        poll.kill()
    stderr = poll.stderr()
    assert "Traceback" not in stderr, stderr
    try:
        with book.engine.connect() as conn:
            rows = conn.execute(select(InboundMessage.id, InboundMessage.uid, InboundMessage.status)).all()
            lost = set(
                conn.scalars(select(Finding.message_id).where(Finding.code == "message.worker_lost")).all()
            )
    finally:
        book.close()
    uids = [uid for _, uid, _ in rows]
    assert len(uids) == len(set(uids)) == len(batch), f"every message recorded once: {rows}\n{stderr}"
    assert killed >= 2 and lost, f"{killed} workers killed, findings on {lost}:\n{stderr}"
    assert all(status == "quarantined" for row_id, _, status in rows if row_id in lost), rows
    assert "a second time; it is quarantined" in stderr, stderr

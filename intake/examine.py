"""Examine: the pure stage of the pipeline, and the worker processes that run it on every core.

`examine` reads one fetched message: parse, screen, judge (`intake.decide`).
Bytes, settings and the server's receipt time in, an `Examined` out; it touches
no database, no mailbox and no file.

`Examiner` runs `examine` over the batches of a poll. From `IN_PROCESS_BELOW`
messages on, in worker processes (`[service] workers`, INTAKE_WORKERS; default
one per core but one). Each worker is a Python interpreter of its own
(`python -c` importing this module), started with only its end of a socket pair
open: no forkserver and no multiprocessing resource tracker (two more
interpreters, about 21 MB of the poll's memory with one worker, for nothing a
worker uses: it takes no lock and no shared memory). The poller keeps the IMAP
session and the database: it submits a batch, records the previous one while
the workers examine, and takes the results back in UID order.

A hostile file must not take the poll down with it:
- each worker runs under an address-space limit (RLIMIT_AS, `WORKER_ADDRESS_SPACE`),
  so a runaway allocation is a MemoryError in that worker, not the OOM killer;
- each worker has a pipe of its own (not a shared queue: a worker killed while it
  writes a result would leave a shared queue half-written and the pool hung), and
  examines what it is sent in order, answering each message as it is done, so the
  message a worker dies on is the first one it has not answered. It is sent a few
  messages at a time (`CHUNK_MESSAGES`, `CHUNK_BYTES`), and only when it has
  answered all it had: one at a time, a worker waited for the poller's feeding
  thread after every message, up to a GIL switch interval (5 ms) while the poller
  recorded (a fifth of the worker's time, measured); and since it is only sent
  more once it is reading, the sending never blocks the thread that watches the
  workers;
- a worker that dies, raises (a MemoryError) or examines one message longer than
  `EXAMINE_TIMEOUT` is replaced, and that message is examined again in the fresh
  worker; a message that loses its worker a second time is quarantined with the
  finding `message.worker_lost`, never retried forever;
- a worker that dies while it starts (before it has read what to run: the start
  then fails with a broken pipe) is started again, `START_ATTEMPTS` times at most;
  after that the poll stops with `ExamineError`, one line, and nothing recorded of
  the batch (the next poll takes it again);
- each worker watches the poller's process (a pidfd) and exits when it is gone:
  kill -9 of the poller leaves no worker behind; Ctrl-C is the poller's to handle
  (a worker ignores SIGINT, and stops when the poller says so).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path
from types import TracebackType

from intake.config import EventSettings
from intake.decide import decide, quarantined, too_large
from intake.domain import MessageStatus
from intake.findings import found
from intake.mailbox import RawMessage
from intake.parse import Inbound, Unparseable, parse_headers, parse_message
from intake.store import BlobStore, StoreError, sha256_hex
from intake.verdict import MessageVerdict

log = logging.getLogger(__name__)

IN_PROCESS_BELOW = 16  # a smaller batch is examined in the poller: a worker would cost more
WORKER_ADDRESS_SPACE = 3 * 2**30  # RLIMIT_AS of a worker, as the hostile-input suite runs them
EXAMINE_TIMEOUT = 300.0  # seconds on one message: the worker hangs
CHUNK_MESSAGES = 8  # messages sent to a worker at once...
CHUNK_BYTES = 2**20  # ...while they come to less than this (a larger message goes alone)
STEAL_BYTES = 2**20  # the poller examines no message larger than this itself (`Examination`)


@dataclass(frozen=True)
class Examined:
    """One message read and judged: what the recording stage writes."""

    message: RawMessage
    inbound: Inbound | None  # None when not even the header block could be read
    verdict: MessageVerdict
    digest: str  # SHA-256 of the raw bytes
    body_sha: str  # SHA-256 of everything after the header block
    stored: bool = False  # its bytes are in the blob store already (a worker wrote them), not synced


def body_digest(raw: bytes) -> str:
    """SHA-256 of everything after the header block."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            return sha256_hex(raw[at + len(separator) :])
    return sha256_hex(b"")


def examine(message: RawMessage, event: EventSettings, max_message_bytes: int) -> Examined:
    """Parse, screen and judge one message. Pure: the same input gives the same verdict."""
    raw = message.raw
    inbound: Inbound | None
    try:
        inbound = parse_message(raw)
    except Unparseable as exc:
        verdict = quarantined(str(exc))
        inbound = parse_headers(raw)  # recorded with what can be read; never answered
    else:
        if message.headers_only:
            verdict = too_large(message.size, max_message_bytes)
        else:
            verdict = decide(inbound, event, message.received_at)
    return Examined(message, inbound, verdict, sha256_hex(raw), body_digest(raw))


def put_bytes(store: BlobStore, examined: Examined) -> None:
    """The message's raw bytes and each of its files into the blob store, not synced: whoever
    commits a row naming them syncs first (`BlobStore.sync`)."""
    store.put(examined.message.raw, examined.digest, durable=False)
    if examined.inbound is not None:
        put_files(store, examined.inbound, examined.verdict, durable=False)


def put_files(store: BlobStore, inbound: Inbound, verdict: MessageVerdict, durable: bool) -> None:
    """Each file a verdict names into the blob store (a part's bytes, or what was unpacked)."""
    for doc in verdict.documents:
        payload = doc.payload if doc.payload is not None else inbound.parts[doc.part_index].payload
        store.put(payload, doc.sha256, durable=durable)


def _stored(examined: Examined) -> Examined:
    """`examined` with its bytes in the blob store: marked so, and without the files' bytes,
    which the poller, recording, needs no more (nor to receive and hold, 100 KB a message)."""
    inbound, verdict = examined.inbound, examined.verdict
    if inbound is not None:
        inbound = replace(inbound, parts=tuple(replace(p, payload=b"") for p in inbound.parts))
    documents = tuple(replace(d, payload=None) if d.payload is not None else d for d in verdict.documents)
    return replace(examined, inbound=inbound, verdict=replace(verdict, documents=documents), stored=True)


def lost(message: RawMessage, why: str) -> Examined:
    """A message whose examination killed its worker twice: quarantined, with what is readable."""
    verdict = MessageVerdict(
        status=MessageStatus.QUARANTINED,
        findings=(found("message.worker_lost", why=why),),
        reason=f"not examined: {why}",
    )
    raw = message.raw
    return Examined(message, parse_headers(raw), verdict, sha256_hex(raw), body_digest(raw))


# --- the worker side --------------------------------------------------------------------------
_EVENT: EventSettings | None = None
_LIMIT = 0


def _start_worker(event: EventSettings, max_message_bytes: int, poller: int, address_space: int) -> None:
    global _EVENT, _LIMIT
    _EVENT, _LIMIT = event, max_message_bytes
    if address_space:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    logging.getLogger("mailparser").setLevel(logging.ERROR)  # as the CLI sets it (intake/cli.py)
    _watch(poller)


def _watch(poller: int) -> None:
    """Exit this worker as soon as the poller is gone (a kill -9 included)."""
    try:
        handle = os.pidfd_open(poller)
    except ProcessLookupError:
        os._exit(70)
    except (AttributeError, OSError):  # no pidfd (old kernel): look every second instead
        handle = -1

    def watch() -> None:
        if handle >= 0:
            select.select([handle], [], [])
        else:
            while os.getppid() != 1 and _alive(poller):
                time.sleep(1.0)
        os._exit(70)

    threading.Thread(target=watch, name="poller-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serve(
    conn: Connection,
    event: EventSettings,
    max_message_bytes: int,
    poller: int,
    address_space: int,
    data_dir: str | None,
) -> None:
    """A worker: examine the messages the poller sends, in order, answering each with what it
    found (without the raw bytes, which the poller has), until the poller says stop or goes away.
    With the poll's data directory, it also writes each message's bytes to the blob store (off
    the poller's path; the poller syncs them before its commit); when it cannot, it says so
    (`stored` false) and the poller writes them, and reports the error if it cannot either."""
    _start_worker(event, max_message_bytes, poller, address_space)
    store = BlobStore(Path(data_dir)) if data_dir is not None else None
    while True:
        try:
            chunk: list[RawMessage] | None = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        while chunk:
            message = chunk.pop(0)  # not held once answered
            answer: Examined | str
            try:
                examined = examine(message, event, max_message_bytes)
                if store is not None:
                    with contextlib.suppress(StoreError, OSError):
                        put_bytes(store, examined)
                        examined = _stored(examined)
                answer = replace(examined, message=replace(message, raw=b""))
            except BaseException as exc:  # a MemoryError under RLIMIT_AS, or a bug: the poller decides
                answer = f"{type(exc).__name__}: {exc}"[:300]
            del message
            try:
                conn.send(answer)
            except OSError:  # a broken pipe: the poller was killed while this message was examined
                return


# --- the poller side --------------------------------------------------------------------------
START_ATTEMPTS = 5


class ExamineError(Exception):
    """No worker process could be started: the poll stops, and says why."""


# What a worker process runs: this module, imported by its name (not run as __main__, so
# that what it sends back unpickles in the poller as the same classes).
_WORKER_MAIN = "import sys, intake.examine as e; e.worker_main(int(sys.argv[1]))"


def worker_main(fd: int) -> None:
    """A worker process's entry: read how to examine from the pipe, then serve (`_serve`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the poller's: it stops the workers
    conn = Connection(fd)
    try:
        event, max_message_bytes, poller, address_space, data_dir = conn.recv()
    except (EOFError, OSError):
        return
    _serve(conn, event, max_message_bytes, poller, address_space, data_dir)


class _Worker:
    """One worker process and the pipe to it. It answers in the order it was sent, so when it
    dies, the message it died on is the first of `tasks`."""

    def __init__(self, examiner: Examiner) -> None:
        self.conn, child = Pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN, str(child.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=(child.fileno(),),
            )
        except BaseException:
            self.conn.close()
            raise
        finally:
            child.close()
        # Readable once the process has ended (None without pidfd: then polled, see `ended`).
        self.sentinel: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.sentinel = os.pidfd_open(self.process.pid)
        try:
            # A worker that died already makes this a broken pipe: `Examiner._start` tries again.
            self.conn.send(
                (
                    examiner.event,
                    examiner.max_message_bytes,
                    os.getpid(),
                    examiner.address_space,
                    str(examiner.data_dir) if examiner.data_dir is not None else None,
                )
            )
        except BaseException:
            self.kill()
            raise
        self.tasks: deque[int] = deque()  # indexes in the batch sent and not answered yet, in order
        self.since = 0.0  # when the first of them was sent, or the one before it answered

    def ended(self, ready: Sequence[object]) -> bool:
        if self.sentinel is not None:
            return self.sentinel in ready
        return self.process.poll() is not None

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.conn.close()
        if self.sentinel is not None:
            os.close(self.sentinel)
            self.sentinel = None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.kill()


class Examination:
    """One batch being examined; `results()` gives them back in the order submitted.

    The workers take the batch's messages from the front of `todo`; the poller, when it asks
    for the results before they are all in, takes messages from the back and examines them
    itself (`_steal`) rather than wait: the poller's idle time (while the first worker starts,
    and whenever the workers are behind) goes into examining. It never takes a message larger
    than `STEAL_BYTES`, nor one that has cost a worker already: those stay with the workers
    and their address-space limit. A message the poller fails to examine (an exception: a
    bug, or memory) goes to a worker, counted as one loss: if that worker fails on it too,
    it is quarantined (`message.worker_lost`), as after two workers lost on it."""

    def __init__(self, examiner: Examiner, messages: Sequence[RawMessage], in_workers: bool) -> None:
        self.examiner = examiner
        self.messages = list(messages)
        self.in_workers = in_workers
        self.done = threading.Event()
        self.found: list[Examined | None] = [None] * len(self.messages)
        self.error: BaseException | None = None
        self.todo: deque[int] = deque(range(len(self.messages)))  # not taken yet, in order
        self.losses: Counter[int] = Counter()  # workers lost on each message
        self.lock = threading.Lock()  # over `todo` and `losses`: the feeder and the poller share them
        self.stolen = 0  # messages the poller examined itself

    def results(self) -> list[Examined]:
        examiner = self.examiner
        if not self.in_workers:
            return [examine(m, examiner.event, examiner.max_message_bytes) for m in self.messages]
        while not self.done.is_set() and (index := self._steal()) is not None:
            message = self.messages[index]
            try:
                self.found[index] = examine(message, examiner.event, examiner.max_message_bytes)
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"[:300]
                log.warning(
                    "UID %s: examining it in the poller failed (%s); a worker examines it", message.uid, why
                )
                self.found[index] = self._in_a_worker(message)
            self.stolen += 1
        self.done.wait()
        if self.error is not None:
            raise self.error
        return [e for e in self.found if e is not None]

    def _in_a_worker(self, message: RawMessage) -> Examined:
        """`message`, which the poller failed on, examined by a worker (after what is queued)."""
        again = Examination(self.examiner, [message], in_workers=True)
        again.losses[0] = 1  # the poller's failure counts: a worker's failure quarantines it
        self.examiner.enqueue(again)
        (examined,) = again.results()
        return examined

    def _steal(self) -> int | None:
        """The last message not taken yet, if the poller may examine it."""
        with self.lock:
            if not self.todo:
                return None
            index = self.todo[-1]
            if self.losses[index] or len(self.messages[index].raw) > STEAL_BYTES:
                return None
            return self.todo.pop()


class Examiner:
    """Examines batches, in worker processes from `IN_PROCESS_BELOW` messages on.

    A thread of the poller feeds the workers, one batch after another in the order
    submitted, one message per worker at a time, and puts the results in place."""

    def __init__(
        self,
        event: EventSettings,
        max_message_bytes: int,
        workers: int,
        timeout: float = EXAMINE_TIMEOUT,
        address_space: int = WORKER_ADDRESS_SPACE,
        data_dir: Path | None = None,
    ) -> None:
        self.event = event
        self.data_dir = data_dir  # the workers write the blobs there (`_serve`)
        self.max_message_bytes = max_message_bytes
        self.workers = workers
        self.timeout = timeout
        self.address_space = address_space
        self._pool: list[_Worker] = []
        self._queue: queue.Queue[Examination | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Examiner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        for worker in self._pool:
            worker.stop()
        self._pool = []

    def submit(self, messages: Sequence[RawMessage]) -> Examination:
        """Start examining a batch; in the poller itself when it is small."""
        if len(messages) < IN_PROCESS_BELOW or self.workers < 1:
            return Examination(self, messages, in_workers=False)
        examination = Examination(self, messages, in_workers=True)
        self.enqueue(examination)
        return examination

    def expect(self, count: int) -> None:
        """`count` new messages are about to be fetched: when workers will examine them, start
        the workers now, so that their start-up (~0.3 s of imports) overlaps the fetch rather
        than the first batch waiting for it. Nothing is started for a poll with less."""
        if count >= IN_PROCESS_BELOW and self.workers >= 1:
            self._feeder()

    def enqueue(self, examination: Examination) -> None:
        """Hand an examination to the workers, after those queued before it."""
        self._feeder()
        self._queue.put(examination)

    def _feeder(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._feed, name="intake-examine-feeder", daemon=True)
            self._thread.start()

    def _feed(self) -> None:
        # The pool first, before any examination comes; when no worker could be started, the
        # first examination is told so (and the poll stops), as if it had tried itself.
        unstarted: BaseException | None = None
        try:
            self._fill()
        except BaseException as exc:
            unstarted = exc
        while (examination := self._queue.get()) is not None:
            try:
                if unstarted is not None:
                    raise unstarted
                self._run(examination)
            except BaseException as exc:
                examination.error = exc
            finally:
                unstarted = None
                examination.done.set()

    def _fill(self) -> None:
        while len(self._pool) < self.workers:
            self._pool.append(self._start())

    def _run(self, examination: Examination) -> None:
        self._fill()
        todo, losses, lock = examination.todo, examination.losses, examination.lock
        while todo or any(w.tasks for w in self._pool):
            for worker in self._pool:
                if not worker.tasks and todo:
                    self._send(worker, examination)
            busy = [w for w in self._pool if w.tasks]
            if not busy:  # the poller took what was left
                continue
            sentinels = [w.sentinel for w in busy if w.sentinel is not None]
            ready = wait([*(w.conn for w in busy), *sentinels], timeout=1.0)
            for worker in busy:
                index = worker.tasks[0]
                answer: object = None
                why = None
                if worker.conn in ready:
                    try:
                        answer = worker.conn.recv()
                    except (EOFError, OSError):
                        why = "the worker process died"
                    else:
                        if isinstance(answer, str):
                            why = f"examining it failed ({answer})"
                elif worker.ended(ready):
                    why = "the worker process died"
                elif time.monotonic() - worker.since > self.timeout:
                    why = f"no result in {self.timeout:.0f} s"
                else:
                    continue
                worker.tasks.popleft()
                worker.since = time.monotonic()
                message = examination.messages[index]
                if why is None:
                    assert isinstance(answer, Examined)
                    examination.found[index] = replace(answer, message=message)
                    continue
                # What it had not begun goes first to the next worker free, then the message
                # it was lost on (again, or quarantined the second time).
                with lock:
                    todo.extendleft(reversed(worker.tasks))
                    worker.tasks.clear()
                    losses[index] += 1
                    if losses[index] < 2:
                        todo.appendleft(index)
                self._replace(worker, message, why, losses[index] - 1)
                if losses[index] >= 2:
                    examination.found[index] = lost(message, why)

    def _send(self, worker: _Worker, examination: Examination) -> None:
        """Send an idle worker the next few messages: up to `CHUNK_MESSAGES`, under `CHUNK_BYTES`
        together (one alone if larger), and no more than its share of what is left."""
        todo = examination.todo
        with examination.lock:
            share = max(1, -(-len(todo) // len(self._pool)))
            size = 0
            while todo and len(worker.tasks) < min(CHUNK_MESSAGES, share):
                length = len(examination.messages[todo[0]].raw)
                if worker.tasks and size + length > CHUNK_BYTES:
                    break
                size += length
                worker.tasks.append(todo.popleft())
        if not worker.tasks:  # the poller took them
            return
        with contextlib.suppress(OSError):  # dead: noticed by the caller, the messages sent again
            worker.conn.send([examination.messages[i] for i in worker.tasks])
        worker.since = time.monotonic()

    def _replace(self, worker: _Worker, message: RawMessage, why: str, before: int) -> None:
        """A worker was lost on `message`: a fresh one takes its place."""
        if before:
            log.error("UID %s: %s a second time; it is quarantined", message.uid, why)
        else:
            log.warning("UID %s: %s; examining it again in a fresh worker", message.uid, why)
        worker.kill()
        self._pool[self._pool.index(worker)] = self._start()

    def _start(self) -> _Worker:
        """A fresh worker. One killed while it starts makes the start fail (a broken pipe:
        it never read what to run); another is started, a few times at most."""
        for _ in range(START_ATTEMPTS - 1):
            try:
                return _Worker(self)
            except OSError as exc:
                log.warning("a worker process died while it started (%s); starting another", exc)
        try:
            return _Worker(self)
        except OSError as exc:
            raise ExamineError(
                f"no worker process could be started ({START_ATTEMPTS} attempts; the last: {exc})"
            ) from exc

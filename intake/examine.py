"""Examine: the pure stage of the pipeline, and the worker processes that run it on every core.

`examine` reads one fetched message: parse, screen, judge (`intake.decide`).
Bytes, settings and the server's receipt time in, an `Examined` out; it touches
no database, no mailbox and no file.

`Examiner` runs `examine` over the batches of a poll. From `IN_PROCESS_BELOW`
messages on, in worker processes (`[service] workers`, INTAKE_WORKERS; default
one per core but one), started by the 'forkserver' method with the heavy
modules already imported, so a worker starts in milliseconds. The poller keeps
the IMAP session and the database: it submits a batch, records the previous
one while the workers examine, and takes the results back in UID order.

A hostile file must not take the poll down with it:
- each worker runs under an address-space limit (RLIMIT_AS, `WORKER_ADDRESS_SPACE`),
  so a runaway allocation is a MemoryError in that worker, not the OOM killer;
- a worker that dies (or examines one message longer than `EXAMINE_TIMEOUT`) breaks
  the pool: the batch's unfinished messages are examined again one at a time in a
  fresh pool, and a message that kills its worker (or runs out the clock) again is
  quarantined with the finding `message.worker_lost`, never retried forever;
- each worker watches the poller's process (a pidfd) and exits when it is gone:
  kill -9 of the poller leaves no worker behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from types import TracebackType

from intake.config import EventSettings
from intake.decide import decide, quarantined, too_large
from intake.domain import MessageStatus
from intake.findings import found
from intake.mailbox import RawMessage
from intake.parse import Inbound, Unparseable, parse_headers, parse_message
from intake.store import sha256_hex
from intake.verdict import MessageVerdict

log = logging.getLogger(__name__)

IN_PROCESS_BELOW = 16  # a smaller batch is examined in the poller: a worker would cost more
WORKER_ADDRESS_SPACE = 3 * 2**30  # RLIMIT_AS of a worker, as the hostile-input suite runs them
EXAMINE_TIMEOUT = 300.0  # seconds without any message of a batch coming back: the worker hangs


@dataclass(frozen=True)
class Examined:
    """One message read and judged: what the recording stage writes."""

    message: RawMessage
    inbound: Inbound | None  # None when not even the header block could be read
    verdict: MessageVerdict
    digest: str  # SHA-256 of the raw bytes
    body_sha: str  # SHA-256 of everything after the header block


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


def _examine_in_worker(message: RawMessage) -> Examined:
    assert _EVENT is not None, "the worker was not started by Examiner"
    examined = examine(message, _EVENT, _LIMIT)
    # The raw bytes are the poller's already: do not send them back.
    return replace(examined, message=replace(message, raw=b""))


# --- the poller side --------------------------------------------------------------------------
class Examination:
    """One batch being examined; `results()` gives them back in the order submitted."""

    def __init__(
        self,
        examiner: Examiner,
        messages: Sequence[RawMessage],
        pool: ProcessPoolExecutor | None = None,
        futures: list[Future[Examined]] | None = None,
    ) -> None:
        self.examiner = examiner
        self.messages = list(messages)
        self.pool = pool
        self.futures = futures

    def results(self) -> list[Examined]:
        examiner = self.examiner
        if self.futures is None:
            return [examine(m, examiner.event, examiner.max_message_bytes) for m in self.messages]
        out: list[Examined] = []
        for position, (message, future) in enumerate(zip(self.messages, self.futures, strict=True)):
            try:
                result = future.result(timeout=examiner.timeout)
            except (BrokenProcessPool, FutureTimeout) as exc:
                examiner.broken(self.pool)
                log.warning(
                    "a worker process was lost while examining %s messages from UID %s (%s); "
                    "examining them again one at a time",
                    len(self.messages) - position,
                    message.uid,
                    _why(exc, examiner.timeout),
                )
                return out + [examiner.alone(m) for m in self.messages[position:]]
            out.append(replace(result, message=message))
        return out


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, FutureTimeout):
        return f"no result in {timeout:.0f} s"
    return "the worker process died"


class Examiner:
    """Examines batches, in worker processes from `IN_PROCESS_BELOW` messages on."""

    def __init__(
        self,
        event: EventSettings,
        max_message_bytes: int,
        workers: int,
        timeout: float = EXAMINE_TIMEOUT,
        address_space: int = WORKER_ADDRESS_SPACE,
    ) -> None:
        self.event = event
        self.max_message_bytes = max_message_bytes
        self.workers = workers
        self.timeout = timeout
        self.address_space = address_space
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Examiner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            # The forkserver imports these once; every worker forked from it has them.
            context.set_forkserver_preload(["intake.examine"])
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(self.event, self.max_message_bytes, os.getpid(), self.address_space),
            )
        return self._pool

    def submit(self, messages: Sequence[RawMessage]) -> Examination:
        """Start examining a batch; in the poller itself when it is small."""
        if len(messages) < IN_PROCESS_BELOW or self.workers < 1:
            return Examination(self, messages)
        pool = self.pool()
        try:
            futures = [pool.submit(_examine_in_worker, m) for m in messages]
        except BrokenProcessPool:
            self.broken(pool)
            pool = self.pool()
            futures = [pool.submit(_examine_in_worker, m) for m in messages]
        return Examination(self, messages, pool, futures)

    def broken(self, pool: ProcessPoolExecutor | None) -> None:
        """Throw a pool away (killing what is left of it); the next call starts a fresh one."""
        if pool is None:
            return
        if self._pool is pool:
            self._pool = None
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def alone(self, message: RawMessage) -> Examined:
        """Examine one message in a worker of its own; quarantined if it is lost again."""
        pool = self.pool()
        try:
            result = pool.submit(_examine_in_worker, message).result(timeout=self.timeout)
        except (BrokenProcessPool, FutureTimeout) as exc:
            self.broken(pool)
            why = _why(exc, self.timeout)
            log.error("UID %s: %s a second time; it is quarantined", message.uid, why)
            return lost(message, why)
        return replace(result, message=message)

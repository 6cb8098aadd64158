"""Judging uploads in child processes bounded in memory and CPU time.

The page's process never opens an upload itself: each file goes over a pipe to
a worker process (`python -m intake.precheck.judging`, so it shares nothing
with the web server's threads) that runs the service's own judge (`intake.judge.judge_file`)
with the event's `[event.checks]` limits, the bounds the service puts on every
hostile file. The worker adds the operating system's own backstop:

- `RLIMIT_AS` (`memory_mb`, 200 MB by default): its whole address space, so its
  memory can never pass the bound, whatever a file makes the judge allocate;
  an allocation past it is a MemoryError, answered as `safety.too_complex`;
- `RLIMIT_CPU` (`cpu_seconds`, 2 s per file by default): past it the kernel
  kills the worker (SIGXCPU), and the parent answers `safety.too_complex`;
- a wall-clock limit in the parent (`wait_seconds`): a worker that has not
  answered by then is killed (a starved machine, not a hostile file).

A worker that died, or whose memory grew past half its bound, is replaced; the
upload's bytes live only in the two processes' memory, never in a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import queue
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from intake.config import EventSettings
from intake.domain import DocumentRole
from intake.findings import Found, found

log = logging.getLogger(__name__)

MiB = 2**20
TOO_COSTLY = "it needed more memory or time to open than any real document does"


@dataclass(frozen=True)
class Bounds:
    memory_mb: int = 200  # the worker's address space (RLIMIT_AS)
    cpu_seconds: int = 2  # CPU time per file (RLIMIT_CPU)
    wait_seconds: float = 30.0  # wall-clock wait for an answer before the worker is killed
    workers: int = 2  # files judged at once
    queue_seconds: float = 30.0  # how long an upload waits for a free worker


class Busy(Exception):
    """Every worker stayed busy for longer than the upload may wait."""


def outcome(verdict: Any, event: EventSettings) -> dict[str, Any]:
    """The verdict of one file as the page and the API give it: what the service would decide
    for a message carrying this file alone, without the deadline (the file is not being sent)."""
    from intake.domain import DocumentStatus
    from intake.judge.filetype import WHAT

    findings: list[Found] = list(verdict.findings)
    if verdict.role != DocumentRole.DOCUMENT and not any(f.blocks for f in findings):
        findings.insert(0, found("message.no_document"))  # as the service says of such a message
    accepted = verdict.status is DocumentStatus.ACCEPTED and not any(f.blocks for f in findings)
    return {
        "status": "accepted" if accepted else "rejected",
        "findings": [
            {"code": f.code, "severity": f.severity.value, "message": f.message, "fix": f.fix}
            for f in findings
        ],
        "title": verdict.title,
        "source": verdict.source,
        "contacts": [{k: v for k, v in contact.items() if v} for contact in verdict.contacts],
        "what": WHAT.get(verdict.detected_type, "a file of another kind"),
        "address": event.address,
    }


def too_costly(event: EventSettings, what: str = "a file we could not examine") -> dict[str, Any]:
    finding = found("safety.too_complex", reason=TOO_COSTLY)
    return {
        "status": "rejected",
        "findings": [
            {
                "code": finding.code,
                "severity": finding.severity.value,
                "message": finding.message,
                "fix": finding.fix,
            }
        ],
        "title": None,
        "source": None,
        "contacts": [],
        "what": what,
        "address": event.address,
    }


# --- the worker process ----------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _read(stream: IO[bytes]) -> bytes:
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return body


def _write(stream: IO[bytes], data: bytes) -> None:
    stream.write(len(data).to_bytes(4, "big"))
    stream.write(data)
    stream.flush()


def _worker(source: IO[bytes], sink: IO[bytes]) -> None:
    """Judge the files sent on stdin, one at a time, until it closes (`python -m` this module)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    # The parent, our own code, sends the event's settings first.
    event: EventSettings = pickle.loads(_read(source))
    bounds: Bounds = pickle.loads(_read(source))
    limit = bounds.memory_mb * MiB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.disable(logging.CRITICAL)  # a MemoryError is an answer here, not a traceback
    from intake.judge import judge_file

    with contextlib.suppress(Exception):  # learn the template now, not on the first upload
        judge_file("warm-up.txt", b"warm-up", event)
    _write(sink, b"ready")
    while True:
        try:
            name = _read(source).decode("utf-8", "replace")
            data = _read(source)
        except (EOFError, OSError):
            return
        # This file's CPU budget on top of what the worker has used so far.
        budget = int(_cpu_used()) + 1 + bounds.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (budget, resource.RLIM_INFINITY))
        try:
            verdict = judge_file(name or None, data, event)
            answer = outcome(verdict, event)
            if any((f.detail or "").startswith("MemoryError") for f in verdict.findings):
                answer = too_costly(event, answer["what"])
        except MemoryError:
            answer = too_costly(event)
        del data
        healthy = _rss_mb() < bounds.memory_mb / 2
        _write(sink, json.dumps({"answer": answer, "healthy": healthy}).encode())
        if not healthy:
            return  # the parent starts a fresh worker


class _Worker:
    def __init__(self, event: EventSettings, bounds: Bounds) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "intake.precheck.judging"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        os.set_blocking(self.stdin.fileno(), False)  # writes never wait on a worker (see _send)
        self.ready = False
        try:
            deadline = time.monotonic() + 60
            self._send(pickle.dumps(event), deadline)
            self._send(pickle.dumps(bounds), deadline)
        except (OSError, TimeoutError):
            self.stop()

    def _send(self, data: bytes, deadline: float) -> None:
        """Write a frame, giving up at `deadline`: a worker that stopped reading cannot hang us."""
        fd = self.stdin.fileno()
        for piece in (len(data).to_bytes(4, "big"), data):
            view = memoryview(piece)
            while view:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [fd], [], left)[1]:
                    raise TimeoutError
                try:
                    view = view[os.write(fd, view[: 1 << 16]) :]
                except BlockingIOError:
                    continue

    def _answer(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        return _read(self.stdout)

    def wait_ready(self, timeout: float) -> bool:
        if not self.ready:
            try:
                self.ready = self._answer(timeout) == b"ready"
            except (EOFError, OSError, TimeoutError):
                self.stop()
        return self.ready

    def judge(self, name: str, data: bytes, timeout: float) -> dict[str, Any] | None:
        """The worker's answer, or None if it died or took too long (it is then gone)."""
        try:
            if not self.wait_ready(timeout):
                raise EOFError
            deadline = time.monotonic() + timeout
            self._send(name.encode("utf-8", "replace"), deadline)
            self._send(data, deadline)
            reply: dict[str, Any] = json.loads(self._answer(timeout))
        except (EOFError, OSError, TimeoutError, ValueError):
            self.stop()
            return None
        if not reply.get("healthy"):
            self.stop()
        return reply

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


class Checker:
    """A small pool of bounded workers; `check` judges one upload in one of them."""

    def __init__(self, event: EventSettings, bounds: Bounds | None = None) -> None:
        self.event = event
        self.bounds = bounds or Bounds()
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(self.bounds.workers)
        self._closed = False
        for _ in range(self.bounds.workers):
            self._idle.put(_Worker(event, self.bounds))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every idle worker has started (at start-up, so the first upload is quick)."""
        workers = []
        while True:
            try:
                workers.append(self._idle.get_nowait())
            except queue.Empty:
                break
        for worker in workers:
            worker.wait_ready(timeout)
            self._idle.put(worker)

    def check(self, name: str, data: bytes) -> dict[str, Any]:
        if not self._slots.acquire(timeout=self.bounds.queue_seconds):
            raise Busy
        try:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                worker = _Worker(self.event, self.bounds)
            reply = worker.judge(name, data, self.bounds.wait_seconds)
            if reply is None:
                log.warning("a pre-check worker was stopped by its limits (%r)", name[:80])
            if worker.alive and not self._closed:
                self._idle.put(worker)
            elif not self._closed:
                self._idle.put(_Worker(self.event, self.bounds))  # starts while the answer goes out
            return reply["answer"] if reply is not None else too_costly(self.event)
        finally:
            self._slots.release()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return


def worker_pids(checker: Checker) -> list[int]:
    """The idle workers' process ids (for tests and the operator's log)."""
    pids = []
    for worker in list(checker._idle.queue):
        pids.append(worker.process.pid)
    return pids


__all__ = ["Bounds", "Busy", "Checker", "outcome", "too_costly", "worker_pids"]


if __name__ == "__main__":
    # The answers get a descriptor of their own; anything printed goes to stderr, not into them.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _worker(sys.stdin.buffer, answers)

"""The big batch of hostile cases, judged in a worker process of its own whose memory is measured.

    python -m tests.hostile.batch --cases 10000 [--seed N] [--case-seconds S] [--keep DIR]

This process draws the cases with hypothesis (`strategies.hostile_messages()`)
and hands each to a worker process, which takes it the whole way: parse →
screen → judge → record on SQLite (tests/hostile/path.py). The worker imports
only intake and the path, never hypothesis, so its peak resident memory
(VmHWM) is the service's own, not the generator's (hypothesis holds on to
hundreds of MB over a long run). A case that raises, runs past `--case-seconds`
or kills the worker (it runs under an RLIMIT_AS, so a runaway allocation is a
MemoryError, not the OOM killer) is saved to DIR as failing-case.eml and the
batch exits 1. At the end a third process renders the whole log once, as
`intake log` would (every message must render); its memory is reported apart
(`log_render_peak_mb`): it loads every row, so it grows with the number of
cases, which says something about `intake log`, not about the poll path. The
last line of output is a JSON report.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path


def peak_mb() -> float:
    """This process's own peak resident memory (VmHWM): ru_maxrss carries a
    parent's peak across fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(conn: Connection, directory: str, address_space_mb: int) -> None:
    """Judge and record each case sent; answer (status, seconds, peak MB, error)."""
    limit = address_space_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import logging

    logging.getLogger("mailparser").setLevel(logging.ERROR)  # as `intake` sets it (intake/cli/context.py)
    from tests.hostile.path import Recorder, judge

    recorder = Recorder(Path(directory))
    try:
        while (raw := conn.recv()) is not None:
            begin = time.monotonic()
            status, error = None, None
            try:
                judge(raw)
                status = recorder.record(raw)
            except BaseException:
                error = traceback.format_exc(limit=-8)
            conn.send((status, time.monotonic() - begin, peak_mb(), error))
        conn.send(("done", 0.0, peak_mb(), None))
    finally:
        recorder.close()


def renderer(conn: Connection, directory: str, recorded: int) -> None:
    """Render the whole log (JSON and table, as `intake log` does) once, at the end, in
    a process of its own: every message must render. Its memory grows with the number
    of rows (all of them are loaded), which is `intake log`'s, not the poll path's."""
    from tests.hostile.path import Recorder

    recorder = Recorder(Path(directory))
    recorder.recorded = recorded
    try:
        error = None
        try:
            recorder.render_log()
        except BaseException:
            error = traceback.format_exc(limit=-8)
        conn.send((peak_mb(), error))
    finally:
        recorder.close()


class CaseFailed(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20260430)
    parser.add_argument("--case-seconds", type=float, default=20)
    parser.add_argument(
        "--keep", type=Path, help="where to save a failing case (default: the work directory)"
    )
    parser.add_argument("--address-space-mb", type=int, default=3072, help="the worker's RLIMIT_AS")
    args = parser.parse_args(argv)

    from hypothesis import HealthCheck, Phase, given, seed, settings

    from tests.hostile import strategies as hs

    # On disk, not /dev/shm: the blobs of 10,000 cases would otherwise be counted in RAM.
    work = Path(tempfile.mkdtemp(prefix="intake-hostile-batch-"))
    keep = args.keep or work
    keep.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")  # a clean process: no generator memory in it
    here, there = context.Pipe()
    process = context.Process(target=worker, args=(there, str(work), args.address_space_mb), daemon=True)
    process.start()

    statuses: Counter[str] = Counter()
    slowest = (0.0, b"")
    worker_peak = 0.0
    started = time.monotonic()

    def fail(raw: bytes, why: str) -> CaseFailed:
        (keep / "failing-case.eml").write_bytes(raw)
        return CaseFailed(f"{why}; the case is saved as {keep / 'failing-case.eml'}")

    @settings(
        max_examples=args.cases,
        deadline=None,
        database=None,
        phases=(Phase.generate,),  # no shrinking: a failing case is saved as it is
        suppress_health_check=list(HealthCheck),
    )
    @seed(args.seed)
    @given(hs.hostile_messages())
    def one_case(raw: bytes) -> None:
        nonlocal slowest, worker_peak
        here.send(raw)
        if not here.poll(args.case_seconds):
            process.kill()
            raise fail(raw, f"one case ran past {args.case_seconds} s")
        try:
            status, took, peak, error = here.recv()
        except EOFError:
            raise fail(raw, f"the worker died (exit code {process.exitcode})") from None
        if error:
            raise fail(raw, f"the path raised:\n{error}")
        statuses[status] += 1
        worker_peak = max(worker_peak, peak)
        if took > slowest[0]:
            slowest = (took, raw)
        cases = sum(statuses.values())
        if cases % 1000 == 0:
            print(f"{cases} cases, worker peak {worker_peak:.0f} MB", file=sys.stderr, flush=True)

    failed = False
    render_peak = 0.0
    try:
        one_case()
        here.send(None)
        if not here.poll(60):
            raise CaseFailed("the worker did not finish in time")
        _, _, peak, _ = here.recv()
        worker_peak = max(worker_peak, peak)
        here_render, there_render = context.Pipe()
        rendering = context.Process(
            target=renderer, args=(there_render, str(work), sum(statuses.values())), daemon=True
        )
        rendering.start()
        if not here_render.poll(600):
            rendering.kill()
            raise CaseFailed("rendering the log took more than 600 s")
        render_peak, error = here_render.recv()
        rendering.join(30)
        if error:
            raise CaseFailed(f"the log did not render:\n{error}")
    except BaseException as exc:  # report what was done before the failure
        failed = True
        print(f"batch failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
    (keep / "slowest-case.eml").write_bytes(slowest[1])
    report = {
        "cases": sum(statuses.values()),
        "statuses": dict(statuses),
        "seconds": round(time.monotonic() - started, 1),
        "slowest_case_seconds": round(slowest[0], 3),
        "slowest_case_bytes": len(slowest[1]),
        "peak_mb": round(worker_peak, 1),  # the worker's: the service path's own memory
        "log_render_peak_mb": round(render_peak, 1),  # `intake log` over every case at once
        "generator_peak_mb": round(peak_mb(), 1),
        "failed": failed,
        "kept": str(keep),
    }
    print(json.dumps(report))
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

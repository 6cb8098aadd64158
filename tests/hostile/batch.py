"""The big batch of hostile cases, run in a process of its own so that its memory can be measured.

    python -m tests.hostile.batch --cases 10000 [--seed N] [--case-seconds S] [--keep DIR]

Hypothesis draws each case from `strategies.hostile_messages()`; each goes the
whole way, parse → screen → judge → record on SQLite (tests/hostile/path.py),
under an alarm of `--case-seconds`. A case that raises or runs over is saved
to DIR (default: the work directory, printed) and the batch exits 1. The last
line of output is a JSON report: cases, statuses, the slowest case, and the
process's peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.hostile import strategies as hs
from tests.hostile.path import Recorder, judge


class CaseTooSlow(Exception):
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise CaseTooSlow("one case ran past its time limit")


def peak_mb() -> float:
    """This process's own peak (VmHWM): ru_maxrss would carry the parent's (pytest's)
    peak across fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20260430)
    parser.add_argument("--case-seconds", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="where to save a failing case")
    args = parser.parse_args(argv)

    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="intake-hostile-batch-", dir=base))
    keep = args.keep or work
    recorder = Recorder(work)
    statuses: Counter[str] = Counter()
    slowest = (0.0, b"")
    started = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)

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
        nonlocal slowest
        begin = time.monotonic()
        signal.alarm(args.case_seconds)
        try:
            judge(raw)
            statuses[recorder.record(raw)] += 1
        except BaseException:
            (keep / "failing-case.eml").write_bytes(raw)
            print(f"failing case saved to {keep / 'failing-case.eml'}", file=sys.stderr)
            raise
        finally:
            signal.alarm(0)
        took = time.monotonic() - begin
        if took > slowest[0]:
            slowest = (took, raw)
        if recorder.recorded % 1000 == 0:
            recorder.render_log()
            print(f"{recorder.recorded} cases, peak {peak_mb():.0f} MB", file=sys.stderr, flush=True)

    failed = False
    try:
        one_case()
        recorder.render_log()
    except BaseException as exc:  # report what was done before the failure
        failed = True
        print(f"batch failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        recorder.close()
    (keep / "slowest-case.eml").write_bytes(slowest[1])
    report = {
        "cases": recorder.recorded,
        "statuses": dict(statuses),
        "seconds": round(time.monotonic() - started, 1),
        "slowest_case_seconds": round(slowest[0], 3),
        "slowest_case_bytes": len(slowest[1]),
        "peak_mb": round(peak_mb(), 1),
        "failed": failed,
        "kept": str(keep),
    }
    print(json.dumps(report))
    if not failed and args.keep is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

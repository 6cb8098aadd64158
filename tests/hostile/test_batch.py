"""The hostile batch in processes of its own: no unhandled exception, bounded time and memory
(measured in the worker that runs the service's path; see tests/hostile/batch.py).

250 cases in the short run, 10,000 with INTAKE_FULL=1 (INTAKE_HOSTILE_CASES
overrides both); see tests/hostile/batch.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.conftest import BATCH_CASES

REPO = Path(__file__).resolve().parents[2]
PEAK_MB = 300  # issue 7: peak memory under 300 MB whatever the input
CASE_SECONDS = 30  # no single case may take longer (a generous bound: the machine may be busy)

pytestmark = pytest.mark.slow


def test_hostile_batch_in_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.hostile.batch",
            "--cases",
            str(BATCH_CASES),
            "--case-seconds",
            str(CASE_SECONDS),
            "--keep",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120 + BATCH_CASES * 2,
        cwd=REPO,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    report = json.loads(lines[-1])
    print(f"hostile batch: {report}")
    assert done.returncode == 0 and not report["failed"], (report, done.stderr[-3000:])
    # Every case went the whole way and was recorded with a status.
    assert report["cases"] >= BATCH_CASES
    assert sum(report["statuses"].values()) == report["cases"]
    assert report["peak_mb"] < PEAK_MB, report
    assert report["slowest_case_seconds"] < CASE_SECONDS, report

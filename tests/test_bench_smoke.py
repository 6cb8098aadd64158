"""The benchmark runs end to end in its small CI mode and reports what it promises.

Only the shape of the report is checked, never a timing: the goals are read
from a full run (docs/performance.md), not asserted by a timed test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import _require_dovecot

pytestmark = pytest.mark.dovecot

REPO = Path(__file__).resolve().parents[1]
STAGES = {
    "fetch",
    "parse",
    "judge",
    "store",
    "record (SQL)",
    "record (commit)",
    "file (MOVE)",
    "file (mark filed)",
    "other",
}


def test_smoke_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    _require_dovecot()
    out = tmp_path / "smoke.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "intake_bench.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr

    table = result.stdout
    for expected in (
        "msgs/s",
        "MB/s",
        "peak RSS MB",
        "ratio",
        "raw fetch (sqlite run)",
        "poll_once, sqlite",
        "stage (ms per message)",
        "large message",
        "goals:",
    ):
        assert expected in table, f"{expected!r} missing from the table:\n{table}"

    data = json.loads(out.read_text())
    assert data["mode"] == "smoke"
    assert data["corpus"]["messages"] == 200
    assert set(data["corpus"]["kinds"]) == {"valid", "late", "pdf_only", "no_attachment", "auto_reply"}
    for key in ("cpus", "python", "dovecot", "sqlite"):
        assert data["machine"][key]

    sqlite = data["backends"]["sqlite"]
    assert sqlite["ratio"] > 0
    raw, poll = sqlite["raw_fetch"], sqlite["poll"]
    assert raw["messages"] == 200 and raw["msgs_per_s"] > 0 and raw["mb_per_s"] > 0
    assert raw["peak_rss_mb"] > 0
    assert poll["messages"] == 200 and poll["unfiled"] == 0
    assert poll["msgs_per_s"] > 0 and poll["mb_per_s"] > 0 and poll["peak_rss_mb"] > 0
    assert set(poll["stages"]) >= STAGES
    for stage in poll["stages"].values():
        assert {"seconds", "ms_per_message", "share", "calls"} <= set(stage)
    total = sum(stage["seconds"] for stage in poll["stages"].values())
    assert total == pytest.approx(poll["seconds"], rel=0.05)
    assert {"at_checkpoint_mb", "at_end_mb", "growth_mb"} <= set(poll["rss"])

    large = data["large_message"]
    assert large["message_bytes"] > 25 * 2**20
    assert large["peak_rss_mb"] > 0 and large["judge"]["peak_rss_mb"] > 0

    assert data["profile"]["top_tottime"] and data["profile"]["by_component"]
    assert data["goals"] and all({"goal", "value", "met"} <= set(g) for g in data["goals"])


def test_idle_latency_benchmark_runs(tmp_path: Path) -> None:
    """bench/idle_latency.py measures instant pickup; here only that it runs and reports."""
    out = tmp_path / "idle.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "idle_latency.py"), "--messages", "3", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "append -> acknowledgement" in result.stdout
    report = json.loads(out.read_text())
    assert report["messages"] == 3 and len(report["latencies_s"]) == 3
    assert {"min_s", "median_s", "p90_s", "max_s", "within_5_s"} <= set(report)

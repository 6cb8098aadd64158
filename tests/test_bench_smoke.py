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


def test_smoke_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    """One short run with the peer: the raw fetch, intake poll --once and django-helpdesk's
    get_email on the same folder, the ratios, the memory of each process tree."""
    _require_dovecot()
    out = tmp_path / "smoke.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "intake_bench.py"),
            "--smoke",
            "--peer",
            "django-helpdesk",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr

    table = result.stdout
    for expected in (
        "msgs/s",
        "peak PSS",
        "CPU ms/msg",
        "raw fetch",
        "intake, sqlite",
        "django-helpdesk 2.6.1 get_email",
        "ratio intake, sqlite / peer",
        "ratio intake, sqlite / raw fetch",
        "large message",
        "goals:",
    ):
        assert expected in table, f"{expected!r} missing from the table:\n{table}"

    data = json.loads(out.read_text())
    assert data["mode"] == "smoke"
    messages = data["corpus"]["messages"]
    assert messages == 100
    assert set(data["corpus"]["kinds"]) == {"valid", "late", "pdf_only", "no_attachment", "auto_reply"}
    for key in ("cpus", "python", "dovecot", "sqlite", "load_average", "load_average_at_end"):
        assert data["machine"][key]

    systems = data["systems"]
    raw, intake, peer = systems["raw fetch"], systems["intake, sqlite"], systems["peer"]
    assert raw["messages"] == messages and raw["msgs_per_s"] > 0 and raw["peak_pss_mb"] > 0
    # intake recorded and filed every message, and every reply it queued reached the SMTP server
    assert intake["recorded"] == messages and intake["unfiled"] == 0, intake
    assert intake["replies"].get("sent", 0) == intake["smtp_received"] > 0, intake
    assert intake["msgs_per_s"] > 0 and intake["peak_pss_mb"] > 0 and intake["processes"] >= 1
    assert set(intake["stages"]) >= {"fetch", "examine", "record", "file", "deliver"}, intake["stages"]
    # the peer read the same folder to the end
    assert peer["processed"] == messages and peer["tickets"] > 0 and peer["peak_pss_mb"] > 0, peer
    for name in ("intake, sqlite / peer", "intake, sqlite / raw fetch"):
        assert data["ratios"][name] > 0

    large = data["large_message"]
    assert large["message_bytes"] > 25 * 2**20
    assert large["peak_pss_mb"] > 0 and large["judge"]["peak_rss_mb"] > 0

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

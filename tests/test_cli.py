"""The smaller commands: check-config, check, outbox, and the demo of the README."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from intake.samples import CONTRIBUTORS, make_docx, make_message
from tests.support.dovecot import Dovecot
from tests.support.intake_env import REPO, IntakeEnv, write_config
from tests.support.smtp import SmtpSink


@pytest.fixture
def env(dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> IntakeEnv:
    return write_config(
        tmp_path,
        dovecot.host,
        dovecot.port,
        dovecot.user,
        dovecot.password,
        migrated_url,
        smtp_port=smtp_sink.port,
    )


@pytest.mark.dovecot
def test_check_config_says_line_by_line_what_is_reachable(
    env: IntakeEnv, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    good = env.run("check-config")
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    assert [line.split()[1].rstrip(":") for line in lines] == [
        "config",
        "replies",
        "database",
        "imap",
        "smtp",
    ]
    assert all(line.startswith("ok") for line in lines)

    dovecot.kill()
    smtp_sink.stop()
    bad = env.run("check-config")
    assert bad.returncode == 1
    by_name = {line.split()[1].rstrip(":"): line for line in bad.stdout.splitlines()}
    assert by_name["database"].startswith("ok")
    assert by_name["imap"].startswith("FAIL") and "connection was refused" in by_name["imap"]
    assert by_name["smtp"].startswith("FAIL")
    assert "Traceback" not in bad.stderr


def test_check_config_catches_a_reply_template_that_does_not_render(
    migrated_url: str, tmp_path: Path
) -> None:
    shipped = REPO / "config" / "replies"
    broken = tmp_path / "replies"
    broken.mkdir()
    for template in shipped.glob("*.j2"):
        (broken / template.name).write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    (broken / "rejection.txt.j2").write_text("Dear {{ contributor.nmae }}, {{ no_such_thing }}\n")
    env = write_config(
        tmp_path,
        "127.0.0.1",
        9,
        "u",
        "p",
        migrated_url,
        extra=f'[event.replies]\ntemplates_dir = "{broken}"\n',
    )
    result = env.run("check-config")
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if " replies:" in line]
    assert line.startswith("FAIL") and "rejection.txt.j2" in line


def test_intake_check_on_files(migrated_url: str, tmp_path: Path) -> None:
    env = write_config(tmp_path, "127.0.0.1", 9, "u", "p", migrated_url)
    event = env.settings().event
    who = CONTRIBUTORS[0]
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "good.docx").write_bytes(
        make_docx(event, "Roadmap update", who.organization, who, "An abstract.")
    )
    ok = env.run("check", str(folder))
    assert ok.returncode == 0, ok.stdout
    assert "good.docx" in ok.stdout
    (folder / "input.docx").write_bytes(b"%PDF-1.4\n%%EOF\n")
    refused = env.run("check", str(folder))
    assert refused.returncode == 1
    assert "input.docx" in refused.stdout and "PDF" in refused.stdout
    assert "Traceback" not in refused.stderr


@pytest.mark.dovecot
def test_outbox_lists_and_retries_failed_replies(
    env: IntakeEnv, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    who = CONTRIBUTORS[1]
    raw = make_message(
        who, event.address, "A PDF only", "Attached.", [("x.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")]
    )
    dovecot.append_many("INBOX", [(raw, event.deadline - timedelta(days=1))])
    smtp_sink.fail_next(1, 550, "5.1.1 No such user here")
    env.run("poll", "--once", check=True)
    listing = json.loads(env.run("outbox", "--format", "json", check=True).stdout)
    assert [(e["status"], e["kind"]) for e in listing] == [("failed", "rejection")]
    assert "550 5.1.1 No such user here" in listing[0]["last_error"]
    table = env.run("outbox", check=True).stdout
    assert "failed" in table and who.address in table
    env.run("outbox", "retry", check=True)
    env.run("poll", "--once", check=True)
    assert len(smtp_sink.messages) == 1
    assert json.loads(env.run("outbox", "--format", "json", check=True).stdout) == []


def test_the_readme_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "intake", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for status in ("accepted", "partial", "rejected", "late", "ignored", "duplicate", "quarantined"):
        assert f" {status} " in result.stdout, status
    assert "JCA-MV-I-001" in result.stdout
    replies = sorted((tmp_path / "demo" / "replies").glob("*.eml"))
    assert len(replies) >= 5
    assert "Traceback" not in result.stderr


def test_the_demo_can_leave_the_dashboard_running(tmp_path: Path) -> None:
    import re
    import signal
    import time

    from intake.demo import free_port
    from tests.desk.test_web import Client

    port = free_port()
    log = tmp_path / "demo.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "intake",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--dashboard",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 180
        found = None
        while time.monotonic() < deadline and found is None:
            found = re.search(r"sign in as\s+(\S+) / (\S+)", log.read_text())
            time.sleep(0.5)
        assert found, log.read_text()[-2000:]
        time.sleep(1)
        client = Client(f"http://127.0.0.1:{port}")
        client.sign_in(found.group(1), found.group(2))
        status, _, page = client.request("GET", "/")
        assert status == 200 and "JCA-MV-I-001" in page
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

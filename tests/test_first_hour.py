"""The first hour of a new operator (issue 13, acceptance 3): each command asks only for the
settings it uses, and check-config says everything that is wrong at once and writes nothing.

A message is recorded through Dovecot with a full configuration; then the desk's commands run
in a fresh process environment holding only INTAKE_DATABASE_URL and INTAKE_DATA_DIR (the shipped
event, no IMAP or SMTP server), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from intake.samples import CONTRIBUTORS, make_docx, make_message
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv, write_config
from tests.support.smtp import free_port
from tests.support.waiting import wait_until


def bare_env(**settings: str) -> dict[str, str]:
    """The process environment of a new shell with only these INTAKE_* settings."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, **settings}


def intake(
    cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        input=stdin,
        timeout=120,
    )


@pytest.mark.dovecot
def test_the_desks_commands_need_only_the_database_and_the_data_directory(
    dovecot: Dovecot, database_url: str, tmp_path: Path
) -> None:
    configured = write_config(
        tmp_path / "full", dovecot.host, dovecot.port, dovecot.user, dovecot.password, database_url
    )
    only = bare_env(INTAKE_DATABASE_URL=database_url, INTAKE_DATA_DIR=str(configured.data_dir))
    here = tmp_path / "shell"
    here.mkdir()

    upgraded = intake(here, only, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    _record_one(configured, dovecot)

    listed = intake(here, only, "log", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [e["subject"] for e in entries] == ["A first-hour input"]
    shown = intake(here, only, "show", str(entries[0]["id"]), "--original")
    assert shown.returncode == 0 and "A first-hour input" in shown.stdout, shown.stderr
    assert "Please find it attached." in shown.stdout  # read from the data directory
    status = intake(here, only, "status")
    assert status.returncode == 0 and "no IMAP server configured" in status.stdout, status.stderr
    exported = intake(here, only, "export", "--format", "csv")
    assert exported.returncode == 0 and "JCA-MV-I-001" in exported.stdout, exported.stderr
    added = intake(
        here, only, "user", "add", "anna", "--role", "admin", "--password-stdin", stdin="pw-long-enough\n"
    )
    assert added.returncode == 0, added.stderr

    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "intake", "web", "--port", str(port)],
        env=only,
        cwd=here,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _answers(port, web), 60, "intake web never answered on its port")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/login")
        assert connection.getresponse().status == 200
    finally:
        web.terminate()
        web.wait(timeout=10)
    for result in (upgraded, listed, shown, status, exported, added):
        assert "configuration error" not in result.stderr and "Traceback" not in result.stderr
    assert list(here.iterdir()) == [], "a command wrote into the working directory"


def _answers(port: int, process: subprocess.Popen[str]) -> bool:
    if process.poll() is not None:
        raise AssertionError(
            f"intake web exited {process.returncode}: {process.stderr.read() if process.stderr else ''}"
        )
    try:
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
    except OSError:
        return False
    return True


def _record_one(env: IntakeEnv, dovecot: Dovecot, late: bool = False) -> None:
    event = env.settings().event
    who = CONTRIBUTORS[0]
    document = make_docx(event, "First hour", who.organization, who, "An abstract.")
    raw = make_message(
        who,
        event.address,
        "A first-hour input",
        "Please find it attached.",
        [("input.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", document)],
    )
    received = event.deadline + timedelta(hours=5) if late else event.deadline - timedelta(days=2)
    dovecot.append_many("INBOX", [(raw, received)])
    env.run("poll", "--once", check=True)


def test_check_needs_no_setting_at_all_and_writes_nothing(tmp_path: Path) -> None:
    from intake.config import load_settings

    event = load_settings(env={}, needs=frozenset()).event  # the shipped event, as `check` reads it
    who = CONTRIBUTORS[1]
    target = tmp_path / "input.docx"
    target.write_bytes(make_docx(event, "Checked at home", who.organization, who, "An abstract."))
    here = tmp_path / "shell"
    here.mkdir()
    checked = intake(here, bare_env(), "check", str(target))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 file checked" in checked.stdout, checked.stdout
    assert list(here.iterdir()) == []


def test_check_config_names_every_problem_at_once_and_writes_nothing(tmp_path: Path) -> None:
    here = tmp_path / "shell"
    here.mkdir()
    wrong = bare_env(INTAKE_IMAP_PORT="abc", INTAKE_SMTP_TLS="bogus", INTAKE_DEADLINE="tomorrow")
    result = intake(here, wrong, "check-config")
    assert result.returncode == 2 and result.stdout == "", result.stdout
    named = [line.split(": ")[2].split()[0] for line in result.stderr.splitlines()]
    assert named == [
        "imap.host",
        "imap.port",
        "imap.user",
        "imap.password",
        "smtp.tls",
        "smtp.host",
        "event.deadline",
    ], result.stderr
    assert list(here.iterdir()) == [], "check-config wrote something (an empty var/intake.db?)"


def test_intake_run_logs_one_line_per_event_and_no_scheduler_chatter(
    make_env: MakeEnv, tmp_path: Path
) -> None:
    """With the mail servers away, the service says so; APScheduler's per-run lines ("Running
    job", "executed successfully") never reach the operator's log, least of all after a failure."""
    env = make_env(
        imap=False, smtp_port=free_port(), service="poll_interval = 1\noutbox_interval = 1\nmax_backoff = 2"
    )
    log = tmp_path / "run.log"
    service = env.popen("run", log=log)
    try:
        wait_until(
            lambda: (
                log.read_text(encoding="utf-8").count("ERROR") >= 1 and "still failing" in log.read_text()
            ),
            90,
            f"the service never logged its failing poll twice: {log}",
        )
    finally:
        service.terminate()
        service.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    assert "apscheduler" not in text and "executed successfully" not in text and "Running job" not in text, (
        text
    )
    assert "Traceback" not in text, text
    assert all(line[:4].isdigit() for line in text.splitlines()), f"a record spread over lines:\n{text}"


@pytest.mark.dovecot
def test_admit_with_the_smtp_server_down_says_once_that_the_reply_waits(
    dovecot: Dovecot, make_env: MakeEnv
) -> None:
    env = make_env(smtp_port=free_port())
    _record_one(env, dovecot, late=True)
    late = env.log_json()[0]
    assert late["status"] == "late", late
    admitted = env.run("admit", str(late["id"]), "--reason", "the chair agreed", "--as", "anna")
    assert admitted.returncode == 0, admitted.stderr
    said = (admitted.stdout + admitted.stderr).lower()
    assert said.count("waits in the outbox") == 1, admitted.stdout + admitted.stderr
    assert "traceback" not in said and "warning" not in said, said
    assert len(admitted.stdout.splitlines()) + len(admitted.stderr.splitlines()) == 2, said

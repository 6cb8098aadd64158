"""The smaller commands: check-config, check, outbox, and the demo of the README."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from intake.samples import CONTRIBUTORS, make_docx, make_message
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import REPO, IntakeEnv
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until


@pytest.fixture
def env(make_env: MakeEnv, smtp_sink: SmtpSink) -> IntakeEnv:
    return make_env(smtp_port=smtp_sink.port)


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
    make_env: MakeEnv, tmp_path: Path
) -> None:
    shipped = REPO / "config" / "replies"
    broken = tmp_path / "replies"
    broken.mkdir()
    for template in shipped.glob("*.j2"):
        (broken / template.name).write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    (broken / "rejection.txt.j2").write_text("Dear {{ contributor.nmae }}, {{ no_such_thing }}\n")
    env = make_env(imap=False, extra=f'[event.replies]\ntemplates_dir = "{broken}"\n')
    result = env.run("check-config")
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if " replies:" in line]
    assert line.startswith("FAIL") and "rejection.txt.j2" in line


def test_intake_check_on_files(make_env: MakeEnv, tmp_path: Path) -> None:
    env = make_env(imap=False)
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


def test_a_command_exits_without_the_last_garbage_collections(make_env: MakeEnv, tmp_path: Path) -> None:
    """`python -m intake` freezes what it loaded once the command is done, so that the
    interpreter's exit does not walk it all again (0.1-0.3 s of every command here); the
    command's output and exit code are what they were, and atexit handlers still run."""
    env = make_env(imap=False)
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "input.docx").write_bytes(b"%PDF-1.4\n%%EOF\n")
    code = (
        "import atexit, gc, runpy, sys; "
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count())); "
        f"sys.argv = ['intake', '--config', {str(env.config_path)!r}, 'check', {str(folder)!r}]; "
        "runpy.run_module('intake', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env.env(), timeout=120
    )
    assert result.returncode == 1 and "input.docx" in result.stdout, result.stdout + result.stderr
    frozen = int(result.stdout.rsplit("frozen at exit:", 1)[1].split()[0])
    assert frozen > 10_000, f"only {frozen} objects frozen at exit"


def test_a_poll_works_with_what_it_loaded_at_start_frozen(
    make_env: MakeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`intake poll` collects and freezes what it has loaded before it polls, so the garbage
    collector's full passes during the poll skip the modules and mappers (intake.cli.context.settle)."""
    import gc

    from intake import pipeline
    from intake.cli import main

    env = make_env(imap=False)
    seen: list[int] = []

    def poll_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.get_freeze_count())
        return pipeline.PollReport()

    monkeypatch.setattr(pipeline, "poll_once", poll_once)
    for name, value in env.env().items():
        if name.startswith("INTAKE_"):
            monkeypatch.setenv(name, value)
    try:
        assert main(["--config", str(env.config_path), "poll", "--once"]) == 0
    finally:
        gc.unfreeze()
    assert len(seen) == 1 and seen[0] > 10_000, f"frozen during the poll: {seen}"


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
    output = result.stdout + result.stderr
    # For a person: no protocol or log lines, one line per message, the replies summed up.
    for chatter in ("mail.log", ">> b'", "EHLO", "RCPT TO", " INFO ", "Traceback"):
        assert chatter not in output, chatter
    lines = [line for line in result.stdout.splitlines() if line.startswith("  #")]
    assert len(lines) == 13, result.stdout
    statuses = (
        "accepted",
        "partial",
        "rejected",
        "late",
        "ignored",
        "duplicate",
        "quarantined",
        "already_numbered",
        "correspondence",
    )
    for status in statuses:
        assert any(f" {status} " in line for line in lines), status
    # The same document sent again (issue 11): its number, once, and the already-registered answer.
    resent = next(line for line in lines if " already_numbered " in line)
    assert "JCA-MV-I-001" in resent and "answer: already registered" in resent, resent
    # Mail without a document (issue 11): a question gets the notice, thanks to our
    # acknowledgement nothing; neither is rejected.
    question = next(line for line in lines if "a question" in line)
    assert " correspondence " in question and "answer: correspondence notice" in question, question
    thanks = next(line for line in lines if "thanks in answer" in line)
    assert " correspondence " in thanks and "answer: not answered" in thanks, thanks
    # An acknowledgement before the deadline: the demo's messages arrive around the event's own
    # deadline, whatever today's date is.
    on_time = next(line for line in lines if line.startswith("  #1 "))
    assert "JCA-MV-I-001" in on_time and "answer: acknowledgement" in on_time, on_time
    assert "The deadline is 30 Apr 23:59" in result.stdout
    replies = sorted((tmp_path / "demo" / "replies").glob("*.eml"))
    assert re.search(
        rf"\n{len(replies)} replies sent to the local SMTP server \(\d+ acknowledgements", result.stdout
    )

    # The closing "Try" line runs as printed, in a new shell that knows nothing of this one.
    printed = result.stdout.split("Try, in a new shell:\n", 1)[1].strip()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tried = subprocess.run(
        ["bash", "-c", printed],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=elsewhere,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert tried.returncode == 0, f"{printed}\n{tried.stderr}"
    assert "JCA-MV-I-001" in tried.stdout, tried.stdout
    assert list(elsewhere.iterdir()) == []

    # `intake log` on the same data: by receipt time, its columns aligned for wide (CJK) text.
    table = subprocess.run(
        ["bash", "-c", printed.replace(" show 1", " log")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=elsewhere,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    ).stdout.splitlines()
    rows = [line for line in table[2:] if line[:1].isdigit() and "message(s)" not in line]
    assert len(rows) == len(lines), table  # one row per message of the demo
    received = [row.split("  ")[1].strip() for row in rows]
    assert received == sorted(received), received
    starts = [m.start() for m in re.finditer(r"-+", table[1])]  # the columns, from the rule line
    for row in rows:
        at = columns(row)
        for start in starts[1:]:
            assert at.get(start - 1) == " " and at.get(start, " ") != " ", (start, row)
    assert any("关于元宇宙" in row for row in rows)

    # Where the pre-check page would run, and the digest: each command runs as printed.
    assert "The pre-check page for contributors would run at http://127.0.0.1:8090/" in result.stdout
    shell = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    digest = _printed_after(result.stdout, "printed by:")
    assert digest.endswith(" digest"), digest
    printed_digest = subprocess.run(
        ["bash", "-c", digest], capture_output=True, text=True, timeout=120, cwd=elsewhere, env=shell
    )
    assert printed_digest.returncode == 0, printed_digest.stderr
    assert re.search(rf"NEW SINCE .*: {len(lines)}\n", printed_digest.stdout), printed_digest.stdout
    assert "NEEDS A PERSON" in printed_digest.stdout and "REPLIES THAT FAILED" in printed_digest.stdout
    precheck = _printed_after(result.stdout, "started by:")
    assert precheck.endswith(" precheck"), precheck
    _serves_the_page(precheck, elsewhere, shell)
    assert list(elsewhere.iterdir()) == []


def _printed_after(stdout: str, words: str) -> str:
    return stdout.split(words + "\n", 1)[1].splitlines()[0].strip()


def _serves_the_page(command: str, cwd: Path, env: dict[str, str]) -> None:
    """The printed `intake precheck` serves the page (on a free port: 8090 may be taken here)."""
    import urllib.request

    from tests.support.smtp import free_port
    from tests.support.waiting import wait_until

    port = free_port()
    server = subprocess.Popen(
        ["bash", "-c", f"{command} --port {port}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the shell and the page it starts are stopped together
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                return "Deadline for input documents" in page.read().decode()
        except OSError:
            return False

    try:
        wait_until(answers, 120, "the printed `intake precheck` did not serve the page")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


_WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'intake'; runpy.run_module('intake', run_name='__main__', alter_sys=True)"
)


def test_the_demo_can_leave_the_dashboard_running(tmp_path: Path) -> None:
    """`intake demo --dashboard`: the printed sign-in works on the printed port, and Ctrl-C stops
    everything. On a loaded machine the demo's poll and the server's start take their time, so
    each step waits for what it needs (the printed sign-in, then the port answering HTTP) for
    minutes, and a failure shows what the demo said."""
    import signal

    from intake.demo import free_port
    from tests.desk.test_web import Client

    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            # Ctrl-C as a terminal gives it: a test runner started in the background (`cmd &` in a
            # script) hands its children SIGINT ignored, and Python then leaves it ignored.
            [sys.executable, "-c", _WITH_CTRL_C, "demo", "--dir", str(tmp_path / "demo"), "--dashboard"]
            + ["--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def said() -> str:
        return f"the demo (exit {process.poll()}) said:\n{log.read_text(encoding='utf-8')[-12000:]}"

    def sign_in_printed() -> re.Match[str] | None:
        if process.poll() is not None:
            raise AssertionError(said())
        return re.search(r"sign in as\s+(\S+) / (\S+)", log.read_text(encoding="utf-8"))

    client = Client(f"http://127.0.0.1:{port}")

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(said())
        try:
            return client.request("GET", "/login")[0] == 200
        except OSError:
            return False

    try:
        wait_until(sign_in_printed, 300, lambda: f"no sign-in was printed; {said()}")
        found = sign_in_printed()
        assert found is not None
        wait_until(answers, 120, lambda: f"nothing answered HTTP on port {port}; {said()}")
        client.sign_in(found.group(1), found.group(2))
        status, _, page = client.request("GET", "/")
        assert status == 200 and "JCA-MV-I-001" in page, page[-2000:]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # where each thread is stuck, into the log
            wait_until(lambda: "in <module>" in log.read_text(encoding="utf-8"), 30)
            process.kill()
            process.wait()
    assert process.returncode == 0, said()
    assert "The pre-check page for contributors would run at http://127.0.0.1:8090/" in said()
    # Ctrl-C stopped the demo's own IMAP server too (it runs in a session of its own).
    imap = re.search(r"a local IMAP server \(127\.0\.0\.1:(\d+)\)", log.read_text(encoding="utf-8"))
    assert imap, said()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(imap.group(1))), timeout=2).close()


def columns(row: str) -> dict[int, str]:
    """The character that starts at each terminal column (a wide one takes two columns)."""
    import unicodedata

    found, column = {}, 0
    for char in row:
        found[column] = char
        column += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return found


def test_sigusr1_prints_where_each_thread_of_a_running_command_is(tmp_path: Path) -> None:
    """An operator's (and the demo test's) way to see why a process does not stop: the stack of
    every thread on stderr, and the command goes on running."""
    from tests.precheck.conftest import start_page, stop_page

    page = start_page(tmp_path)
    try:
        page.process.send_signal(signal.SIGUSR1)
        wait_until(
            # the main thread comes last, its outermost frame last of all
            lambda: "in <module>" in page.log.read_text(encoding="utf-8"),
            60,
            lambda: f"no stacks on stderr after SIGUSR1; it said: {page.log.read_text(encoding='utf-8')}",
        )
        dump = page.log.read_text(encoding="utf-8")
        assert "Current thread" in dump and "waitress" in dump and "intake/cli/__init__.py" in dump, dump
        assert page.process.poll() is None, "SIGUSR1 stopped the command"
    finally:
        stop_page(page)

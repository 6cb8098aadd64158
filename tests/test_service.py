"""`intake run`: polls on a schedule, survives the server going away, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.corpus import mixed
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import config_on
from tests.support.waiting import wait_until

pytestmark = pytest.mark.dovecot

# Neither the poll nor the outbox runs on its schedule within a test: only IDLE can bring mail in.
HOURLY = "poll_interval = 3600\noutbox_interval = 3600"


def test_run_polls_on_schedule_and_survives_the_server_dying(
    dovecot: Dovecot, make_env: MakeEnv, tmp_path: Path
) -> None:
    env = make_env(service="poll_interval = 5")
    dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in mixed(10, with_faults=False)])
    log = tmp_path / "run.log"
    process = env.popen("run", log=log)
    try:
        wait_until(lambda: len(env.log_json()) == 10, 120, "the first ten messages recorded")
        dovecot.kill()
        wait_until(
            lambda: "poll failed: IMAP server" in log.read_text("utf-8") or process.poll() is not None,
            120,
            lambda: f"a poll failing while the server is down; the log:\n{log.read_text(encoding='utf-8')}",
        )
        assert process.poll() is None, "the service must not exit when IMAP is down"
        dovecot.start()
        dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in mixed(5, start=100, with_faults=False)])
        wait_until(lambda: len(env.log_json()) == 15, 120, "the five sent after the restart recorded")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    stderr = log.read_text(encoding="utf-8")
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "intake stopped" in stderr


def test_idle_picks_up_new_mail_without_waiting_for_the_poll(
    dovecot: Dovecot, make_env: MakeEnv, smtp_sink
) -> None:  # type: ignore[no-untyped-def]
    env = make_env(smtp_port=smtp_sink.port, service=HOURLY, imap_extra="idle = true")
    process = env.popen("run")
    try:
        # However the start-up poll and the watcher's IDLE interleave with this
        # append, nothing waits for the next (hourly) poll.
        wait_until(lambda: "intake running" in _peek(env), timeout=120)
        samples = mixed(3, start=500, with_faults=False)
        dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in samples])
        wait_until(lambda: len(env.log_json()) == 3, timeout=120)
        # The replies went out too, without waiting for the hourly outbox run.
        wait_until(lambda: len(smtp_sink.messages) == 3, timeout=120)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "with IDLE" in stderr


def test_mail_arriving_while_a_poll_runs_is_not_left_for_the_next_poll(
    dovecot: Dovecot, make_env: MakeEnv, smtp_sink
) -> None:  # type: ignore[no-untyped-def]
    """IDLE announces a message that comes while a poll is running; that
    announcement must not be dropped (APScheduler skips a run of a job that is
    still running), or the message waits for the next poll, an hour away here."""
    import sqlalchemy as sa

    env = make_env(smtp_port=smtp_sink.port, service=HOURLY, imap_extra="idle = true")
    engine = sa.create_engine(env.database_url)

    def recorded() -> int:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM inbound_message")).scalar_one()

    process = env.popen("run")
    try:
        wait_until(lambda: "intake running" in _peek(env), timeout=120)
        time.sleep(2)  # the start-up poll is over and the watcher is in IDLE
        # The race: the late message must come while the poll of the backlog still runs. On a
        # fast machine the poll can be over first (with 150, all were recorded before the late one came);
        # that attempt tests nothing, so another backlog is sent, up to five times.
        expected, raced, attempt = 0, False, 0
        while not raced and attempt < 5:
            backlog = mixed(400, start=700 + attempt * 1000, with_faults=False)
            late = mixed(1, start=1200 + attempt * 1000, with_faults=False)[0]
            before = recorded()
            dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in backlog])
            wait_until(lambda n=before: recorded() > n, 120, lambda: f"no backlog recorded: {recorded()}")
            dovecot.append_many("INBOX", [(late.raw, late.received_at)])
            raced = recorded() < before + len(backlog)
            expected += len(backlog) + 1
            # Recorded without waiting for the next poll, an hour away, whether it raced or not.
            wait_until(
                lambda n=expected: recorded() == n,
                120,
                lambda n=expected: f"{n} recorded (the late message included); saw {recorded()}",
            )
            attempt += 1
        assert raced, "in five tries every poll ended before the late message came: no race was tested"
    finally:
        engine.dispose()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def _peek(env) -> str:  # type: ignore[no-untyped-def]
    # The service logs to stderr; the test only needs to know it started, so ask the database.
    return "intake running" if env.run("log", "--format", "json").returncode == 0 else ""


def test_a_second_run_on_one_sqlite_database_is_refused(dovecot: Dovecot, tmp_path: Path) -> None:
    from intake import db

    url = f"sqlite:///{tmp_path / 'one.db'}"
    db.upgrade(url)
    env = config_on(dovecot, tmp_path, url)
    first = env.popen("run")
    try:
        wait_until(lambda: any(tmp_path.glob("one.db.poller-*.lock")), timeout=30)
        time.sleep(0.5)
        second = env.run("run", timeout=60)
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if line.startswith("intake: ")]
        assert len(errors) == 1 and "already polling" in errors[0] and f"process {first.pid}" in errors[0]
        assert "Traceback" not in second.stderr
        # A one-off poll does not fight the service for the mailbox either.
        once = env.run("poll", "--once")
        assert once.returncode == 0 and "is polling this mailbox now" in once.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_metrics_healthz_status_and_json_logs(
    dovecot: Dovecot, make_env: MakeEnv, tmp_path: Path, smtp_sink
) -> None:  # type: ignore[no-untyped-def]
    import json
    import urllib.error
    import urllib.request
    from collections import Counter

    from prometheus_client.parser import text_string_to_metric_families

    from intake.demo import free_port

    port = free_port()
    env = make_env(
        smtp_port=smtp_sink.port,
        service=f"poll_interval = 2\noutbox_interval = 1\nmax_backoff = 5\nmetrics_port = {port}",
    )
    dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in mixed(40)])
    log = tmp_path / "service.log"
    process = env.popen("--log-format", "json", "run", log=log)
    try:
        wait_until(lambda: len(env.log_json()) == 40, timeout=60)

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
                    return answer.status, answer.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        def healthz() -> tuple[int, dict[str, Any]]:
            code, body = get("/healthz")
            return code, json.loads(body)

        # Healthy once a poll has succeeded since everything was recorded. (A 200 alone can come
        # before: a service is healthy for its first intervals while its first poll runs.)
        event = env.settings().event.id

        def polled() -> bool:
            code, report = healthz()
            return code == 200 and "last_successful_poll" in report.get(event, {})

        wait_until(polled, timeout=60, message=lambda: f"/healthz never said a poll succeeded: {healthz()}")
        code, body = get("/metrics")
        assert code == 200
        families = {f.name: f for f in text_string_to_metric_families(body)}
        by_status = {s.labels["status"]: s.value for s in families["intake_messages"].samples}
        expected = Counter(e["status"] for e in env.log_json())
        assert {k: v for k, v in by_status.items() if v} == dict(expected)
        docs = {s.labels["status"]: s.value for s in families["intake_documents"].samples}
        assert docs == dict(Counter(d["status"] for e in env.log_json() for d in e["documents"]))
        assert families["intake_last_successful_poll_timestamp_seconds"].samples[0].value > 0
        outbox = {s.labels["status"]: s.value for s in families["intake_outbox"].samples}
        assert outbox["pending"] + outbox["sending"] + outbox["sent"] + outbox["suppressed"] >= 1

        status = env.run("status", "--format", "json", check=True)
        [state] = json.loads(status.stdout)
        assert state["backlog"] == 0 and state["messages"] == dict(expected)
        assert state["last_poll"] is not None

        # Unhealthy from the first failed poll, with the cause; healthy again after the next good one.
        dovecot.kill()
        wait_until(
            lambda: healthz()[0] == 503,
            timeout=60,
            message=lambda: f"/healthz stayed {healthz()} with IMAP down",
        )
        code, answer = healthz()
        assert "IMAP server" in answer["jca-mv-2"]["poll"], answer
        dovecot.start()
        wait_until(
            lambda: healthz()[0] == 200,
            timeout=120,
            message=lambda: f"/healthz stayed {healthz()} with IMAP back",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("poll failed" in line["message"] for line in lines)
    assert not any("s3cret" in line["message"] for line in lines)


def test_one_service_runs_several_events(
    dovecot: Dovecot, make_env: MakeEnv, tmp_path: Path, smtp_sink
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from intake.samples import CONTRIBUTORS, DOCX, make_docx, make_message
    from tests.support.intake_env import EVENT

    env = make_env(smtp_port=smtp_sink.port, service="poll_interval = 2\noutbox_interval = 1")
    second = (
        EVENT.replace("[event]", "[[events]]")
        .replace('id = "jca-mv-2"', 'id = "sg20-2026"')
        .replace('address = "tsbjcamv@itu.int"', 'address = "tsbsg20@itu.int"')
        .replace("JCA-MV-I-", "SG20-I-")
        .replace('deadline = "2026-04-30T23:59:59"', 'deadline = "2026-06-30T23:59:59"')
    )
    config = env.config_path.read_text().replace("[event]", "[[events]]", 1)
    config += second + '\n[events.imap]\nfolder = "SG20"\n'
    env.config_path.write_text(config)
    who = CONTRIBUTORS[0]
    for folder, address in (("INBOX", "tsbjcamv@itu.int"), ("SG20", "tsbsg20@itu.int")):
        settings = env.settings() if folder == "INBOX" else None
        event = (settings or env.settings()).event
        docx = make_docx(event, f"Input for {folder}", who.organization, who, "An abstract.")
        raw = make_message(who, address, f"Input for {folder}", "Attached.", [("in.docx", DOCX, docx)])
        dovecot.append_many(folder, [(raw, event.deadline - timedelta(days=1))])
    process = env.popen("run", log=tmp_path / "run.log")
    try:
        wait_until(lambda: len(smtp_sink.messages) == 2, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0, (tmp_path / "run.log").read_text()[-2000:]
    every = env.run("log", "--all-events", "--format", "json", check=True)
    entries = {e["subject"]: e for e in json.loads(every.stdout)}
    assert entries["Input for INBOX"]["documents"][0]["number"] == "JCA-MV-I-001"
    assert entries["Input for SG20"]["documents"][0]["number"] == "SG20-I-001"
    assert {e["event"] for e in entries.values()} == {"jca-mv-2", "sg20-2026"}
    # The log of one event lists that event's messages only: the first by default.
    assert [e["subject"] for e in env.log_json()] == ["Input for INBOX"]
    sg20_log = env.run("--event", "sg20-2026", "log", "--format", "json", check=True)
    assert [e["subject"] for e in json.loads(sg20_log.stdout)] == ["Input for SG20"]
    sg20_export = env.run("--event", "sg20-2026", "export", "--format", "csv", check=True)
    assert "SG20-I-001" in sg20_export.stdout and "JCA-MV-I-001" not in sg20_export.stdout
    senders = sorted(str(m.mail_from) for m in smtp_sink.messages)
    assert senders == ["tsbjcamv@itu.int", "tsbsg20@itu.int"]
    sg20 = env.run("--event", "sg20-2026", "status", "--format", "json", check=True)
    assert '"mailbox": ' in sg20.stdout and "/SG20" in sg20.stdout

"""`intake run` sends the daily digest (issue 14, acceptance 3, second half): at `digest_at` it
delivers exactly one digest to the SMTP server (aiosmtpd), on SQLite and PostgreSQL, and with
two replicas on one PostgreSQL; started after that day's `digest_at` with the day's digest not
sent, it sends it at start, once; with no `digest_to` it schedules none.

The tests put `digest_at` (which takes seconds) `MARGIN` seconds ahead, so a service that starts
in time fires it from its schedule; one that starts later on a loaded machine sends it at start
instead, which is the same promise (one digest that day), so neither path fails the test; the
schedule itself is checked without waiting (`test_no_digest_job_without_digest_to`)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from intake import db
from intake.config import load_deployment
from intake.service import Service
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv, config_on, write_config
from tests.support.smtp import Received, SmtpSink
from tests.support.waiting import wait_until
from tests.test_replicas import stop, submissions

pytestmark = pytest.mark.dovecot

ZONE = ZoneInfo("Europe/Zurich")
SECRETARIAT = "secretariat@itu.int"
MARGIN = 12  # seconds for the service (or two) to start before digest_at


def today(margin: float) -> datetime:
    """Now in the event's zone, at least `margin` seconds before midnight: near midnight, wait
    for the new day first, so that "today's digest" means one day throughout a test."""
    now = datetime.now(ZONE)
    if (now + timedelta(seconds=margin)).date() != now.date():
        wait_until(lambda: datetime.now(ZONE).date() != now.date(), margin + 60, lambda: "midnight in Zurich")
        now = datetime.now(ZONE)
    return now


def soon(margin: float = MARGIN) -> datetime:
    """A whole second, in the event's zone, `margin` seconds from now, today."""
    return (today(margin + 5) + timedelta(seconds=margin)).replace(microsecond=0)


def configure(env: IntakeEnv, digest_at: datetime | None, digest_to: str = SECRETARIAT) -> None:
    lines = f'digest_to = "{digest_to}"\n' if digest_to else ""
    if digest_at is not None:
        lines += f'digest_at = "{digest_at:%H:%M:%S}"\n'
    text = env.config_path.read_text().replace("[event]\n", "[event]\n" + lines, 1)
    service = 'poll_interval = 2\noutbox_interval = 1\ndesk_url = "https://desk.example.org/"\n'
    text = text.replace("[service]\n", "[service]\n" + service, 1)
    env.config_path.write_text(text.replace("[smtp]\n", "[smtp]\nclaim_lease = 15\n", 1))


def digests(sink: SmtpSink) -> list[Received]:
    return [m for m in sink.received() if SECRETARIAT in m.rcpt_tos]


def said(logs: list[Path], slot: str) -> list[str]:
    """The lines each replica logged about the day's digest."""
    pattern = re.compile(rf"the daily digest of {slot} (.*)")
    return [found.group(1) for log in logs for found in pattern.finditer(log.read_text(encoding="utf-8"))]


def run_until_the_digest(
    env: IntakeEnv, dovecot: Dovecot, sink: SmtpSink, tmp_path: Path, replicas: int
) -> tuple[list[str], str]:
    """Start `replicas` services with digest_at `MARGIN` seconds ahead; return what they said
    about the day's digest once each has had its say, and the log texts."""
    # Recorded before the services start, so the digest surely has them to tell.
    dovecot.append_many("INBOX", submissions(env, 2))
    env.run("poll", "--once", check=True)
    at = soon()
    configure(env, at)
    slot = at.date().isoformat()
    logs = [tmp_path / f"replica-{n}.log" for n in range(replicas)]
    processes: list[subprocess.Popen[str]] = [env.popen("run", log=log) for log in logs]
    try:
        limit = (at - datetime.now(ZONE)).total_seconds() + 120
        wait_until(lambda: len(digests(sink)) >= 1, limit, lambda: f"no digest; logs: {_tails(logs)}")

        def settled() -> bool:
            lines = said(logs, slot)
            # Each replica has said whether it sent it; one that found it being sent looks
            # again after the lease (15 s) and says it was sent.
            return len([x for x in lines if not x.startswith("is being sent")]) >= replicas

        wait_until(settled, 120, lambda: f"the replicas did not settle: {said(logs, slot)}")
        assert all(p.poll() is None for p in processes), _tails(logs)
    finally:
        texts = [stop(process, log) for process, log in zip(processes, logs, strict=True)]
    for text in texts:
        assert "Traceback" not in text, text[-3000:]
    return said(logs, slot), "\n".join(texts)


def _tails(logs: list[Path]) -> str:
    return " | ".join(log.read_text(encoding="utf-8")[-1500:] for log in logs if log.exists())


def test_intake_run_sends_one_digest_at_digest_at(
    dovecot: Dovecot, make_env: MakeEnv, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    env = make_env(smtp_port=smtp_sink.port)
    lines, log = run_until_the_digest(env, dovecot, smtp_sink, tmp_path, 1)
    assert [x for x in lines if x.startswith("was sent to")] == [f"was sent to {SECRETARIAT} (2 new)"], lines
    [digest] = digests(smtp_sink)
    message = email.message_from_bytes(digest.data, policy=email.policy.default)
    if "was due at" not in log:  # started in time: the schedule fired it, not before digest_at
        at = re.search(r"the daily digest goes to \S+ at (\d\d:\d\d:\d\d)", log)
        assert at, log[-3000:]
        sent = email.utils.parsedate_to_datetime(message["Date"]).astimezone(ZONE)
        assert sent.strftime("%H:%M:%S") >= at.group(1), (message["Date"], at.group(1))
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert re.search(r"NEW SINCE .*: 2\n\n  accepted: 2", text), text
    assert "https://desk.example.org/messages/" not in text.split("NEEDS A PERSON")[1]  # none waits


def test_a_service_started_after_digest_at_sends_that_days_digest_once(
    dovecot: Dovecot, make_env: MakeEnv, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """Down at `digest_at` (a restart, a deploy): the service sends the day's digest when it
    starts, and a second start the same day does not send it again."""
    env = make_env(smtp_port=smtp_sink.port)
    dovecot.append_many("INBOX", submissions(env, 1))
    env.run("poll", "--once", check=True)
    now = today(120)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    configure(env, max(now - timedelta(minutes=1), midnight).replace(microsecond=0))
    slot = now.date().isoformat()

    def run_until(log: Path, done: Callable[[str], bool], what: str) -> str:
        process = env.popen("run", log=log)
        try:
            wait_until(lambda: done(log.read_text(encoding="utf-8")), 120, lambda: f"{what}: {_tails([log])}")
        finally:
            text = stop(process, log)
        return text

    texts = [
        run_until(
            tmp_path / "run-0.log", lambda text: f"the daily digest of {slot} was sent" in text, "no digest"
        ),
        # The decision is taken, and logged, before the service says it runs.
        run_until(tmp_path / "run-1.log", lambda text: "intake running for event" in text, "no second start"),
    ]
    first, second = texts
    assert f"{slot}'s daily digest was due at" in first, first[-3000:]
    assert said([tmp_path / "run-0.log"], slot) == [f"was sent to {SECRETARIAT} (1 new)"]
    assert "was due at" not in second and not said([tmp_path / "run-1.log"], slot), second[-3000:]
    assert len(digests(smtp_sink)) == 1
    assert "Traceback" not in first + second


def test_two_replicas_on_postgresql_send_one_digest(
    dovecot: Dovecot, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    from tests.support.databases import create_pg_database, drop_pg_database

    url = create_pg_database()
    try:
        db.upgrade(url)
        env = config_on(dovecot, tmp_path, url, smtp_port=smtp_sink.port)
        lines, _ = run_until_the_digest(env, dovecot, smtp_sink, tmp_path, 2)
    finally:
        drop_pg_database(url)
    assert len(digests(smtp_sink)) == 1
    sent = [x for x in lines if x.startswith("was sent to")]
    assert len(sent) == 1 and sent[0].startswith(f"was sent to {SECRETARIAT}"), lines
    assert "was sent by another replica" in lines, lines


def test_no_digest_job_without_digest_to(tmp_path: Path) -> None:
    """The schedule itself: a digest job at digest_at local time, and none without recipients."""
    at = soon(60)
    for digest_to, expected in ((SECRETARIAT, ["digest:jca-mv-2"]), ("", [])):
        where = tmp_path / (digest_to or "none")
        env = write_config(where, "127.0.0.1", 1, "u", "p", f"sqlite:///{where / 'intake.db'}")
        configure(env, at, digest_to)
        service = Service(load_deployment(env.config_path, env={}))
        try:
            service.events[0].start(datetime.now(UTC))
            jobs = [job for job in service.scheduler.get_jobs() if job.id.startswith("digest")]
            assert [job.id for job in jobs] == expected
            if jobs:
                assert jobs[0].trigger.get_next_fire_time(None, datetime.now(ZONE)) == at
        finally:
            service.events[0].release()
            service.engine.dispose()

"""`intake run` sends the daily digest (issue 14, acceptance 3, second half): with `digest_at` at
the next minute it delivers exactly one digest to the SMTP server (aiosmtpd), on SQLite and
PostgreSQL, and with two replicas on one PostgreSQL; with no `digest_to` it schedules none.

The test picks `digest_at` as the next minute boundary at least `MARGIN` seconds away (so the
service has started by then) and waits for the digest with a generous limit."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
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
MARGIN = 25  # seconds for the service (or two) to start before digest_at


def next_minute(margin: float = MARGIN) -> datetime:
    """The next whole minute (in the event's zone) at least `margin` seconds from now."""
    now = datetime.now(ZONE)
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return boundary if (boundary - now).total_seconds() >= margin else boundary + timedelta(minutes=1)


def configure(env: IntakeEnv, digest_at: datetime | None, digest_to: str = SECRETARIAT) -> None:
    lines = f'digest_to = "{digest_to}"\n' if digest_to else ""
    if digest_at is not None:
        lines += f'digest_at = "{digest_at:%H:%M}"\n'
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
    """Start `replicas` services with digest_at at the next minute; return what they said about
    the day's digest once each has had its say, and the log texts."""
    # Recorded before the services start, so the digest surely has them to tell.
    dovecot.append_many("INBOX", submissions(env, 2))
    env.run("poll", "--once", check=True)
    at = next_minute()
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
    lines, _ = run_until_the_digest(env, dovecot, smtp_sink, tmp_path, 1)
    assert [x for x in lines if x.startswith("was sent to")] == [f"was sent to {SECRETARIAT} (2 new)"], lines
    [digest] = digests(smtp_sink)
    message = email.message_from_bytes(digest.data, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert re.search(r"NEW SINCE .*: 2\n\n  accepted: 2", text), text
    assert "https://desk.example.org/messages/" not in text.split("NEEDS A PERSON")[1]  # none waits


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
    at = next_minute(0)
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

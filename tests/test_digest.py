"""`intake digest` (issue 14, acceptance 3, first half): on a database with every status it
prints each section (new since the last digest by status, with numbers, titles and senders;
what needs a person, linked to the desk; failed replies; the deadline and the time left);
`--send` mails it as text and HTML to `digest_to` and records it, so the next digest starts
there; a day's digest is claimed by one sender only. SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import io
import re
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from intake import db
from intake.cli import main
from intake.digest import claim
from intake.domain import DigestStatus, DocumentStatus, MessageStatus, ReplyStatus, meaning
from intake.models import DigestRun, Document, InboundMessage, Reply
from tests.support.intake_env import IntakeEnv, write_config
from tests.support.smtp import SmtpSink

DESK = "https://desk.example.org/intake/"
SECRETARIAT = ("tsbjcamv@itu.int", "Chief.Secretary@itu.int")
HOSTILE_SUBJECT = "<script>alert(1)</script> Вклад\u202e"


def _deadline_in(days: int) -> str:
    local = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Zurich"))
    return (local + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def env(migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> IntakeEnv:
    made = write_config(tmp_path, "127.0.0.1", 1, "u", "p", migrated_url, smtp_port=smtp_sink.port)
    text = made.config_path.read_text()
    text = text.replace('deadline = "2026-04-30T23:59:59"', f'deadline = "{_deadline_in(3)}"')
    text = text.replace("[event]\n", f"[event]\ndigest_to = {list(SECRETARIAT)!r}\n".replace("'", '"'), 1)
    text = text.replace("[service]\n", f'[service]\ndesk_url = "{DESK}"\n', 1)
    made.config_path.write_text(text)
    return made


@pytest.fixture
def sessions(env: IntakeEnv) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(env.database_url)
    try:
        yield db.make_sessionmaker(engine)
    finally:
        engine.dispose()


def _message(n: int, status: MessageStatus, recorded_at: datetime, **more: object) -> InboundMessage:
    return InboundMessage(
        event="jca-mv-2",
        mailbox="u@127.0.0.1:1",
        folder="INBOX",
        uidvalidity=1,
        uid=n,
        message_id=f"<m{n}@example.org>",
        sender=f"person{n}@example{n}.org",
        sender_name=f"Person {n}",
        subject=f"Subject of a {status} message",
        received_at=recorded_at - timedelta(minutes=1),
        recorded_at=recorded_at,
        size=100,
        sha256=f"{n:064x}",
        body_sha256=f"{n:064x}",
        status=status,
        **more,
    )


def populate(sessions: sessionmaker[Session]) -> dict[str, int]:
    """One new message in every status, an old late one, a non-ASCII hostile subject, and a
    failed reply. Returns the ids by name."""
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    with sessions.begin() as session:
        for n, status in enumerate(MessageStatus, start=1):
            row = _message(n, status, now - timedelta(hours=2), reason=f"why {status}")
            if status in (MessageStatus.ACCEPTED, MessageStatus.PARTIAL, MessageStatus.LATE):
                number = None if status == MessageStatus.LATE else f"JCA-MV-I-{n:03d}"
                row.documents.append(
                    Document(
                        position=0,
                        filename="input.docx",
                        size=10,
                        sha256=f"{n:064x}",
                        status=DocumentStatus.LATE if number is None else DocumentStatus.ACCEPTED,
                        title=f"Title of the {status} input",
                        number=number,
                    )
                )
            session.add(row)
            session.flush()
            ids[str(status)] = row.id
        old = _message(100, MessageStatus.LATE, now - timedelta(days=3))
        old.subject = "An old late message"
        hostile = _message(101, MessageStatus.HELD, now - timedelta(hours=1))
        hostile.subject, hostile.sender_name = HOSTILE_SUBJECT, "Ольга <b>Петрова</b>"
        session.add_all([old, hostile])
        session.flush()
        ids["old"], ids["hostile"] = old.id, hostile.id
        reply = Reply(
            message_id=ids["rejected"],
            event="jca-mv-2",
            kind="rejection",
            recipient="person4@example4.org",
            subject="Re: x",
            body_text="x",
            rfc_message_id="<r1@itu.int>",
            status=ReplyStatus.FAILED,
            last_error="550 5.1.1 No such user",
        )
        session.add(reply)
        session.flush()
        ids["reply"] = reply.id
    return ids


def run(env: IntakeEnv, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--config", str(env.config_path), "digest", *args])
    return code, out.getvalue(), err.getvalue()


def section(text: str, heading: str) -> str:
    """The lines under a heading in capitals, up to the next one."""
    match = re.search(rf"^{heading}[^\n]*\n(.*?)(?=^[A-Z][A-Z ]+|^--$)", text, re.M | re.S)
    assert match, f"no section {heading!r} in:\n{text}"
    return match.group(0)


def test_the_digest_prints_every_section(env: IntakeEnv, sessions: sessionmaker[Session]) -> None:
    ids = populate(sessions)
    code, text, err = run(env)
    assert code == 0, err
    statuses = list(MessageStatus)
    new = section(text, "NEW SINCE")
    assert f": {len(statuses) + 1}\n" in new.splitlines()[0] + "\n"  # every status, and the hostile one
    for status in statuses:
        assert re.search(rf"^  {status}: \d+ \({re.escape(meaning(status).words)}\)$", new, re.M), status
    assert "JCA-MV-I-002: Title of the accepted input" in new
    assert "Title of the late input" in new
    assert "Person 2 <person2@example2.org>" in new
    assert "An old late message" not in new  # recorded three days ago
    waiting = section(text, "NEEDS A PERSON")
    people = [s for s in statuses if meaning(s).needs_person]
    assert {"late", "held", "quarantined"} <= {str(s) for s in people}
    for status in people:
        assert re.search(rf"^  {status}: \d+ ", waiting, re.M), status
        assert f"{DESK}messages/{ids[str(status)]}" in waiting
    assert "An old late message" in waiting and f"{DESK}messages/{ids['old']}" in waiting
    assert f"{DESK}messages/{ids['accepted']}" not in waiting
    failed = section(text, "REPLIES THAT FAILED")
    assert "REPLIES THAT FAILED: 1" in failed and "550 5.1.1 No such user" in failed
    assert "rejection to person4@example4.org" in failed
    deadline = section(text, "DEADLINE")
    assert re.search(r"due by \w+day \d+ \w+ \d{4}, \d\d:\d\d CES?T", deadline), deadline
    assert re.search(r"Time left: [23] days, \d+ hours and \d+ minutes", deadline), deadline
    assert "\u202e" not in text and "<b>" in text  # bidi override dropped; text is text


def test_send_mails_text_and_html_and_the_next_digest_starts_there(
    env: IntakeEnv, sessions: sessionmaker[Session], smtp_sink: SmtpSink
) -> None:
    ids = populate(sessions)
    code, _, err = run(env, "--send")
    assert code == 0, err
    assert "sent to tsbjcamv@itu.int, chief.secretary@itu.int" in err
    [received] = smtp_sink.received()
    assert received.mail_from == "tsbjcamv@itu.int"
    assert sorted(received.rcpt_tos) == sorted(a.lower() for a in SECRETARIAT)
    assert received.data.isascii()  # 7-bit: quoted-printable parts, RFC 2047 headers
    message: EmailMessage = email.message_from_bytes(received.data, policy=email.policy.default)  # type: ignore[assignment]
    assert message["Auto-Submitted"] == "auto-generated"
    new = len(MessageStatus) + 1
    subject = rf"JCA-MV daily digest \d{{4}}-\d\d-\d\d: {new} new, \d+ waiting for a person"
    assert re.match(subject, message["Subject"])
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Вклад" in text and "Вклад" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;Петрова&lt;/b&gt;" in html
    assert f'<a href="{DESK}messages/{ids["late"]}">#{ids["late"]}</a>' in html
    for heading in ("Deadline", "New since", "Needs a person", "Replies that failed"):
        assert f">{heading}" in html, heading
    with sessions() as session:
        [row] = session.scalars(select(DigestRun)).all()
        assert row.status == DigestStatus.SENT and row.slot is None and row.sent_at is not None
        assert row.rfc_message_id == message["Message-ID"]
    # The next digest starts where this one ended: nothing new until something is recorded.
    code, text, _ = run(env)
    assert "(the last digest): 0" in text and "Nothing new." in text
    with sessions.begin() as session:
        session.add(_message(200, MessageStatus.ACCEPTED, datetime.now(UTC)))
    _, text, _ = run(env)
    assert "(the last digest): 1" in section(text, "NEW SINCE")
    _, text, _ = run(env, "--since", "24h")  # asked for: the span given
    assert f": {new + 1}\n" in section(text, "NEW SINCE").splitlines()[0] + "\n"


def test_send_without_digest_to_names_the_setting(env: IntakeEnv, smtp_sink: SmtpSink) -> None:
    text = env.config_path.read_text()
    env.config_path.write_text(re.sub(r"digest_to = .*\n", "", text))
    code, _, err = run(env, "--send")
    assert code == 2 and "event.digest_to" in err, err
    assert smtp_sink.received() == []


def test_a_failed_send_is_recorded_and_said(
    env: IntakeEnv, sessions: sessionmaker[Session], smtp_sink: SmtpSink
) -> None:
    smtp_sink.fail_next(1, 554, "5.7.1 No thanks")
    code, _, err = run(env, "--send")
    assert code == 1 and "554 5.7.1 No thanks" in err, err
    with sessions() as session:
        [row] = session.scalars(select(DigestRun)).all()
        assert row.status == DigestStatus.FAILED and row.last_error == "554 5.7.1 No thanks"
    # A failed digest is no "last digest": the next one covers the same span.
    _, text, _ = run(env)
    assert "(the last digest)" not in text


def test_a_day_is_claimed_once(env: IntakeEnv, sessions: sessionmaker[Session]) -> None:
    settings = env.settings()
    now = datetime.now(UTC)
    first = claim(sessions, settings, now, "2026-12-06", "replica-1")
    assert first is not None
    assert claim(sessions, settings, now, "2026-12-06", "replica-2") is None  # being sent
    assert claim(sessions, settings, now, "2026-12-07", "replica-2") is not None  # another day
    # Its sender died: once the claim is older than the lease, another replica takes it over.
    later = now + timedelta(seconds=settings.smtp.claim_lease + 1)
    taken = claim(sessions, settings, later, "2026-12-06", "replica-2")
    assert taken is not None and taken.id == first.id
    with sessions.begin() as session:
        row = session.get(DigestRun, first.id)
        assert row is not None and row.claimed_by == "replica-2"
        row.status = DigestStatus.SENT
    assert claim(sessions, settings, later + timedelta(days=1), "2026-12-06", "replica-1") is None
    # A digest sent by hand is never refused.
    assert claim(sessions, settings, now, None, "desk") is not None
    assert claim(sessions, settings, now, None, "desk") is not None


def test_digest_settings_are_read_and_checked(tmp_path: Path) -> None:
    from datetime import time

    from intake.config import ConfigError, load_settings

    made = write_config(tmp_path, "127.0.0.1", 1, "u", "p", f"sqlite:///{tmp_path / 'x.db'}")
    text = made.config_path.read_text()

    def event_with(lines: str, env: dict[str, str] | None = None) -> object:
        made.config_path.write_text(text.replace("[event]\n", f"[event]\n{lines}\n", 1))
        return load_settings(made.config_path, env=env or {}).event

    default = event_with("")
    assert default.digest_to == () and default.digest_at == time(8, 0)  # type: ignore[attr-defined]
    chosen = event_with('digest_to = "Sec@ITU.int"\ndigest_at = "17:30"')
    assert chosen.digest_to == ("sec@itu.int",) and chosen.digest_at == time(17, 30)  # type: ignore[attr-defined]
    assert event_with("digest_at = 06:15:00").digest_at == time(6, 15)  # type: ignore[attr-defined]
    assert event_with("digest_at = 06:15:40").digest_at == time(6, 15, 40)  # type: ignore[attr-defined]
    assert event_with('digest_at = "7:05:09"').digest_at == time(7, 5, 9)  # type: ignore[attr-defined]
    from_env = event_with("", {"INTAKE_DIGEST_TO": "a@itu.int, b@itu.int", "INTAKE_DIGEST_AT": "07:05"})
    assert from_env.digest_to == ("a@itu.int", "b@itu.int") and from_env.digest_at == time(7, 5)  # type: ignore[attr-defined]
    wrongs = (
        ('digest_at = "8am"', "event.digest_at"),
        ('digest_at = "08:00:60"', "event.digest_at"),
        ('digest_at = "08:00:5"', "event.digest_at"),
        ('digest_at = "24:00"', "event.digest_at"),
        ('digest_to = ["not an address"]', "event.digest_to"),
    )
    for wrong, named in wrongs:
        with pytest.raises(ConfigError, match=named):
            event_with(wrong)

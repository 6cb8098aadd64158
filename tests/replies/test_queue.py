"""One queue for every reply (intake.replies.queue): the poller's and the desk's rows alike.

Before, the poller and the desk each had a copy of the queueing code, and they had
drifted: a failed reply's Message-ID was formatted two ways (one of which collided
when the same message failed twice), only the desk's copy set `created_at` on a
failed reply, and only the desk's recorded what a reply announced (`outcome`).
Every test runs on SQLite and on PostgreSQL (the `database` fixture).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from intake.config import EventSettings
from intake.config.replies import parse_replies
from intake.domain import DocumentStatus, MessageStatus, ReplyKind, ReplyStatus
from intake.findings import found
from intake.models import InboundMessage, Reply
from intake.replies.kinds import KINDS, error_codes
from intake.replies.queue import outcome_of_verdict, queue_again, queue_reply
from intake.verdict import DocumentVerdict, MessageVerdict
from tests.replies.conftest import Clock, Database
from tests.replies.mail import human

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "replies"
ACCEPTED = MessageVerdict(
    MessageStatus.ACCEPTED,
    documents=(
        DocumentVerdict(0, "input.docx", None, "docx", 10, "0" * 64, "document", DocumentStatus.ACCEPTED),
    ),
)
REJECTED = MessageVerdict(MessageStatus.REJECTED, findings=(found("message.no_document"),))


def _message(db: Database, event: EventSettings, uid: int, now: datetime) -> int:
    with db.sessions.begin() as session:
        row = InboundMessage(
            event=event.id,
            mailbox="intake@example.org:143",
            folder="INBOX",
            uidvalidity=1,
            uid=uid,
            received_at=now,
            size=100,
            sha256=f"{uid:064x}",
            body_sha256=f"{uid:064x}",
            status=str(MessageStatus.ACCEPTED),
        )
        session.add(row)
        session.flush()
        return row.id


def _broken_templates(tmp_path: Path) -> Path:
    directory = tmp_path / "replies"
    directory.mkdir()
    for source in SHIPPED.glob("*.j2"):
        (directory / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "acknowledgement.txt.j2").write_text("Dear {{ recipient_name }\n", encoding="utf-8")
    return directory


def test_a_failed_reply_is_written_one_way_for_the_poller_and_the_desk(
    database: Database, event: EventSettings, clock: Clock, tmp_path: Path
) -> None:
    broken = dataclasses.replace(
        event, replies=parse_replies({"templates_dir": str(_broken_templates(tmp_path))})
    )
    message_id = _message(database, event, 1, clock())
    now = clock()
    with database.sessions.begin() as session:
        # The poller's call (kind from the status, rate-limited), then the desk's (admit), twice.
        for kwargs in ({}, {"kind": ReplyKind.ACKNOWLEDGEMENT, "by_person": True}, {"by_person": True}):
            reply, note = queue_reply(
                session, message_id, human(), ACCEPTED, {0: "X-001"}, broken, now, now, **kwargs
            )
            assert reply is not None and note == "reply failed: its template could not be rendered"
    with database.sessions() as session:
        rows = session.scalars(select(Reply).order_by(Reply.id)).all()
    assert len(rows) == 3  # the same message and kind failing again is a row of its own
    for row in rows:
        assert row.status == ReplyStatus.FAILED and "template failed" in (row.last_error or "")
        assert re.fullmatch(
            rf"<failed\.{message_id}\.acknowledgement\.[0-9a-f]{{16}}@intake>", row.rfc_message_id
        )
        assert row.created_at == now  # the decision's time, not the clock of the database
        assert row.outcome == outcome_of_verdict(ACCEPTED).key("acknowledgement")
    assert len({row.rfc_message_id for row in rows}) == 3


def test_every_queued_reply_records_what_it_announced(
    database: Database, event: EventSettings, clock: Clock
) -> None:
    message_id = _message(database, event, 2, clock())
    with database.sessions.begin() as session:
        reply, note = queue_reply(
            session, message_id, human(), ACCEPTED, {0: "X-001"}, event, clock(), clock()
        )
        assert reply is not None and note == "acknowledgement queued to alice@example.org"
        assert reply.status == ReplyStatus.PENDING and reply.created_at == clock()
        assert reply.outcome == outcome_of_verdict(ACCEPTED).key("acknowledgement")
        assert b"X-001" in (reply.raw or b"")


def test_rate_limits_for_the_service_not_for_a_person(
    database: Database, event: EventSettings, clock: Clock
) -> None:
    first, second = _message(database, event, 3, clock()), _message(database, event, 4, clock())
    with database.sessions.begin() as session:
        one, _ = queue_reply(session, first, human(), REJECTED, {}, event, clock(), clock())
        again, note = queue_reply(session, second, human(), REJECTED, {}, event, clock(), clock())
        person, _ = queue_reply(
            session, second, human(), REJECTED, {}, event, clock(), clock(), by_person=True
        )
    assert one is not None and one.status == ReplyStatus.PENDING and one.signature == error_codes(REJECTED)
    assert again is not None and again.status == ReplyStatus.SUPPRESSED
    assert note == "rejection suppressed: the same rejection was sent to this address in the last 24 hours"
    assert person is not None and person.status == ReplyStatus.PENDING


def test_a_resent_reply_has_its_own_message_id_and_date(
    database: Database, event: EventSettings, clock: Clock
) -> None:
    message_id = _message(database, event, 5, clock())
    with database.sessions.begin() as session:
        old, _ = queue_reply(session, message_id, human(), ACCEPTED, {0: "X-001"}, event, clock(), clock())
        assert old is not None
        session.flush()
        clock.advance(timedelta(days=1))
        new = queue_again(session, old, event, clock())
        session.flush()
    assert new.rfc_message_id != old.rfc_message_id and new.created_at == clock()
    assert new.raw is not None and old.raw is not None
    assert f"Message-ID: {new.rfc_message_id}".encode() in new.raw
    assert new.raw.partition(b"\r\n\r\n")[2] == old.raw.partition(b"\r\n\r\n")[2]


def test_the_kinds_table_covers_every_kind() -> None:
    assert set(KINDS) == set(ReplyKind)
    assert [k for k, spec in KINDS.items() if spec.attaches_template] == [ReplyKind.REJECTION]
    assert [k for k, spec in KINDS.items() if spec.attaches_without_link] == [ReplyKind.CORRESPONDENCE_NOTICE]
    assert [k for k, spec in KINDS.items() if spec.lists_numbers] == [ReplyKind.ACKNOWLEDGEMENT]
    assert KINDS[ReplyKind.LATE_NOTICE].templates == ("late_notice.txt.j2", "late_notice.html.j2")
    assert all((SHIPPED / name).is_file() for spec in KINDS.values() for name in spec.templates)


def test_outbox_rows_are_made_in_one_module() -> None:
    package = Path(__file__).resolve().parents[2] / "intake"
    makers = sorted(
        str(path.relative_to(package.parent))
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Reply"
    )
    assert set(makers) == {"intake/replies/queue.py"}, makers

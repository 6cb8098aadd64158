"""`intake.db.insert_rows`, the recording stage's bulk insert, on SQLite and PostgreSQL: what
it writes reads back exactly as the ORM's own insert of the same values does, and on
PostgreSQL its statement stays short however many rows it carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, inspect, select
from sqlalchemy.exc import StatementError

from intake import db
from intake.models import Base, Document, InboundMessage, Reply
from tests.support.databases import create_pg_database, drop_pg_database

MESSAGES = Base.metadata.tables[InboundMessage.__tablename__]
REPLIES = Base.metadata.tables[Reply.__tablename__]
AWKWARD = "Zoë \"Q\" {a,b} \\ 'x' ,NULL, 山田 — \u00a0 \t end"


def _message(uid: int, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        event="jca-mv-2",
        mailbox="m",
        folder="INBOX",
        uidvalidity=7,
        uid=uid,
        message_id=f"<{uid}@example.org>",
        sender="zoe@example.org",
        sender_name=AWKWARD,
        reply_address="zoe@example.org",
        subject=AWKWARD + " {}",
        date_header=datetime(2026, 4, 29, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
        received_at=datetime(2026, 4, 30, 4, 31, 2, 123456, tzinfo=UTC),
        recorded_at=datetime(2026, 4, 30, 4, 31, 3, tzinfo=UTC),
        size=2**40 + uid,
        sha256=f"{uid:064x}",
        body_sha256="b" * 64,
        headers_only=bool(uid % 2),
        status="accepted",
        reason=None,
        error=None,
        duplicate_of_id=None,
        headers={"items": [["Subject", AWKWARD], ["X-Empty", ""], ["X-Braces", '{"}']]},
    )
    values.update(changes)
    return values


def _reply(number: int, raw: bytes | None) -> dict[str, Any]:
    """A reply row as the record stage writes it, with its composed message `raw`."""
    return dict(
        message_id=None,
        event="jca-mv-2",
        kind="acknowledgement",
        recipient=f"r{number}@example.org",
        subject=AWKWARD,
        body_text="text",
        body_html=None,
        rfc_message_id=f"<r{number}@intake>",
        raw=raw,
        status="pending",
        reason=None,
        signature=None,
        attempts=0,
        last_error=None,
        outcome=None,
        created_at=datetime(2026, 5, 1, tzinfo=UTC),
    )


def _read(session: Any, model: Any, row_id: int) -> dict[str, Any]:
    row = session.get(model, row_id)
    return {c.key: getattr(row, c.key) for c in inspect(model).column_attrs if c.key != "id"}


def test_rows_read_back_as_the_orm_writes_them(migrated_url: str) -> None:
    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    samples = [
        _message(1),
        _message(
            2, message_id=None, sender=None, sender_name=None, subject="", date_header=None, headers=None
        ),
        _message(3, reason="a copy of message #1", error="x" * 5000, headers={"items": []}),
    ]
    try:
        with sessions.begin() as session:
            ours = {uid: row_id for uid, row_id in db.insert_rows(session, MESSAGES, samples, ("uid", "id"))}
            assert sorted(ours) == [1, 2, 3]
            theirs = {}
            for values in samples:
                row = InboundMessage(**{**values, "uid": values["uid"] + 100})
                session.add(row)
                session.flush()
                theirs[values["uid"]] = row.id
        with sessions() as session:
            for uid in ours:
                mine, orm = (
                    _read(session, InboundMessage, ours[uid]),
                    _read(session, InboundMessage, theirs[uid]),
                )
                assert mine.pop("uid") + 100 == orm.pop("uid")
                assert mine == orm, f"UID {uid}: insert_rows wrote {mine}, the ORM {orm}"
            assert _read(session, InboundMessage, ours[1])["date_header"] == datetime(
                2026, 4, 30, 4, 30, tzinfo=UTC
            )
    finally:
        engine.dispose()


def test_bytes_and_an_empty_result(migrated_url: str) -> None:
    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    every_byte = bytes(range(256)) * 40
    replies = [_reply(i, every_byte if i else None) for i in range(3)]
    try:
        with sessions.begin() as session:
            assert db.insert_rows(session, REPLIES, []) == []
            assert db.insert_rows(session, REPLIES, replies) == []
        with sessions() as session:
            stored = session.scalars(select(Reply).order_by(Reply.rfc_message_id)).all()
            assert [r.raw for r in stored] == [None, every_byte, every_byte]
            assert {r.subject for r in stored} == {AWKWARD}
    finally:
        engine.dispose()


def test_a_naive_time_is_refused_as_the_orm_refuses_it(migrated_url: str) -> None:
    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    try:
        with pytest.raises(StatementError, match="naive datetime"), sessions.begin() as session:
            db.insert_rows(session, MESSAGES, [_message(1), _message(2, received_at=datetime(2026, 4, 30))])
        with sessions() as session:
            assert session.scalars(select(InboundMessage)).all() == []
    finally:
        engine.dispose()


def test_on_postgresql_the_statement_stays_within_psycopgs_query_cache() -> None:
    """psycopg converts a statement's placeholders with a regular expression and keeps the result
    only for statements of at most 4096 bytes and 50 parameters (psycopg/_queries.py); the
    statement SQLAlchemy writes for a batch (a VALUES group per row) was 72 KB for 100 messages,
    converted again for every batch."""
    url = create_pg_database()
    db.upgrade(url)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    seen: list[tuple[str, int]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.startswith("INSERT"):
            seen.append((statement, len(parameters)))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        with sessions.begin() as session:
            for count in (1, 100, 500):
                start = len(seen) * 1000
                rows = [_message(start + uid) for uid in range(count)]
                assert len(db.insert_rows(session, MESSAGES, rows, ("uid", "id"))) == count
            document = {
                c.name: None for c in Base.metadata.tables[Document.__tablename__].columns if c.name != "id"
            }
            message_id = session.scalars(select(InboundMessage.id)).first()
            document |= dict(
                message_id=message_id, position=0, size=1, sha256="d" * 64, status="accepted", revision=0
            )
            db.insert_rows(session, Base.metadata.tables[Document.__tablename__], [document])
    finally:
        engine.dispose()
        drop_pg_database(url)
    assert len(seen) == 4 and len({statement for statement, _ in seen[:3]}) == 1, seen
    for statement, parameters in seen:
        assert len(statement.encode()) <= 4096 and parameters <= 50, (len(statement), parameters)


def test_on_postgresql_rows_with_bytes_go_one_after_the_other() -> None:
    """A batch of rejections carries the blank template in every reply: those bytes are sent
    row by row (a one-row statement, executemany), not gathered into one array parameter."""
    url = create_pg_database()
    db.upgrade(url)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    seen: list[tuple[str, bool, int]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.startswith("INSERT"):
            seen.append((statement, many, len(parameters)))

    event.listen(engine, "before_cursor_execute", remember)
    template = bytes(range(256)) * 200
    replies = [_reply(i, template) for i in range(30)]
    try:
        with sessions.begin() as session:
            db.insert_rows(session, REPLIES, replies)
        with sessions() as session:
            assert [r.raw for r in session.scalars(select(Reply))] == [template] * 30
    finally:
        engine.dispose()
        drop_pg_database(url)
    [(statement, many, rows)] = seen
    assert many and rows == 30 and "unnest" not in statement, seen

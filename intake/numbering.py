"""Document numbers: the next number of an event's series, e.g. JCA-MV-I-001.

A number is taken inside the transaction that accepts the document, by an
atomic increment of the event's counter row. On PostgreSQL the UPDATE locks
that row until the transaction ends, so two processes can never take the same
number; on SQLite the whole database is locked for the write. A number that
was handed out is never handed out again, even if its document is withdrawn:
only a transaction that rolls back (so the number was never seen) frees it.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from intake.config import EventSettings
from intake.models import DocumentCounter


def format_number(event: EventSettings, value: int) -> str:
    return f"{event.numbering_prefix}{value:0{event.numbering_width}d}"


def take_number(session: Session, event: EventSettings) -> str:
    """Take the next number of `event`'s series in the session's transaction."""
    return take_numbers(session, event, 1)[0]


def take_numbers(session: Session, event: EventSettings, count: int) -> list[str]:
    """Take the next `count` numbers of the series at once (a batch's), in order."""
    if count < 1:
        return []
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(DocumentCounter).values(event=event.id, last_value=0).on_conflict_do_nothing())
    last = session.execute(
        update(DocumentCounter)
        .where(DocumentCounter.event == event.id)
        .values(last_value=DocumentCounter.last_value + count)
        .returning(DocumentCounter.last_value)
    ).scalar_one()
    return [format_number(event, value) for value in range(int(last) - count + 1, int(last) + 1)]

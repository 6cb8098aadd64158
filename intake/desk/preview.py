"""What a desk action would do, and the reply it would send, before anyone confirms it.

`rehearse` runs the real action (`intake.desk.actions`) inside one database
transaction that is always rolled back: the confirmation page shows the very
reply the action composes (its recipient, subject and text, by the same
templates), not a second description of it that could drift. The sessions it
hands the action join that transaction in SQLAlchemy's "rollback_only" mode, so
the action's own commit changes nothing; nothing is sent (the outbox only sends
committed rows). A number shown in a rehearsed acknowledgement is the next free
one now: if another document is numbered first, the real one is the next after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from intake.desk import Refused
from intake.desk.actions import Done
from intake.models import Reply


@dataclass(frozen=True)
class ReplyText:
    kind: str
    recipient: str
    subject: str
    body_text: str
    status: str  # pending: it will go; failed or suppressed: why not is in `note`
    note: str | None


@dataclass(frozen=True)
class Rehearsal:
    summary: str  # what the action would say it did, or why it is refused
    refused: bool
    replies: tuple[ReplyText, ...]


def rehearse(engine: Engine, run: Callable[[sessionmaker[Session]], Done]) -> Rehearsal:
    """Run `run` with sessions whose work is rolled back; what it did and the replies it queued."""
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            sessions = sessionmaker(
                bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False
            )
            try:
                done = run(sessions)
            except Refused as exc:
                return Rehearsal(str(exc), True, ())
            with sessions() as session:
                rows = session.scalars(select(Reply).where(Reply.id.in_(done.reply_ids or (-1,))))
                replies = tuple(
                    ReplyText(r.kind, r.recipient, r.subject, r.body_text, r.status, r.last_error or r.reason)
                    for r in rows
                )
            return Rehearsal(done.summary, False, replies)
        finally:
            outer.rollback()

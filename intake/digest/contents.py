"""What a digest says, read from the database: a `Digest` of plain values, ready to render.

Three lists, each bounded (`SHOWN` items per status; the counts are exact):
- new: the messages recorded in the digest's span (`since` ≤ recorded_at < `until`), by status;
  recorded, not received, so a message that waited in the mailbox is not missed;
- waiting: every message now in a status that needs a person (`intake.domain.MEANING`), however
  old: it is still waiting;
- failed: every reply now failed (`intake outbox retry` puts them back in line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from intake.config import Settings
from intake.domain import DigestStatus, MessageStatus, ReplyStatus, meaning
from intake.models import DigestRun, InboundMessage, Reply

SHOWN = 50  # items listed per status (and failed replies); the rest are counted


@dataclass(frozen=True)
class Item:
    """One message as the digest lists it (text as stored: the templates clean and escape it)."""

    id: int
    received_at: datetime
    sender: str | None
    sender_name: str | None
    subject: str | None
    numbers: tuple[str, ...]
    titles: tuple[str, ...]
    reason: str | None  # why it is held, quarantined, ignored
    link: str | None  # the message on the desk, when `service.desk_url` is set


@dataclass(frozen=True)
class Group:
    """The messages of one status: how many, and the first `SHOWN` of them."""

    status: MessageStatus
    count: int
    items: tuple[Item, ...]

    @property
    def words(self) -> str:
        return meaning(self.status).words

    @property
    def more(self) -> int:
        return self.count - len(self.items)


@dataclass(frozen=True)
class FailedReply:
    id: int
    kind: str
    recipient: str
    error: str | None
    created_at: datetime
    link: str | None  # the message it answers, on the desk


@dataclass(frozen=True)
class Digest:
    since: datetime
    until: datetime
    since_last: bool  # `since` is when the last digest ended (not a span asked for)
    new: tuple[Group, ...]  # the statuses with new messages, in the vocabulary's order
    waiting: tuple[Group, ...]  # every status that needs a person, even when none waits
    failed: tuple[FailedReply, ...]
    failed_count: int

    @property
    def new_count(self) -> int:
        return sum(g.count for g in self.new)

    @property
    def waiting_count(self) -> int:
        return sum(g.count for g in self.waiting)


def last_sent_end(session: Session, event: str) -> datetime | None:
    """Where the last digest sent for this event ended; None before the first."""
    return session.scalar(
        select(func.max(DigestRun.period_end)).where(
            DigestRun.event == event, DigestRun.status == DigestStatus.SENT
        )
    )


def desk_link(settings: Settings, message_id: int | None) -> str | None:
    if not settings.desk_url or message_id is None:
        return None
    return f"{settings.desk_url.rstrip('/')}/messages/{message_id}"


def _group(session: Session, settings: Settings, status: MessageStatus, *where: ColumnElement[bool]) -> Group:
    conditions = (InboundMessage.event == settings.event.id, InboundMessage.status == status, *where)
    count = session.scalar(select(func.count()).select_from(InboundMessage).where(*conditions)) or 0
    rows = session.scalars(
        select(InboundMessage)
        .where(*conditions)
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(SHOWN)
        .options(selectinload(InboundMessage.documents))
    ).all()
    return Group(status, count, tuple(_item(settings, row) for row in rows))


def _item(settings: Settings, row: InboundMessage) -> Item:
    return Item(
        id=row.id,
        received_at=row.received_at,
        sender=row.sender,
        sender_name=row.sender_name,
        subject=row.subject,
        numbers=tuple(d.number for d in row.documents if d.number),
        titles=tuple(d.title for d in row.documents if d.title),
        reason=row.reason,
        link=desk_link(settings, row.id),
    )


def _failed(session: Session, settings: Settings) -> tuple[tuple[FailedReply, ...], int]:
    where = (Reply.event == settings.event.id, Reply.status == ReplyStatus.FAILED)
    count = session.scalar(select(func.count()).select_from(Reply).where(*where)) or 0
    rows = session.scalars(select(Reply).where(*where).order_by(Reply.id).limit(SHOWN)).all()
    failed = tuple(
        FailedReply(r.id, r.kind, r.recipient, r.last_error, r.created_at, desk_link(settings, r.message_id))
        for r in rows
    )
    return failed, count


def gather(
    session: Session, settings: Settings, since: datetime, until: datetime, since_last: bool = False
) -> Digest:
    """The digest of `settings.event` for the span [since, until) (aware times)."""
    span = (InboundMessage.recorded_at >= since, InboundMessage.recorded_at < until)
    new = [_group(session, settings, status, *span) for status in MessageStatus]
    waiting: Sequence[Group] = [
        _group(session, settings, status) for status in MessageStatus if meaning(status).needs_person
    ]
    failed, failed_count = _failed(session, settings)
    return Digest(
        since=since,
        until=until,
        since_last=since_last,
        new=tuple(g for g in new if g.count),
        waiting=tuple(waiting),
        failed=failed,
        failed_count=failed_count,
    )

"""Judging recorded messages again from their stored bytes, after a template or config fix.

`plan` says, message by message, what would change: statuses, findings,
extracted fields. Nothing is written. `apply` writes the changes, one
transaction per message, and answers only the messages whose outcome (the
message's or a document's status) changed, never twice with the same news:
each reply's kind and outcome digest are kept in `Reply.outcome`, and a
reply already sent for the same kind and outcome is not sent again. Rate
limits apply as for a fresh message (`intake.replies.queue`).

What is left for a person, and reported as such, not changed:
- a message the secretariat decided on (admitted, rejected, released with a
  revision, …): their decision stands;
- a numbered document the new rules would refuse: numbers are never taken
  back automatically (`intake reject` or `intake withdraw` do it, on the record);
- messages that are duplicates, or were too large to keep whole.
A released message is judged without screening, as when it was released.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from intake.config import Settings
from intake.desk import Refused
from intake.desk.actions import audit, check_actor
from intake.desk.rejudge import rejudge, resends, same_files, write_verdict
from intake.domain import (
    AuditAction,
    DeskAction,
    DocumentStatus,
    MessageStatus,
    SubjectType,
    meaning,
    reply_kind,
)
from intake.models import AuditEvent, Document, InboundMessage, Reply, utcnow
from intake.parse import Inbound
from intake.replies.queue import outcome_of_rows, outcome_of_verdict, queue_reply
from intake.revisions import RevisionLink, resolve_revisions
from intake.store import BlobStore
from intake.verdict import MessageVerdict

log = logging.getLogger(__name__)

# Actions by a person after which the machine's judgement no longer decides.
PERSON_DECISIONS = (
    AuditAction.ADMITTED,
    AuditAction.REJECTED,
    AuditAction.WITHDRAWN,
    AuditAction.MARKED_ANSWERED,
)


@dataclass(frozen=True)
class Change:
    """What judging one message again changes, or why it is left alone."""

    message_id: int
    subject: str | None
    before: str
    after: str
    lines: tuple[str, ...] = ()  # what differs, one line each
    left_alone: str | None = None  # why it is not changed (a person must decide)
    news: bool = False  # the outcome changed: the contributor would be answered

    @property
    def changed(self) -> bool:
        return bool(self.lines) and self.left_alone is None


@dataclass
class Report:
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    skipped: int = 0  # duplicates, messages kept from their headers alone, not e-mail: not judged
    applied: bool = False
    replies: list[str] = field(default_factory=list)  # what was answered (or why not), when applied
    queued: int = 0  # replies written to the outbox

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.changed]

    @property
    def left_alone(self) -> list[Change]:
        return [c for c in self.changes if c.left_alone]


def _person_decided(session: Session, message_id: int) -> str | None:
    document_ids = select(Document.id).where(Document.message_id == message_id)
    event = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.actor != "system",
            AuditEvent.action.in_(PERSON_DECISIONS),
            (
                (AuditEvent.subject_type == SubjectType.MESSAGE) & (AuditEvent.subject_id == message_id)
                | (AuditEvent.subject_type == SubjectType.DOCUMENT) & AuditEvent.subject_id.in_(document_ids)
            ),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    return f"{event.action} by {event.actor}" if event else None


def _released(session: Session, message_id: int) -> bool:
    return (
        session.scalars(
            select(AuditEvent.id).where(
                AuditEvent.subject_type == SubjectType.MESSAGE,
                AuditEvent.subject_id == message_id,
                AuditEvent.action == AuditAction.RELEASED,
            )
        ).first()
        is not None
    )


def _codes(items: Iterable[tuple[str, str]]) -> set[str]:
    return {f"{code} ({severity})" for code, severity in items}


def _differences(row: InboundMessage, verdict: MessageVerdict) -> list[str]:
    lines: list[str] = []
    if row.status != verdict.status:
        lines.append(f"status: {row.status} -> {verdict.status}")
    old = _codes((f.code, f.severity) for f in row.findings)
    new = _codes((f.code, str(f.severity)) for f in verdict.findings)
    lines += [f"message: + {c}" for c in sorted(new - old)] + [f"message: - {c}" for c in sorted(old - new)]
    if not same_files(row, verdict):
        lines.append(f"files: {len(row.documents)} -> {len(verdict.documents)} read from the message")
        return lines
    for document, doc in zip(row.documents, verdict.documents, strict=True):
        name = document.number or document.filename or f"file {document.position + 1}"
        if document.status != doc.status and not (document.number and doc.status == DocumentStatus.ACCEPTED):
            lines.append(f"{name}: {document.status} -> {doc.status}")
        old = _codes((f.code, f.severity) for f in document.findings)
        new = _codes((f.code, str(f.severity)) for f in doc.findings)
        lines += [f"{name}: + {c}" for c in sorted(new - old)] + [f"{name}: - {c}" for c in sorted(old - new)]
        pairs = (("title", document.title, doc.title), ("source", document.source, doc.source))
        for label, before, after in pairs:
            if (before or None) != (after or None):
                lines.append(f"{name}: {label} {before!r} -> {after!r}")
    return lines


def _blocked(row: InboundMessage, verdict: MessageVerdict) -> str | None:
    """Why the new verdict cannot be applied without a person, if it cannot."""
    numbered = [d for d in row.documents if d.number]
    if not numbered:
        return None
    if not same_files(row, verdict):
        return "its files read differently now and some are numbered: a person must decide"
    for document in numbered:
        doc = verdict.documents[document.position]
        if doc.status != DocumentStatus.ACCEPTED and document.status == DocumentStatus.ACCEPTED:
            return (
                f"{document.number} would now be {doc.status}: numbers are never taken back "
                "automatically (use reject or withdraw)"
            )
    return None


def _select(session: Session, event_id: str, ids: Sequence[int] | None) -> list[InboundMessage]:
    query = (
        select(InboundMessage)
        .where(InboundMessage.event == event_id)
        .options(
            selectinload(InboundMessage.documents).selectinload(Document.findings),
            selectinload(InboundMessage.findings),
        )
        .order_by(InboundMessage.id)
    )
    if ids is not None:
        query = query.where(InboundMessage.id.in_(list(ids)))
    rows = list(session.scalars(query))
    if ids is not None:
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise Refused(f"there is no message #{missing[0]} in event {event_id}")
    return rows


@dataclass(frozen=True)
class _Judged:
    change: Change
    verdict: MessageVerdict | None = None  # what to write; None: leave the rows as they are
    inbound: Inbound | None = None
    links: dict[int, RevisionLink] = field(default_factory=dict)


def _judge_one(session: Session, store: BlobStore, settings: Settings, row: InboundMessage) -> _Judged | None:
    """Judge one message again: what it changes, and what to write. None: not judged (skipped)."""
    if not meaning(row.status).allows(DeskAction.REPROCESS) or row.headers_only:
        return None
    try:
        judged = rejudge(session, store, row, settings.event, screen=not _released(session, row.id))
    except Refused as exc:
        if row.status == MessageStatus.QUARANTINED:
            return None  # still not e-mail: nothing to judge, nothing to report every time
        return _Judged(Change(row.id, row.subject, row.status, row.status, left_alone=str(exc)))
    verdict = resends(session, settings.event, row, judged.verdict)
    links: dict[int, RevisionLink] = {}
    if not any(d.number for d in row.documents):
        # Newly accepted documents may be revisions, or ambiguous ones (then held), as on arrival.
        verdict, links = resolve_revisions(session, settings.event, judged.inbound, verdict)
    lines = _differences(row, verdict)
    news = outcome_of_rows(row).statuses != outcome_of_verdict(verdict).statuses
    change = Change(row.id, row.subject, row.status, str(verdict.status), tuple(lines), news=news)
    if not lines:
        return _Judged(change)
    decided = _person_decided(session, row.id)
    blocked = f"{decided}: their decision stands" if decided else _blocked(row, verdict)
    if blocked:
        return _Judged(replace(change, left_alone=blocked))
    return _Judged(change, verdict, judged.inbound, links)


def plan(sessions: sessionmaker[Session], settings: Settings, ids: Sequence[int] | None = None) -> Report:
    """What judging again would change; writes nothing (the blob store may gain files)."""
    report = Report()
    store = BlobStore(settings.data_dir)
    with sessions() as session:
        for row in _select(session, settings.event.id, ids):
            _count(report, _judge_one(session, store, settings, row))
    return report


def _count(report: Report, judged: _Judged | None) -> None:
    if judged is None:
        report.skipped += 1
    elif judged.change.lines or judged.change.left_alone:
        report.changes.append(judged.change)
    else:
        report.unchanged += 1


def apply(
    sessions: sessionmaker[Session],
    settings: Settings,
    actor: str,
    ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> Report:
    """Judge again and write what changed, one transaction per message; answer changed outcomes once."""
    actor = check_actor(actor)
    report = Report(applied=True)
    store = BlobStore(settings.data_dir)
    with sessions() as session:
        wanted = [r.id for r in _select(session, settings.event.id, ids)]
    for message_id in wanted:
        with sessions.begin() as session:
            # Read again inside this message's own transaction: what another process changed counts.
            row = _select(session, settings.event.id, [message_id])[0]
            judged = _judge_one(session, store, settings, row)
            _count(report, judged)
            if judged is None or judged.verdict is None or judged.inbound is None:
                continue
            change, verdict = judged.change, judged.verdict
            old = outcome_of_rows(row)
            for earlier in row.replies:
                # Replies written on arrival carry no outcome: they announced the rows as they stand.
                if earlier.outcome is None:
                    earlier.outcome = old.key(earlier.kind)
            written = write_verdict(session, row, verdict, settings.event, judged.links)
            for document_id, number in written.numbered:
                audit(session, actor, AuditAction.NUMBERED, SubjectType.DOCUMENT, document_id, number)
            audit(
                session, actor, AuditAction.REPROCESSED, SubjectType.MESSAGE, row.id, "; ".join(change.lines)
            )
            if change.news:
                when = now or utcnow()
                note, queued = _answer(session, row, judged.inbound, verdict, written.numbers, settings, when)
                report.queued += queued
                audit(session, actor, AuditAction.REPLY, SubjectType.MESSAGE, row.id, note)
                report.replies.append(f"#{row.id}: {note}")
    return report


def _answer(
    session: Session,
    row: InboundMessage,
    inbound: Inbound,
    verdict: MessageVerdict,
    numbers: dict[int, str],
    settings: Settings,
    now: datetime,
) -> tuple[str, bool]:
    kind = reply_kind(verdict.status)
    if kind is None:
        return f"no reply: a {verdict.status} message is never answered", False
    key = outcome_of_verdict(verdict).key(kind)
    said = session.scalars(select(Reply.id).where(Reply.message_id == row.id, Reply.outcome == key)).first()
    if said is not None:
        return f"no reply: reply #{said} already said this", False
    event = settings.event
    reply, note = queue_reply(session, row.id, inbound, verdict, numbers, event, row.received_at, now)
    return note, reply is not None

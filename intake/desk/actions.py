"""The secretariat's decisions: admit, reject, release, withdraw, resend, mark answered.

Each function is one transaction: it checks that the action applies, changes
the rows, queues the reply it announces (outbox) and writes an `AuditEvent`
with the actor, the time and the reason, or it raises `Refused` and changes
nothing. A status is claimed with a compare-and-set UPDATE (`WHERE status IN
…`), so two people acting on one message at once cannot both succeed, on
SQLite as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.config import EventSettings, Settings
from intake.desk import Refused
from intake.desk.recorded import stored_inbound, verdict_of_rows
from intake.desk.rejudge import rejudge, resends, write_verdict
from intake.domain import (
    RECORDED_AS,
    AuditAction,
    DeskAction,
    DocumentRole,
    DocumentStatus,
    MessageStatus,
    ReplyKind,
    ReplyStatus,
    SubjectType,
    statuses_allowing,
)
from intake.models import AuditEvent, Document, InboundMessage, Reply, utcnow
from intake.parse import Inbound
from intake.replies.queue import queue_again, queue_reply
from intake.revisions import (
    RevisionLink,
    assign_number,
    decide,
    find_claims,
    load_original,
    normalise_number,
)
from intake.store import BlobStore

_MAX_REASON = 4000


@dataclass(frozen=True)
class Done:
    """What an action did, in one line for the person who asked."""

    summary: str
    message_id: int | None = None
    numbers: tuple[str, ...] = ()
    reply_ids: tuple[int, ...] = field(default_factory=tuple)


# --- shared steps ---------------------------------------------------------------------------


def check_actor(actor: str) -> str:
    actor = " ".join((actor or "").split())
    if not actor or len(actor) > 255:
        raise Refused("say who is acting (a name of 1 to 255 characters)")
    if actor.lower() == "system":
        # "system" marks the machine's own decisions in the audit trail (intake.record).
        raise Refused("'system' is the service's own name: act under your own")
    return actor


def _reason(reason: str | None, required: bool) -> str | None:
    text = (reason or "").strip()
    if not text:
        if required:
            raise Refused("give a reason: it is kept in the audit trail and, for a rejection, sent")
        return None
    if len(text) > _MAX_REASON:
        raise Refused(f"the reason is longer than {_MAX_REASON} characters")
    return text


def audit(
    session: Session, actor: str, action: str, subject_type: str, subject_id: int, detail: str | None
) -> None:
    session.add(
        AuditEvent(
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            detail=detail,
            at=utcnow(),
        )
    )


def _claim(session: Session, message_id: int, action: DeskAction, new: MessageStatus) -> InboundMessage:
    """Move the message from a status `action` applies to (`intake.domain.MEANING`) to `new`,
    or refuse saying what it is."""
    allowed = statuses_allowing(action)
    result = cast(
        CursorResult[Any],
        session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == message_id, InboundMessage.status.in_([str(s) for s in allowed]))
            .values(status=str(new))
            .execution_options(synchronize_session=False)
        ),
    )
    row = session.get(InboundMessage, message_id, populate_existing=True)
    if row is None:
        raise Refused(f"there is no message #{message_id}")
    if result.rowcount != 1:
        wanted = " or ".join(str(s) for s in allowed)
        raise Refused(
            f"message #{message_id} is {row.status}: only a {wanted} message can be {RECORDED_AS[action]}"
        )
    return row


def _tell(
    session: Session,
    row: InboundMessage,
    inbound: Inbound,
    kind: ReplyKind,
    event: EventSettings,
    now: datetime,
    note: str | None = None,
) -> tuple[Reply | None, str]:
    """Queue the reply a person's decision announces: the rows as they now stand (flush
    first), the person's words, no rate limit (`intake.replies.queue`)."""
    verdict, numbers = verdict_of_rows(row)
    return queue_reply(
        session,
        row.id,
        inbound,
        verdict,
        numbers,
        event,
        row.received_at,
        now,
        kind=kind,
        note=note,
        by_person=True,
    )


def _links(
    session: Session,
    event: EventSettings,
    inbound: Inbound,
    documents: Sequence[tuple[str | None, str | None]],
    candidates: Sequence[int],
    revision_of: str | None,
    as_new: bool,
) -> dict[int, RevisionLink]:
    """Which documents about to be numbered are revisions: as the person said, or by the rules."""
    if as_new and revision_of:
        raise Refused("say either that it is a revision of a number, or that it is new, not both")
    if as_new or not candidates:
        if revision_of:
            raise Refused("there is no accepted document to number as a revision")
        return {}
    if revision_of:
        base = normalise_number(event, revision_of)
        original = load_original(session, base)
        if original is None:
            raise Refused(f"no document is numbered {base}")
        revised = session.scalars(select(Document.revision).where(Document.id == original.document_id)).one()
        if revised:
            raise Refused(f"{base} is itself a revision: name the original number")
        if len(candidates) != 1:
            raise Refused(
                f"the message has {len(candidates)} documents to number: which one is the revision?"
            )
        return {candidates[0]: RevisionLink(original.document_id, base, original.latest_revision + 1)}
    claims = find_claims(event, inbound.subject, documents)
    originals = {c.base: load_original(session, c.base) for c in claims}
    decision = decide(claims, inbound.sender, candidates, originals)
    if decision.hold is not None:
        raise Refused(f"{decision.hold}; name the original (revision of NUMBER) or say it is new")
    return dict(decision.links)


def _refused_documents(row: InboundMessage) -> bool:
    return any(
        d.status == DocumentStatus.REJECTED and d.role != DocumentRole.NOT_A_DOCUMENT for d in row.documents
    )


# --- the actions ----------------------------------------------------------------------------


def admit(
    sessions: sessionmaker[Session],
    settings: Settings,
    message_id: int,
    actor: str,
    *,
    reason: str | None = None,
    revision_of: str | None = None,
    as_new: bool = False,
    now: datetime | None = None,
) -> Done:
    """A late message is accepted after all: its late documents are numbered and acknowledged."""
    actor, why = check_actor(actor), _reason(reason, required=False)
    event, store, now = settings.event, BlobStore(settings.data_dir), now or utcnow()
    with sessions.begin() as session:
        row = _claim(session, message_id, DeskAction.ADMIT, MessageStatus.ACCEPTED)
        late = [
            d for d in row.documents if d.status == DocumentStatus.LATE and d.role == DocumentRole.DOCUMENT
        ]
        if not late:
            raise Refused(f"message #{message_id} has no late document to admit")
        inbound = stored_inbound(store, row)
        links = _links(
            session,
            event,
            inbound,
            [(d.filename, d.title) for d in row.documents],
            [d.position for d in late],
            revision_of,
            as_new,
        )
        numbers = []
        for document in late:
            document.status = str(DocumentStatus.ACCEPTED)
            assign_number(session, event, document, links.get(document.position))
            session.flush()
            numbers.append(str(document.number))
            audit(session, actor, AuditAction.NUMBERED, SubjectType.DOCUMENT, document.id, document.number)
        row.status = str(MessageStatus.PARTIAL if _refused_documents(row) else MessageStatus.ACCEPTED)
        row.reason = f"late; admitted by {actor}" + (f": {why}" if why else "")
        session.flush()
        reply, note = _tell(session, row, inbound, ReplyKind.ACKNOWLEDGEMENT, event, now)
        audit(
            session,
            actor,
            AuditAction.ADMITTED,
            SubjectType.MESSAGE,
            row.id,
            f"numbered {', '.join(numbers)}" + _why(why),
        )
        audit(session, actor, AuditAction.REPLY, SubjectType.MESSAGE, row.id, note)
        session.flush()
        return Done(
            f"message #{row.id} admitted: {', '.join(numbers)}; {note}",
            row.id,
            tuple(numbers),
            (reply.id,) if reply is not None else (),
        )


def reject(
    sessions: sessionmaker[Session],
    settings: Settings,
    message_id: int,
    actor: str,
    reason: str,
    *,
    notify: bool = True,
    now: datetime | None = None,
) -> Done:
    """The secretariat overrules an acceptance or a hold; the contributor is told why."""
    actor, why = check_actor(actor), _reason(reason, required=True)
    event, store, now = settings.event, BlobStore(settings.data_dir), now or utcnow()
    with sessions.begin() as session:
        row = _claim(session, message_id, DeskAction.REJECT, MessageStatus.REJECTED)
        cancelled = []
        for document in row.documents:
            if document.status in (
                DocumentStatus.ACCEPTED,
                DocumentStatus.LATE,
                DocumentStatus.PENDING,
                DocumentStatus.COMPANION,
            ):
                document.status = str(DocumentStatus.REJECTED)
                if document.number:
                    cancelled.append(document.number)
                    audit(
                        session,
                        actor,
                        AuditAction.REJECTED,
                        SubjectType.DOCUMENT,
                        document.id,
                        f"{document.number}: {why}",
                    )
        row.reason = f"rejected by the secretariat ({actor}): {why}"
        session.flush()
        reply = None
        note = "no reply: the secretariat chose not to tell the sender"
        if notify:
            inbound = stored_inbound(store, row)
            reply, note = _tell(session, row, inbound, ReplyKind.SECRETARIAT_REJECTION, event, now, why)
        kept = f" (numbers {', '.join(cancelled)} stay used)" if cancelled else ""
        audit(session, actor, AuditAction.REJECTED, SubjectType.MESSAGE, row.id, f"{why}{kept}")
        audit(session, actor, AuditAction.REPLY, SubjectType.MESSAGE, row.id, note)
        session.flush()
        return Done(
            f"message #{row.id} rejected{kept}; {note}",
            row.id,
            tuple(cancelled),
            (reply.id,) if reply is not None else (),
        )


def release(
    sessions: sessionmaker[Session],
    settings: Settings,
    message_id: int,
    actor: str,
    *,
    reason: str | None = None,
    revision_of: str | None = None,
    as_new: bool = False,
    now: datetime | None = None,
) -> Done:
    """A held message is judged normally (without the screening that held it) and answered."""
    actor, why = check_actor(actor), _reason(reason, required=False)
    event, store, now = settings.event, BlobStore(settings.data_dir), now or utcnow()
    with sessions.begin() as session:
        row = _claim(session, message_id, DeskAction.RELEASE, MessageStatus.RECEIVED)
        judged = rejudge(session, store, row, event, screen=False)
        verdict = resends(session, event, row, judged.verdict)
        candidates = [
            i
            for i, d in enumerate(verdict.documents)
            if d.role == DocumentRole.DOCUMENT and d.status == DocumentStatus.ACCEPTED
        ]
        links = _links(
            session,
            event,
            judged.inbound,
            [(d.filename, d.title) for d in verdict.documents],
            candidates,
            revision_of,
            as_new,
        )
        written = write_verdict(session, row, verdict, event, links)
        for document_id, number in written.numbered:
            audit(session, actor, AuditAction.NUMBERED, SubjectType.DOCUMENT, document_id, number)
        reply, note = queue_reply(
            session, row.id, judged.inbound, verdict, written.numbers, event, row.received_at, now
        )
        audit(
            session,
            actor,
            AuditAction.RELEASED,
            SubjectType.MESSAGE,
            row.id,
            f"judged {verdict.status}" + _why(why),
        )
        audit(session, actor, AuditAction.REPLY, SubjectType.MESSAGE, row.id, note)
        session.flush()
        numbers = tuple(number for _, number in written.numbered)
        shown = f" ({', '.join(numbers)})" if numbers else ""
        return Done(
            f"message #{row.id} released and judged {verdict.status}{shown}; {note}",
            row.id,
            numbers,
            (reply.id,) if reply is not None else (),
        )


def withdraw(
    sessions: sessionmaker[Session], settings: Settings, number: str, actor: str, reason: str
) -> Done:
    """A numbered document is withdrawn; its number is never given to another document."""
    actor, why = check_actor(actor), _reason(reason, required=True)
    wanted = normalise_number(settings.event, number)
    with sessions.begin() as session:
        document = session.scalars(select(Document).where(Document.number == wanted)).first()
        if document is None:
            raise Refused(f"no document is numbered {wanted}")
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Document)
                .where(Document.id == document.id, Document.status != str(DocumentStatus.WITHDRAWN))
                .values(status=str(DocumentStatus.WITHDRAWN))
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            raise Refused(f"{wanted} is already withdrawn")
        audit(session, actor, AuditAction.WITHDRAWN, SubjectType.DOCUMENT, document.id, f"{wanted}: {why}")
        return Done(f"{wanted} withdrawn; the number stays used", document.message_id, (wanted,))


def resend(
    sessions: sessionmaker[Session],
    settings: Settings,
    reply_id: int,
    actor: str,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> Done:
    """Queue the same reply again, as a new outbox row with a Message-ID of its own."""
    actor, why = check_actor(actor), _reason(reason, required=False)
    now = now or utcnow()
    with sessions.begin() as session:
        old = session.get(Reply, reply_id)
        if old is None:
            raise Refused(f"there is no reply #{reply_id}")
        if old.raw is None:
            why_not = old.last_error or old.status
            raise Refused(f"reply #{reply_id} was never composed ({why_not}): nothing to resend")
        if old.status in (ReplyStatus.PENDING, ReplyStatus.SENDING):
            raise Refused(f"reply #{reply_id} is still {old.status}: it will be sent without a resend")
        new = queue_again(session, old, settings.event, now)
        session.flush()
        audit(
            session, actor, AuditAction.RESENT, SubjectType.REPLY, old.id, f"as reply #{new.id}" + _why(why)
        )
        if old.message_id is not None:
            audit(
                session,
                actor,
                AuditAction.REPLY,
                SubjectType.MESSAGE,
                old.message_id,
                f"reply #{old.id} resent as #{new.id}",
            )
        return Done(
            f"reply #{old.id} queued again as reply #{new.id} to {old.recipient}",
            old.message_id,
            (),
            (new.id,),
        )


def mark_answered(
    sessions: sessionmaker[Session],
    settings: Settings,
    message_id: int,
    actor: str,
    *,
    reason: str | None = None,
) -> Done:
    """Correspondence a person has answered (by their own mail): off the list of what needs a
    person. Nothing is sent."""
    actor, why = check_actor(actor), _reason(reason, required=False)
    with sessions.begin() as session:
        row = _claim(session, message_id, DeskAction.MARK_ANSWERED, MessageStatus.ANSWERED)
        audit(session, actor, AuditAction.MARKED_ANSWERED, SubjectType.MESSAGE, row.id, why)
        return Done(f"message #{row.id} marked answered by {actor}; nothing is sent", row.id)


def _why(why: str | None) -> str:
    return f"; why: {why}" if why else ""

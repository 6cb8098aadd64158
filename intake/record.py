"""The one place that writes an inbound message to the database.

One transaction per message: the message row, its documents and findings, an
audit event, and the mailbox's last UID move together or not at all. The raw
bytes (and each file) are in the blob store before the transaction starts, so
a committed row always has its bytes. A crash before the commit leaves nothing
behind; a crash after it leaves a message in the inbox that is recorded but not
filed, which the next run only files.

Idempotency: (mailbox, folder, UIDVALIDITY, UID) is unique, so the same mailbox
message is never recorded twice. A second copy of an already recorded message
(same Message-ID and same body, or the same raw bytes) gets a row of its own
marked `duplicate`, pointing at the first; after a UIDVALIDITY change, a
message that was recorded but never filed is re-keyed to its new UID instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from intake.config import EventSettings
from intake.decide import decide, quarantined, too_large
from intake.domain import AuditAction, DocumentRole, DocumentStatus, MessageStatus, SubjectType
from intake.mailbox import RawMessage
from intake.models import AuditEvent, Document, Finding, InboundMessage, MailboxState, utcnow
from intake.parse import Inbound, Unparseable, parse_headers, parse_message
from intake.respond import queue_reply
from intake.revisions import RevisionLink, assign_number, resolve_revisions
from intake.store import BlobStore, sha256_hex
from intake.verdict import MessageVerdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Place:
    """Where a message sits: one folder of one mailbox, under one UIDVALIDITY."""

    event: str
    mailbox: str
    folder: str
    uidvalidity: int


@dataclass(frozen=True)
class Recorded:
    id: int
    status: str
    new: bool  # False when the row already existed (left behind, or re-keyed)


def body_digest(raw: bytes) -> str:
    """SHA-256 of everything after the header block."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            return sha256_hex(raw[at + len(separator) :])
    return sha256_hex(b"")


def recorded_uids(session: Session, place: Place, uids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """Which of these UIDs are already recorded here: uid -> (row id, status)."""
    found: dict[int, tuple[int, str]] = {}
    uid_list = list(uids)
    for start in range(0, len(uid_list), 500):
        chunk = uid_list[start : start + 500]
        rows = session.execute(
            select(InboundMessage.uid, InboundMessage.id, InboundMessage.status).where(
                InboundMessage.mailbox == place.mailbox,
                InboundMessage.folder == place.folder,
                InboundMessage.uidvalidity == place.uidvalidity,
                InboundMessage.uid.in_(chunk),
            )
        )
        for uid, row_id, status in rows:
            found[int(uid)] = (row_id, status)
    return found


def record_message(
    sessions: sessionmaker[Session],
    store: BlobStore,
    place: Place,
    message: RawMessage,
    event: EventSettings,
    max_message_bytes: int,
) -> Recorded:
    raw = message.raw
    digest = store.put(raw)
    inbound: Inbound | None = None
    try:
        inbound = parse_message(raw)
    except Unparseable as exc:
        verdict = quarantined(str(exc))
        inbound = parse_headers(raw)  # recorded with what can be read; never answered
    else:
        if message.headers_only:
            verdict = too_large(message.size, max_message_bytes)
        else:
            verdict = decide(inbound, event, message.received_at)
    if inbound is not None:
        for doc in verdict.documents:
            payload = doc.payload if doc.payload is not None else inbound.parts[doc.part_index].payload
            store.put(payload)
    body_sha = body_digest(raw)

    for attempt in range(1, RETRIES + 1):
        with sessions() as session:
            try:
                with session.begin():
                    return _write(session, place, message, event, inbound, verdict, digest, body_sha)
            except IntegrityError:
                # Another process recorded this UID between our look and our write.
                break
            except OperationalError as exc:
                # PostgreSQL may pick this transaction as a deadlock's victim when
                # two processes take numbers and write replies at once; it rolled
                # back whole, so doing it again is safe.
                if attempt == RETRIES or not _retryable(exc):
                    raise
                log.warning("recording UID %s: %s; trying again", message.uid, _first_line(exc))
    with sessions() as session:
        existing = recorded_uids(session, place, [message.uid]).get(message.uid)
        if existing is None:
            raise RuntimeError(f"UID {message.uid} could not be recorded and is not recorded")
        return Recorded(existing[0], existing[1], new=False)


RETRIES = 3
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _retryable(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES or "database is locked" in str(exc)


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", exc)).strip().splitlines() or [type(exc).__name__])[0]


def _write(
    session: Session,
    place: Place,
    message: RawMessage,
    event: EventSettings,
    inbound: Inbound | None,
    verdict: MessageVerdict,
    digest: str,
    body_sha: str,
) -> Recorded:
    existing = recorded_uids(session, place, [message.uid]).get(message.uid)
    if existing is not None:
        return Recorded(existing[0], existing[1], new=False)

    original = _earlier_copy(session, place, inbound, digest, body_sha)
    if (
        original is not None
        and original.filed_at is None
        and original.uidvalidity != place.uidvalidity
        and (original.mailbox == place.mailbox and original.folder == place.folder)
    ):
        # UIDVALIDITY changed while this message was recorded but not yet filed.
        old = (original.uidvalidity, original.uid)
        original.uidvalidity, original.uid = place.uidvalidity, message.uid
        _audit(
            session,
            SubjectType.MESSAGE,
            original.id,
            AuditAction.REKEYED,
            f"UIDVALIDITY/UID {old} -> {(place.uidvalidity, message.uid)}",
        )
        _advance(session, place, message.uid)
        return Recorded(original.id, original.status, new=False)

    if original is not None:
        verdict = MessageVerdict(
            status=MessageStatus.DUPLICATE,
            reason=f"a copy of message #{original.id}",
        )
    # Issue 5: a message naming an assigned number as revised ("JCA-MV-I-012 Rev.1") is linked to
    # that document, or held with the reason when that is ambiguous (intake.revisions).
    revision_links: dict[int, RevisionLink] = {}
    if inbound is not None and original is None:
        verdict, revision_links = resolve_revisions(session, event, inbound, verdict)

    row = InboundMessage(
        event=event.id,
        mailbox=place.mailbox,
        folder=place.folder,
        uidvalidity=place.uidvalidity,
        uid=message.uid,
        message_id=inbound.message_id if inbound else None,
        sender=inbound.sender if inbound else None,
        sender_name=inbound.sender_name if inbound else None,
        reply_address=(inbound.reply_to or inbound.sender) if inbound else None,
        subject=inbound.subject if inbound else None,
        date_header=inbound.date if inbound else None,
        received_at=message.received_at,
        size=message.size or len(message.raw),
        sha256=digest,
        body_sha256=body_sha,
        headers_only=message.headers_only,
        status=str(verdict.status),
        reason=verdict.reason,
        error=verdict.findings[0].message
        if verdict.status == MessageStatus.QUARANTINED and verdict.findings
        else None,
        duplicate_of_id=original.id if original is not None else None,
        headers={"items": [list(h) for h in inbound.headers]} if inbound else None,
    )
    session.add(row)
    session.flush()
    for found in verdict.findings:
        session.add(
            Finding(
                message_id=row.id,
                code=found.code,
                severity=str(found.severity),
                message=found.message,
                detail=found.detail,
            )
        )
    numbers: dict[int, str] = {}
    for position, doc in enumerate(verdict.documents):
        document = Document(
            message_id=row.id,
            position=position,
            filename=doc.filename,
            declared_type=doc.declared_type,
            detected_type=doc.detected_type,
            size=doc.size,
            sha256=doc.sha256,
            role=doc.role,
            status=str(doc.status),
            title=doc.title,
            source=doc.source,
            contacts={"items": list(doc.contacts)} if doc.contacts else None,
            abstract=doc.abstract,
        )
        if doc.status == DocumentStatus.ACCEPTED and doc.role == DocumentRole.DOCUMENT:
            # Taken in the transaction that accepts: a rollback frees it unseen. A revision
            # gets its original's number with Rev.n instead (intake.revisions).
            numbers[doc.part_index] = assign_number(session, event, document, revision_links.get(position))
        session.add(document)
        session.flush()
        if document.number:
            _audit(session, SubjectType.DOCUMENT, document.id, AuditAction.NUMBERED, document.number)
        for found in doc.findings:
            session.add(
                Finding(
                    message_id=row.id,
                    document_id=document.id,
                    code=found.code,
                    severity=str(found.severity),
                    message=found.message,
                    detail=found.detail,
                )
            )
    _audit(
        session,
        SubjectType.MESSAGE,
        row.id,
        AuditAction.RECORDED,
        f"status {verdict.status}" + (f": {verdict.reason}" if verdict.reason else ""),
    )
    if inbound is not None and original is None:
        _, note = queue_reply(
            session, row.id, inbound, verdict, numbers, event, message.received_at, utcnow()
        )
        _audit(session, SubjectType.MESSAGE, row.id, AuditAction.REPLY, note)
    _advance(session, place, message.uid)
    return Recorded(row.id, row.status, new=True)


def _earlier_copy(
    session: Session, place: Place, inbound: Inbound | None, digest: str, body_sha: str
) -> InboundMessage | None:
    """The first recording of this message: the same raw bytes, or the same
    Message-ID with the same body. Two indexed look-ups: an OR of the two
    made the databases read every row of the event for every message."""
    candidates = [InboundMessage.sha256 == digest]
    if inbound is not None and inbound.message_id:
        candidates.append(
            and_(InboundMessage.message_id == inbound.message_id, InboundMessage.body_sha256 == body_sha)
        )
    found = [
        session.scalars(
            select(InboundMessage)
            .where(
                InboundMessage.event == place.event,
                InboundMessage.status != str(MessageStatus.DUPLICATE),
                condition,
            )
            .order_by(InboundMessage.id)
            .limit(1)
        ).first()
        for condition in candidates
    ]
    earlier = [row for row in found if row is not None]
    return min(earlier, key=lambda row: row.id) if earlier else None


def _advance(session: Session, place: Place, uid: int) -> None:
    session.execute(
        update(MailboxState)
        .where(
            MailboxState.mailbox == place.mailbox,
            MailboxState.folder == place.folder,
            MailboxState.uidvalidity == place.uidvalidity,
            MailboxState.last_uid < uid,
        )
        .values(last_uid=uid, updated_at=utcnow())
    )


def _audit(session: Session, subject_type: str, subject_id: int, action: str, detail: str | None) -> None:
    session.add(
        AuditEvent(
            actor="system", action=action, subject_type=subject_type, subject_id=subject_id, detail=detail
        )
    )


def mark_filed(sessions: sessionmaker[Session], row_id: int, folder: str, at: datetime | None = None) -> None:
    with sessions.begin() as session:
        session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == row_id)
            .values(filed_folder=folder, filed_at=at or utcnow())
        )


def enter_folder(
    sessions: sessionmaker[Session], mailbox: str, folder: str, uidvalidity: int
) -> tuple[int, int | None]:
    """Record that we are reading this folder; returns (last_uid, previous UIDVALIDITY if it changed)."""
    with sessions.begin() as session:
        state = session.scalars(
            select(MailboxState).where(MailboxState.mailbox == mailbox, MailboxState.folder == folder)
        ).first()
        if state is None:
            session.add(
                MailboxState(
                    mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, last_uid=0, last_poll_at=utcnow()
                )
            )
            return 0, None
        state.last_poll_at = utcnow()
        if state.uidvalidity != uidvalidity:
            previous = state.uidvalidity
            state.uidvalidity, state.last_uid = uidvalidity, 0
            return 0, previous
        return state.last_uid, None

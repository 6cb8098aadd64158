"""The one place that writes what the pipeline found: a batch of examined messages in one transaction.

`record_batch` turns verdicts into rows: the messages, their documents and
findings, the document numbers, the audit trail, the reply to send and the
mailbox's last UID, for a whole fetched batch in one transaction, with bulk
inserts: the batch's numbers are taken together, and the duplicate and
rate-limit look-ups are made once for the batch, and so is the look-up of
files already numbered. It decides nothing that `intake.examine` did not,
except what needs the database: duplicates (of recorded messages, and inside
the batch), resends (a file numbered before, or earlier in the batch:
`intake.resends`), revisions, numbers, rate limits, and correspondence that
answers one of our replies (`intake.correspondence`).

The raw bytes (and each file) are written to the blob store and synced before
the transaction commits, so a committed row always has its bytes. A crash
before the commit leaves nothing behind; a crash after it leaves messages in
the inbox that are recorded but not filed, which the next run only files.
When one message of a batch cannot be written, the batch is written again one
transaction per message, so the others are not lost; that is logged.

Idempotency: (mailbox, folder, UIDVALIDITY, UID) is unique, so the same mailbox
message is never recorded twice. A second copy of an already recorded message
(same Message-ID and same body, or the same raw bytes) gets a row of its own
marked `duplicate`, pointing at the first; after a UIDVALIDITY change, a
message that was recorded but never filed is re-keyed to its new UID instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake.config import EventSettings
from intake.correspondence import answering
from intake.db import in_lists, insert_rows
from intake.domain import AuditAction, DocumentRole, DocumentStatus, MessageStatus, SubjectType
from intake.examine import Examined, put_bytes
from intake.findings import Found
from intake.models import AuditEvent, Base, Document, Finding, InboundMessage, MailboxState, Reply, utcnow
from intake.numbering import take_numbers
from intake.replies.queue import RateLimits, queue_reply
from intake.resends import candidates, mark_resends, registered
from intake.revisions import RevisionLink, assign_number, claims_revision, resolve_revisions
from intake.screen import reply_address
from intake.store import BlobStore
from intake.verdict import DocumentVerdict, MessageVerdict, Registration

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
    uid: int
    id: int
    status: str
    new: bool  # False when the row already existed (left behind, or re-keyed)


def recorded_uids(session: Session, place: Place, uids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """Which of these UIDs are already recorded here: uid -> (row id, status)."""
    found: dict[int, tuple[int, str]] = {}
    for chunk in in_lists(uids):
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


# --- the batch ---------------------------------------------------------------------------------
def record_batch(
    sessions: sessionmaker[Session],
    store: BlobStore,
    place: Place,
    batch: Sequence[Examined],
    event: EventSettings,
) -> list[Recorded]:
    """Record a batch (in UID order) in one transaction; one per message if that fails."""
    if not batch:
        return []
    synced = stow(store, batch)
    try:
        return _transaction(sessions, place, batch, event, synced)
    except OperationalError:
        raise  # the database is gone: the poll stops, and the batch is fetched again next run
    except SQLAlchemyError as exc:
        if len(batch) == 1:
            return [_after_failure(sessions, place, batch[0], exc)]
        log.warning(
            "recording %s messages (UIDs %s-%s) in one transaction failed (%s); "
            "recording them one transaction each",
            len(batch),
            batch[0].message.uid,
            batch[-1].message.uid,
            _first_line(exc),
        )
    out: list[Recorded] = []
    for examined in batch:
        try:
            out += _transaction(sessions, place, [examined], event, synced)
        except OperationalError:
            raise
        except SQLAlchemyError as exc:
            out.append(_after_failure(sessions, place, examined, exc))
    return out


def stow(store: BlobStore, batch: Sequence[Examined]) -> Callable[[], None]:
    """Every raw message and every file of the batch into the blob store (those a worker has
    not written already), then one sync, which covers the workers' writes too. The sync runs
    while the batch's rows are written: what this returns waits for it (`BlobStore.start_sync`),
    and every transaction calls it before its commit."""
    for examined in batch:
        if examined.stored:
            store.written_elsewhere()
        else:
            put_bytes(store, examined)
    return store.start_sync()


RETRIES = 3
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _retryable(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES or "database is locked" in str(exc)


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", exc)).strip().splitlines() or [type(exc).__name__])[0]


def _transaction(
    sessions: sessionmaker[Session],
    place: Place,
    batch: Sequence[Examined],
    event: EventSettings,
    synced: Callable[[], None],
) -> list[Recorded]:
    for attempt in range(1, RETRIES + 1):
        with sessions() as session:
            try:
                with session.begin():
                    recorded = _write(session, place, batch, event)
                    synced()  # the bytes are durable before the rows that name them commit
                    return recorded
            except OperationalError as exc:
                # PostgreSQL may pick this transaction as a deadlock's victim when two
                # processes take numbers and write replies at once; it rolled back whole,
                # so doing it again is safe.
                if attempt == RETRIES or not _retryable(exc):
                    raise
                log.warning("recording from UID %s: %s; trying again", batch[0].message.uid, _first_line(exc))
    raise AssertionError("unreachable")


def _after_failure(
    sessions: sessionmaker[Session], place: Place, examined: Examined, exc: SQLAlchemyError
) -> Recorded:
    """One message could not be written: recorded meanwhile by another process, or not at all."""
    uid = examined.message.uid
    with sessions() as session:
        existing = recorded_uids(session, place, [uid]).get(uid)
    if existing is not None:
        return Recorded(uid, existing[0], existing[1], new=False)
    if isinstance(exc, IntegrityError):
        raise RuntimeError(f"UID {uid} could not be recorded and is not recorded") from exc
    raise exc


# --- writing -----------------------------------------------------------------------------------
@dataclass
class _Row:
    """One message of the batch on its way to the database."""

    examined: Examined
    verdict: MessageVerdict
    copy_of: int | None = None  # the first copy's row id, when this one is a duplicate
    first_in_batch: _Row | None = None  # ... or the first copy is earlier in this batch
    links: dict[int, RevisionLink] | None = None
    row_id: int | None = None  # once inserted
    numbers: dict[int, str] = field(default_factory=dict)  # by part index, for the reply
    documents: list[Document] = field(default_factory=list)  # once inserted (not in the session)

    @property
    def duplicate(self) -> bool:
        return self.copy_of is not None or self.first_in_batch is not None


def _write(session: Session, place: Place, batch: Sequence[Examined], event: EventSettings) -> list[Recorded]:
    uids = [e.message.uid for e in batch]
    known = recorded_uids(session, place, uids)
    results: dict[int, Recorded] = {
        uid: Recorded(uid, row_id, status, new=False) for uid, (row_id, status) in known.items()
    }
    todo = [e for e in batch if e.message.uid not in known]
    earlier = _earlier_copies(session, place, todo)
    numbered = registered(session, event.id, {sha for e in todo for sha in candidates(e.verdict)})
    numbering: set[str] = set()  # files numbered by rows[written:]: not in `numbered` yet
    rows: list[_Row] = []
    written = 0  # rows[:written] are in the session already
    by_digest: dict[str, _Row] = {}
    by_message_id: dict[tuple[str, str], _Row] = {}
    for examined in todo:
        uid = examined.message.uid
        original = earlier.get(uid)
        if original is not None and _left_behind(original, place):
            results[uid] = _rekey(session, place, original, uid)
            continue
        item = _Row(examined, examined.verdict, copy_of=original.id if original is not None else None)
        if original is None:
            key = _copy_key(examined)
            item.first_in_batch = by_digest.get(examined.digest) or (by_message_id.get(key) if key else None)
        if item.copy_of is not None:
            item.verdict = _duplicate(item.copy_of)
        elif item.first_in_batch is None:
            by_digest.setdefault(examined.digest, item)
            key = _copy_key(examined)
            if key is not None:
                by_message_id.setdefault(key, item)
            if numbering.intersection(candidates(item.verdict)):
                # A file numbered earlier in this batch, sent again: that row is written
                # first, so the copy can point at it.
                _insert(session, place, rows[written:], event)
                _registered_in(rows, numbered)
                written, numbering = len(rows), set()
            item.verdict = mark_resends(item.verdict, numbered)
            if examined.inbound is not None and claims_revision(event, examined.inbound, item.verdict):
                # Issue 5: a message naming an assigned number as revised is linked to that
                # document, or held with the reason when that is ambiguous (intake.revisions).
                # What the batch holds before it is written first: it may be the original.
                _insert(session, place, rows[written:], event)
                written = len(rows)
                item.verdict, item.links = resolve_revisions(session, event, examined.inbound, item.verdict)
            numbering.update(d.sha256 for d in item.verdict.documents if _numbered(d))
        rows.append(item)
    _insert(session, place, rows[written:], event)
    for item in rows:
        assert item.row_id is not None
        uid = item.examined.message.uid
        results[uid] = Recorded(uid, item.row_id, str(item.verdict.status), True)
    _advance(session, place, max(uids))
    return [results[uid] for uid in uids if uid in results]


def _registered_in(rows: Sequence[_Row], numbered: dict[str, Registration]) -> None:
    """Add the documents these (inserted) rows numbered to `numbered`, the first of each file."""
    for item in rows:
        for document in item.documents:
            if document.number and document.status == DocumentStatus.ACCEPTED:
                numbered.setdefault(
                    document.sha256,
                    Registration(document.id, document.number, item.examined.message.received_at),
                )


def _duplicate(original_id: int) -> MessageVerdict:
    return MessageVerdict(status=MessageStatus.DUPLICATE, reason=f"a copy of message #{original_id}")


def _copy_key(examined: Examined) -> tuple[str, str] | None:
    inbound = examined.inbound
    if inbound is None or not inbound.message_id:
        return None
    return (inbound.message_id, examined.body_sha)


def _left_behind(original: InboundMessage, place: Place) -> bool:
    """Recorded under an older UIDVALIDITY of this folder and never filed."""
    return (
        original.filed_at is None
        and original.uidvalidity != place.uidvalidity
        and original.mailbox == place.mailbox
        and original.folder == place.folder
    )


def _rekey(session: Session, place: Place, original: InboundMessage, uid: int) -> Recorded:
    """UIDVALIDITY changed while this message was recorded but not yet filed."""
    old = (original.uidvalidity, original.uid)
    original.uidvalidity, original.uid = place.uidvalidity, uid
    _audit(
        session,
        SubjectType.MESSAGE,
        original.id,
        AuditAction.REKEYED,
        f"UIDVALIDITY/UID {old} -> {(place.uidvalidity, uid)}",
    )
    return Recorded(uid, original.id, original.status, new=False)


def _earlier_copies(session: Session, place: Place, batch: Sequence[Examined]) -> dict[int, InboundMessage]:
    """The first recording of each message, by UID: the same raw bytes, or the same
    Message-ID with the same body. Two indexed look-ups for the whole batch."""
    if not batch:
        return {}
    digests = {e.digest for e in batch}
    message_ids = {e.inbound.message_id for e in batch if e.inbound is not None and e.inbound.message_id}
    candidates: list[InboundMessage] = []
    for column, values in ((InboundMessage.sha256, digests), (InboundMessage.message_id, message_ids)):
        for chunk in in_lists(values):
            candidates += session.scalars(
                select(InboundMessage).where(
                    InboundMessage.event == place.event,
                    InboundMessage.status != str(MessageStatus.DUPLICATE),
                    column.in_(chunk),
                )
            ).all()
    first_by_digest: dict[str, InboundMessage] = {}
    first_by_copy: dict[tuple[str | None, str | None], InboundMessage] = {}
    for row in sorted(candidates, key=lambda r: r.id):
        first_by_digest.setdefault(row.sha256, row)
        first_by_copy.setdefault((row.message_id, row.body_sha256), row)
    found: dict[int, InboundMessage] = {}
    for examined in batch:
        matches = [first_by_digest.get(examined.digest)]
        key = _copy_key(examined)
        if key is not None:
            matches.append(first_by_copy.get(key))
        present = [m for m in matches if m is not None]
        if present:
            found[examined.message.uid] = min(present, key=lambda r: r.id)
    return found


def _insert(session: Session, place: Place, rows: list[_Row], event: EventSettings) -> None:
    """The rows of the batch, with bulk inserts: messages, documents, findings, numbers, replies."""
    if not rows:
        return
    _answering(session, event, rows)
    _insert_messages(session, place, rows, event)
    later = _insert_documents(session, rows, event)
    now = utcnow()
    recipients = [
        address
        for item in rows
        if item.examined.inbound is not None and not item.duplicate
        for address in [reply_address(item.examined.inbound, event)]
        if address
    ]
    limits = RateLimits.load(session, event, recipients, now)
    for item in rows:
        assert item.row_id is not None
        verdict = item.verdict
        detail = f"status {verdict.status}" + (f": {verdict.reason}" if verdict.reason else "")
        later.audit(SubjectType.MESSAGE, item.row_id, AuditAction.RECORDED, detail)
        inbound, message = item.examined.inbound, item.examined.message
        if inbound is not None and not item.duplicate:
            _, note = queue_reply(
                session,
                item.row_id,
                inbound,
                verdict,
                item.numbers,
                event,
                message.received_at,
                now,
                limits,
                add=later.reply,
            )
            later.audit(SubjectType.MESSAGE, item.row_id, AuditAction.REPLY, note)
    later.write(session)


def _answering(session: Session, event: EventSettings, rows: list[_Row]) -> None:
    """Correspondence citing one of our replies answers our mail: one look-up for the rows."""
    items = [(item, item.examined.inbound) for item in rows if item.examined.inbound is not None]
    verdicts = answering(session, event, [(inbound, item.verdict) for item, inbound in items])
    for (item, _), verdict in zip(items, verdicts, strict=True):
        item.verdict = verdict


def _insert_messages(session: Session, place: Place, rows: list[_Row], event: EventSettings) -> None:
    firsts = [item for item in rows if item.first_in_batch is None]
    copies = [item for item in rows if item.first_in_batch is not None]
    _write_messages(session, place, firsts, event)
    for item in copies:  # a second copy inside the batch points at the first, now it has an id
        assert item.first_in_batch is not None and item.first_in_batch.row_id is not None
        item.copy_of = item.first_in_batch.row_id
        item.verdict = _duplicate(item.copy_of)
    _write_messages(session, place, copies, event)


def _write_messages(session: Session, place: Place, items: list[_Row], event: EventSettings) -> None:
    """One INSERT ... RETURNING for these rows (their UIDs differ): each row's id."""
    now = utcnow()
    values = [_message_row(place, item, event, now) for item in items]
    ids: dict[int, int] = {
        uid: row_id for uid, row_id in insert_rows(session, _MESSAGES, values, ("uid", "id"))
    }
    for item in items:
        item.row_id = ids[item.examined.message.uid]


def _insert_documents(session: Session, rows: list[_Row], event: EventSettings) -> _Later:
    """Documents and their numbers; returns the findings and audit rows still to add."""
    wanted = [
        (id(item), position)
        for item in rows
        for position, doc in enumerate(item.verdict.documents)
        if _numbered(doc) and (item.links or {}).get(position) is None
    ]
    # The batch's numbers taken together, in UID order: a rollback frees them unseen.
    fresh = dict(zip(wanted, take_numbers(session, event, len(wanted)), strict=True))
    later = _Later()
    documents: list[tuple[_Row, Document, int]] = []
    for item in rows:
        assert item.row_id is not None
        later.found(item.row_id, None, item.verdict.findings)
        for position, doc in enumerate(item.verdict.documents):
            document = _document_row(item.row_id, position, doc)
            if _numbered(doc):
                link = (item.links or {}).get(position)
                number = fresh.get((id(item), position))
                item.numbers[doc.part_index] = assign_number(session, event, document, link, number)
            documents.append((item, document, position))
            item.documents.append(document)
    ids = {
        (message_id, position): row_id
        for message_id, position, row_id in insert_rows(
            session,
            _DOCUMENTS,
            [_document_values(document) for _, document, _ in documents],
            ("message_id", "position", "id"),
        )
    }
    for item, document, position in documents:
        assert item.row_id is not None
        document.id = ids[(item.row_id, position)]
        if document.number:
            later.audit(SubjectType.DOCUMENT, document.id, AuditAction.NUMBERED, document.number)
        later.found(item.row_id, document.id, item.verdict.documents[position].findings)
    return later


def _numbered(doc: DocumentVerdict) -> bool:
    return doc.status == DocumentStatus.ACCEPTED and doc.role == DocumentRole.DOCUMENT


_MESSAGES = Base.metadata.tables[InboundMessage.__tablename__]
_DOCUMENTS = Base.metadata.tables[Document.__tablename__]


def _message_row(place: Place, item: _Row, event: EventSettings, now: datetime) -> dict[str, Any]:
    """A new inbound_message row: every column but its id and where it was filed."""
    examined, verdict = item.examined, item.verdict
    message, inbound = examined.message, examined.inbound
    return dict(
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
        recorded_at=now,
        size=message.size or len(message.raw),
        sha256=examined.digest,
        body_sha256=examined.body_sha,
        headers_only=message.headers_only,
        status=str(verdict.status),
        reason=verdict.reason,
        error=verdict.findings[0].message
        if verdict.status == MessageStatus.QUARANTINED and verdict.findings
        else None,
        duplicate_of_id=item.copy_of,
        headers={"items": [list(h) for h in inbound.headers]} if inbound else None,
    )


# Every column of a new document row but its id (`_document_values`).
_DOCUMENT_COLUMNS = tuple(c.name for c in _DOCUMENTS.columns if c.name != "id")


def _document_values(document: Document) -> dict[str, Any]:
    values = {name: getattr(document, name) for name in _DOCUMENT_COLUMNS}
    values["revision"] = document.revision or 0
    return values


def _document_row(message_row_id: int, position: int, doc: DocumentVerdict) -> Document:
    """A document as `assign_number` numbers it: an ORM object never added to the session
    (`_insert_documents` writes its values)."""
    return Document(
        message_id=message_row_id,
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
        copy_of_id=doc.registered.document_id if doc.registered else None,
    )


@dataclass
class _Later:
    """The batch's findings, audit entries and replies: rows nothing reads back while
    recording, so written by one INSERT each (executemany) instead of through the ORM's unit
    of work."""

    findings: list[dict[str, object]] = field(default_factory=list)
    audits: list[dict[str, object]] = field(default_factory=list)
    replies: list[dict[str, object]] = field(default_factory=list)

    def reply(self, row: Reply) -> None:
        """A reply `queue_reply` built, written with the others (every dict with the same keys)."""
        values = {key: getattr(row, key) for key in _REPLY_KEYS}
        values["attempts"] = values["attempts"] or 0
        self.replies.append(values)

    def found(self, message_row_id: int, document_id: int | None, items: Iterable[Found]) -> None:
        self.findings.extend(
            {
                "message_id": message_row_id,
                "document_id": document_id,
                "code": found.code,
                "severity": str(found.severity),
                "message": found.message,
                "detail": found.detail,
            }
            for found in items
        )

    def audit(self, subject_type: str, subject_id: int, action: str, detail: str | None) -> None:
        self.audits.append(
            {
                "at": utcnow(),
                "actor": "system",
                "action": action,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "detail": detail,
            }
        )

    def write(self, session: Session) -> None:
        for model, rows in ((Finding, self.findings), (AuditEvent, self.audits), (Reply, self.replies)):
            insert_rows(session, Base.metadata.tables[model.__tablename__], rows)


# What `queue_reply` sets on a new reply row (the rest is the outbox's, filled in when it sends).
_REPLY_KEYS = (
    "message_id",
    "event",
    "kind",
    "recipient",
    "subject",
    "body_text",
    "body_html",
    "rfc_message_id",
    "raw",
    "status",
    "reason",
    "signature",
    "attempts",
    "last_error",
    "outcome",
    "created_at",
)


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

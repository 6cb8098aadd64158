"""Everything about one recorded message: for `intake show` and the dashboard's detail page.

`details` gathers it as plain data (JSON-ready): headers, sender, receipt time
in the event's zone and in UTC, documents with their findings and extracted
fields and revisions, replies with their status, and the history from the
audit trail. `original_text` is the message as a person reads it in plain
text: its headers and its text body, never its HTML rendered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from intake.config import EventSettings
from intake.desk import Refused
from intake.domain import SubjectType
from intake.models import AuditEvent, Document, InboundMessage, Reply
from intake.parse import Part, Unparseable, parse_message
from intake.revisions import normalise_number
from intake.store import BlobStore

UTC = ZoneInfo("UTC")


def local_time(value: datetime | None, zone: ZoneInfo) -> str | None:
    """ "2026-04-30 23:59:59 CEST" in the event's zone."""
    if value is None:
        return None
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def utc_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def find_message(session: Session, event: EventSettings, ref: str | int) -> InboundMessage:
    """A message by its id ("12", "#12") or by a document number it carries ("JCA-MV-I-012")."""
    text = str(ref).strip()
    if text.lstrip("#").isdigit():
        row = session.get(InboundMessage, int(text.lstrip("#")))
        if row is None:
            raise Refused(f"there is no message #{text.lstrip('#')}")
        return row
    number = normalise_number(event, text)
    document = session.scalars(select(Document).where(Document.number == number)).first()
    if document is None:
        raise Refused(f"no message has the id or document number {text!r}")
    row = session.get(InboundMessage, document.message_id)
    assert row is not None  # a document always belongs to a message (foreign key)
    return row


def _history(session: Session, row: InboundMessage, zone: ZoneInfo) -> list[dict[str, Any]]:
    document_ids = [d.id for d in row.documents]
    reply_ids = [r.id for r in row.replies]
    names = {d.id: d.number or d.filename or f"file {d.position + 1}" for d in row.documents}
    events = session.scalars(
        select(AuditEvent)
        .where(
            or_(
                (AuditEvent.subject_type == SubjectType.MESSAGE) & (AuditEvent.subject_id == row.id),
                (AuditEvent.subject_type == SubjectType.DOCUMENT)
                & AuditEvent.subject_id.in_(document_ids or [-1]),
                (AuditEvent.subject_type == SubjectType.REPLY) & AuditEvent.subject_id.in_(reply_ids or [-1]),
            )
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    history = []
    for e in events:
        if e.subject_type == SubjectType.DOCUMENT:
            about = f"document {names.get(e.subject_id, e.subject_id)}"
        else:
            about = f"{e.subject_type} #{e.subject_id}"
        history.append(
            {
                "at": iso(e.at),
                "at_local": local_time(e.at, zone),
                "actor": e.actor,
                "action": e.action,
                "about": about,
                "detail": e.detail,
            }
        )
    return history


def _revisions(session: Session, document: Document) -> dict[str, Any]:
    original_id = document.revision_of_id or document.id
    family = session.scalars(
        select(Document)
        .where(or_(Document.id == original_id, Document.revision_of_id == original_id))
        .order_by(Document.revision)
    ).all()
    original = next((d for d in family if d.id == original_id), None)
    return {
        "revision": document.revision,
        "revision_of": original.number if document.revision_of_id and original else None,
        "family": [
            {"number": d.number, "revision": d.revision, "message": d.message_id, "status": d.status}
            for d in family
            if d.number
        ],
    }


def _resends(session: Session, document: Document) -> dict[str, Any]:
    """Issue 11: the numbered document a resend copies, or the messages that sent a numbered one again."""
    copy_of = session.get(Document, document.copy_of_id) if document.copy_of_id else None
    copies = (
        session.scalars(
            select(Document).where(Document.copy_of_id == document.id).order_by(Document.id)
        ).all()
        if document.number
        else []
    )
    return {
        "copy_of": (
            {"number": copy_of.number, "message": copy_of.message_id, "document": copy_of.id}
            if copy_of
            else None
        ),
        "copies": [{"message": c.message_id, "document": c.id} for c in copies],
    }


def details(session: Session, event: EventSettings, ref: str | int) -> dict[str, Any]:
    row = find_message(session, event, ref)
    zone = event.timezone
    row = session.scalars(
        select(InboundMessage)
        .where(InboundMessage.id == row.id)
        .options(
            selectinload(InboundMessage.documents).selectinload(Document.findings),
            selectinload(InboundMessage.findings),
            selectinload(InboundMessage.replies),
        )
    ).one()
    documents = []
    for d in row.documents:
        contacts = [c for c in (d.contacts or {}).get("items", []) if isinstance(c, dict)]
        documents.append(
            {
                "id": d.id,
                "position": d.position,
                "filename": d.filename,
                "number": d.number,
                "status": d.status,
                "role": d.role,
                "type": d.detected_type,
                "declared_type": d.declared_type,
                "size": d.size,
                "sha256": d.sha256,
                "title": d.title,
                "source": d.source,
                "contacts": contacts,
                "abstract": d.abstract,
                **_revisions(session, d),
                **_resends(session, d),
                "findings": [
                    {"code": f.code, "severity": f.severity, "message": f.message, "detail": f.detail}
                    for f in d.findings
                ],
            }
        )
    return {
        "id": row.id,
        "event": row.event,
        "status": row.status,
        "reason": row.reason,
        "error": row.error,
        "subject": row.subject,
        "sender": row.sender,
        "sender_name": row.sender_name,
        "reply_address": row.reply_address,
        "message_id": row.message_id,
        "received_at": iso(row.received_at),
        "received_local": local_time(row.received_at, zone),
        "received_utc": utc_time(row.received_at),
        "date_header": iso(row.date_header),
        "recorded_at": iso(row.recorded_at),
        "size": row.size,
        "sha256": row.sha256,
        "headers_only": row.headers_only,
        "duplicate_of": row.duplicate_of_id,
        "mailbox_folder": row.folder,
        "filed_folder": row.filed_folder,
        "headers": [list(h) for h in (row.headers or {}).get("items", [])],
        "findings": [
            {"code": f.code, "severity": f.severity, "message": f.message, "detail": f.detail}
            for f in row.findings
        ],
        "documents": documents,
        "replies": [_reply(r, zone) for r in row.replies],
        "history": _history(session, row, zone),
    }


def _reply(r: Reply, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "recipient": r.recipient,
        "subject": r.subject,
        "status": r.status,
        "reason": r.reason,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "created_at": iso(r.created_at),
        "created_local": local_time(r.created_at, zone),
        "sent_at": iso(r.sent_at),
        "sent_local": local_time(r.sent_at, zone),
        "message_id": r.rfc_message_id,
        "body_text": r.body_text,
    }


def _stored_parts(store: BlobStore, row: InboundMessage) -> tuple[Part, ...] | None:
    try:
        return parse_message(store.get(row.sha256)).parts
    except (OSError, ValueError, Unparseable):
        return None


def unjudged_parts(store: BlobStore, row: InboundMessage) -> list[dict[str, Any]]:
    """The files a message carries that were never judged (a held message's, before release):
    read from the stored bytes, so the secretariat can look at them before deciding."""
    parts = () if row.documents else _stored_parts(store, row) or ()
    return [
        {"index": p.index, "filename": p.filename, "content_type": p.content_type, "size": len(p.payload)}
        for p in parts
    ]


def unjudged_part(store: BlobStore, row: InboundMessage, index: int) -> tuple[str | None, bytes]:
    """One of those files: its name as sent, and its bytes."""
    if row.documents:
        raise Refused(f"message #{row.id}'s files were judged: download them as its documents")
    parts = _stored_parts(store, row)
    if parts is None:
        raise Refused(f"message #{row.id} cannot be read from the store")
    if not 0 <= index < len(parts):
        raise Refused(f"message #{row.id} has no file {index + 1}")
    return parts[index].filename, parts[index].payload


def original_text(store: BlobStore, row: InboundMessage, limit: int = 200_000) -> str:
    """The message's headers and text body as plain text (never its HTML rendered)."""
    try:
        raw = store.get(row.sha256)
    except (OSError, ValueError):
        return "(the original bytes are missing from the store)"
    try:
        inbound = parse_message(raw)
    except Unparseable as exc:
        return f"(not readable as e-mail: {exc})\n\n" + raw[:limit].decode("utf-8", "replace")
    head = "\n".join(f"{name}: {' '.join(value.split())}" for name, value in inbound.headers)
    parts = "\n".join(
        f"[attached: {p.filename or '(no name)'} — {p.content_type}, {len(p.payload)} bytes]"
        for p in inbound.parts
    )
    text = f"{head}\n\n{inbound.text}\n\n{parts}".rstrip() + "\n"
    return text if len(text) <= limit else text[:limit] + "\n… (cut)\n"


# --- as text, for `intake show` ----------------------------------------------------------------


def write_text(d: dict[str, Any], out: TextIO) -> None:
    w = out.write
    w(f"Message #{d['id']}  [{d['status']}]" + (f"  {d['reason']}" if d["reason"] else "") + "\n")
    w(f"  Subject:   {d['subject'] or '(no subject)'}\n")
    sender = f"{d['sender_name']} <{d['sender']}>" if d["sender_name"] else (d["sender"] or "(unknown)")
    w(f"  From:      {sender}\n")
    if d["reply_address"] and d["reply_address"] != d["sender"]:
        w(f"  Reply to:  {d['reply_address']}\n")
    w(f"  Received:  {d['received_local']}  ({d['received_utc']})\n")
    w(f"  Message-ID: {d['message_id'] or '(none)'}\n")
    w(f"  Size:      {d['size']} bytes; sha256 {d['sha256']}\n")
    if d["duplicate_of"]:
        w(f"  Duplicate of message #{d['duplicate_of']}\n")
    if d["filed_folder"]:
        w(f"  Filed in:  {d['filed_folder']}\n")
    for f in d["findings"]:
        w(f"  ! {f['severity']}: {f['code']}: {f['message']}\n")
    w("\nHeaders:\n")
    for name, value in d["headers"]:
        w(f"  {name}: {' '.join(str(value).split())[:300]}\n")
    w(f"\nDocuments ({len(d['documents'])}):\n")
    for doc in d["documents"]:
        label = doc["number"] or "(no number)"
        name = doc["filename"] or "(no name)"
        w(f"  {label}  [{doc['status']}]  {name}  {doc['type']}, {doc['size']} bytes\n")
        if doc["revision_of"]:
            w(f"    Revision {doc['revision']} of {doc['revision_of']}\n")
        if doc["copy_of"]:
            first = doc["copy_of"]
            w(f"    Already registered as {first['number']} (message #{first['message']}): the same file\n")
        if doc["copies"]:
            w("    Sent again in: " + ", ".join(f"message #{c['message']}" for c in doc["copies"]) + "\n")
        if len(doc["family"]) > 1:
            w(
                "    History: "
                + ", ".join(f"{m['number']} (#{m['message']}, {m['status']})" for m in doc["family"])
            )
            w("\n")
        for label, key in (("Title", "title"), ("Source", "source"), ("Abstract", "abstract")):
            if doc[key]:
                w(f"    {label}: {' '.join(doc[key].split())}\n")
        for c in doc["contacts"]:
            bits = [str(c.get(k)) for k in ("name", "organization", "country", "email") if c.get(k)]
            w(f"    Contact: {', '.join(bits)}\n")
        for f in doc["findings"]:
            w(f"    - {f['severity']}: {f['code']}: {f['message']}\n")
    w(f"\nReplies ({len(d['replies'])}):\n")
    for r in d["replies"]:
        when = r["sent_local"] or r["created_local"]
        extra = f" ({r['reason'] or r['last_error']})" if r["reason"] or r["last_error"] else ""
        w(f"  reply #{r['id']}  {r['kind']} to {r['recipient']}: {r['status']}{extra}, {when}\n")
    w("\nHistory:\n")
    for h in d["history"]:
        w(f"  {h['at_local']}  {h['actor']}: {h['action']} {h['about']}")
        w(f": {h['detail']}\n" if h["detail"] else "\n")

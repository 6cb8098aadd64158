"""A message as recorded, for the secretariat's actions: its stored bytes parsed again,
and its rows read back as the verdict they record.

A desk reply is composed from these (the rows for the decision, the original bytes
for the subject, thread ids and the sender's name) by `intake.replies.queue_reply`,
like every other reply.
"""

from __future__ import annotations

from collections import defaultdict

from intake.desk import Refused
from intake.domain import DocumentStatus, MessageStatus
from intake.findings import CATALOGUE, Found, Severity
from intake.models import InboundMessage
from intake.parse import Inbound, Unparseable, parse_message
from intake.store import BlobStore
from intake.verdict import DocumentVerdict, MessageVerdict


def stored_inbound(store: BlobStore, row: InboundMessage) -> Inbound:
    """The original message, parsed again from the stored bytes."""
    try:
        raw = store.get(row.sha256)
    except (OSError, ValueError):
        raise Refused(f"the original bytes of message #{row.id} are missing from the store") from None
    try:
        return parse_message(raw)
    except Unparseable as exc:
        raise Refused(f"message #{row.id} cannot be read as e-mail: {exc}") from None


def _fix(code: str) -> str:
    kind = CATALOGUE.get(code)
    if kind is None:
        return ""
    # The parameters of the original sentence are not stored; a missing one reads as nothing.
    return kind.fix.format_map(defaultdict(str))


def _found(code: str, severity: str, message: str, detail: str | None) -> Found:
    try:
        level = Severity(severity)
    except ValueError:
        level = Severity.INFO
    return Found(code=code, severity=level, message=message, fix=_fix(code), detail=detail)


def verdict_of_rows(row: InboundMessage) -> tuple[MessageVerdict, dict[int, str]]:
    """The recorded decision as a verdict (part_index = position) and the numbers by position."""
    documents = tuple(
        DocumentVerdict(
            part_index=d.position,
            filename=d.filename,
            declared_type=d.declared_type,
            detected_type=d.detected_type or "other",
            size=d.size,
            sha256=d.sha256,
            role=d.role or "document",
            status=DocumentStatus(d.status),
            findings=tuple(_found(f.code, f.severity, f.message, f.detail) for f in d.findings),
            title=d.title,
            source=d.source,
        )
        for d in row.documents
    )
    findings = tuple(_found(f.code, f.severity, f.message, f.detail) for f in row.findings)
    numbers = {d.position: d.number for d in row.documents if d.number}
    return MessageVerdict(MessageStatus(row.status), findings, documents, row.reason), numbers

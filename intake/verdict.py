"""What the judging stages hand to the recording stage: small immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from intake.domain import DocumentStatus, MessageStatus
from intake.findings import Found


@dataclass(frozen=True)
class Registration:
    """A document already numbered in the event, which a file sent again is a copy of."""

    document_id: int
    number: str
    received_at: datetime  # when our server received the message that registered it


@dataclass(frozen=True)
class DocumentVerdict:
    """The judgement of one part of a message that carries a file."""

    part_index: int  # index into Inbound.parts
    filename: str | None
    declared_type: str | None
    detected_type: str  # docx, docm, encrypted_office, doc, pdf, zip, tnef, other, ...
    size: int
    sha256: str
    role: str  # document, companion, not_a_document
    status: DocumentStatus
    findings: tuple[Found, ...] = ()
    title: str | None = None
    source: str | None = None
    contacts: tuple[dict[str, Any], ...] = ()
    abstract: str | None = None
    payload: bytes | None = field(default=None, repr=False, compare=False)  # if not the part's
    registered: Registration | None = None  # status already_numbered: the document it copies


@dataclass(frozen=True)
class MessageVerdict:
    """The judgement of a whole message: its status follows from its documents."""

    status: MessageStatus
    findings: tuple[Found, ...] = ()  # about the message as a whole
    documents: tuple[DocumentVerdict, ...] = ()
    reason: str | None = None  # for ignored / held / quarantined
    # Correspondence that answers mail we sent: what it answers (our reply's Message-ID, or
    # our number in its `Re:` subject). It gets no automatic reply (intake.correspondence).
    answers: str | None = None

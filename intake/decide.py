"""The one place that decides what a message is: the chain of stages.

Quarantine (not an e-mail) → too large → screening (auto-replies, loops,
spam: issue 4's rules) → judging (documents, template, deadline: issue 3).
Everything here is pure: bytes, config and the server's receipt time in, a
`MessageVerdict` out. Duplicates need the database and are decided in
`intake.record`.
"""

from __future__ import annotations

from datetime import datetime

from intake.config import EventSettings
from intake.findings import found
from intake.models import DocumentStatus, MessageStatus
from intake.parse import Inbound
from intake.store import sha256_hex
from intake.verdict import DocumentVerdict, MessageVerdict


def quarantined(error: str) -> MessageVerdict:
    return MessageVerdict(
        status=MessageStatus.QUARANTINED,
        findings=(found("message.unparseable", error=error),),
        reason=f"not readable as e-mail: {error}",
    )


def too_large(size: int, limit: int) -> MessageVerdict:
    return MessageVerdict(
        status=MessageStatus.REJECTED,
        findings=(
            found(
                "message.too_large",
                size_mb=f"{size / 2**20:.1f}",
                limit_mb=f"{limit / 2**20:.0f}",
            ),
        ),
        reason="too large: recorded from its headers alone",
    )


def decide(inbound: Inbound, event: EventSettings, received_at: datetime) -> MessageVerdict:
    if inbound.sender is None:
        return MessageVerdict(
            status=MessageStatus.QUARANTINED,
            findings=(found("message.no_sender"),),
            reason="no usable sender address",
        )
    return received(inbound)


def received(inbound: Inbound) -> MessageVerdict:
    """Recorded and not yet judged: each file part is kept as a pending document."""
    return MessageVerdict(
        status=MessageStatus.RECEIVED,
        documents=tuple(
            DocumentVerdict(
                part_index=part.index,
                filename=part.filename,
                declared_type=part.content_type,
                detected_type="unknown",
                size=len(part.payload),
                sha256=sha256_hex(part.payload),
                role="document",
                status=DocumentStatus.PENDING,
            )
            for part in inbound.parts
        ),
    )

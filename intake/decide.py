"""The one place that decides what a message is: the chain of stages.

Quarantine (not an e-mail) → too large → screening (auto-replies, loops,
spam: `intake.screen`) → judging (documents, template, deadline: `intake.judge`);
a message with no document is correspondence, and answers our mail when its
`Re:` subject names one of our numbers (`intake.correspondence`).
Everything here is pure: bytes, config and the server's receipt time in, a
`MessageVerdict` out. Duplicates, and correspondence citing our replies' Message-IDs,
need the database and are decided in `intake.record`.
"""

from __future__ import annotations

from datetime import datetime

from intake.config import EventSettings
from intake.correspondence import by_subject
from intake.domain import MessageStatus
from intake.findings import found
from intake.judge import judge_message
from intake.parse import Inbound
from intake.screen import screen
from intake.verdict import MessageVerdict


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
    # Screening comes first: a bounce often has no usable sender (Return-Path <>,
    # "From: MAILER-DAEMON"), and is ignored as a bounce, not quarantined.
    screening = screen(inbound, event)
    if screening is not None:
        return MessageVerdict(status=screening.status, reason=f"{screening.rule}: {screening.reason}")
    if inbound.sender is None:
        return MessageVerdict(
            status=MessageStatus.QUARANTINED,
            findings=(found("message.no_sender"),),
            reason="no usable sender address",
        )
    return by_subject(event, inbound, judge_message(inbound, event, received_at))

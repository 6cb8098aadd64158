"""Replies that the secretariat's actions announce, and what each reply said.

A desk reply is composed from the message as recorded (its rows) and the
original bytes (for the subject, thread ids and the sender's name), by the
same templates as every other reply (`intake.compose`). It is written to the
outbox in the caller's transaction. The robot's rate limits
(`intake.respond`) do not apply: a person decided to send it.

`Outcome` is what a reply announced, as a digest stored in `Reply.outcome`,
so that `intake reprocess` never sends the same news twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import jinja2
from sqlalchemy.orm import Session

from intake.compose import RecipientError, ReplyContext, compose_reply
from intake.config import ConfigError, EventSettings
from intake.desk import Refused
from intake.domain import DocumentStatus, MessageStatus, ReplyStatus
from intake.findings import CATALOGUE, Found, Severity
from intake.models import InboundMessage, Reply
from intake.parse import Inbound, Unparseable, parse_message
from intake.screen import reply_address
from intake.store import BlobStore
from intake.verdict import DocumentVerdict, MessageVerdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A decision as a contributor sees it: statuses, and the findings they are shown."""

    status: str
    documents: tuple[tuple[int, str, tuple[str, ...]], ...]  # (position, status, finding codes)
    findings: tuple[str, ...]

    def key(self, kind: str) -> str:
        canonical = json.dumps([self.status, self.documents, self.findings], separators=(",", ":"))
        return f"{kind}:{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"

    @property
    def statuses(self) -> tuple[str, tuple[str, ...]]:
        """What decides whether the contributor has news: the message's and documents' statuses."""
        return self.status, tuple(status for _, status, _ in self.documents)


def _shown(codes: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(sorted(code for code, severity in codes if severity != Severity.INFO))


def outcome_of_rows(row: InboundMessage) -> Outcome:
    return Outcome(
        status=row.status,
        documents=tuple(
            (d.position, d.status, _shown((f.code, f.severity) for f in d.findings)) for d in row.documents
        ),
        findings=_shown((f.code, f.severity) for f in row.findings),
    )


def outcome_of_verdict(verdict: MessageVerdict) -> Outcome:
    return Outcome(
        status=str(verdict.status),
        documents=tuple(
            (i, str(d.status), _shown((f.code, str(f.severity)) for f in d.findings))
            for i, d in enumerate(verdict.documents)
        ),
        findings=_shown((f.code, str(f.severity)) for f in verdict.findings),
    )


# --- the message as recorded, as the composer wants it ----------------------------------------


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


# --- writing the reply ------------------------------------------------------------------------


def queue_desk_reply(
    session: Session,
    row: InboundMessage,
    inbound: Inbound,
    kind: str,
    event: EventSettings,
    now: datetime,
    *,
    note: str | None = None,
    verdict: MessageVerdict | None = None,
    numbers: Mapping[int, str] | None = None,
) -> tuple[Reply | None, str]:
    """Add a reply of `kind` about `row` to the session, without rate limits.

    The verdict and numbers default to the rows as they stand (flush first).
    Returns (the row, what happened), like `intake.respond.queue_reply`.
    """
    recipient = reply_address(inbound, event)
    if recipient is None:
        return None, "no reply: neither Reply-To nor From is a safe address to answer"
    if verdict is None:
        verdict, numbers = verdict_of_rows(row)
    context = ReplyContext.from_verdict(
        inbound, verdict, recipient=recipient, received_at=row.received_at, numbers=numbers or {}
    )
    context = replace(context, note=note)
    outcome = outcome_of_verdict(verdict).key(kind)
    try:
        composed = compose_reply(kind, context, event, now)
    except RecipientError as exc:
        return None, f"no reply: {exc}"
    except (jinja2.TemplateError, ConfigError, OSError) as exc:
        log.error("the %s template failed for message #%s: %s", kind, row.id, exc)
        failed = Reply(
            message_id=row.id,
            event=event.id,
            kind=kind,
            recipient=recipient,
            subject="",
            body_text="",
            rfc_message_id=f"<failed.{row.id}.{kind}.{int(now.timestamp())}@intake>",
            status=str(ReplyStatus.FAILED),
            last_error=f"the reply template failed: {exc}",
            outcome=outcome,
            created_at=now,
        )
        session.add(failed)
        return failed, "reply failed: its template could not be rendered"
    reply = Reply(
        message_id=row.id,
        event=event.id,
        kind=kind,
        recipient=composed.recipient,
        subject=composed.subject,
        body_text=composed.body_text,
        body_html=composed.body_html,
        rfc_message_id=composed.rfc_message_id,
        raw=composed.raw,
        status=str(ReplyStatus.PENDING),
        outcome=outcome,
        created_at=now,
    )
    session.add(reply)
    return reply, f"{kind} queued to {composed.recipient}"

"""Which reply a judged message gets, to whom, and whether the rate limits allow it.

Called by `intake.record` inside the transaction that records the decision,
so a reply is queued (outbox row `pending`) exactly when its decision is
committed. Over a rate limit the reply is still written, as `suppressed` with
the reason, so the secretariat sees what was not sent and why.

Rate limits (Discourse's rule, ingestion.md §1): at most one rejection per
address and reason (the set of error codes) in 24 hours, and at most
`[event.replies] daily_cap` replies of any kind per address in 24 hours.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import jinja2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.compose import RecipientError, ReplyContext, compose_reply
from intake.config import ConfigError, EventSettings
from intake.domain import ReplyKind, ReplyStatus, reply_kind
from intake.findings import Severity
from intake.models import Reply
from intake.parse import Inbound
from intake.screen import reply_address
from intake.verdict import MessageVerdict

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)


def signature(verdict: MessageVerdict) -> str:
    """What a rejection is about: the sorted codes of its errors."""
    codes = {f.code for f in verdict.findings if f.severity is Severity.ERROR}
    for doc in verdict.documents:
        codes.update(f.code for f in doc.findings if f.severity is Severity.ERROR)
    return ",".join(sorted(codes))[:512]


class RateLimits:
    """The counts the rate limits read, looked up once for a whole batch of recipients and
    kept current as the batch queues replies (so two messages of one batch count too)."""

    COUNTED = (ReplyStatus.PENDING, ReplyStatus.SENDING, ReplyStatus.SENT, ReplyStatus.FAILED)

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.replies: Counter[str] = Counter()  # recipient -> replies in the window
        self.rejections: set[tuple[str, str | None]] = set()  # (recipient, signature) rejected

    @classmethod
    def load(
        cls, session: Session, event: EventSettings, recipients: Iterable[str], now: datetime
    ) -> RateLimits:
        limits = cls(event.replies.daily_cap)
        wanted = sorted({r.lower() for r in recipients})
        for start in range(0, len(wanted), 500):
            rows = session.execute(
                select(Reply.recipient, Reply.kind, Reply.signature, func.count())
                .where(
                    Reply.recipient.in_(wanted[start : start + 500]),
                    Reply.event == event.id,
                    Reply.created_at >= now - WINDOW,
                    Reply.status.in_([str(s) for s in cls.COUNTED]),
                )
                .group_by(Reply.recipient, Reply.kind, Reply.signature)
            )
            for recipient, kind, reason_key, count in rows:
                limits.replies[recipient] += count
                if kind == ReplyKind.REJECTION:
                    limits.rejections.add((recipient, reason_key))
        return limits

    def over(self, recipient: str, kind: str, reason_key: str | None) -> str | None:
        recipient = recipient.lower()
        if kind == ReplyKind.REJECTION and (recipient, reason_key) in self.rejections:
            return "the same rejection was sent to this address in the last 24 hours"
        if self.replies[recipient] >= self.cap:
            return f"this address already had {self.cap} replies in the last 24 hours"
        return None

    def count(self, recipient: str, kind: str, reason_key: str | None) -> None:
        recipient = recipient.lower()
        self.replies[recipient] += 1
        if kind == ReplyKind.REJECTION:
            self.rejections.add((recipient, reason_key))


def queue_reply(
    session: Session,
    message_row_id: int,
    inbound: Inbound,
    verdict: MessageVerdict,
    numbers: Mapping[int, str],
    event: EventSettings,
    received_at: datetime,
    now: datetime,
    limits: RateLimits | None = None,
) -> tuple[Reply | None, str]:
    """Add the reply row for this decision to the session. Returns (row, what happened).
    `limits`: the batch's rate-limit counts (intake.record); without, they are queried."""
    kind = reply_kind(verdict.status)
    if kind is None:
        return None, f"no reply: a {verdict.status} message is never answered"
    recipient = reply_address(inbound, event)
    if recipient is None:
        return None, "no reply: neither Reply-To nor From is a safe address to answer"
    context = ReplyContext.from_verdict(
        inbound, verdict, recipient=recipient, received_at=received_at, numbers=numbers
    )
    try:
        composed = compose_reply(kind, context, event, now)
    except RecipientError as exc:
        return None, f"no reply: {exc}"
    except (jinja2.TemplateError, ConfigError, OSError) as exc:
        # The decision stands; the secretariat sees the failed reply and fixes the template.
        log.error("the %s template failed for message #%s: %s", kind, message_row_id, exc)
        row = Reply(
            message_id=message_row_id,
            event=event.id,
            kind=kind,
            recipient=recipient,
            subject="",
            body_text="",
            rfc_message_id=f"<failed.{message_row_id}.{kind}@intake>",
            status=str(ReplyStatus.FAILED),
            last_error=f"the reply template failed: {exc}",
        )
        session.add(row)
        if limits is not None:
            limits.count(recipient, kind, None)
        return row, "reply failed: its template could not be rendered"
    reason_key = signature(verdict) if kind is ReplyKind.REJECTION else None
    if limits is None:
        suppressed = _over_limit(session, event, recipient, kind, reason_key, now)
    else:
        suppressed = limits.over(recipient, kind, reason_key)
        if not suppressed:
            limits.count(recipient, kind, reason_key)
    row = Reply(
        message_id=message_row_id,
        event=event.id,
        kind=kind,
        recipient=composed.recipient,
        subject=composed.subject,
        body_text=composed.body_text,
        body_html=composed.body_html,
        rfc_message_id=composed.rfc_message_id,
        raw=composed.raw,
        status=str(ReplyStatus.SUPPRESSED if suppressed else ReplyStatus.PENDING),
        reason=suppressed,
        signature=reason_key,
        created_at=now,
    )
    session.add(row)
    return row, (f"{kind} suppressed: {suppressed}" if suppressed else f"{kind} queued to {recipient}")


def _over_limit(
    session: Session, event: EventSettings, recipient: str, kind: str, reason_key: str | None, now: datetime
) -> str | None:
    since = now - WINDOW
    counted = (ReplyStatus.PENDING, ReplyStatus.SENDING, ReplyStatus.SENT, ReplyStatus.FAILED)
    recent = (
        select(func.count())
        .select_from(Reply)
        .where(
            # Addresses are stored lower-cased (intake.parse), so the index on
            # (recipient, created_at) serves this; lower() here would defeat it.
            Reply.recipient == recipient.lower(),
            Reply.event == event.id,
            Reply.created_at >= since,
            Reply.status.in_([str(s) for s in counted]),
        )
    )
    if kind is ReplyKind.REJECTION:
        same = session.execute(
            recent.where(Reply.kind == str(ReplyKind.REJECTION), Reply.signature == reason_key)
        ).scalar_one()
        if same:
            return "the same rejection was sent to this address in the last 24 hours"
    cap = event.replies.daily_cap
    if session.execute(recent).scalar_one() >= cap:
        return f"this address already had {cap} replies in the last 24 hours"
    return None

"""Queue a reply: the one function that writes an outbox row, for the poller and the desk alike.

`queue_reply` is called inside the transaction that records the decision it
announces (`intake.record` for new mail; `intake.desk` for the secretariat's
actions and reprocessing), so a reply is queued (outbox row `pending`) exactly
when its decision is committed. It composes the MIME message
(`intake.replies.compose`) and records what the reply announced (`Outcome`, in
`Reply.outcome`), so that `intake reprocess` never sends the same news twice.

Rate limits (Discourse's rule, ingestion.md §1), for the service's own replies: at
most one reply per address and rate-limit key in 24 hours (for a rejection: its
set of error codes; `intake.replies.kinds`), and at most `[event.replies]
daily_cap` replies of any kind per address in 24 hours. Over a limit the reply
is still written, as `suppressed` with the reason, so the secretariat sees what
was not sent and why. A reply a person decided on (`by_person`) is not limited.

Not queued at all: a reply to correspondence that answers our mail
(`MessageVerdict.answers`), and a kind the event turned off (its `switch` in
`intake.replies.kinds`, e.g. `[event.replies] correspondence_notice = false`).

A reply whose template fails is written as `failed` with the error: the
decision stands, and the secretariat sees the failed reply and fixes the template.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import jinja2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.config import EventSettings
from intake.db import in_lists
from intake.domain import ReplyKind, ReplyStatus, reply_kind
from intake.findings import Severity
from intake.models import InboundMessage, Reply
from intake.parse import Inbound
from intake.replies.compose import RecipientError, ReplyContext, compose_reply, redated
from intake.replies.kinds import spec
from intake.screen import reply_address
from intake.verdict import MessageVerdict

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)


# --- what a reply announced ---------------------------------------------------------------


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


# --- queueing -----------------------------------------------------------------------------


class RateLimits:
    """The counts the rate limits read, looked up once for a whole batch of recipients and
    kept current as the batch queues replies (so two messages of one batch count too)."""

    COUNTED = (ReplyStatus.PENDING, ReplyStatus.SENDING, ReplyStatus.SENT, ReplyStatus.FAILED)

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.replies: Counter[str] = Counter()  # recipient -> replies in the window
        self.keyed: set[tuple[str, str, str | None]] = set()  # (recipient, kind, rate key) sent

    @classmethod
    def load(
        cls, session: Session, event: EventSettings, recipients: Iterable[str], now: datetime
    ) -> RateLimits:
        limits = cls(event.replies.daily_cap)
        for chunk in in_lists(r.lower() for r in recipients):
            rows = session.execute(
                select(Reply.recipient, Reply.kind, Reply.signature, func.count())
                .where(
                    Reply.recipient.in_(chunk),
                    Reply.event == event.id,
                    Reply.created_at >= now - WINDOW,
                    Reply.status.in_([str(s) for s in cls.COUNTED]),
                )
                .group_by(Reply.recipient, Reply.kind, Reply.signature)
            )
            for recipient, kind, key, count in rows:
                limits.replies[recipient] += count
                limits.keyed.add((recipient, kind, key))
        return limits

    def over(self, recipient: str, kind: str, key: str | None) -> str | None:
        recipient = recipient.lower()
        if key is not None and (recipient, str(kind), key) in self.keyed:
            return f"the same {kind.replace('_', ' ')} was sent to this address in the last 24 hours"
        if self.replies[recipient] >= self.cap:
            return f"this address already had {self.cap} replies in the last 24 hours"
        return None

    def count(self, recipient: str, kind: str, key: str | None) -> None:
        recipient = recipient.lower()
        self.replies[recipient] += 1
        self.keyed.add((recipient, str(kind), key))


def failed_message_id(message_row_id: int, kind: str) -> str:
    """The Message-ID column of a reply that could not be composed: never sent, but unique."""
    return f"<failed.{message_row_id}.{kind}.{secrets.token_hex(8)}@intake>"


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
    *,
    kind: ReplyKind | None = None,
    note: str | None = None,
    by_person: bool = False,
    add: Callable[[Reply], object] | None = None,
) -> tuple[Reply | None, str]:
    """Add the reply announcing `verdict` to the session. Returns (row, what happened).

    `kind` defaults to the reply the verdict's status gets (`intake.domain`); `note`
    is the secretariat's own words; `by_person` lifts the rate limits. `limits`: the
    batch's rate-limit counts (`intake.record`); without, they are queried. `add`: what
    takes the row instead of `session.add` (the batch writer inserts a batch's replies
    together, `intake.record`).
    """
    add = add or session.add
    kind = kind or reply_kind(verdict.status)
    if kind is None:
        return None, f"no reply: a {verdict.status} message is never answered"
    if verdict.answers and not by_person:
        return None, f"no reply: it answers our mail ({verdict.answers})"
    switch = spec(kind).switch
    if switch and not by_person and not getattr(event.replies, switch):
        words = kind.replace("_", " ")
        return None, f"no reply: the event sends no {words} ([event.replies] {switch} = false)"
    recipient = reply_address(inbound, event)
    if recipient is None:
        return None, "no reply: neither Reply-To nor From is a safe address to answer"
    context = ReplyContext.from_verdict(
        inbound, verdict, recipient=recipient, received_at=received_at, numbers=numbers
    )
    row = Reply(
        message_id=message_row_id,
        event=event.id,
        kind=str(kind),
        recipient=recipient,
        outcome=outcome_of_verdict(verdict).key(kind),
        created_at=now,
    )
    try:
        composed = compose_reply(kind, replace(context, note=note), event, now)
    except RecipientError as exc:
        return None, f"no reply: {exc}"
    except (jinja2.TemplateError, OSError) as exc:
        log.error("the %s template failed for message #%s: %s", kind, message_row_id, exc)
        row.subject, row.body_text = "", ""
        row.rfc_message_id = failed_message_id(message_row_id, kind)
        row.status, row.last_error = str(ReplyStatus.FAILED), f"the reply template failed: {exc}"
        add(row)
        if limits is not None:
            limits.count(recipient, kind, None)
        return row, "reply failed: its template could not be rendered"
    rate_key = spec(kind).rate_key
    row.signature = rate_key(verdict) if rate_key is not None and not by_person else None
    if by_person:
        suppressed = None
    elif limits is None:
        suppressed = _over_limit(session, event, recipient, kind, row.signature, now)
    else:
        suppressed = limits.over(recipient, kind, row.signature)
        if not suppressed:
            limits.count(recipient, kind, row.signature)
    row.recipient, row.subject = composed.recipient, composed.subject
    row.body_text, row.body_html = composed.body_text, composed.body_html
    row.rfc_message_id, row.raw = composed.rfc_message_id, composed.raw
    row.status = str(ReplyStatus.SUPPRESSED if suppressed else ReplyStatus.PENDING)
    row.reason = suppressed
    add(row)
    return row, (f"{kind} suppressed: {suppressed}" if suppressed else f"{kind} queued to {recipient}")


def queue_again(session: Session, old: Reply, event: EventSettings, now: datetime) -> Reply:
    """Add the same reply again (`intake resend`): the same words, a new Message-ID and Date."""
    if old.raw is None:
        raise ValueError(f"reply #{old.id} was never composed")
    rfc_message_id, raw = redated(old.raw, event, now)
    row = Reply(
        message_id=old.message_id,
        event=old.event,
        kind=old.kind,
        recipient=old.recipient,
        subject=old.subject,
        body_text=old.body_text,
        body_html=old.body_html,
        rfc_message_id=rfc_message_id,
        raw=raw,
        status=str(ReplyStatus.PENDING),
        signature=old.signature,
        outcome=old.outcome,
        created_at=now,
    )
    session.add(row)
    return row


def _over_limit(
    session: Session, event: EventSettings, recipient: str, kind: str, key: str | None, now: datetime
) -> str | None:
    counted = (ReplyStatus.PENDING, ReplyStatus.SENDING, ReplyStatus.SENT, ReplyStatus.FAILED)
    recent = (
        select(func.count())
        .select_from(Reply)
        .where(
            # Addresses are stored lower-cased (intake.parse), so the index on
            # (recipient, created_at) serves this; lower() here would defeat it.
            Reply.recipient == recipient.lower(),
            Reply.event == event.id,
            Reply.created_at >= now - WINDOW,
            Reply.status.in_([str(s) for s in counted]),
        )
    )
    if key is not None:
        same = session.execute(recent.where(Reply.kind == str(kind), Reply.signature == key)).scalar_one()
        if same:
            return f"the same {kind.replace('_', ' ')} was sent to this address in the last 24 hours"
    cap = event.replies.daily_cap
    if session.execute(recent).scalar_one() >= cap:
        return f"this address already had {cap} replies in the last 24 hours"
    return None

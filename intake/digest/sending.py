"""Sending a digest once, and recording it.

A digest is claimed before it is composed: a `DigestRun` row in status `sending`, in its own
commit. The scheduled digest of a day carries that day (`slot`), and (event, slot) is unique,
so when two replicas reach `digest_at` together one insert wins and the other is told the day
is taken; the unique constraint decides on SQLite and PostgreSQL alike. A day whose digest
failed, or whose sender died while sending (its claim older than the outbox's lease,
`intake.replies.outbox.lease_for`), can be claimed again by a conditional UPDATE that only one
writer wins. As with the replies, the one window for a digest sent twice is a sender dying
between the SMTP server's 250 and the commit that marks the row sent.

The digest covers what was recorded since the last digest sent (its `period_end`), or the
24 hours before when there is none.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from intake.config import Settings
from intake.digest.compose import compose_digest
from intake.digest.contents import gather, last_sent_end
from intake.domain import DigestStatus
from intake.models import DigestRun
from intake.replies.outbox import failure_text, is_transient, lease_for, send_now

log = logging.getLogger(__name__)

DEFAULT_SPAN = timedelta(hours=24)  # the first digest's span, when none was sent before


@dataclass(frozen=True)
class DigestOutcome:
    """What became of one attempt: sent, or why not, and whether trying later may help."""

    sent: bool
    why: str  # the end of a sentence that begins "the digest": "was sent to …", "was not sent: …"
    failed: bool = False  # the SMTP server (or the network, TLS, sign-in) refused it
    retry: bool = False  # a transient failure: trying again later may help
    # Another sender holds the day's claim: look again after this many seconds (its lease), in
    # case it died while sending.
    recheck_after: float | None = None


@dataclass(frozen=True)
class Claim:
    id: int
    since: datetime
    since_last: bool
    attempts: int


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _span_start(session: Session, settings: Settings, now: datetime) -> tuple[datetime, bool]:
    last = last_sent_end(session, settings.event.id)
    return (last, True) if last is not None else (now - DEFAULT_SPAN, False)


def claim(
    sessions: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    slot: str | None,
    worker: str,
    since: datetime | None = None,
) -> Claim | None:
    """Claim the digest of `slot` (None: one sent by hand, never refused); None when another
    sender has it (sent, or being sent within its lease)."""
    event = settings.event.id
    with sessions() as session:
        start, since_last = (since, False) if since is not None else _span_start(session, settings, now)
    values: dict[str, Any] = {
        "status": DigestStatus.SENDING,
        "period_start": start,
        "period_end": now,
        "recipients": ", ".join(settings.event.digest_to),
        "claimed_by": worker,
        "claimed_at": now,
    }
    try:
        with sessions.begin() as session:
            row = DigestRun(event=event, slot=slot, attempts=0, **values)
            session.add(row)
            session.flush()
            return Claim(row.id, start, since_last, 0)
    except IntegrityError:
        pass  # the day is taken: sent, being sent, or failed and free to take over
    takeable = or_(
        DigestRun.status == DigestStatus.FAILED,
        and_(DigestRun.status == DigestStatus.SENDING, DigestRun.claimed_at < now - lease_for(settings.smtp)),
    )
    with sessions.begin() as session:
        result = cast(
            CursorResult[Any],
            session.execute(
                update(DigestRun)
                .where(DigestRun.event == event, DigestRun.slot == slot, takeable)
                .values(**values)
            ),
        )
        if result.rowcount != 1:
            return None
        row = session.scalars(select(DigestRun).where(DigestRun.event == event, DigestRun.slot == slot)).one()
        return Claim(row.id, start, since_last, row.attempts)


def _finish(sessions: sessionmaker[Session], run_id: int, worker: str, **values: Any) -> None:
    # Not restricted to our claim for `sent`: recording a delivery always beats a resend.
    with sessions.begin() as session:
        statement = update(DigestRun).where(DigestRun.id == run_id)
        if values.get("status") != DigestStatus.SENT:
            statement = statement.where(DigestRun.claimed_by == worker)
        session.execute(statement.values(**values))


def sent_on(sessions: sessionmaker[Session], event: str, slot: str | None) -> bool:
    """Whether the scheduled digest of `slot` (the event's local date) has been sent."""
    with sessions() as session:
        status = session.scalar(
            select(DigestRun.status).where(DigestRun.event == event, DigestRun.slot == slot)
        )
    return status == DigestStatus.SENT


def _held_by_another(sessions: sessionmaker[Session], settings: Settings, slot: str | None) -> DigestOutcome:
    if sent_on(sessions, settings.event.id, slot):
        return DigestOutcome(False, "was sent by another replica")
    lease = lease_for(settings.smtp).total_seconds()
    return DigestOutcome(False, "is being sent by another replica", recheck_after=lease)


def send_digest(
    sessions: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    slot: str | None = None,
    since: datetime | None = None,
) -> DigestOutcome:
    """Claim, compose, send and record one digest of `settings.event` to its `digest_to`.
    Raises ConfigError, before claiming anything, when no SMTP server is configured."""
    smtp = settings.smtp
    _ = smtp.host  # an unconfigured server (intake.config.Unconfigured) says so here
    worker = worker_name()
    taken = claim(sessions, settings, now, slot, worker, since)
    if taken is None:
        return _held_by_another(sessions, settings, slot)
    with sessions() as session:
        digest = gather(session, settings, taken.since, now, taken.since_last)
    composed = compose_digest(digest, settings, now)
    try:
        send_now(smtp, settings.event.address, settings.event.digest_to, composed.raw)
    except Exception as exc:
        error = failure_text(exc)
        _finish(
            sessions,
            taken.id,
            worker,
            status=DigestStatus.FAILED,
            attempts=taken.attempts + 1,
            last_error=error,
            claimed_at=None,
        )
        return DigestOutcome(False, f"was not sent: {error}", failed=True, retry=is_transient(exc))
    _finish(
        sessions,
        taken.id,
        worker,
        status=DigestStatus.SENT,
        attempts=taken.attempts + 1,
        sent_at=datetime.now(UTC),
        rfc_message_id=composed.rfc_message_id,
        last_error=None,
    )
    recipients = ", ".join(settings.event.digest_to)
    return DigestOutcome(True, f"was sent to {recipients} ({digest.new_count} new)")

"""Slowing down password guessing at the dashboard's sign-in (OWASP Authentication Cheat
Sheet: login throttling, and its "device cookies" against locking out the real user).

Failures are counted in the database (so restarts and replicas share them) under
three keys:

- the client **address** (an IPv6 address by its /64): after `FREE` failures each
  further one makes that address wait twice as long, up to `LONGEST`;
- the **account** name: counted from every address, but it delays sign-in only
  once the failures come from more than one address, since one address is slowed
  by its own count already. So a stranger at one address cannot keep the real
  user, elsewhere, out;
- a **device**: a browser that has signed in to an account carries a random
  token (cookie) and is counted on its own, not by address or account. Guessing
  from many addresses slows the account for new browsers, never for the
  secretariat's own.

Delays grow, there is no hard lock. Every refusal is written to the audit trail;
refusals while waiting are counted on one audit row per wait, so a flood cannot
fill the database. The table is bounded (`MOST_ROWS`): quiet rows expire after
`QUIET`; under a spray of names or addresses the oldest rows of addresses and of
names that are no account are dropped, never an account's or a device's.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from intake.models import AuditEvent, DeskUser, SignInThrottle, utcnow

FREE = 5  # failures before the first delay
LONGEST = timedelta(minutes=15)
QUIET = timedelta(hours=24)  # a key with no failure for this long starts again from zero
MOST_ROWS = 10_000
DEVICE_LIFETIME = timedelta(days=180)
ADDRESS, ACCOUNT, DEVICE = "address", "account", "device"


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt: the name typed, where it comes from, the browser's device token."""

    name: str
    address: str
    device_token: str | None = None

    @property
    def account_key(self) -> str:
        return self.name.strip().lower()[:64]

    @property
    def address_key(self) -> str:
        return address_key(self.address)

    @property
    def device_key(self) -> str | None:
        if not self.device_token or len(self.device_token) > 100:
            return None
        return hashlib.sha256(self.device_token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class Wait:
    scope: str
    seconds: int

    def sentence(self) -> str:
        whom = {ADDRESS: "from this address", ACCOUNT: "for this name", DEVICE: "from this browser"}
        return f"Too many failed sign-ins {whom[self.scope]}: try again in {_duration(self.seconds)}."


def address_key(address: str) -> str:
    """The address as counted: IPv4 as is, IPv6 by its /64 (one host usually holds a whole /64)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def delay(failures: int) -> timedelta:
    """How long a key waits after this many failures in a row: nothing, then 1 s, 2 s, 4 s ..."""
    if failures < FREE:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - FREE, 20)), LONGEST)


def _duration(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 120 else f"{-(-seconds // 60)} minutes"


def _rows(session: Session, attempt: Attempt, create: bool) -> dict[str, SignInThrottle]:
    """The rows that govern this attempt: the device's when the browser is trusted for this
    name, else the address's and the account's (made when `create`)."""
    trusted = _trusted_device(session, attempt)
    keys = (
        [(DEVICE, trusted.key)]
        if trusted
        else [(ADDRESS, attempt.address_key), (ACCOUNT, attempt.account_key)]
    )
    found = {}
    for scope, key in keys:
        row = session.scalars(
            select(SignInThrottle).where(SignInThrottle.scope == scope, SignInThrottle.key == key)
        ).first()
        if row is None and create:
            row = SignInThrottle(scope=scope, key=key, failures=0, spread=0, refused=0)
            session.add(row)
        if row is not None:
            found[scope] = row
    return found


def _trusted_device(session: Session, attempt: Attempt) -> SignInThrottle | None:
    key = attempt.device_key
    if key is None:
        return None
    row = session.scalars(
        select(SignInThrottle).where(SignInThrottle.scope == DEVICE, SignInThrottle.key == key)
    ).first()
    if row is None or row.account != attempt.account_key:
        return None
    if row.created_at + DEVICE_LIFETIME < utcnow():
        return None
    return row


def _governs(row: SignInThrottle) -> bool:
    # An account's count delays sign-in once its failures come from more than one address.
    return row.scope != ACCOUNT or row.spread > 0


def _audit(session: Session, attempt: Attempt, detail: str) -> AuditEvent:
    user_id = session.scalars(select(DeskUser.id).where(DeskUser.name == attempt.name)).first()
    event = AuditEvent(
        actor=attempt.name[:64] or "(no name)",
        action="sign_in_refused",
        subject_type="user",
        subject_id=user_id or 0,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def check(sessions: sessionmaker[Session], attempt: Attempt, now: datetime | None = None) -> Wait | None:
    """None if the attempt may go on to the password check; else how long to wait (the refusal
    is in the audit trail)."""
    now = now or utcnow()
    with sessions.begin() as session:
        rows = _rows(session, attempt, create=False)
        waits = [
            (row, int((row.blocked_until - now).total_seconds()) + 1)
            for row in rows.values()
            if row.blocked_until is not None and row.blocked_until > now and _governs(row)
        ]
        if not waits:
            return None
        row, seconds = max(waits, key=lambda pair: pair[1])
        row.refused += 1
        detail = f"throttled: the {row.scope} waits {_duration(seconds)}; from {attempt.address}"
        event = session.get(AuditEvent, row.audit_id) if row.audit_id else None
        if event is None or event.action != "sign_in_refused":
            row.audit_id = _audit(session, attempt, detail).id
        else:
            event.detail = f"{detail} ({row.refused} attempts refused in this wait)"
        return Wait(row.scope, seconds)


def failed(sessions: sessionmaker[Session], attempt: Attempt, now: datetime | None = None) -> None:
    """A wrong name or password: count it against each key and audit it."""
    now = now or utcnow()
    with sessions.begin() as session:
        for row in _rows(session, attempt, create=True).values():
            if row.last_failure_at is not None and row.last_failure_at + QUIET < now:
                row.failures, row.spread = 0, 0
            row.failures += 1
            if row.scope == ACCOUNT and row.last_address not in (None, attempt.address_key):
                row.spread += 1
            row.last_address = attempt.address_key
            row.last_failure_at = now
            row.blocked_until = now + delay(row.failures)
            row.refused, row.audit_id = 0, None
        _audit(session, attempt, f"wrong name or password; from {attempt.address}")
        session.flush()
        _bound(session, now)


def succeeded(sessions: sessionmaker[Session], attempt: Attempt, now: datetime | None = None) -> str:
    """The right password: this address and browser start again from zero. Returns the device
    token for the browser to keep (a new one unless it holds a trusted one already)."""
    now = now or utcnow()
    with sessions.begin() as session:
        trusted = _trusted_device(session, attempt)
        for row in _rows(session, attempt, create=False).values():
            # An account under attack from several addresses keeps its count.
            if row.scope != ACCOUNT or row.spread == 0:
                row.failures, row.spread, row.blocked_until = 0, 0, None
        if trusted is not None and attempt.device_token:
            return attempt.device_token
        token = secrets.token_urlsafe(32)
        session.add(
            SignInThrottle(
                scope=DEVICE,
                key=Attempt(attempt.name, attempt.address, token).device_key,
                account=attempt.account_key,
                failures=0,
                spread=0,
                refused=0,
                created_at=now,
            )
        )
        return token


def _bound(session: Session, now: datetime) -> None:
    """At most about `MOST_ROWS` rows; never an account's or a device's under attack."""
    count = session.execute(select(func.count()).select_from(SignInThrottle)).scalar_one()
    if count <= MOST_ROWS:
        return
    quiet = now - QUIET
    expired = (
        (SignInThrottle.scope != DEVICE)
        & (SignInThrottle.last_failure_at < quiet)
        & or_(SignInThrottle.blocked_until.is_(None), SignInThrottle.blocked_until < now)
    ) | ((SignInThrottle.scope == DEVICE) & (SignInThrottle.created_at < now - DEVICE_LIFETIME))
    session.execute(delete(SignInThrottle).where(expired))
    excess = session.execute(select(func.count()).select_from(SignInThrottle)).scalar_one() - MOST_ROWS
    if excess <= 0:
        return
    accounts = select(func.lower(DeskUser.name))
    forgettable = (
        select(SignInThrottle.id)
        .where(
            or_(
                SignInThrottle.scope == ADDRESS,
                (SignInThrottle.scope == ACCOUNT) & SignInThrottle.key.not_in(accounts),
            )
        )
        .order_by(SignInThrottle.last_failure_at)
        .limit(excess + MOST_ROWS // 10)
    )
    session.execute(delete(SignInThrottle).where(SignInThrottle.id.in_(forgettable.scalar_subquery())))

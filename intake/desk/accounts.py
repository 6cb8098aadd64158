"""Dashboard accounts and signed-in sessions.

Passwords are stored only as Argon2id hashes (argon2-cffi's defaults, RFC 9106's
second recommended profile), re-hashed at sign-in when those parameters change.
A session is a random 256-bit token in an HttpOnly cookie; the database keeps
its SHA-256 only, with an absolute expiry and an idle timeout, and the CSRF
token that every form of that session must carry. Roles: `admin` reads and
acts, `viewer` only reads.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from intake.desk import Refused
from intake.domain import AuditAction, DeskRole, SubjectType
from intake.models import AuditEvent, DeskUser, WebSession, utcnow

ROLES = tuple(r.value for r in DeskRole)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # hashing a megabyte on every attempt would be a cheap way to load the server
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()
# Compared against when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class SignedIn:
    """Who a request comes from."""

    session_id: int
    user_id: int
    name: str
    role: str
    csrf_token: str
    expires_at: datetime

    @property
    def can_act(self) -> bool:
        return self.role == DeskRole.ADMIN


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise Refused("a user name is 1 to 64 letters, digits and . _ @ - (starting with a letter or digit)")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise Refused(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Refused(f"the password is longer than {MAX_PASSWORD} characters")
    return password


def add_user(
    sessions: sessionmaker[Session],
    name: str,
    password: str | None,
    role: str,
    actor: str,
    *,
    update: bool = False,
) -> str:
    """Create the account (or, with `update`, set its password and role). Returns a summary."""
    check_name(name)
    if role not in ROLES:
        raise Refused(f"unknown role {role!r}: use {' or '.join(ROLES)}")
    hashed = _HASHER.hash(check_password(password)) if password is not None else None
    with sessions.begin() as session:
        user = session.scalars(select(DeskUser).where(DeskUser.name == name)).first()
        if user is not None and not update:
            raise Refused(f"user {name} exists already (use --update to change the password or role)")
        if user is None:
            user = DeskUser(name=name, password_hash=hashed, role=role, disabled=False, created_at=utcnow())
            session.add(user)
            action = AuditAction.USER_ADDED
        else:
            user.password_hash, user.role, user.disabled = hashed, role, False
            # A changed password signs the account out everywhere.
            session.execute(delete(WebSession).where(WebSession.user_id == user.id))
            action = AuditAction.USER_UPDATED
        session.flush()
        session.add(
            AuditEvent(
                actor=actor, action=action, subject_type=SubjectType.USER, subject_id=user.id, detail=role
            )
        )
        return f"{'added' if action is AuditAction.USER_ADDED else 'updated'} {role} {name}"


def list_users(sessions: sessionmaker[Session]) -> list[DeskUser]:
    with sessions() as session:
        return list(session.scalars(select(DeskUser).order_by(DeskUser.name)))


def verify_password(sessions: sessionmaker[Session], name: str, password: str) -> DeskUser | None:
    """The account if the password is right; None otherwise, after the same work whatever the
    name, and whatever the password's length (a longer one is cut, then refused)."""
    too_long = len(password) > MAX_PASSWORD
    password = password[:MAX_PASSWORD]
    with sessions.begin() as session:
        user = session.scalars(select(DeskUser).where(DeskUser.name == name)).first()
        stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled or not user.password_hash or too_long:
            return None
        if _HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = _HASHER.hash(password)
        return user


def user_named(sessions: sessionmaker[Session], name: str) -> DeskUser | None:
    with sessions() as session:
        user = session.scalars(select(DeskUser).where(DeskUser.name == name)).first()
        return None if user is None or user.disabled else user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def open_session(
    sessions: sessionmaker[Session],
    user: DeskUser,
    lifetime: timedelta,
    how: str,
    now: datetime | None = None,
) -> tuple[str, SignedIn]:
    """Sign the user in: returns the cookie's token and the session."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with sessions.begin() as session:
        # Expired sessions are removed as new ones are made: no job to schedule.
        session.execute(delete(WebSession).where(WebSession.expires_at < now))
        row = WebSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
        session.add(row)
        account = session.get(DeskUser, user.id)
        if account is not None:
            account.last_sign_in_at = now
        session.flush()
        session.add(
            AuditEvent(
                actor=user.name,
                action=AuditAction.SIGNED_IN,
                subject_type=SubjectType.USER,
                subject_id=user.id,
                detail=how,
            )
        )
        return token, SignedIn(row.id, user.id, user.name, user.role, row.csrf_token, row.expires_at)


def load_session(
    sessions: sessionmaker[Session], token: str | None, idle: timedelta, now: datetime | None = None
) -> SignedIn | None:
    """The session this cookie belongs to, if it is neither expired nor idle too long."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    with sessions.begin() as session:
        row = session.scalars(select(WebSession).where(WebSession.token_hash == _digest(token))).first()
        if row is None:
            return None
        user = session.get(DeskUser, row.user_id)
        if user is None or user.disabled or row.expires_at <= now or row.last_seen_at + idle <= now:
            session.delete(row)
            return None
        if now - row.last_seen_at > timedelta(minutes=1):  # not a write on every request
            row.last_seen_at = now
        return SignedIn(row.id, user.id, user.name, user.role, row.csrf_token, row.expires_at)


def close_session(sessions: sessionmaker[Session], signed_in: SignedIn) -> None:
    with sessions.begin() as session:
        session.execute(delete(WebSession).where(WebSession.id == signed_in.session_id))
        session.add(
            AuditEvent(
                actor=signed_in.name,
                action=AuditAction.SIGNED_OUT,
                subject_type=SubjectType.USER,
                subject_id=signed_in.user_id,
                detail=None,
            )
        )


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())

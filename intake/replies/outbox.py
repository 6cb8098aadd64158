"""The outbox: the one place that sends mail, and keeps a copy of it in the Sent folder.

Replies are written as `Reply` rows (status `pending`) in the same
transaction as the decision they announce; this module delivers them with
aiosmtplib and records the outcome. It owns the row's life after that:

    pending --claim--> sending --250--> sent
       ^                  |--4xx, connection error, timeout--> pending (attempts+1, backoff)
       |                  |--5xx, all recipients refused, bad certificate--> failed
       +--lease expired---+        failed --retry_failed--> pending

Claiming. Each row is claimed just before it is sent, in a committed
transaction, so that two processes never send the same reply: one
`UPDATE ... WHERE id = (the oldest due) AND status = 'pending' RETURNING ...`,
which only one writer can win; on PostgreSQL the oldest due row is picked
`FOR UPDATE SKIP LOCKED` (a second sender skips the locked row instead of
waiting for it); SQLite drops that clause and serialises writers. Claiming
one row at a time keeps the lease short: it only has to outlast one SMTP
transaction, not a whole batch.

The duplicate window. A reply is marked `sent` in its own commit right after
the server's 250 answer to DATA. If the process dies between that answer and
that commit, the row stays `sending`; once its lease expires
(`lease_for`) it goes back to `pending` and is sent again. That window (one
local commit) is the only way this code can send a reply twice; the
reclaimed row's `last_error` says so, for the secretariat. SMTP itself has
one more (RFC 1047): if the connection times out after the message was
transmitted but before the server's answer arrives, the server may have
accepted it, and the retry duplicates it. Nothing on the client side can
tell these cases apart; a short timeout makes them rarer, not impossible.

Nothing here logs message bodies or passwords: a log line names the reply id
and the server's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import aiosmtplib
from sqlalchemy import Connection, CursorResult, Engine, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.config import Secret, Settings, SmtpSettings
from intake.domain import ReplyStatus
from intake.mailbox import Mailbox
from intake.models import Reply, utcnow
from intake.oauth import TokenError, TokenProvider, provider_for

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(minutes=1)  # first retry after about a minute...
BACKOFF_MAX = timedelta(hours=6)  # ...doubling up to six hours
# Replies copied to Sent in one MULTIAPPEND and recorded as copied in one commit: a crash between
# the two leaves up to this many second copies in Sent (never a reply without its copy).
SENT_COPIES_AT_ONCE = 50
BACKOFF_JITTER = 0.2  # +-20 %, so that replicas and rows do not retry in step
MAX_ATTEMPTS = 12  # about 1.5 days of retries before a reply is marked failed
_ERROR_CHARS = 1000


@dataclass(frozen=True)
class DeliveryReport:
    """What one `deliver_pending` run did."""

    sent: int = 0
    retried: int = 0  # transient failure: back to pending with backoff
    failed: int = 0  # permanent failure, or out of attempts
    reclaimed: int = 0  # stuck in `sending` past the lease: back to pending
    unreachable: str = ""  # why the SMTP server could not be reached (the replies wait), or ""


# --- authentication: the seam for XOAUTH2 ---------------------------------------------


@dataclass(frozen=True)
class PasswordAuth:
    """AUTH with a user name and password (aiosmtplib picks CRAM-MD5, PLAIN or LOGIN)."""

    user: str
    password: Secret


@dataclass(frozen=True)
class XOAuth2Auth:
    """AUTH XOAUTH2 with an access token from the (process-wide, shared) provider."""

    user: str
    tokens: TokenProvider


SmtpAuth = PasswordAuth | XOAuth2Auth


def smtp_auth(smtp: SmtpSettings) -> SmtpAuth | None:
    """The authentication to use with this server, or None for none."""
    if smtp.auth == "xoauth2" and smtp.user and smtp.oauth is not None:
        return XOAuth2Auth(user=smtp.user, tokens=provider_for(smtp.oauth))
    if not smtp.user:
        return None
    return PasswordAuth(user=smtp.user, password=smtp.password or Secret(""))


async def _authenticate(client: aiosmtplib.SMTP, auth: SmtpAuth) -> None:
    if isinstance(auth, PasswordAuth):
        await client.login(auth.user, auth.password.reveal())
        return
    # The provider may run a command or ask Microsoft Entra: not on the event loop.
    token = await asyncio.to_thread(auth.tokens.token)
    try:
        await client.auth_xoauth2(auth.user, token)
        return
    except aiosmtplib.SMTPAuthenticationError:
        # Revoked, or expired sooner than it said: one new token, one more try.
        auth.tokens.refused(token)
        fresh = await asyncio.to_thread(auth.tokens.token)
        if fresh == token:
            raise
    log.warning("outbox: the SMTP server refused the access token; signing in again with a new one")
    await client.auth_xoauth2(auth.user, fresh)


# --- SMTP -----------------------------------------------------------------------------


def _tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    # Certificates are always verified; a private CA is added, never a bypass.
    return ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)


async def _connect(smtp: SmtpSettings) -> aiosmtplib.SMTP:
    """An open, authenticated connection; raises what aiosmtplib or ssl raise."""
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        timeout=smtp.timeout,
        use_tls=smtp.tls == "ssl",
        # True, not None: never fall back to plain text if STARTTLS is missing.
        start_tls=smtp.tls == "starttls",
        validate_certs=smtp.tls != "none",
        tls_context=_tls_context(smtp) if smtp.tls != "none" else None,
    )
    await client.connect()
    try:
        auth = smtp_auth(smtp)
        if auth is not None:
            await _authenticate(client, auth)
    except BaseException:
        client.close()
        raise
    return client


async def _disconnect(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `exc`, if any.

    aiosmtplib raises a certificate failure bare during STARTTLS but wraps it
    in SMTPConnectError for implicit TLS, so look down the chain of causes.
    """
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def failure_text(exc: BaseException) -> str:
    """One line on why sending failed: the server's answer, or the TLS or network error."""
    tls = _tls_failure(exc)
    if isinstance(tls, ssl.SSLCertVerificationError):
        exc = tls
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        text = f"recipient refused: {text}"
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = f"TLS certificate not trusted: {exc.verify_message or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text[:_ERROR_CHARS]


def send_now(smtp: SmtpSettings, envelope_from: str, recipients: Sequence[str], raw: bytes) -> None:
    """Send one message at once over a connection of its own: for what is not a reply (the
    daily digest, `intake.digest`), which records its own outcome. Raises what aiosmtplib, ssl
    and the token source raise; `is_transient` says whether trying again later may help."""

    async def send() -> None:
        client = await _connect(smtp)
        try:
            await client.sendmail(envelope_from, list(recipients), raw)
        finally:
            await _disconnect(client)

    asyncio.run(send())


def is_transient(exc: BaseException) -> bool:
    """Will trying again later help? 4xx, timeouts and lost connections: yes."""
    if isinstance(exc, TokenError):
        return exc.transient  # the identity provider down: yes; a wrong client secret: no
    tls = _tls_failure(exc)
    if tls is not None:
        # A connection cut mid-TLS is the network; anything else (an untrusted
        # certificate, no common protocol) is configuration: retrying changes nothing.
        return isinstance(tls, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return any(400 <= r.code < 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500 or exc.code < 0  # aiosmtplib uses -1 for no reply
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return True
    # SMTPNotSupported (no STARTTLS, no AUTH), bad addresses (ValueError): configuration.
    return not isinstance(exc, aiosmtplib.SMTPException | ValueError)


# --- claiming and recording -------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    id: int
    recipient: str
    raw: bytes | None
    attempts: int


_REPLY = cast(Table, Reply.__table__)


def _claim_statement(after_sent: bool = False) -> Any:
    """UPDATE the oldest due reply of an event to `sending`, if it is still pending, RETURNING
    what is sent: one statement, a write from its first step, on both databases. On PostgreSQL
    the row is picked `FOR UPDATE SKIP LOCKED`, so a second sender skips it instead of waiting;
    SQLite drops that clause and serialises writers, and of two senders the second's UPDATE,
    run after the first's commit, picks the next row. Built once: per reply only the values
    change (building and cache-keying the statement each time was a third of its cost).

    Only replies after `after` (the id a run claimed last; 0 at its start) are looked at: a run
    sends in id order, and without the bound every claim of a run read again, from the front,
    the rows it had just sent (with stale statistics PostgreSQL walks the primary key; each
    claim of a 1,000-reply backlog read up to 1,800 pages). A reply before the bound that
    becomes due during the run (a retry, a row another sender held) waits for the next run.
    At a run's start `ix_reply_due` (event, status, id) finds the oldest pending reply.

    `after_sent` (PostgreSQL): the same claim with the "sent" mark of the reply before it
    (`_sent_statement`) as a data-modifying WITH, so marking one reply sent and claiming the
    next is one statement, run in autocommit: one round trip instead of four (BEGIN, two
    UPDATEs, COMMIT). PostgreSQL runs a WITH's UPDATE to completion whether or not anything
    is claimed; the claim never picks the row just marked (`after` is that row's id: one
    statement must not update a row twice)."""
    r = _REPLY.c
    due = [
        r.event == bindparam("of_event"),
        r.status == ReplyStatus.PENDING,
        r.id > bindparam("after"),
        or_(r.next_attempt_at.is_(None), r.next_attempt_at <= bindparam("due_by")),
    ]
    oldest = (
        select(r.id).where(*due).order_by(r.id).limit(1).with_for_update(skip_locked=True).scalar_subquery()
    )
    claim = (
        update(_REPLY)
        .where(r.id == oldest, r.status == ReplyStatus.PENDING)
        .values(status=ReplyStatus.SENDING, claimed_by=bindparam("worker"), claimed_at=bindparam("claimed"))
        .returning(r.id, r.recipient, r.raw, r.attempts)
    )
    return claim.add_cte(_sent_statement().returning(r.id).cte("sent")) if after_sent else claim


def _sent_statement() -> Any:
    """Mark one reply sent. Not restricted to our claim: if the lease ran out and the row was
    put back to pending meanwhile, recording the delivery still prevents a resend."""
    r = _REPLY.c
    return (
        update(_REPLY)
        .where(r.id == bindparam("reply"), r.status.in_((ReplyStatus.SENDING, ReplyStatus.PENDING)))
        .values(
            status=ReplyStatus.SENT,
            sent_at=bindparam("sent"),
            attempts=bindparam("tries"),
            last_error=None,
            next_attempt_at=None,
        )
    )


_CLAIM = _claim_statement()
_SENT = _sent_statement()
_SENT_AND_CLAIM = _claim_statement(after_sent=True)  # PostgreSQL only


def _claim_next(
    session_factory: sessionmaker[Session], event_id: str, worker: str, now: datetime, after: int = 0
) -> _Job | None:
    """Claim the oldest due reply after `after` for `worker` and commit the claim; None if
    none is due."""
    with session_factory() as session, session.begin():
        values = {"of_event": event_id, "due_by": now, "worker": worker, "claimed": now, "after": after}
        claimed = session.execute(_CLAIM, values).first()
    return _Job(*claimed) if claimed is not None else None


def _set(reply_id: int, *where: Any, **values: Any) -> Any:
    """The UPDATE of one reply row, for a session that holds no Reply objects to keep in step."""
    return (
        update(Reply)
        .where(Reply.id == reply_id, *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _update(session_factory: sessionmaker[Session], reply_id: int, *where: Any, **values: Any) -> int:
    with session_factory() as session, session.begin():
        return cast(CursorResult[Any], session.execute(_set(reply_id, *where, **values))).rowcount


# Replies the server accepted whose "sent" commit failed (the database was away).
_UNRECORDED: dict[int, tuple[_Job, datetime]] = {}


def _record_unrecorded(session_factory: sessionmaker[Session]) -> None:
    """Mark sent what was sent while the database could not record it; raises while it still can't."""
    for reply_id, (job, when) in list(_UNRECORDED.items()):
        _mark_sent(session_factory, job, when)
        del _UNRECORDED[reply_id]
        log.info("outbox: reply %d, sent earlier, is now recorded as sent", reply_id)


def _release(session_factory: sessionmaker[Session], job: _Job, worker: str, error: str) -> None:
    """Give a claimed reply back, untouched but for the error seen."""
    _update(
        session_factory,
        job.id,
        Reply.status == ReplyStatus.SENDING,
        Reply.claimed_by == worker,
        status=ReplyStatus.PENDING,
        claimed_by=None,
        claimed_at=None,
        last_error=error,
    )


def _mark_sent(session_factory: sessionmaker[Session], job: _Job, now: datetime) -> None:
    """Record `job` sent, in a commit of its own."""
    with session_factory() as session, session.begin():
        session.execute(_SENT, {"reply": job.id, "sent": now, "tries": job.attempts + 1})


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt (1, 2, ...)."""
    base = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)
    return base * (rng or random).uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


def _mark_failed_attempt(
    session_factory: sessionmaker[Session],
    job: _Job,
    worker: str,
    now: datetime,
    error: str,
    transient: bool,
    max_attempts: int,
) -> bool:
    """Record a failed attempt; True if the reply will be retried."""
    attempts = job.attempts + 1
    retry = transient and attempts < max_attempts
    if retry:
        values: dict[str, Any] = {
            "status": ReplyStatus.PENDING,
            "next_attempt_at": now + backoff(attempts),
            "last_error": error,
        }
    else:
        reason = error if not transient else f"gave up after {attempts} attempts: {error}"
        values = {"status": ReplyStatus.FAILED, "next_attempt_at": None, "last_error": reason}
    _update(
        session_factory,
        job.id,
        Reply.status == ReplyStatus.SENDING,
        Reply.claimed_by == worker,
        attempts=attempts,
        claimed_at=None,
        **values,
    )
    return retry


def lease_for(smtp: SmtpSettings) -> timedelta:
    """How long a claim lasts before another sender may take the reply over: the
    configured `smtp.claim_lease`, and never less than two SMTP timeouts, so a
    live sender still waiting for the server's answer keeps its claim."""
    return max(timedelta(seconds=smtp.claim_lease), timedelta(seconds=smtp.timeout * 2))


def reclaim_stale(
    session_factory: sessionmaker[Session], event_id: str, now: datetime, lease: timedelta
) -> int:
    """Put replies stuck in `sending` past the lease (their sender died) back to pending."""
    with session_factory() as session, session.begin():
        result = cast(
            CursorResult[Any],
            session.execute(
                update(Reply)
                .where(
                    Reply.event == event_id,
                    Reply.status == ReplyStatus.SENDING,
                    Reply.claimed_at < now - lease,
                )
                .values(
                    status=ReplyStatus.PENDING,
                    attempts=Reply.attempts + 1,
                    next_attempt_at=now,
                    claimed_at=None,
                    last_error=(
                        "the sender stopped while sending (lease expired); "
                        "if it had already been accepted, the contributor gets it twice"
                    ),
                )
            ),
        )
        return result.rowcount


# --- the delivery run ------------------------------------------------------------------------


async def deliver_pending_async(
    session_factory: sessionmaker[Session],
    settings: Settings,
    worker: str,
    now_fn: Callable[[], datetime] = utcnow,
    *,
    limit: int = 200,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Deliver due pending replies of `settings.event` over one SMTP connection.

    At most `limit` replies per run. The connection is opened when the first
    reply is claimed. A transient failure to connect (server down, timeout)
    is not that reply's fault: it goes back to pending with no attempt counted,
    so the next run sends everything. A permanent one (untrusted certificate,
    535 bad credentials) fails that reply with the reason, so the operator
    sees it in `intake outbox` and, once it is fixed, runs `retry_failed`.
    The run stops at the first error that leaves no usable connection, leaving
    the other replies untouched for the next run.
    """
    _record_unrecorded(session_factory)
    reclaimed = reclaim_stale(session_factory, settings.event.id, now_fn(), lease_for(settings.smtp))
    if reclaimed:
        log.warning("outbox: %d replies were stuck in sending and are pending again", reclaimed)
    run = _Run(session_factory, settings, worker, now_fn, max_attempts)
    try:
        job = run.claim()
        for left in range(limit - 1, -1, -1):
            if job is None:
                break
            job = await run.deliver(job, claim_next=left > 0)
    finally:
        if run.marks is not None:
            run.marks.close()
        if run.client is not None:
            await _disconnect(run.client)
    return DeliveryReport(
        sent=run.sent,
        retried=run.retried,
        failed=run.failed,
        reclaimed=reclaimed,
        unreachable=run.unreachable,
    )


@dataclass
class _Run:
    """One delivery run: its SMTP connection and what became of each reply."""

    sessions: sessionmaker[Session]
    settings: Settings
    worker: str
    now: Callable[[], datetime]
    max_attempts: int
    client: aiosmtplib.SMTP | None = None
    marks: Connection | None = None  # held for the run: each "sent" mark and the claim after it
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: str = ""
    after: int = 0  # the id claimed last: the run's next claim looks past it

    def claim(self) -> _Job | None:
        return _claim_next(self.sessions, self.settings.event.id, self.worker, self.now(), self.after)

    async def deliver(self, job: _Job, claim_next: bool) -> _Job | None:
        """Send one claimed reply and record the outcome; the next reply claimed (with
        `claim_next`), or None when none is due or the run has to stop."""
        self.after = job.id
        if not job.raw:
            self._failed(job, "no composed message to send", transient=False)
            return self.claim() if claim_next else None
        if self.client is None and not await self._connect(job):
            return None
        assert self.client is not None
        # The secretariat's copy goes in the envelope only: the contributor sees no Bcc header.
        recipients = [job.recipient, *self.settings.event.replies.copy_to]
        try:
            await self.client.sendmail(self.settings.event.address, recipients, job.raw)
        except Exception as exc:
            self._failed(job, failure_text(exc), is_transient(exc))
            if not self.client.is_connected:
                return None  # server unreachable or gone: the rest waits for the next run
            return self.claim() if claim_next else None
        # The server has answered 250: record it at once; see the module docstring.
        try:
            following = self._sent(job, claim_next)
        except Exception:
            # Remembered in this process and recorded as soon as the database is
            # back (before anything else is sent), so only a crash now resends it.
            _UNRECORDED[job.id] = (job, self.now())
            log.error(
                "outbox: reply %d was accepted by the server but could not be marked sent yet; "
                "it will be recorded when the database answers again",
                job.id,
            )
            raise
        self.sent += 1
        log.debug("outbox: reply %d sent", job.id)  # each run logs how many at INFO (intake.pipeline)
        return following

    def _sent(self, job: _Job, claim_next: bool) -> _Job | None:
        """Record `job` sent and, with `claim_next`, claim the next due reply in the same commit:
        one commit per reply instead of two, and the "sent" commit still follows the server's
        250 at once, so the duplicate window is what it was. On one connection held for the
        run (no pool check-out and ping per reply); on PostgreSQL one statement in autocommit
        (`_SENT_AND_CLAIM`)."""
        now = self.now()
        values = {"reply": job.id, "sent": now, "tries": job.attempts + 1}
        values |= {"of_event": self.settings.event.id, "due_by": now, "worker": self.worker, "claimed": now}
        values["after"] = job.id
        if self.marks is None:
            with self.sessions() as session:
                engine = cast(Engine, session.get_bind())
            self.marks = engine.connect()
            if engine.dialect.name == "postgresql":
                self.marks.execution_options(isolation_level="AUTOCOMMIT")
        marks = self.marks
        with marks.begin():  # in autocommit, the statement has committed when it returns
            if not claim_next:
                marks.execute(_SENT, values)
                return None
            if marks.dialect.name == "postgresql":
                claimed = marks.execute(_SENT_AND_CLAIM, values).first()
            else:
                marks.execute(_SENT, values)
                claimed = marks.execute(_CLAIM, values).first()
        return _Job(*claimed) if claimed is not None else None

    async def _connect(self, job: _Job) -> bool:
        """Open the run's connection; on failure settle `job` and say the run stops."""
        try:
            self.client = await _connect(self.settings.smtp)
            return True
        except Exception as exc:
            if is_transient(exc):
                # The server is down, not this reply at fault: it stays due,
                # with no attempt counted, and the next run sends it.
                self.unreachable = failure_text(exc)
                _release(self.sessions, job, self.worker, self.unreachable)
                log.warning("outbox: SMTP server unreachable, replies wait: %s", self.unreachable)
                return False
            self._failed(job, failure_text(exc), transient=False)
            log.error("outbox: cannot use the SMTP server: %s", failure_text(exc))
            return False

    def _failed(self, job: _Job, error: str, transient: bool) -> None:
        if _mark_failed_attempt(
            self.sessions, job, self.worker, self.now(), error, transient, self.max_attempts
        ):
            self.retried += 1
            log.warning("outbox: reply %d not sent, will retry: %s", job.id, error)
        else:
            self.failed += 1
            log.error("outbox: reply %d failed: %s", job.id, error)


def deliver_pending(
    session_factory: sessionmaker[Session],
    settings: Settings,
    worker: str,
    now_fn: Callable[[], datetime] = utcnow,
    *,
    limit: int = 200,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Synchronous `deliver_pending_async`; call it where no event loop is running."""
    return asyncio.run(
        deliver_pending_async(
            session_factory, settings, worker, now_fn, limit=limit, max_attempts=max_attempts
        )
    )


def retry_failed(session_factory: sessionmaker[Session], ids: Collection[int] | None = None) -> int:
    """Put failed replies (all, or those with these ids) back to pending; returns how many."""
    with session_factory() as session, session.begin():
        statement = update(Reply).where(Reply.status == ReplyStatus.FAILED)
        if ids is not None:
            statement = statement.where(Reply.id.in_(list(ids)))
        result = cast(
            CursorResult[Any],
            session.execute(
                statement.values(
                    status=ReplyStatus.PENDING,
                    attempts=0,
                    next_attempt_at=None,
                    claimed_by=None,
                    claimed_at=None,
                )
            ),
        )
        return result.rowcount


# --- the Sent copy ---------------------------------------------------------------------------------


def copy_replies_to_sent(
    settings: Settings, sessions: sessionmaker[Session], mailbox: Mailbox | None = None
) -> int:
    """Append a copy of each reply sent to the mailbox's Sent folder, so the
    secretariat sees it in their mail client; over `mailbox` if given (the poller's
    session), else over a session of its own. Returns how many were copied."""
    folder_name = settings.imap.sent_folder
    if not folder_name:
        return 0
    with sessions() as session:
        due = session.scalars(
            select(Reply.id)
            .where(
                Reply.event == settings.event.id,
                Reply.status == str(ReplyStatus.SENT),
                Reply.sent_copy_at.is_(None),
                Reply.raw.is_not(None),
            )
            .order_by(Reply.id)
        ).all()
    if not due:
        return 0
    with contextlib.nullcontext(mailbox) if mailbox is not None else Mailbox(settings.imap) as mailbox:
        for start in range(0, len(due), SENT_COPIES_AT_ONCE):  # the bytes a chunk at a time: it streams
            with sessions() as session:
                chunk = session.execute(
                    select(Reply.id, Reply.raw, Reply.sent_at)
                    .where(Reply.id.in_(due[start : start + SENT_COPIES_AT_ONCE]))
                    .order_by(Reply.id)
                ).all()
            copies = [(raw, sent_at or utcnow()) for _, raw, sent_at in chunk if raw is not None]
            mailbox.append(folder_name, copies)
            with sessions.begin() as session:
                ids = [reply_id for reply_id, _, _ in chunk]
                session.execute(update(Reply).where(Reply.id.in_(ids)).values(sent_copy_at=utcnow()))
    return len(due)

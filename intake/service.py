"""`intake run`: the long-running service, scheduled with APScheduler 3.

Jobs: the poll (every `service.poll_interval` seconds; max_instances=1,
coalesce=True, misfire grace = the interval) and the outbox (every
`service.outbox_interval` seconds). With `imap.idle = true` a watcher thread
keeps an IMAP IDLE open and starts a poll within seconds of new mail; the
scheduled poll stays on as a safety net.

The outside world failing (IMAP, SMTP, the database) never stops the service:
each failure is logged once with its cause, and the job is tried again with
exponential backoff and jitter, never more than `service.max_backoff` seconds
apart: once a server is back, work resumes within that time. SIGTERM/SIGINT:
the message in hand is finished, then the process exits 0.

The daily digest (intake.digest): with `[event] digest_to` set, once a day at
`digest_at` in the event's zone (APScheduler's cron trigger, which keeps to the
local time across DST). Every replica's job fires; the day's digest row, unique
per event and day, lets one of them send it, and the others say so and stand
back. A transient failure is tried again with backoff until the day ends; a
replica that finds the day claimed by another looks again after the outbox's
lease, in case that one died while sending. A service started later that day, with the day's
digest not sent (it was down at `digest_at`), sends it at start.

Replicas: each poll first takes the mailbox's poller lock (intake.lease); a
replica that cannot take it skips its turn. On SQLite, a second `intake run`
on the same database refuses to start.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from imapclient.exceptions import IMAPClientError
from sqlalchemy.exc import SQLAlchemyError

from intake import db
from intake.config import Settings
from intake.examine import ExamineError
from intake.lease import PollerLock
from intake.mailbox import Mailbox, MailboxError
from intake.metrics import ServiceState, serve
from intake.pipeline import deliver, poll_once
from intake.store import BlobStore, StoreError

log = logging.getLogger(__name__)

IDLE_RENEW = timedelta(minutes=9)  # well before the 29 minutes of RFC 2177
IDLE_CHECK = 20.0  # seconds per idle_check: how soon a stop or a dead link is noticed


class JobsInHand:
    """The jobs running now, so that a stop can wait for them itself.

    APScheduler's shutdown(wait=True) waits for the running jobs while it holds the
    job-store lock, which a job takes to set its next run (`_retry`, `trigger`): a
    job past its check of `stopping` when the stop began waited for that lock, the
    stop for the job, and the service never exited. The stop shuts the scheduler down
    without waiting; `wait` then waits for the jobs, holding no lock of the scheduler's.
    """

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self._changed = threading.Condition()
        self._running = 0

    def guard(self, job: Callable[..., None]) -> Callable[..., None]:
        """`job` as the scheduler runs it: counted while it runs, skipped once stopping."""

        @functools.wraps(job)
        def run(*args: Any, **kwargs: Any) -> None:
            with self._changed:
                if self.stopping.is_set():
                    return
                self._running += 1
            try:
                job(*args, **kwargs)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

        return run

    def stop(self) -> None:
        with self._changed:
            self.stopping.set()

    def wait(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._running == 0)


class ServiceRefused(Exception):
    """The service cannot start (e.g. a second poller on one SQLite database)."""


@dataclass
class Backoff:
    """Failures of one job: when to try again, and whether to say so again."""

    interval: float
    ceiling: float  # the longest delay (max_backoff), never below the interval
    failures: int = 0
    last_cause: str = ""
    rng: random.Random = field(default_factory=random.Random)

    def failed(self, cause: str) -> float:
        self.failures += 1
        if cause != self.last_cause:
            log.error("%s", cause)
        elif self.failures >= 4 and self.failures & (self.failures - 1) == 0:  # 4, 8, 16, ...
            # A reminder that it goes on, not the cause again: that was logged once.
            log.warning("still failing after %d attempts, for the reason logged above", self.failures)
        self.last_cause = cause
        delay = self.interval * 2 ** min(self.failures - 1, 32) * self.rng.uniform(0.8, 1.2)
        return min(delay, max(self.interval, self.ceiling))

    def succeeded(self) -> None:
        if self.failures:
            log.info("recovered after %d failed attempts", self.failures)
        self.failures, self.last_cause = 0, ""


class EventRunner:
    """The jobs of one event: its poll, its outbox, its IDLE watcher."""

    def __init__(self, service: Service, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.id = settings.event.id
        self.poll_backoff = Backoff(settings.poll_interval, settings.max_backoff)
        self.outbox_backoff = Backoff(settings.outbox_interval, settings.max_backoff)
        self.digest_backoff = Backoff(60.0, settings.max_backoff)
        self.state = ServiceState(settings.poll_interval)
        self.sqlite_lock: PollerLock | None = None
        # Set by trigger(): APScheduler drops a run asked for while the job is still
        # running (max_instances=1), so the job itself runs again when it ends.
        self.wanted = {"poll": threading.Event(), "outbox": threading.Event()}

    @property
    def stopping(self) -> threading.Event:
        return self.service.stopping

    def poll_job(self) -> None:
        self.wanted["poll"].clear()
        imap = self.settings.imap
        started = time.monotonic()
        # On SQLite the service holds the lock for its lifetime; on PostgreSQL each turn takes it.
        lock = (
            contextlib.nullcontext()
            if self.sqlite_lock
            else PollerLock(self.service.engine, imap.mailbox_key, imap.folder)
        )
        try:
            with lock as held:
                if isinstance(held, PollerLock) and not held.held:
                    log.debug(
                        "another replica is polling %s/%s; skipping this turn", imap.mailbox_key, imap.folder
                    )
                    return
                report = poll_once(
                    self.settings, self.service.sessions, self.service.store, should_stop=self.stopping.is_set
                )
        except (MailboxError, StoreError, ExamineError) as exc:
            self._poll_failed(f"{self.id}: poll failed: {exc}")
            return
        except SQLAlchemyError as exc:
            self._poll_failed(f"{self.id}: poll failed: database error: {_first_line(exc)}")
            return
        self.poll_backoff.succeeded()
        self.state.poll_succeeded(time.monotonic() - started)
        if report.recorded or report.left_behind:
            log.info("%s: poll done: %s", self.id, report.summary())
        else:
            log.debug("%s: poll done: %s", self.id, report.summary())
        self.trigger("outbox")
        if self.wanted["poll"].is_set():  # mail arrived while this poll ran (IDLE said so)
            self.trigger("poll")

    def _poll_failed(self, cause: str) -> None:
        self.state.poll_failed(cause)
        self._retry("poll", self.poll_backoff.failed(cause))

    def outbox_job(self) -> None:
        self.wanted["outbox"].clear()
        try:
            delivery = deliver(self.settings, self.service.sessions)
        except MailboxError as exc:
            self._outbox_failed(f"{self.id}: copying replies to Sent failed: {exc}")
            return
        except SQLAlchemyError as exc:
            self._outbox_failed(f"{self.id}: outbox: database error: {_first_line(exc)}")
            return
        self.outbox_backoff.succeeded()
        if delivery.unreachable:
            # The replies wait, due at once; the next run (outbox_interval) tries again.
            self.state.delivery_failed(f"the SMTP server is unreachable: {delivery.unreachable}")
        else:
            self.state.delivery_succeeded()
        if self.wanted["outbox"].is_set():  # a poll queued replies while this run delivered
            self.trigger("outbox")

    def _outbox_failed(self, cause: str) -> None:
        self.state.delivery_failed(cause)
        self._retry("outbox", self.outbox_backoff.failed(cause))

    def digest_job(self, slot: str | None = None) -> None:
        """Send the day's digest (`slot`: the event's local date, given when trying again)."""
        from intake.digest import DigestOutcome, send_digest

        now = datetime.now(UTC)
        zone = self.settings.event.timezone
        slot = slot or now.astimezone(zone).date().isoformat()
        try:
            outcome = send_digest(self.service.sessions, self.settings, now, slot=slot)
        except SQLAlchemyError as exc:
            error = f"was not sent: database error: {_first_line(exc)}"
            outcome = DigestOutcome(False, error, failed=True, retry=True)
        said = f"{self.id}: the daily digest of {slot} {outcome.why}"
        if outcome.sent:
            self.digest_backoff.succeeded()
            log.info("%s", said)
            return
        if outcome.retry:
            delay = self.digest_backoff.failed(said)
        elif outcome.recheck_after is not None:
            delay = outcome.recheck_after
            log.info("%s; looking again in %.0f s", said, delay)
        else:
            (log.error if outcome.failed else log.info)("%s", said)
            return
        again = datetime.now(UTC) + timedelta(seconds=delay)
        if again.astimezone(zone).date().isoformat() != slot:
            log.error("%s: the day is over; `intake digest --send` sends it by hand", said)
            return
        if not self.stopping.is_set():
            with contextlib.suppress(Exception):  # the scheduler is shutting down
                self._digest_once(again, slot)

    def _digest_once(self, when: datetime, slot: str) -> None:
        """The digest of `slot` once more, at `when` (a retry, or a day's digest caught up)."""
        self.service.scheduler.add_job(
            self.service.jobs.guard(self.digest_job),
            "date",
            run_date=when,
            args=[slot],
            id=self.job_id("digest-again"),
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _schedule_digest(self) -> None:
        event = self.settings.event
        if not event.digest_to:
            log.info("%s: no daily digest ([event] digest_to is empty)", self.id)
            return
        self.service.scheduler.add_job(
            self.service.jobs.guard(self.digest_job),
            CronTrigger(
                hour=event.digest_at.hour,
                minute=event.digest_at.minute,
                second=event.digest_at.second,
                timezone=event.timezone,
            ),
            id=self.job_id("digest"),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,  # the scheduler was busy or the machine asleep: still that day
        )
        at = event.digest_at.isoformat("seconds" if event.digest_at.second else "minutes")
        log.info(
            "%s: the daily digest goes to %s at %s %s",
            self.id,
            ", ".join(event.digest_to),
            at,
            event.timezone.key,
        )
        self._catch_up_digest(at)

    def _catch_up_digest(self, at: str) -> None:
        """Started after today's `digest_at` without today's digest sent (the service was down or
        restarting at that minute): send it now rather than skip the day."""
        from intake.digest import sent_on

        event = self.settings.event
        local = datetime.now(event.timezone)
        if local.time() < event.digest_at:
            return
        slot = local.date().isoformat()
        try:
            if sent_on(self.service.sessions, event.id, slot):
                return
        except SQLAlchemyError:
            pass  # the job itself says what the database answered, and tries again
        log.info("%s: %s's daily digest was due at %s and is not sent yet: sending it now", self.id, slot, at)
        self._digest_once(datetime.now(UTC), slot)

    def job_id(self, job: str) -> str:
        return f"{job}:{self.id}"

    def trigger(self, job: str) -> None:
        """Run a job now (from any thread); if it is running, it runs again when it ends."""
        self.wanted[job].set()
        if not self.stopping.is_set():
            with contextlib.suppress(Exception):  # the scheduler is shutting down
                self.service.scheduler.modify_job(self.job_id(job), next_run_time=datetime.now(UTC))

    def _retry(self, job: str, delay: float) -> None:
        if not self.stopping.is_set():
            with contextlib.suppress(Exception):  # the scheduler is shutting down
                self.service.scheduler.modify_job(
                    self.job_id(job), next_run_time=datetime.now(UTC) + timedelta(seconds=delay)
                )

    def idle_watcher(self) -> None:
        """Keep an IMAP IDLE open on the folder; poll at once when mail arrives."""
        backoff = Backoff(5.0, self.settings.max_backoff)
        while not self.stopping.is_set():
            try:
                self._idle_once()
                backoff.succeeded()
            except (MailboxError, IMAPClientError, OSError, EOFError) as exc:
                delay = backoff.failed(
                    f"{self.id}: IMAP IDLE: {exc}; instant pickup resumes when the server is back"
                )
                self.stopping.wait(min(delay, self.settings.poll_interval))

    def _idle_once(self) -> None:
        imap = self.settings.imap
        with Mailbox(imap) as mailbox:
            mailbox.select(imap.folder)
            client = mailbox.client
            if not client.has_capability("IDLE"):
                log.warning(
                    "the IMAP server does not offer IDLE; polling every %s s only",
                    self.settings.poll_interval,
                )
                self.stopping.wait()
                return
            first = True
            while not self.stopping.is_set():
                renew_at = time.monotonic() + IDLE_RENEW.total_seconds()
                client.idle()
                if first:
                    # Mail that came between the last poll and this IDLE (at start, or
                    # while the connection was down) gets no EXISTS: poll once now.
                    first = False
                    self.trigger("poll")
                arrived = False
                try:
                    while not self.stopping.is_set() and time.monotonic() < renew_at:
                        responses = client.idle_check(timeout=IDLE_CHECK)
                        if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                            arrived = True
                            break
                finally:
                    # What arrives just before IDLE ends comes with idle_done's answer.
                    done = client.idle_done()
                if arrived or any(len(r) > 1 and r[1] == b"EXISTS" for r in (done[1] or [])):
                    self.trigger("poll")
                client.noop()  # a dead connection shows itself here, not in 29 minutes

    def start(self, now: datetime) -> None:
        imap = self.settings.imap
        if self.service.engine.dialect.name == "sqlite":
            lock = PollerLock(self.service.engine, imap.mailbox_key, imap.folder)
            if not lock.acquire():
                raise ServiceRefused(
                    f"{lock.holder()} is already polling {imap.mailbox_key}/{imap.folder} with this "
                    "SQLite database; run one `intake run` per SQLite database (use PostgreSQL for replicas)"
                )
            self.sqlite_lock = lock
        scheduler = self.service.scheduler
        every = self.settings.poll_interval
        scheduler.add_job(
            self.service.jobs.guard(self.poll_job),
            "interval",
            seconds=every,
            id=self.job_id("poll"),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=every,
            next_run_time=now,
        )
        every = self.settings.outbox_interval
        scheduler.add_job(
            self.service.jobs.guard(self.outbox_job),
            "interval",
            seconds=every,
            id=self.job_id("outbox"),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=every,
            next_run_time=now,
        )
        self._schedule_digest()
        if imap.idle:
            threading.Thread(target=self.idle_watcher, name=f"imap-idle-{self.id}", daemon=True).start()
        log.info(
            "intake running for event %s: polling %s/%s every %s s%s",
            self.id,
            imap.mailbox_key,
            imap.folder,
            self.settings.poll_interval,
            " with IDLE" if imap.idle else "",
        )

    def release(self) -> None:
        if self.sqlite_lock is not None:
            self.sqlite_lock.release()


class Service:
    """One process running every configured event on one database."""

    def __init__(self, deployment: list[Settings]) -> None:
        first = deployment[0]
        self.settings = first
        self.engine = db.make_engine(first.database_url)
        self.sessions = db.make_sessionmaker(self.engine)
        self.store = BlobStore(first.data_dir)
        self.stopping = threading.Event()
        self.jobs = JobsInHand(self.stopping)
        self.scheduler = BlockingScheduler(timezone=UTC)
        self._stopper: threading.Thread | None = None
        self.events = [EventRunner(self, settings) for settings in deployment]

    def run(self) -> int:
        now = datetime.now(UTC)
        stop_http = None
        try:
            for runner in self.events:
                runner.start(now)
            if self.settings.metrics_port:
                stop_http = serve(
                    self.settings.metrics_host,
                    self.settings.metrics_port,
                    self.sessions,
                    [(r.id, r.state) for r in self.events],
                )
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            self.scheduler.start()  # returns once a signal has stopped it
            if self._stopper is not None:
                self._stopper.join()
            self.jobs.wait()  # the message in hand is finished
        finally:
            if stop_http is not None:
                stop_http()
            for runner in self.events:
                runner.release()
            self.engine.dispose()
        log.info("intake stopped")
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: finishing the message in hand, then stopping", signal.Signals(signum).name)
        self.jobs.stop()
        # Not shutdown(wait=True), and not from here: the handler runs in the scheduler's
        # own thread, perhaps inside its job-store lock. A thread of its own shuts it down
        # once that lock is free, without waiting for the jobs (JobsInHand); run() waits
        # for them after the scheduler's loop has ended.
        if self._stopper is None:
            self._stopper = threading.Thread(
                target=self.scheduler.shutdown, kwargs={"wait": False}, name="intake-stop", daemon=True
            )
            self._stopper.start()


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", exc)).strip().splitlines() or [type(exc).__name__])[0]


def run_service(deployment: list[Settings]) -> int:
    return Service(deployment).run()

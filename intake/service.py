"""`intake run`: the long-running service, scheduled with APScheduler 3.

The poll job runs every `service.poll_interval` seconds, never two at once
(max_instances=1, coalesce=True, misfire grace = the interval). A failure of
the outside world (IMAP, database) is logged once per run with its cause and
the next run tries again; the service itself does not exit. SIGTERM/SIGINT:
the message in hand is finished, then the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import SQLAlchemyError

from intake import db
from intake.config import Settings
from intake.mailbox import MailboxError
from intake.poll import deliver_and_copy, poll_once
from intake.store import BlobStore

log = logging.getLogger(__name__)


def run_service(settings: Settings) -> int:
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    store = BlobStore(settings.data_dir)
    stopping = threading.Event()
    interval = settings.poll_interval

    def poll_job() -> None:
        try:
            report = poll_once(settings, sessions, store, should_stop=stopping.is_set)
        except MailboxError as exc:
            log.error("poll failed: %s; trying again in %s s", exc, interval)
        except SQLAlchemyError as exc:
            log.error(
                "poll failed: database error: %s; trying again in %s s",
                str(getattr(exc, "orig", exc)).splitlines()[0],
                interval,
            )
        else:
            log.info("poll done: %s", report.summary())
        try:
            deliver_and_copy(settings, sessions)
        except MailboxError as exc:
            log.error("copying replies to the Sent folder failed: %s", exc)
        except SQLAlchemyError as exc:
            log.error("outbox: database error: %s", str(getattr(exc, "orig", exc)).splitlines()[0])

    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        poll_job,
        "interval",
        seconds=interval,
        id="poll",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=interval,
        next_run_time=datetime.now(UTC),
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: finishing the message in hand, then stopping", signal.Signals(signum).name)
        stopping.set()
        # Waits for the running poll, which stops after the message in hand.
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "intake running for event %s: polling %s/%s every %s s",
        settings.event.id,
        settings.imap.mailbox_key,
        settings.imap.folder,
        interval,
    )
    scheduler.start()
    engine.dispose()
    log.info("intake stopped")
    return 0

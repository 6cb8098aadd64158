"""One poll, stage by stage, as ../shared/DESIGN.md draws it:

    fetch    a bounded batch of new mail          (intake.mailbox)   Mailbox  -> Batch
    examine  parse, screen, judge: pure           (intake.examine)   Batch    -> list[Examined]
    record   the batch in one transaction         (intake.record)    Examined -> list[Recorded]
    file     move each to Intake/<Status>         (intake.mailbox)   Recorded -> folders
    deliver  send the replies, copy them to Sent  (intake.replies)   the outbox

The order is what makes a crash harmless at any point: the bytes reach the
blob store and are synced before the transaction that names them commits;
only committed messages are filed. A message still in the inbox that is
already recorded (a crash between record and file) is only filed; one that is
not recorded is fetched again. Examining runs in worker processes while the
poller records the previous batch (intake.examine); results come back, and
are recorded, in UID order.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.config import EventSettings, Settings
from intake.domain import folder_for
from intake.examine import Examination, Examined, Examiner, examine
from intake.mailbox import Mailbox, RawMessage, batches
from intake.models import InboundMessage, utcnow
from intake.record import Place, Recorded, enter_folder, record_batch, recorded_uids
from intake.replies.outbox import DeliveryReport, copy_replies_to_sent, deliver_pending
from intake.store import BlobStore

log = logging.getLogger(__name__)

STAGES = ("fetch", "examine", "record", "file", "deliver", "copy")  # copy: replies to Sent


@dataclass
class PollReport:
    recorded: Counter[str] = field(default_factory=Counter)
    filed: int = 0
    left_behind: int = 0
    skipped: int = 0  # UIDs the server did not return; tried again next run
    examined_here: int = 0  # messages the poller examined itself (the rest: in worker processes)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.recorded.items())) or "nothing new"
        extra = f"; {self.left_behind} left behind by an earlier run filed" if self.left_behind else ""
        return f"recorded {sum(self.recorded.values())} ({counts}); filed {self.filed}{extra}"

    def stages(self) -> str:
        """Where the poll's time went, e.g. "fetch 0.31 s, examine 2.10 s, ..." (bench/ reads it),
        and how many messages the poller examined itself."""
        timed = ", ".join(f"{name} {self.seconds[name]:.2f} s" for name in STAGES if name in self.seconds)
        return f"{timed}; {self.examined_here} examined in the poller" if self.examined_here else timed

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class Batch:
    """What one fetch hands on: messages of one folder, in UID order."""

    place: Place
    messages: tuple[RawMessage, ...]


def poll_once(
    settings: Settings,
    sessions: sessionmaker[Session],
    store: BlobStore,
    should_stop: Callable[[], bool] = lambda: False,
    between: Callable[[Mailbox, PollReport], object] | None = None,
) -> PollReport:
    """fetch → examine → record → file, batch after batch, until the inbox holds nothing new.
    `between` runs after each batch but the last is filed, while the workers examine the next
    one (`intake poll --once` delivers the replies already queued there: the poller would
    otherwise wait for the workers). Raises MailboxError when the server fails us; whatever
    was committed before that stays committed and is completed next run."""
    report = PollReport()
    imap = settings.imap
    with (
        Examiner(
            settings.event, imap.max_message_bytes, settings.workers, data_dir=settings.data_dir
        ) as examiner,
        Mailbox(imap) as mailbox,
    ):
        in_flight: tuple[Batch, Examination] | None = None
        for batch in fetch(settings, sessions, mailbox, report, examiner.expect):
            examination = examiner.submit(batch.messages)  # the workers start on this batch...
            if in_flight is not None:  # ...while the poller records the previous one
                keep(settings, sessions, store, mailbox, *in_flight, report)
                in_flight = None  # recorded: its messages and results are not held meanwhile
                if between is not None:
                    between(mailbox, report)
            in_flight = (batch, examination)
            if should_stop():
                break
        if in_flight is not None:
            keep(settings, sessions, store, mailbox, *in_flight, report)
    return report


def keep(
    settings: Settings,
    sessions: sessionmaker[Session],
    store: BlobStore,
    mailbox: Mailbox,
    batch: Batch,
    examination: Examination,
    report: PollReport,
) -> None:
    """The stages after the fetch, for one batch: its examination's results recorded, then filed."""
    with report.timing("examine"):
        examined = examination.results()
    report.examined_here += len(examined) if not examination.in_workers else examination.stolen
    with report.timing("record"):
        recorded = record(sessions, store, batch.place, examined, settings)
    for outcome in recorded:
        if outcome.new:
            report.recorded[outcome.status] += 1
            log.debug("recorded UID %s as #%s: %s", outcome.uid, outcome.id, outcome.status)
    with report.timing("file"):
        file(settings, sessions, mailbox, recorded)
    report.filed += len(recorded) if settings.imap.file_messages else 0


# --- fetch ---------------------------------------------------------------------------------------
def fetch(
    settings: Settings,
    sessions: sessionmaker[Session],
    mailbox: Mailbox,
    report: PollReport,
    expect: Callable[[int], object] = lambda count: None,
) -> Iterator[Batch]:
    """The new messages of the folder, in bounded batches (count and bytes); what an earlier
    run recorded but did not file is filed first. `expect` is told how many new messages
    there are before the first is fetched (the workers start up meanwhile)."""
    imap = settings.imap
    with report.timing("fetch"):
        uidvalidity = mailbox.select(imap.folder)
        _, previous = enter_folder(sessions, imap.mailbox_key, imap.folder, uidvalidity)
        if previous is not None:
            log.warning(
                "folder %s: UIDVALIDITY changed from %s to %s; every message is checked again "
                "against what is recorded (by Message-ID and content)",
                imap.folder,
                previous,
                uidvalidity,
            )
        place = Place(settings.event.id, imap.mailbox_key, imap.folder, uidvalidity)
        uids = mailbox.uids()
        with sessions() as session:
            known = recorded_uids(session, place, uids)
            _confirm_filed(
                session,
                place,
                set(uids),
                lambda status: mailbox.folder_name(*folder_for(settings.imap.filing_root, status)),
            )
    if known:
        with report.timing("file"):
            file(
                settings, sessions, mailbox, [Recorded(uid, i, s, new=False) for uid, (i, s) in known.items()]
            )
        report.left_behind += len(known) if imap.file_messages else 0
    new = [uid for uid in uids if uid not in known]
    if not new:
        return
    expect(len(new))
    with report.timing("fetch"):
        sizes = mailbox.sizes(new)
    limit = imap.max_message_bytes
    for uids_of_batch in batches(new, sizes, imap.batch_messages, imap.batch_bytes):
        with report.timing("fetch"):
            small = [uid for uid in uids_of_batch if sizes.get(uid, 0) <= limit]
            large = [uid for uid in uids_of_batch if sizes.get(uid, 0) > limit]
            fetched = list(mailbox.fetch(small)) + list(mailbox.fetch(large, headers_only=True))
        report.skipped += len(uids_of_batch) - len(fetched)
        if fetched:
            yield Batch(place, tuple(sorted(fetched, key=lambda m: m.uid)))


# --- record --------------------------------------------------------------------------------------
def record(
    sessions: sessionmaker[Session],
    store: BlobStore,
    place: Place,
    examined: list[Examined],
    settings: Settings,
) -> list[Recorded]:
    """The batch's rows, in one transaction (intake.record)."""
    return record_batch(sessions, store, place, examined, settings.event)


def record_message(
    sessions: sessionmaker[Session],
    store: BlobStore,
    place: Place,
    message: RawMessage,
    event: EventSettings,
    max_message_bytes: int,
) -> Recorded:
    """One message examined in the poller and recorded alone: the whole path for one message."""
    examined = examine(message, event, max_message_bytes)
    return record_batch(sessions, store, place, [examined], event)[0]


# --- file ----------------------------------------------------------------------------------------
def file(
    settings: Settings, sessions: sessionmaker[Session], mailbox: Mailbox, recorded: list[Recorded]
) -> None:
    """Move recorded messages to the folders of their outcome: one MOVE per folder, then
    one UPDATE per folder noting where each went."""
    if not settings.imap.file_messages or not recorded:
        return
    by_folder: dict[str, list[Recorded]] = {}
    for outcome in recorded:
        by_folder.setdefault(
            mailbox.folder_name(*folder_for(settings.imap.filing_root, outcome.status)), []
        ).append(outcome)
    for folder, items in by_folder.items():
        mailbox.file([item.uid for item in items], folder)
        with sessions.begin() as session:
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_([item.id for item in items]))
                .values(filed_folder=folder, filed_at=utcnow())
            )


def _confirm_filed(
    session: Session, place: Place, present: set[int], folder_of: Callable[[str], str]
) -> None:
    """A recorded message that left the inbox without its filing being noted
    (a kill right after the MOVE) was filed: note where, now."""
    rows = session.execute(
        select(InboundMessage.id, InboundMessage.uid, InboundMessage.status).where(
            InboundMessage.mailbox == place.mailbox,
            InboundMessage.folder == place.folder,
            InboundMessage.uidvalidity == place.uidvalidity,
            InboundMessage.filed_at.is_(None),
        )
    ).all()
    for row_id, uid, status in rows:
        if uid not in present:
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == row_id)
                .values(filed_folder=folder_of(status), filed_at=utcnow())
            )
    session.commit()


# --- deliver -------------------------------------------------------------------------------------
def deliver(
    settings: Settings,
    sessions: sessionmaker[Session],
    report: PollReport | None = None,
    mailbox: Mailbox | None = None,
) -> DeliveryReport:
    """Send what the outbox holds; then copy what was sent to the Sent folder (over `mailbox`
    when the caller has one open, else over a session of its own)."""
    report = report or PollReport()
    with report.timing("deliver"):
        delivery = deliver_pending(
            sessions, settings, worker=f"{socket.gethostname()}:{os.getpid()}", limit=100_000
        )
        if delivery.sent or delivery.retried or delivery.failed:
            log.info(
                "outbox: %s sent, %s to retry, %s failed", delivery.sent, delivery.retried, delivery.failed
            )
        if delivery.retried:
            log.warning("outbox: %s replies could not be sent yet and will be retried", delivery.retried)
    with report.timing("copy"):
        copied = copy_replies_to_sent(settings, sessions, mailbox)
        if copied:
            log.info("copied %s replies to %s", copied, settings.imap.sent_folder)
    return delivery

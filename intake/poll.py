"""One poll cycle: read the mailbox, record each new message, file it away.

The order of the steps is what makes a crash harmless at any point:
  1. the raw bytes go to the blob store;
  2. one transaction records the message (intake.record);
  3. only then is the message moved to the folder of its outcome.
A message still in the inbox that is already recorded (a crash between 2 and
3) is only filed; one that is not recorded is fetched again.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from intake.config import Settings
from intake.domain import ReplyStatus, folder_for
from intake.mailbox import Mailbox, batches
from intake.models import InboundMessage, Reply, utcnow
from intake.outbox import DeliveryReport, deliver_pending
from intake.record import Place, enter_folder, record_message, recorded_uids
from intake.store import BlobStore

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    recorded: Counter[str] = field(default_factory=Counter)
    filed: int = 0
    left_behind: int = 0
    skipped: int = 0  # UIDs the server did not return; tried again next run

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.recorded.items())) or "nothing new"
        extra = f"; {self.left_behind} left behind by an earlier run filed" if self.left_behind else ""
        return f"recorded {sum(self.recorded.values())} ({counts}); filed {self.filed}{extra}"


def poll_once(
    settings: Settings,
    sessions: sessionmaker[Session],
    store: BlobStore,
    should_stop: Callable[[], bool] = lambda: False,
) -> PollReport:
    """Run one full cycle. Raises MailboxError when the server fails us; whatever
    was committed before that stays committed and is completed next run."""
    imap = settings.imap
    report = PollReport()
    with Mailbox(imap) as mailbox:
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
                lambda status: mailbox.folder_name(*folder_for(imap.filing_root, status)),
            )
        if imap.file_messages and known:
            _file(
                settings,
                sessions,
                mailbox,
                [(uid, row_id, status) for uid, (row_id, status) in known.items()],
            )
            report.left_behind += len(known)
        new = [uid for uid in uids if uid not in known]
        if not new:
            return report
        sizes = mailbox.sizes(new)
        limit = imap.max_message_bytes
        for batch in batches(new, sizes, imap.batch_messages, imap.batch_bytes):
            small = [uid for uid in batch if sizes.get(uid, 0) <= limit]
            large = [uid for uid in batch if sizes.get(uid, 0) > limit]
            fetched = list(mailbox.fetch(small)) + list(mailbox.fetch(large, headers_only=True))
            report.skipped += len(batch) - len(fetched)
            recorded: list[tuple[int, int, str]] = []
            try:
                for message in sorted(fetched, key=lambda m: m.uid):
                    if should_stop():
                        return report
                    outcome = record_message(sessions, store, place, message, settings.event, limit)
                    recorded.append((message.uid, outcome.id, outcome.status))
                    if outcome.new:
                        report.recorded[outcome.status] += 1
                        log.info("recorded UID %s as #%s: %s", message.uid, outcome.id, outcome.status)
            finally:
                # Filing follows the commits, a batch at a time: one MOVE per folder
                # costs far less than one per message in a full inbox.
                if imap.file_messages and recorded:
                    _file(settings, sessions, mailbox, recorded)
                    report.filed += len(recorded)
    return report


def _file(
    settings: Settings,
    sessions: sessionmaker[Session],
    mailbox: Mailbox,
    recorded: list[tuple[int, int, str]],
) -> None:
    """Move recorded messages (uid, row id, status) to the folders of their outcome."""
    by_folder: dict[str, list[tuple[int, int]]] = {}
    for uid, row_id, status in recorded:
        by_folder.setdefault(mailbox.folder_name(*folder_for(settings.imap.filing_root, status)), []).append(
            (uid, row_id)
        )
    for folder, items in by_folder.items():
        mailbox.file([uid for uid, _ in items], folder)
        with sessions.begin() as session:
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_([row_id for _, row_id in items]))
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


def copy_replies_to_sent(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """Append a copy of each reply sent to the mailbox's Sent folder, so the
    secretariat sees it in their mail client. Returns how many were copied."""
    folder_name = settings.imap.sent_folder
    if not folder_name:
        return 0
    with sessions() as session:
        due = session.execute(
            select(Reply.id, Reply.raw, Reply.sent_at)
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
    with Mailbox(settings.imap) as mailbox:
        for reply_id, raw, sent_at in due:
            if raw is None:  # excluded by the query; says so to the type checker
                continue
            mailbox.append(folder_name, raw, sent_at or utcnow())
            with sessions.begin() as session:
                session.execute(update(Reply).where(Reply.id == reply_id).values(sent_copy_at=utcnow()))
    return len(due)


def deliver_and_copy(settings: Settings, sessions: sessionmaker[Session]) -> DeliveryReport:
    """Send what the outbox holds; then copy what was sent to the Sent folder."""
    delivery = deliver_pending(
        sessions, settings, worker=f"{socket.gethostname()}:{os.getpid()}", limit=100_000
    )
    if delivery.sent or delivery.retried or delivery.failed:
        log.info("outbox: %s sent, %s to retry, %s failed", delivery.sent, delivery.retried, delivery.failed)
    if delivery.retried:
        log.warning("outbox: %s replies could not be sent yet and will be retried", delivery.retried)
    copied = copy_replies_to_sent(settings, sessions)
    if copied:
        log.info("copied %s replies to %s", copied, settings.imap.sent_folder)
    return delivery

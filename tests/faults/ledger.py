"""What the fault tests put in, and the invariant they check after each fault.

The invariant (issue 7):
- every message appended is recorded exactly once, with its raw bytes in the
  blob store, and nothing was deleted from the mailbox;
- every reply that is due was delivered to the SMTP sink exactly once, except
  in the documented window (outbox.py): a kill or an outage between the
  server's 250 and the commit that marks the reply sent. Those are detected at
  the moment of the fault (the reply is `sending` and the sink already holds
  it) and counted apart; each of them must then arrive exactly twice;
- the database is consistent: no document, finding or reply without its
  message, no document number twice (and none skipped), and each folder's
  `mailbox_state.last_uid` no higher than the highest UID recorded there.

The mailbox is compared by content: a cache of (folder, UIDVALIDITY, UID) ->
sha256 makes each check fetch only what is new since the last one.
"""

from __future__ import annotations

import email
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from imapclient.exceptions import IMAPClientError
from sqlalchemy import Engine, create_engine, func, select, text, update

from intake import db
from intake.domain import ReplyStatus
from intake.models import Document, DocumentCounter, InboundMessage, MailboxState, Reply, utcnow
from intake.store import BlobStore
from tests.faults.corpus import OUTCOME, Mail, event
from tests.support.dovecot import Dovecot
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import Received, SmtpSink

LEDGER_APP = "intake-fault-ledger"
OTHER_SESSIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> :me
"""
MESSAGE_COLUMNS = (
    InboundMessage.id,
    InboundMessage.sha256,
    InboundMessage.status,
    InboundMessage.message_id,
    InboundMessage.filed_folder,
    InboundMessage.mailbox,
    InboundMessage.folder,
    InboundMessage.uidvalidity,
    InboundMessage.uid,
)
REPLY_COLUMNS = (
    Reply.message_id,
    Reply.kind,
    Reply.status,
    Reply.rfc_message_id,
    Reply.recipient,
    Reply.sent_copy_at,
)
ORPHANS = {
    "document": "SELECT count(*) FROM document d "
    "LEFT JOIN inbound_message m ON m.id = d.message_id WHERE m.id IS NULL",
    "finding": "SELECT count(*) FROM finding f "
    "LEFT JOIN inbound_message m ON m.id = f.message_id WHERE m.id IS NULL",
    "finding of a document": "SELECT count(*) FROM finding f "
    "LEFT JOIN document d ON d.id = f.document_id WHERE f.document_id IS NOT NULL AND d.id IS NULL",
    "reply": "SELECT count(*) FROM reply r "
    "LEFT JOIN inbound_message m ON m.id = r.message_id WHERE r.message_id IS NOT NULL AND m.id IS NULL",
}
STALE_CLAIM = timedelta(seconds=5)  # far longer than one SMTP transaction to the local sink
REPLY_KINDS = {
    "accepted": "acknowledgement",
    "rejected": "rejection",
    "late": "late_notice",
    "correspondence": "correspondence_notice",
}
SENT_FOLDER = "Sent"


@dataclass
class Tally:
    """What the faults did, for the report at the end of a test."""

    faults: int = 0  # kills, cuts or outages that hit a running process
    missed: int = 0  # the process had finished before the fault could land
    # Replies the server had accepted but that were not recorded as sent when a
    # fault hit: the documented window. Each may arrive twice, and no other may.
    window: set[str] = field(default_factory=set)
    window_duplicates: int = 0  # of those, how many did arrive twice
    sent_copy_duplicates: int = 0  # a reply appended to Sent twice (kill between APPEND and commit)
    copied_twice: int = 0  # a second copy in an Intake folder (COPY cut after the server did it)

    def line(self) -> str:
        return (
            f"{self.faults} faults landed, {self.missed} missed; "
            f"{len(self.window)} replies caught between the SMTP 250 and its commit, "
            f"{self.window_duplicates} of them delivered twice; "
            f"{self.sent_copy_duplicates} duplicate copies in Sent"
            + (f"; {self.copied_twice} messages copied twice into their folder" if self.copied_twice else "")
        )


def reader_engine(url: str) -> Engine:
    """The test's own connection to the service's database, named so it can tell itself apart."""
    if url.startswith("sqlite"):
        return db.make_engine(url)
    return create_engine(
        db.normalise_url(url), pool_pre_ping=True, connect_args={"application_name": LEDGER_APP}
    )


class Ledger:
    """The mail appended so far, the servers, and the checks."""

    def __init__(self, dovecot: Dovecot, env: IntakeEnv, sink: SmtpSink) -> None:
        self.dovecot = dovecot
        self.env = env
        self.sink = sink
        self.mail: list[Mail] = []
        self.tally = Tally()
        self.engine: Engine = reader_engine(env.database_url)
        self.store = BlobStore(env.data_dir)
        self._seen: dict[tuple[str, int, int], str] = {}  # (folder, uidvalidity, uid) -> sha256 or Message-ID

    def close(self) -> None:
        self.engine.dispose()

    # --- feeding ----------------------------------------------------------------------
    def append(self, batch: list[Mail]) -> None:
        self.dovecot.append_many("INBOX", [(m.raw, m.received_at) for m in batch])
        self.mail += batch

    @property
    def replies_owed(self) -> int:
        return sum(m.owes_reply for m in self.mail)

    # --- progress, read while the service runs ----------------------------------------
    def recorded(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(InboundMessage)).scalar_one())

    def delivered(self) -> int:
        return len(self.sink.received())

    def complete(self) -> bool:
        """Everything recorded and every owed reply sent (the service is done)."""
        with self.engine.connect() as conn:
            recorded = conn.execute(select(func.count()).select_from(InboundMessage)).scalar_one()
            unsent = conn.execute(
                select(func.count())
                .select_from(Reply)
                .where(Reply.status.in_([ReplyStatus.PENDING, ReplyStatus.SENDING]))
            ).scalar_one()
            uncopied = conn.execute(
                select(func.count())
                .select_from(Reply)
                .where(Reply.status == ReplyStatus.SENT, Reply.sent_copy_at.is_(None))
            ).scalar_one()
            unfiled = conn.execute(
                select(func.count()).select_from(InboundMessage).where(InboundMessage.filed_at.is_(None))
            ).scalar_one()
        return recorded == len(self.mail) and not unsent and not uncopied and not unfiled

    def settle(self) -> bool:
        """`complete()`, for a live service: first expire claims older than any one SMTP
        transaction can last (a fault left them behind; the outbox waits out a 10-minute
        lease for them), noting those whose reply had already arrived (the window)."""
        stale_before = utcnow() - STALE_CLAIM
        with self.engine.begin() as conn:
            stale = conn.execute(
                select(Reply.rfc_message_id).where(
                    Reply.status == ReplyStatus.SENDING, Reply.claimed_at < stale_before
                )
            ).all()
            if stale:
                in_sink = set(self.sink_ids())
                self.tally.window.update(mid for (mid,) in stale if mid in in_sink)
                conn.execute(
                    update(Reply)
                    .where(Reply.status == ReplyStatus.SENDING, Reply.claimed_at < stale_before)
                    .values(claimed_at=utcnow() - timedelta(hours=1))
                )
        return self.complete()

    # --- after a fault ------------------------------------------------------------------
    def note_fault(self, smtp: bool = True) -> None:
        """Call right after a fault hit (the sender dead, or the SMTP server gone): remember
        the replies the server accepted that are not recorded as sent. Those are the
        documented window (outbox.py): they will be sent once more. `smtp=False` for a
        fault that cannot touch delivery while a live service is still sending."""
        self.tally.faults += 1
        if not smtp:
            return
        in_sink = set(self.sink_ids())
        with self.engine.connect() as conn:
            unsent = conn.execute(select(Reply.rfc_message_id).where(Reply.status != ReplyStatus.SENT))
            self.tally.window.update(mid for (mid,) in unsent if mid in in_sink)

    def wait_for_sessions_to_end(self, timeout: float = 30) -> None:
        """PostgreSQL notices a dead client a moment later, and holds its locks (the
        poller's advisory lock) until then. Call only while no intake process runs."""
        if self.engine.dialect.name != "postgresql":
            return
        deadline = time.monotonic() + timeout
        with self.engine.connect() as conn:
            while time.monotonic() < deadline:
                left = conn.execute(text(OTHER_SESSIONS), {"me": LEDGER_APP}).scalar_one()
                conn.rollback()
                if not left:
                    return
                time.sleep(0.05)
        raise AssertionError("the PostgreSQL sessions of a dead intake process did not end")

    def let_time_pass(self, leases: bool = True) -> None:
        """As if an hour had passed: claims of dead senders expire, retry backoffs end.

        The outbox's lease is at least ten minutes and its first backoff about
        one; a test does not wait that long, it moves those times back instead.
        Leases only while no intake process runs: a live sender's claim is its own.
        """
        with self.engine.begin() as conn:
            if leases:
                conn.execute(
                    update(Reply)
                    .where(Reply.status == ReplyStatus.SENDING)
                    .values(claimed_at=utcnow() - timedelta(hours=1))
                )
            conn.execute(
                update(Reply)
                .where(Reply.status == ReplyStatus.PENDING, Reply.next_attempt_at.is_not(None))
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )

    # --- the mailbox ----------------------------------------------------------------------
    def mailbox(self) -> tuple[dict[str, Counter[str]], Counter[str]]:
        """Per folder, the sha256 of each message; and the Message-IDs in Sent."""
        folders: dict[str, Counter[str]] = {}
        sent: Counter[str] = Counter()
        with self.dovecot.client() as client:
            names = [
                name
                for flags, _, name in client.list_folders()
                if not {b"\\Noselect", b"\\NonExistent"} & set(flags)
            ]
            present: set[tuple[str, int, int]] = set()
            for name in names:
                try:
                    info = client.select_folder(name, readonly=True)
                except IMAPClientError as exc:
                    # A kill -9 of Dovecot in the middle of CREATE can leave a name that
                    # LIST shows without \Noselect and SELECT refuses: a folder that holds
                    # no mail (the next poll must create it and file; check() then sees that).
                    if "doesn't exist" not in str(exc):
                        raise
                    continue
                validity = int(info[b"UIDVALIDITY"])
                uids = sorted(client.search("ALL"))
                is_sent = name == SENT_FOLDER
                keys = [(name, validity, uid) for uid in uids]
                present.update(keys)
                new = [uid for uid, key in zip(uids, keys, strict=True) if key not in self._seen]
                for start in range(0, len(new), 200):
                    chunk = new[start : start + 200]
                    item = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]" if is_sent else b"BODY.PEEK[]"
                    for uid, data in client.fetch(chunk, [item]).items():
                        value = next(v for k, v in data.items() if k.startswith(b"BODY["))
                        if is_sent:
                            mid = email.message_from_bytes(value)["Message-ID"]
                            self._seen[(name, validity, uid)] = str(mid).strip()
                        else:
                            self._seen[(name, validity, uid)] = hashlib.sha256(value).hexdigest()
                counter = Counter(self._seen[key] for key in keys)
                if is_sent:
                    sent = counter
                else:
                    folders[name] = counter
            for gone in set(self._seen) - present:
                del self._seen[gone]
        return folders, sent

    def sink_ids(self) -> list[str]:
        ids = []
        for received in self.sink.received():
            mid = email.message_from_bytes(received.data)["Message-ID"]
            ids.append(str(mid).strip())
        return ids

    # --- the invariant --------------------------------------------------------------------
    def check(self, complete: bool = True, copied_twice: bool = False) -> None:
        """The invariant; with `complete`, also: all filed, all due replies delivered.
        `copied_twice`: filing by COPY (a server without MOVE) was cut after the
        server copied, or Dovecot was killed during a MOVE (on Maildir it copies, then
        expunges), so a message may also have a second copy in its Intake folder
        (docs/operators.md, "After an outage"); never elsewhere, never a third.

        Without `complete` it may run beside a live service. Rows only ever grow,
        so the reads go from what is written last to what is written first
        (mailbox state and counter, documents, messages, replies, the sink): an
        earlier read can only lag behind a later one, never run ahead of it.
        """
        folders, sent_copies = self.mailbox()
        appended = Counter(m.sha256 for m in self.mail)
        served: Counter[str] = Counter()
        for counter in folders.values():
            served.update(counter)
        if copied_twice:
            extra = served - appended
            self.tally.copied_twice = sum(extra.values())
            assert all(n == 1 for n in extra.values()), "a message copied more than twice"
            filed: Counter[str] = Counter()
            for name, counter in folders.items():
                if name.startswith("Intake/"):
                    filed.update(counter)
            assert not extra - filed, "a second copy outside the Intake folders"
            served -= extra
        # Nothing deleted, nothing altered, nothing made up.
        assert served == appended, _diff("mailbox", appended, served)

        with self.engine.connect() as conn:
            states = conn.execute(
                select(
                    MailboxState.mailbox, MailboxState.folder, MailboxState.uidvalidity, MailboxState.last_uid
                )
            ).all()
            last_number = conn.execute(
                select(DocumentCounter.last_value).where(DocumentCounter.event == event().id)
            ).scalar_one_or_none()
            docs = conn.execute(
                select(Document.number, Document.status, Document.role, Document.sha256)
            ).all()
            for what, query in ORPHANS.items():
                assert conn.execute(text(query)).scalar_one() == 0, f"a {what} without its message"
            rows = [dict(r._mapping) for r in conn.execute(select(*MESSAGE_COLUMNS))]
            replies = conn.execute(select(*REPLY_COLUMNS)).all()
        delivered = self.sink.received()

        recorded = Counter(r["sha256"] for r in rows)
        if complete:
            assert recorded == appended, _diff("recorded", appended, recorded)
            assert folders.get("INBOX", Counter()) == Counter(), "messages left in the INBOX"
            assert Counter(r["status"] for r in rows) == Counter(OUTCOME[m.kind][0] for m in self.mail)
        else:
            # Whatever is recorded is a message that is really there, at most once per copy.
            assert not recorded - appended, _diff("recorded", appended, recorded)
        keys = Counter((r["mailbox"], r["folder"], r["uidvalidity"], r["uid"]) for r in rows)
        assert not [k for k, n in keys.items() if n > 1], "a mailbox message recorded twice"
        ids = Counter(r["message_id"] for r in rows if r["status"] != "duplicate" and r["message_id"])
        assert not [k for k, n in ids.items() if n > 1], "a Message-ID recorded twice as an original"
        for r in rows:
            assert self.store.has(r["sha256"]), f"message #{r['id']} has no raw bytes"
            assert hashlib.sha256(self.store.get(r["sha256"])).hexdigest() == r["sha256"]
            if complete:
                assert r["filed_folder"] == f"Intake/{r['status'].capitalize()}", r

        # Document numbers: taken in the accepting transaction, so none twice, none skipped.
        numbers = [d.number for d in docs if d.number]
        assert len(numbers) == len(set(numbers)), "a document number given twice"
        assert set(numbers) == {f"JCA-MV-I-{v:03d}" for v in range(1, len(numbers) + 1)}, sorted(numbers)
        taken = last_number or 0
        assert taken == len(numbers) if complete else taken <= len(numbers), (taken, len(numbers))
        for d in docs:
            assert (d.number is not None) == (d.status == "accepted" and d.role == "document"), d
            assert self.store.has(d.sha256), "a document without its bytes"
        highest: dict[tuple[str, str, int], int] = {}
        for r in rows:
            key = (r["mailbox"], r["folder"], r["uidvalidity"])
            highest[key] = max(highest.get(key, 0), r["uid"])
        for mailbox, folder, validity, last_uid in states:
            assert last_uid <= highest.get((mailbox, folder, validity), 0), (folder, last_uid, highest)

        self._check_replies(rows, replies, delivered, sent_copies, complete)

    def _check_replies(
        self,
        rows: list[dict[str, Any]],
        replies: Sequence[Any],
        delivered: list[Received],
        sent_copies: Counter[str],
        complete: bool,
    ) -> None:
        by_message = Counter(r.message_id for r in replies)
        kinds = {r.message_id: r.kind for r in replies}
        for row in rows:
            owed = REPLY_KINDS.get(row["status"])
            assert by_message[row["id"]] == (1 if owed else 0), f"message #{row['id']} ({row['status']})"
            if owed:
                assert kinds[row["id"]] == owed
        known = {r.rfc_message_id: r for r in replies}
        copies_of: Counter[str] = Counter()
        for received in delivered:
            mid = str(email.message_from_bytes(received.data)["Message-ID"]).strip()
            assert mid in known, "the sink got mail that is no reply of ours"
            assert list(received.rcpt_tos) == [known[mid].recipient]
            copies_of[mid] += 1
        self.tally.window_duplicates = 0
        for reply in replies:
            copies = copies_of[reply.rfc_message_id]
            if reply.status == ReplyStatus.SUPPRESSED:
                assert copies == 0
            elif reply.status == ReplyStatus.SENT and reply.rfc_message_id in self.tally.window:
                assert copies in (1, 2), (reply.rfc_message_id, copies)  # the documented window
                self.tally.window_duplicates += copies == 2
            elif reply.status == ReplyStatus.SENT:
                assert copies == 1, (reply.rfc_message_id, copies)
            else:
                assert not complete, f"reply {reply.rfc_message_id} still {reply.status}"
                assert copies <= (2 if reply.rfc_message_id in self.tally.window else 1)
            if complete and reply.status == ReplyStatus.SENT:
                assert reply.sent_copy_at is not None and sent_copies[reply.rfc_message_id] >= 1
        self.tally.sent_copy_duplicates = sum(n - 1 for n in sent_copies.values() if n > 1)
        if complete:
            owed_replies = sum(1 for r in rows if r["status"] in REPLY_KINDS)
            assert owed_replies == self.replies_owed
            assert sum(1 for r in replies if r.status == ReplyStatus.SENT) == owed_replies


def _diff(what: str, expected: Counter[str], actual: Counter[str]) -> str:
    missing, extra = expected - actual, actual - expected
    return f"{what}: {sum(missing.values())} missing, {sum(extra.values())} extra"

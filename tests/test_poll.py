"""The poller end to end: real Dovecot, the real CLI, SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from intake import db
from intake.mailbox import Mailbox, RawMessage
from intake.pipeline import record_message
from intake.record import Place
from intake.store import BlobStore
from tests.support.corpus import mixed, small_docx
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv

pytestmark = pytest.mark.dovecot


@pytest.fixture
def intake_env(make_env: MakeEnv) -> IntakeEnv:
    return make_env()


def folder_contents(dovecot: Dovecot) -> dict[str, dict[int, bytes]]:
    """Every selectable folder and the messages in it."""
    with dovecot.client() as client:
        names = [
            name
            for flags, _, name in client.list_folders()
            if not {b"\\Noselect", b"\\NonExistent"} & set(flags)
        ]
    return {name: dovecot.fetch_all(name) for name in names}


def test_200_mixed_messages_are_recorded_once_and_filed(dovecot: Dovecot, intake_env: IntakeEnv) -> None:
    samples = mixed(200)
    uids = dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in samples])
    assert len(uids) == 200
    kinds = Counter(s.kind for s in samples)
    assert kinds["garbage"] >= 5 and kinds["duplicate"] >= 5 and kinds["non_ascii_name"] >= 50

    first = intake_env.run("poll", "--once", check=True)
    assert "Traceback" not in first.stderr

    entries = intake_env.log_json()
    assert len(entries) == 200
    by_uid = {e["uid"]: e for e in entries}
    assert sorted(by_uid) == sorted(uids)
    for uid, sample in zip(uids, samples, strict=True):
        entry = by_uid[uid]
        for key in ("id", "message_id", "sender", "subject", "received_at", "status", "documents"):
            assert key in entry
        assert entry["received_at"] == sample.received_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if sample.kind == "garbage":
            assert entry["status"] == "quarantined" and entry["error"]
        elif sample.kind == "duplicate":
            assert entry["status"] == "duplicate"
            original = by_uid[
                entry["duplicate_of"] and next(e["uid"] for e in entries if e["id"] == entry["duplicate_of"])
            ]
            assert original["message_id"] == sample.message_id
            assert original["status"] != "duplicate"
        else:
            assert entry["status"] not in ("duplicate", "quarantined")
            assert entry["message_id"] == sample.message_id
        if sample.filename:
            assert [d["filename"] for d in entry["documents"]] == [sample.filename]
            document = entry["documents"][0]
            assert document["sha256"] == hashlib.sha256(small_docx()).hexdigest()
            assert {"type", "status", "number", "findings"} <= set(document)

    # Each message was filed into the folder of its status; nothing is left, nothing deleted.
    contents = folder_contents(dovecot)
    assert contents["INBOX"] == {}
    filed = Counter({f: len(m) for f, m in contents.items() if f != "INBOX" and m})
    expected = Counter(f"Intake/{e['status'].capitalize()}" for e in entries)
    assert filed == expected
    assert all(e["filed_folder"] == f"Intake/{e['status'].capitalize()}" for e in entries)

    # The raw bytes are in the store, named by their hash, equal to what the server holds.
    store = BlobStore(intake_env.data_dir)
    served = {hashlib.sha256(raw).hexdigest() for msgs in contents.values() for raw in msgs.values()}
    for entry in entries:
        blob = store.get(entry["sha256"])
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"]
        assert entry["sha256"] in served

    # Filing never marked anything as read.
    with dovecot.client() as client:
        for folder in expected:
            client.select_folder(folder, readonly=True)
            flags = client.get_flags(client.search(["ALL"]))
            assert not any(b"\\Seen" in f for f in flags.values())

    second = intake_env.run("poll", "--once", check=True)
    assert "recorded 0 (nothing new)" in second.stderr
    assert len(intake_env.log_json()) == 200


def test_poll_twice_without_filing_records_nothing_new(dovecot: Dovecot, make_env: MakeEnv) -> None:
    env = make_env(imap_extra="file_messages = false")
    dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in mixed(20)])
    env.run("poll", "--once", check=True)
    env.run("poll", "--once", check=True)
    assert len(env.log_json()) == 20
    assert len(dovecot.uids("INBOX")) == 20  # left where it was


def test_a_message_left_behind_by_a_crash_is_only_filed(dovecot: Dovecot, intake_env: IntakeEnv) -> None:
    samples = mixed(3, with_faults=False)
    uids = dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in samples])
    settings = intake_env.settings()
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    # Record the first message exactly as the poller does, then "crash" before the move.
    with Mailbox(settings.imap) as mailbox:
        uidvalidity = mailbox.select("INBOX")
        message = next(mailbox.fetch([uids[0]]))
    from intake.record import enter_folder

    enter_folder(sessions, settings.imap.mailbox_key, "INBOX", uidvalidity)
    place = Place(settings.event.id, settings.imap.mailbox_key, "INBOX", uidvalidity)
    record_message(sessions, BlobStore(settings.data_dir), place, message, settings.event, 2**30)
    engine.dispose()
    assert len(intake_env.log_json()) == 1

    result = intake_env.run("poll", "--once", check=True)
    assert "1 left behind by an earlier run filed" in result.stderr
    entries = intake_env.log_json()
    assert len(entries) == 3
    assert dovecot.uids("INBOX") == []
    assert all(e["filed_folder"] for e in entries)


def test_uidvalidity_change_does_not_record_again(dovecot: Dovecot, make_env: MakeEnv) -> None:
    env = make_env(imap_extra="file_messages = false")
    samples = mixed(10, with_faults=False)
    dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in samples])
    env.run("poll", "--once", check=True)
    # Rebuild the mailbox as a server migration would: same messages, new UIDVALIDITY.
    with dovecot.client() as client:
        client.create_folder("Rebuilt")
        client.select_folder("INBOX")
        client.copy(client.search(["ALL"]), "Rebuilt")
    settings = env.settings()
    env2 = make_env(imap_extra='file_messages = false\nfolder = "Rebuilt"')
    # Same mailbox key, new folder: the messages are recognised by Message-ID and content.
    env2.run("poll", "--once", check=True)
    entries = env2.log_json()
    statuses = Counter(e["status"] for e in entries)
    assert len(entries) == 20 and statuses["duplicate"] == 10, statuses
    assert settings.imap.folder == "INBOX"


def test_a_message_over_the_size_limit_is_recorded_from_its_headers(
    dovecot: Dovecot, make_env: MakeEnv
) -> None:
    env = make_env(imap_extra="max_message_bytes = 65536")
    msg = EmailMessage()
    msg["From"] = "Big Sender <big@example.org>"
    msg["To"] = "tsbjcamv@itu.int"
    msg["Subject"] = "A very large contribution"
    msg["Message-ID"] = "<big-1@example.org>"
    msg.set_content("see attached")
    msg.add_attachment(b"\x00" * 200_000, maintype="application", subtype="octet-stream", filename="big.bin")
    dovecot.append_many("INBOX", [(msg.as_bytes(), datetime(2026, 4, 1, tzinfo=UTC))])
    env.run("poll", "--once", check=True)
    [entry] = env.log_json()
    assert entry["status"] == "rejected"
    assert [f["code"] for f in entry["findings"]] == ["message.too_large"]
    assert entry["subject"] == "A very large contribution"
    blob = BlobStore(env.data_dir).get(entry["sha256"])
    assert b"Subject: A very large contribution" in blob
    assert len(blob) < 10_000  # the body was never downloaded
    assert entry["size"] > 200_000


def test_record_is_idempotent_per_uid(dovecot: Dovecot, intake_env: IntakeEnv) -> None:
    settings = intake_env.settings()
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    place = Place(settings.event.id, settings.imap.mailbox_key, "INBOX", 7)
    raw = mixed(1, with_faults=False)[0].raw
    message = RawMessage(uid=5, received_at=datetime(2026, 4, 1, tzinfo=UTC), size=len(raw), raw=raw)
    store = BlobStore(settings.data_dir)
    first = record_message(sessions, store, place, message, settings.event, 2**30)
    again = record_message(sessions, store, place, message, settings.event, 2**30)
    engine.dispose()
    assert first.new and not again.new and first.id == again.id


def test_the_poll_log_has_no_mail_parser_chatter(dovecot: Dovecot, intake_env: IntakeEnv) -> None:
    """mail-parser warns "Email content 'calendar' not handled" for every such part;
    an operator's log has one line per message, not that."""
    from datetime import UTC, datetime

    raw = (
        b"From: a@example.org\r\nTo: tsbjcamv@itu.int\r\nSubject: invitation\r\n"
        b"Message-ID: <calendar@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee the invitation\r\n"
        b"--b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        b"--b--\r\n"
    )
    dovecot.append_many("INBOX", [(raw, datetime(2026, 4, 20, 9, 0, tzinfo=UTC))])
    result = intake_env.run("poll", "--once", check=True)
    assert "recorded 1" in result.stderr
    assert "not handled" not in result.stderr, result.stderr

"""Tests of the Dovecot test harness itself, against the real server."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.dovecot import Dovecot

pytestmark = pytest.mark.dovecot


def message(n: int) -> bytes:
    return (
        f"From: sender{n}@example.com\r\nTo: intake@example.org\r\n"
        f"Subject: test {n}\r\nMessage-ID: <{n}@test.example>\r\n\r\nBody {n}\r\n"
    ).encode()


def live_processes_of(server: Dovecot) -> list[str]:
    """Non-zombie processes that belong to this server, found without the harness:
    the master by its config path, children by their instance-name title."""
    markers = (str(server.conf_path).encode(), f"intake-test-{server.port}/".encode())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(m in cmdline for m in markers):
            found.append(f"{proc.name}: {cmdline!r}")
    return found


def answers(server: Dovecot) -> bool:
    try:
        with socket.create_connection((server.host, server.port), timeout=2):
            return True
    except OSError:
        return False


def test_start_serves_imap_with_move_uidplus_and_slash_separator(dovecot: Dovecot) -> None:
    assert dovecot.host == "127.0.0.1"
    assert dovecot.pid is not None
    assert len(live_processes_of(dovecot)) >= 2  # master and its services
    with dovecot.client() as c:
        caps = set(c.capabilities())
        assert {b"MOVE", b"UIDPLUS", b"MULTIAPPEND", b"IDLE"} <= caps
        c.create_folder("INBOX/processed")
        c.create_folder("Archive/2024")
        delimiters = {delim for _flags, delim, _name in c.list_folders()}
    assert delimiters == {b"/"}
    assert dovecot.folders() == ["Archive", "Archive/2024", "INBOX", "INBOX/processed"]


def test_append_many_sets_internaldate_and_reads_back(dovecot: Dovecot) -> None:
    dates = [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2023, 6, 30, 23, 59, 59, tzinfo=timezone(timedelta(hours=2))),
        datetime(2020, 2, 29, 12, 0, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ]
    messages = [(message(i), when) for i, when in enumerate(dates)]

    uids = dovecot.append_many("INBOX", messages)

    assert uids == [1, 2, 3]
    assert dovecot.uids("INBOX") == uids
    assert dovecot.fetch_all("INBOX") == dict(zip(uids, [raw for raw, _ in messages], strict=True))
    with dovecot.client() as c:
        c.normalise_times = False
        c.select_folder("INBOX", readonly=True)
        fetched = c.fetch(uids, ["INTERNALDATE", "FLAGS"])
    # Maildir keeps the instant (as the file's mtime), not the original offset.
    assert [fetched[uid][b"INTERNALDATE"] for uid in uids] == dates
    assert not any(b"\\Seen" in fetched[uid][b"FLAGS"] for uid in uids)  # PEEK kept it unread


def test_append_many_batches_and_creates_the_folder(dovecot: Dovecot) -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    uids = dovecot.append_many("Intake/new", [(message(i), when) for i in range(120)])
    assert uids == list(range(1, 121))
    assert len(dovecot.fetch_all("Intake/new")) == 120
    with pytest.raises(ValueError, match="timezone-aware"):
        dovecot.append_many("INBOX", [(message(0), datetime(2024, 1, 1))])


def test_restart_keeps_mail_and_port(dovecot: Dovecot) -> None:
    dovecot.append_many("INBOX", [(message(1), datetime(2024, 1, 1, tzinfo=UTC))])
    with dovecot.client() as c:
        validity = c.select_folder("INBOX")[b"UIDVALIDITY"]
    port, pid = dovecot.port, dovecot.pid

    dovecot.restart()

    assert dovecot.port == port
    assert dovecot.pid not in (None, pid)
    assert dovecot.fetch_all("INBOX") == {1: message(1)}
    with dovecot.client() as c:
        assert c.select_folder("INBOX")[b"UIDVALIDITY"] == validity


def test_kill_then_start(dovecot: Dovecot) -> None:
    dovecot.append_many("INBOX", [(message(1), datetime(2024, 1, 1, tzinfo=UTC))])
    port = dovecot.port

    dovecot.kill()

    assert dovecot.pid is None
    assert live_processes_of(dovecot) == []
    assert not answers(dovecot)
    dovecot.start()
    assert dovecot.port == port
    assert dovecot.uids("INBOX") == [1]


def test_stop_leaves_no_process_and_is_idempotent(dovecot: Dovecot) -> None:
    with dovecot.client() as c:  # an imap process is running while we stop
        c.select_folder("INBOX")
        dovecot.stop()
    assert dovecot.pid is None
    assert dovecot.process_ids() == []
    assert live_processes_of(dovecot) == []
    assert not answers(dovecot)
    dovecot.stop()
    dovecot.kill()


def test_other_instances_survive(dovecot: Dovecot, dovecot_session: Dovecot) -> None:
    assert dovecot.port != dovecot_session.port
    dovecot.kill()
    assert live_processes_of(dovecot_session)
    assert "INBOX" in dovecot_session.folders()


@pytest.mark.parametrize("index", ["list", "folder"])
def test_start_after_a_kill_removes_the_transaction_logs_newlock(dovecot: Dovecot, index: str) -> None:
    """A Dovecot killed while it creates or rotates an index's transaction log leaves the new
    log under `<log>.newlock`; the next Dovecot waits three minutes before it takes that over,
    and every LIST (the folder list's index) or SELECT of the folder waits with it: the
    30-second timeouts of the test's own client after a kill in issue 12. start() removes it."""
    dovecot.append_many("Reports", [(message(1), datetime(2024, 1, 1, tzinfo=UTC))])
    dovecot.kill()
    name = "dovecot.list.index.log" if index == "list" else "dovecot.index.log"
    [log] = [p for p in (dovecot.workdir / "mail").rglob(name) if index == "list" or "Reports" in str(p)]
    # What the kill leaves mid-creation: the new log, not yet renamed; the old one gone.
    (log.parent / f"{name}.newlock").write_bytes(b"")
    log.unlink()
    removed = dovecot.stale_locks_removed

    dovecot.start()

    with dovecot.client(timeout=10) as c:  # without the removal: TimeoutError after 10 s
        assert "Reports" in [name for _flags, _delim, name in c.list_folders()]
        assert c.select_folder("Reports", readonly=True)[b"EXISTS"] == 1
    assert dovecot.stale_locks_removed == removed + 1

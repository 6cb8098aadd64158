"""Copies of replies in the Sent folder (`Mailbox.append`, `copy_replies_to_sent`), against Dovecot.

Several copies go in one MULTIAPPEND (RFC 3502) when the server offers it, in order, each with
its date and \\Seen; a server without it gets one APPEND each (Dovecot with MULTIAPPEND hidden by
the loopback proxy); a Sent folder deleted behind the poller's back is made again ([TRYCREATE]).
"""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from intake.mailbox import Mailbox
from tests.faults.proxy import CuttingProxy
from tests.support.dovecot import Dovecot
from tests.support.intake_env import config_on, write_config

pytestmark = pytest.mark.dovecot

WHEN = datetime(2026, 4, 29, 16, 5, 0, tzinfo=UTC)


def copies(count: int) -> list[tuple[bytes, datetime]]:
    return [
        (
            f"From: tsbjcamv@itu.int\r\nTo: author{n}@example.org\r\nMessage-ID: <copy-{n}@intake>\r\n"
            f"Subject: copy {n}\r\n\r\nBody {n}.\r\n".encode(),
            WHEN + timedelta(minutes=n),
        )
        for n in range(count)
    ]


def in_sent(dovecot: Dovecot) -> list[tuple[str, datetime, tuple[bytes, ...]]]:
    """(Message-ID, internal date, flags) of each message in Sent, in UID order."""
    with dovecot.client() as client:
        client.select_folder("Sent", readonly=True)
        found = client.fetch(client.search("ALL"), ["INTERNALDATE", "FLAGS", "BODY.PEEK[HEADER]"])
    return [
        (
            str(email.message_from_bytes(found[uid][b"BODY[HEADER]"])["Message-ID"]),
            found[uid][b"INTERNALDATE"].astimezone(UTC),
            tuple(found[uid][b"FLAGS"]),
        )
        for uid in sorted(found)
    ]


@pytest.mark.parametrize("hidden", [set(), {b"MULTIAPPEND"}], ids=["multiappend", "append-each"])
def test_copies_land_in_order_with_their_dates(dovecot: Dovecot, tmp_path: Path, hidden: set[bytes]) -> None:
    with CuttingProxy((dovecot.host, dovecot.port)) as proxy:
        proxy.watch_commands, proxy.hide_capabilities = True, hidden
        url = f"sqlite:///{tmp_path / 'intake.db'}"
        settings = write_config(
            tmp_path, dovecot.host, proxy.port, dovecot.user, dovecot.password, url
        ).settings()
        with Mailbox(settings.imap) as mailbox:
            mailbox.append("Sent", copies(5))
            mailbox.append("Sent", copies(6)[5:])  # one alone: a plain APPEND either way
        sent = [verb for c in proxy.connections for verb in c.commands if verb == "APPEND"]
    assert sent == (["APPEND", "APPEND"] if not hidden else ["APPEND"] * 6)
    landed = in_sent(dovecot)
    assert [mid for mid, _, _ in landed] == [f"<copy-{n}@intake>" for n in range(6)]
    assert [when for _, when, _ in landed] == [WHEN + timedelta(minutes=n) for n in range(6)]
    assert all(b"\\Seen" in flags for _, _, flags in landed)


def test_a_sent_folder_deleted_meanwhile_is_made_again(dovecot: Dovecot, tmp_path: Path) -> None:
    env = config_on(dovecot, tmp_path, f"sqlite:///{tmp_path / 'intake.db'}")
    with Mailbox(env.settings().imap) as mailbox:
        mailbox.append("Sent", copies(2))
        with dovecot.client() as client:  # another client deletes it; the poller still knows it
            client.delete_folder("Sent")
        mailbox.append("Sent", copies(4)[2:])
    assert [mid for mid, _, _ in in_sent(dovecot)] == ["<copy-2@intake>", "<copy-3@intake>"]

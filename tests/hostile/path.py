"""The whole path a message takes, with its contract checked at each step.

parse (`intake.parse.parse_message`) → screen and judge (`intake.decide.decide`)
→ record (`intake.pipeline.record_message`, on SQLite). Hostile input may be
refused, quarantined or rejected; it may never make a step raise anything but
`Unparseable` from the parser, never make the judge fall back to its
`document.fault` finding (which means one of our own checks raised), and it
always ends as a recorded message with a valid status.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from intake import db
from intake.config import EventSettings
from intake.decide import decide, quarantined
from intake.domain import DocumentStatus, MessageStatus, ReplyStatus
from intake.listing import LogFilter, iter_message_entries, write_json, write_table
from intake.mailbox import RawMessage
from intake.models import InboundMessage
from intake.parse import Inbound, Unparseable, parse_message
from intake.pipeline import record_message
from intake.record import Place
from intake.store import BlobStore
from intake.verdict import MessageVerdict
from tests.mail.cases import event as shipped_event

RECEIVED = datetime(2026, 4, 27, 8, 30, tzinfo=UTC)  # before the shipped event's deadline
ROLES = {"document", "companion", "not_a_document"}
MAX_MESSAGE_BYTES = 40 * 2**20


def event() -> EventSettings:
    return shipped_event()


def check_inbound(inbound: Inbound) -> None:
    for name, value in inbound.headers:
        assert isinstance(name, str) and isinstance(value, str)
        assert "\r" not in value and "\n" not in value and "\x00" not in value, (name, value)
    for text in (inbound.subject, inbound.sender_name):
        assert text is None or ("\n" not in text and "\r" not in text)
    for address in (inbound.sender, inbound.reply_to):
        assert address is None or ("@" in address and address == address.lower() and " " not in address)
    for position, part in enumerate(inbound.parts):
        assert part.index == position and isinstance(part.payload, bytes)
        assert part.filename is None or (0 < len(part.filename) <= 255 and "\n" not in part.filename)


def check_verdict(inbound: Inbound, verdict: MessageVerdict) -> None:
    assert isinstance(verdict.status, MessageStatus)
    for doc in verdict.documents:
        assert 0 <= doc.part_index < len(inbound.parts)
        data = doc.payload if doc.payload is not None else inbound.parts[doc.part_index].payload
        assert doc.sha256 == hashlib.sha256(data).hexdigest() and doc.size == len(data)
        assert isinstance(doc.status, DocumentStatus) and doc.role in ROLES
        codes = [f.code for f in doc.findings]
        # `document.fault` is the guard catching one of our checks raising: a bug, not a verdict.
        assert "document.fault" not in codes, doc.findings
        if doc.status is DocumentStatus.REJECTED:
            assert any(f.blocks for f in doc.findings), doc


def judge(raw: bytes, received_at: datetime = RECEIVED) -> MessageVerdict:
    """parse → screen → judge, the way `record_message` runs them, with every contract checked."""
    try:
        inbound = parse_message(raw)
    except Unparseable as exc:
        return quarantined(str(exc))
    check_inbound(inbound)
    verdict = decide(inbound, event(), received_at)
    check_verdict(inbound, verdict)
    return verdict


@dataclass
class Recorder:
    """`record_message` into a SQLite database of its own, one new UID per message."""

    directory: Path

    def __post_init__(self) -> None:
        self.url = f"sqlite:///{self.directory / 'intake.db'}"
        db.upgrade(self.url)
        self.engine = db.make_engine(self.url)
        self.sessions = db.make_sessionmaker(self.engine)
        self.store = BlobStore(self.directory / "data")
        self.place = Place(event().id, "hostile@127.0.0.1:143", "INBOX", 1)
        self.uids = itertools.count(1)
        self.recorded = 0

    def close(self) -> None:
        self.engine.dispose()

    def record(self, raw: bytes, received_at: datetime = RECEIVED) -> str:
        """Record one message; check the row, its bytes and its reply; return its status."""
        uid = next(self.uids)
        message = RawMessage(uid=uid, received_at=received_at, size=len(raw), raw=raw)
        outcome = record_message(self.sessions, self.store, self.place, message, event(), MAX_MESSAGE_BYTES)
        assert outcome.new
        self.recorded += 1
        with self.sessions() as session:
            row = session.scalars(
                select(InboundMessage)
                .where(InboundMessage.id == outcome.id)
                .options(selectinload(InboundMessage.documents), selectinload(InboundMessage.replies))
            ).one()
            assert row.uid == uid and MessageStatus(row.status)
            assert self.store.get(row.sha256) == raw
            if row.status == MessageStatus.QUARANTINED:
                assert row.error
            for document in row.documents:
                assert self.store.has(document.sha256)
            for reply in row.replies:
                assert ReplyStatus(reply.status)
                if reply.raw:
                    check_reply(reply.raw, reply.recipient)
            return row.status

    def render_log(self) -> int:
        """The log, as `intake log` writes it (JSON and table, streamed): every message must render."""
        out = _Counting()
        with self.sessions() as session:
            write_json(iter_message_entries(session, LogFilter()), out)
            write_table(iter_message_entries(session, LogFilter()), out, ZoneInfo("Europe/Zurich"))
        assert out.text.endswith(f"\n{self.recorded} message(s).\n") or self.recorded == 0, out.text[-200:]
        return out.chars


class _Counting(io.StringIO):
    """A stream that counts what is written and keeps only its last lines."""

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0
        self.text = ""

    def write(self, s: str) -> int:
        self.chars += len(s)
        self.text = (self.text + s)[-500:]
        return len(s)


def check_reply(raw: bytes, recipient: str) -> None:
    """A reply is 7-bit clean, has exactly one recipient and no header smuggled in."""
    assert raw.isascii()
    head = raw.split(b"\r\n\r\n", 1)[0]
    for forbidden in (b"\r\nBcc:", b"\r\nCc:", b"\nX-Injected:"):
        assert forbidden not in head, head
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == [recipient]

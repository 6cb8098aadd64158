"""Mixed test mailboxes: what contributors' mail programs really send, and worse."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
RECEIVED = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)


@functools.cache
def small_docx(title: str = "Proposed update to the metaverse roadmap") -> bytes:
    import docx

    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text = "Title:"
    table.rows[0].cells[1].text = title
    table.rows[1].cells[0].text = "Source:"
    table.rows[1].cells[1].text = "Example Institute"
    document.add_paragraph("Body text.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class Sample:
    kind: str  # plain, docx, non_ascii_name, garbage, duplicate
    raw: bytes
    received_at: datetime
    message_id: str | None
    filename: str | None = None


NON_ASCII_NAMES = (
    "Вклад по метавселенной.docx",
    "元宇宙路线图 提案.docx",
    "مساهمة في خارطة الطريق.docx",
    "Contribución — señalización.docx",
)


def _message(i: int, subject: str, attachment: tuple[str, bytes] | None) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg["From"] = f"Contributor {i} <contributor{i}@example.org>"
    msg["To"] = "tsbjcamv@itu.int"
    msg["Subject"] = subject
    message_id = f"<corpus-{i}@example.org>"
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(RECEIVED + timedelta(minutes=i))
    msg.set_content(f"Dear secretariat,\n\nmessage number {i}.\n")
    if attachment is not None:
        name, data = attachment
        msg.add_attachment(
            data,
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename=name,
        )
    return msg.as_bytes(), message_id


def mixed(count: int, start: int = 0, with_faults: bool = True) -> list[Sample]:
    """`count` messages; with faults, about one in 20 is garbage and one in 25 a second
    copy (same Message-ID, same bytes) of an earlier message."""
    samples: list[Sample] = []
    for i in range(start, start + count):
        when = RECEIVED + timedelta(minutes=i)
        slot = i % 10
        if with_faults and i % 20 == 7:
            raw = b"\x1b[2J garbage %d \xff\xfe not an e-mail\r\n\r\n\x01\x02\x03" % i
            samples.append(Sample("garbage", raw, when, None))
        elif with_faults and i % 25 == 13 and samples:
            original = next((s for s in reversed(samples) if s.kind in ("plain", "docx")), None)
            if original is not None:
                samples.append(Sample("duplicate", original.raw, when, original.message_id))
                continue
            raw, mid = _message(i, f"Plain message {i}", None)
            samples.append(Sample("plain", raw, when, mid))
        elif slot in (0, 1, 2):
            raw, mid = _message(i, f"Question {i} about the meeting", None)
            samples.append(Sample("plain", raw, when, mid))
        elif slot in (3, 4, 5, 6):
            name = NON_ASCII_NAMES[i % len(NON_ASCII_NAMES)]
            raw, mid = _message(i, f"Input document {i} — вклад", (name, small_docx()))
            samples.append(Sample("non_ascii_name", raw, when, mid, name))
        else:
            raw, mid = _message(i, f"Input document {i}", (f"contribution-{i}.docx", small_docx()))
            samples.append(Sample("docx", raw, when, mid, f"contribution-{i}.docx"))
    return samples

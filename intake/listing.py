"""The intake log as the secretariat and scripts read it: rows, JSON, a table, CSV.

`LogFilter` says which messages (status, received between two times, sender,
words in the subject, the sender's address or name, a document's title, source,
file name or number) and in what order; `intake log` and the dashboard's list
both use it.

Text is compared case-folded on both databases: `folded()` is PostgreSQL's
lower() (which folds every Unicode letter under the UTF-8 ctype a database is
created with) and, on SQLite, whose lower() folds only ASCII, a Python function
doing str.casefold that intake.db registers on every connection. No folded copy
of the text is stored: the records stay the one place a subject or title lives,
and whatever changes them (a poll, an admit, a reprocess) needs to keep nothing
else in step.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, and_, exists, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from intake.config import EventSettings
from intake.db import FOLD_FUNCTION
from intake.models import Document, InboundMessage, Reply
from intake.revisions import normalise_number

SORTS = {
    "received": InboundMessage.received_at,
    "id": InboundMessage.id,
    "status": InboundMessage.status,
    "sender": InboundMessage.sender,
    "subject": InboundMessage.subject,
}


@dataclass(frozen=True)
class LogFilter:
    """Which messages to list. Times are aware; `search` matches each word case-insensitively."""

    event: str | None = None  # an event's id; None: every event in the database
    status: str | None = None
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    sender: str | None = None  # part of the address or the name
    search: str | None = None  # in the subject, sender, a document's title, source, file name, number
    # Events whose numbering reads a number typed loosely ("jca-mv-i-4" is JCA-MV-I-004).
    numbering: tuple[EventSettings, ...] = ()
    sort: str = "id"  # a key of SORTS
    descending: bool = False
    limit: int | None = None
    offset: int = 0

    @property
    def narrowed(self) -> bool:
        """Whether anything but the event narrows the list (then an empty list means no match)."""
        return any((self.status, self.since, self.until, self.sender, self.search))


class folded(FunctionElement[str]):  # noqa: N801 (an SQL function's name)
    """Text case-folded the same way on both databases (see the module's docstring)."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _folded_lower(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{FOLD_FUNCTION}({compiler.process(element.clauses, **kw)})"


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return folded(column).like(folded(literal(f"%{escaped}%", String())), escape="\\")


def _number_forms(word: str, events: Sequence[EventSettings]) -> list[str]:
    """The stored numbers a loosely typed word may mean, in each event's numbering."""
    return sorted({form for e in events if (form := normalise_number(e, word)) != word})


def _conditions(f: LogFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.event:
        where.append(InboundMessage.event == f.event)
    if f.status:
        where.append(InboundMessage.status == f.status)
    if f.since is not None:
        where.append(InboundMessage.received_at >= f.since)
    if f.until is not None:
        where.append(InboundMessage.received_at < f.until)
    if f.sender:
        where.append(
            or_(_contains(InboundMessage.sender, f.sender), _contains(InboundMessage.sender_name, f.sender))
        )
    for word in (f.search or "").split():
        forms = _number_forms(word, f.numbering)
        in_documents = exists().where(
            Document.message_id == InboundMessage.id,
            or_(
                _contains(Document.title, word),
                _contains(Document.source, word),
                _contains(Document.filename, word),
                _contains(Document.number, word),
                *([Document.number.in_(forms)] if forms else []),
            ),
        )
        where.append(
            or_(
                _contains(InboundMessage.subject, word),
                _contains(InboundMessage.sender, word),
                _contains(InboundMessage.sender_name, word),
                in_documents,
            )
        )
    return where


def read_when(text: str, zone: ZoneInfo, end_of_day: bool = False) -> datetime:
    """A date (local midnight; the next one when it ends a range) or a date-time, local unless
    it has an offset. Anything else is a ValueError that says what is expected."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            moment = datetime.combine(day, time(0), tzinfo=zone)
            return moment + timedelta(days=1) if end_of_day else moment
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date or date-time: {text!r} (use 2026-04-30 or 2026-04-30T18:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def count_messages(session: Session, f: LogFilter | None = None) -> int:
    query = select(func.count()).select_from(InboundMessage)
    conditions = _conditions(f or LogFilter())
    if conditions:
        query = query.where(and_(*conditions))
    return int(session.execute(query).scalar_one())


def status_counts(session: Session, event: str | None = None) -> dict[str, int]:
    """How many messages have each status (of one event, or of all)."""
    query = select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
    conditions = _conditions(LogFilter(event=event))
    if conditions:
        query = query.where(and_(*conditions))
    return {status: int(n) for status, n in session.execute(query)}


def iso_utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_entries(
    session: Session, status: str | None = None, limit: int | None = None, where: LogFilter | None = None
) -> list[dict[str, Any]]:
    return list(iter_message_entries(session, where or LogFilter(status=status, limit=limit)))


STREAM_ROWS = 200  # messages read (with their documents, findings, replies) per round trip


def iter_message_entries(session: Session, f: LogFilter) -> Iterator[dict[str, Any]]:
    """The entries one by one, read STREAM_ROWS messages at a time: `intake log` over
    ten thousand messages holds a few hundred in memory, not all of them."""
    column = SORTS.get(f.sort, InboundMessage.id)
    order = [column.desc(), InboundMessage.id.desc()] if f.descending else [column, InboundMessage.id]
    query = (
        select(InboundMessage)
        .options(
            selectinload(InboundMessage.documents).selectinload(Document.findings),
            selectinload(InboundMessage.findings),
            selectinload(InboundMessage.replies),
        )
        .order_by(*order)
    )
    conditions = _conditions(f)
    if conditions:
        query = query.where(and_(*conditions))
    if f.offset:
        query = query.offset(f.offset)
    if f.limit:
        query = query.limit(f.limit)
    # The session's identity map holds rows weakly: a chunk already turned into
    # entries is garbage once the next is read.
    rows = session.scalars(query.execution_options(yield_per=STREAM_ROWS))
    try:
        for m in rows:
            yield _entry(m)
    finally:
        rows.close()


def _entry(m: InboundMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "event": m.event,
        "message_id": m.message_id,
        "sender": m.sender,
        "sender_name": m.sender_name,
        "subject": m.subject,
        "received_at": iso_utc(m.received_at),
        "date_header": iso_utc(m.date_header),
        "size": m.size,
        "sha256": m.sha256,
        "status": m.status,
        "reason": m.reason,
        "error": m.error,
        "duplicate_of": m.duplicate_of_id,
        "folder": m.folder,
        "uidvalidity": m.uidvalidity,
        "uid": m.uid,
        "filed_folder": m.filed_folder,
        "findings": [{"code": f.code, "severity": f.severity, "message": f.message} for f in m.findings],
        "replies": [
            {
                "id": r.id,
                "kind": r.kind,
                "recipient": r.recipient,
                "subject": r.subject,
                "status": r.status,
                "reason": r.reason,
                "message_id": r.rfc_message_id,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "sent_at": iso_utc(r.sent_at),
            }
            for r in m.replies
        ],
        "documents": [
            {
                "id": d.id,
                "filename": d.filename,
                "sha256": d.sha256,
                "size": d.size,
                "type": d.detected_type,
                "role": d.role,
                "status": d.status,
                "number": d.number,
                "revision": d.revision,
                "copy_of": d.copy_of_id,  # a resend: the numbered document it is a copy of
                "title": d.title,
                "source": d.source,
                "findings": [
                    {"code": f.code, "severity": f.severity, "message": f.message} for f in d.findings
                ],
            }
            for d in m.documents
        ],
    }


def write_json(entries: Iterable[dict[str, Any]], out: TextIO) -> None:
    """A JSON array, written entry by entry (the same text as json.dump with indent=2)."""
    first = True
    for entry in entries:
        text = json.dumps(entry, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        out.write(("[\n  " if first else ",\n  ") + text)
        first = False
    out.write("[]\n" if first else "\n]\n")


def log_headings(tz: ZoneInfo) -> list[str]:
    return [
        "id",
        f"received ({tz.key})",
        "received (UTC)",
        "status",
        "sender",
        "sender name",
        "subject",
        "numbers",
        "documents",
        "late",
        "reason",
    ]


def log_rows(entries: Iterable[dict[str, Any]], tz: ZoneInfo) -> Iterator[list[str | datetime | int]]:
    """One row per message, its documents in one cell; times naive, in the zone and in UTC."""
    for e in entries:
        received = datetime.strptime(e["received_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
        late = any(f["code"].startswith("deadline.late") for f in e["findings"]) or any(
            f["code"].startswith("deadline.late") for d in e["documents"] for f in d["findings"]
        )
        yield [
            e["id"],
            received.astimezone(tz).replace(tzinfo=None),
            received.replace(tzinfo=None),
            e["status"],
            e["sender"] or "",
            e["sender_name"] or "",
            e["subject"] or "",
            "; ".join(d["number"] for d in e["documents"] if d["number"]),
            "; ".join(f"{d['filename'] or '(no name)'} [{d['status']}]" for d in e["documents"]),
            "late" if late else "",
            e["reason"] or "",
        ]


def write_csv(entries: Iterable[dict[str, Any]], out: TextIO, tz: ZoneInfo, bom: bool = False) -> None:
    """One row per message, its documents in one cell; a formula-like cell is made inert.
    `bom`: a UTF-8 byte order mark first, so that Excel shows the names right."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(log_headings(tz))
    for row in log_rows(entries, tz):
        cells = [c.strftime("%Y-%m-%d %H:%M:%S") if isinstance(c, datetime) else str(c) for c in row]
        # A spreadsheet runs a cell starting with these as a formula (CSV injection).
        writer.writerow(["'" + c if c.startswith(("=", "+", "-", "@", "\t", "\r")) else c for c in cells])


def write_table(entries: Iterable[dict[str, Any]], out: TextIO, tz: ZoneInfo, narrowed: bool = False) -> None:
    """A table for a terminal; `narrowed`: the entries were filtered (an empty list then says so)."""
    headings = ("#", f"Received ({tz.key})", "Status", "From", "Subject", "Documents")
    rows = []  # short cut strings: the widths need every row first
    for e in entries:
        received = datetime.strptime(e["received_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
        docs = "; ".join(
            (d["number"] or d["filename"] or "(no name)") + f" [{d['status']}]" for d in e["documents"]
        )
        rows.append(
            (
                str(e["id"]),
                received.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                e["status"],
                _cut(e["sender"] or "(unknown)", 32),
                _cut(e["subject"] or "(no subject)", 40),
                _cut(docs or "-", 50),
            )
        )
    if not rows:
        out.write("No message matches these filters.\n" if narrowed else "No messages recorded yet.\n")
        return
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) for i, h in enumerate(headings)]
    out.write("  ".join(_pad(h, w) for h, w in zip(headings, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in rows:
        out.write("  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    out.write(f"\n{len(rows)} message(s).\n")


def _char_width(char: str) -> int:
    """Columns a character takes in a terminal: two for wide (CJK) ones, none for combining marks."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_char_width(c) for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _cut(text: str, width: int) -> str:
    """At most `width` terminal columns, an ellipsis marking the cut."""
    text = " ".join(text.split())
    if _width(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        if used + _char_width(char) > width - 1:
            break
        kept.append(char)
        used += _char_width(char)
    return "".join(kept) + "…"


def outbox_entries(session: Session, event: str, all_statuses: bool = False) -> list[dict[str, Any]]:
    query = select(Reply).where(Reply.event == event).order_by(Reply.id)
    if not all_statuses:
        query = query.where(Reply.status.in_(("pending", "sending", "failed")))
    return [
        {
            "id": r.id,
            "message": r.message_id,
            "kind": r.kind,
            "recipient": r.recipient,
            "subject": r.subject,
            "status": r.status,
            "reason": r.reason,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "next_attempt_at": iso_utc(r.next_attempt_at),
            "created_at": iso_utc(r.created_at),
            "sent_at": iso_utc(r.sent_at),
        }
        for r in session.scalars(query)
    ]


def write_outbox(entries: Sequence[dict[str, Any]], out: TextIO, tz: ZoneInfo) -> None:
    if not entries:
        out.write("The outbox is empty: every reply has been sent.\n")
        return
    for e in entries:
        created = datetime.strptime(e["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
        line = (
            f"#{e['id']:<5} {e['status']:<10} {e['kind']:<16} to {e['recipient']}  "
            f"(message #{e['message']}, queued {created.astimezone(tz):%Y-%m-%d %H:%M}, "
            f"{e['attempts']} attempt(s))"
        )
        out.write(line + "\n")
        if e["last_error"]:
            out.write(f"        last error: {e['last_error']}\n")
        if e["reason"]:
            out.write(f"        {e['reason']}\n")
    out.write(f"\n{len(entries)} reply(ies).\n")

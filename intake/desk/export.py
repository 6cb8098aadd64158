"""The documents list the secretariat publishes, and the documents' files.

`document_rows` is one row per numbered document (number, title, source,
contacts, received, status, late, file names), in number order, revisions
after their original; `log_xlsx` is the intake log (every message, as
filtered) as a workbook. `write_csv` and `write_xlsx` write the documents;
every cell that came from a contributor is written as text, and in CSV a cell
that a spreadsheet would take for a formula (=, +, -, @ first) is prefixed with
an apostrophe (OWASP's advice against CSV injection). Times are real date-time
cells in a workbook (in the event's zone, and in UTC), so they sort and filter
as dates. `write_documents` writes the files under names built from their
numbers only: a sender's file name is never a path.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from intake.config import EventSettings
from intake.desk import Refused
from intake.domain import DocumentRole, DocumentStatus
from intake.models import Document, InboundMessage
from intake.revisions import normalise_number
from intake.store import BlobStore

HEADINGS = (
    "Number",
    "Title",
    "Source",
    "Contacts",
    "Received",
    "Received (UTC)",
    "Status",
    "Late",
    "File names",
)
LATE_MARK = "admitted late"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SHEET_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXTENSIONS = {"docx": "docx", "doc": "doc", "docm": "docm", "pdf": "pdf", "zip": "zip"}


@dataclass(frozen=True)
class DocumentRow:
    number: str
    title: str
    source: str
    contacts: str
    received: datetime  # aware
    zone: ZoneInfo  # the event's
    status: str
    late: str  # LATE_MARK for a document received after the deadline and admitted, else ""
    file_names: str

    def values(self) -> tuple[str | datetime, ...]:
        """The cells, the times as naive date-times (local, then UTC) as a workbook holds them."""
        return (
            self.number,
            self.title,
            self.source,
            self.contacts,
            _naive(self.received, self.zone),
            _naive(self.received, UTC),
            self.status,
            self.late,
            self.file_names,
        )

    def cells(self) -> tuple[str, ...]:
        return tuple(_text(v) for v in self.values())


def _naive(moment: datetime, zone: ZoneInfo | Any) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


def _text(value: str | datetime | int | None) -> str:
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    return "" if value is None else str(value)


def arrived_late(message: InboundMessage) -> bool:
    """Judged late when it arrived (the deadline finding), whatever was decided since."""
    codes = [f.code for f in message.findings] + [f.code for d in message.documents for f in d.findings]
    return any(code.startswith("deadline.late") for code in codes)


def _order(number: str) -> tuple[int, int, str]:
    digits = re.search(r"(\d+)(?:\s+Rev\.(\d+))?$", number)
    if digits is None:
        return (1 << 30, 0, number)
    return (int(digits.group(1)), int(digits.group(2) or 0), number)


def _contacts(document: Document) -> str:
    people = []
    for item in (document.contacts or {}).get("items", []):
        if not isinstance(item, dict):
            continue
        bits = [str(item[k]) for k in ("name", "organization", "country") if item.get(k)]
        text = ", ".join(bits)
        if item.get("email"):
            text = f"{text} <{item['email']}>" if text else str(item["email"])
        if text:
            people.append(text)
    return "; ".join(people)


def _numbered(session: Session, event: EventSettings) -> list[Document]:
    documents = session.scalars(
        select(Document)
        .join(InboundMessage, Document.message_id == InboundMessage.id)
        .where(InboundMessage.event == event.id, Document.number.is_not(None))
        .options(
            selectinload(Document.message)
            .selectinload(InboundMessage.documents)
            .selectinload(Document.findings),
            selectinload(Document.message).selectinload(InboundMessage.findings),
        )
    ).all()
    return sorted(documents, key=lambda d: _order(d.number or ""))


def document_rows(session: Session, event: EventSettings) -> list[DocumentRow]:
    rows = []
    for d in _numbered(session, event):
        message = d.message
        companions = [
            c.filename or "(no name)"
            for c in message.documents
            if c.role == DocumentRole.COMPANION and c.status == DocumentStatus.COMPANION
        ]
        names = [d.filename or "(no name)", *companions]
        rows.append(
            DocumentRow(
                number=d.number or "",
                title=" ".join((d.title or "").split()),
                source=" ".join((d.source or "").split()),
                contacts=_contacts(d),
                received=message.received_at,
                zone=event.timezone,
                status=d.status,
                late=LATE_MARK if arrived_late(message) else "",
                file_names="; ".join(names),
            )
        )
    return rows


def _inert(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


BOM = "\ufeff"  # first in a CSV file, so that Excel reads it as UTF-8


def _headings(zone: str) -> list[str]:
    return [h if h != "Received" else f"Received ({zone})" for h in HEADINGS]


def write_csv(rows: Sequence[DocumentRow], out: IO[str], zone: str, bom: bool = True) -> None:
    """UTF-8 CSV with a header row, after a BOM (Excel then shows the names right)."""
    if bom:
        out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_headings(zone))
    for row in rows:
        writer.writerow([_inert(c) for c in row.cells()])


def write_xlsx(rows: Sequence[DocumentRow], out: IO[bytes], zone: str, title: str) -> None:
    widths = (22, 50, 36, 50, 20, 20, 12, 14, 40)
    write_sheet(out, "Documents", title, _headings(zone), [r.values() for r in rows], widths)


def write_sheet(
    out: IO[bytes],
    name: str,
    title: str,
    headings: Sequence[str],
    rows: Iterable[Sequence[str | datetime | int | None]],
    widths: Sequence[int],
) -> None:
    """One sheet: a bold, frozen header row; text as text (never a formula), date-times as dates."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = name
    for column, heading in enumerate(headings, start=1):
        sheet.cell(row=1, column=column, value=heading).font = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=column, value=value)
            if isinstance(value, datetime):
                cell.number_format = SHEET_TIME_FORMAT
            elif isinstance(value, str):
                # openpyxl reads a leading "=" as a formula: a contributor's title must stay text.
                cell.data_type = "s"
            cell.alignment = wrap
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"
    book.properties.title = title
    book.save(out)


# --- the intake log as a workbook -----------------------------------------------------------


def log_xlsx(entries: Iterable[dict[str, Any]], out: IO[bytes], zone: ZoneInfo, title: str) -> None:
    """The intake log's rows (intake.listing.log_rows) as a workbook, the times as dates."""
    from intake.listing import log_headings, log_rows

    widths = (8, 20, 20, 12, 32, 28, 50, 22, 50, 14, 40)
    write_sheet(out, "Intake log", title, log_headings(zone), log_rows(entries, zone), widths)


# --- the files ------------------------------------------------------------------------------


def safe_stem(number: str) -> str:
    """A file name stem from a document number: "JCA-MV-I-012 Rev.1" -> "JCA-MV-I-012-Rev1"."""
    stem = re.sub(r"\s+Rev\.(\d+)$", r"-Rev\1", number.strip())
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")
    return stem or "document"


def _extension(document: Document) -> str:
    return _EXTENSIONS.get(document.detected_type or "", "bin")


def _write_file(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)  # replaces a link itself, never writes through it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_documents(
    session: Session, store: BlobStore, event: EventSettings, out_dir: Path, number: str | None
) -> list[Path]:
    """Write one numbered document (and its message's companions), or every accepted one."""
    if number is not None:
        wanted = normalise_number(event, number)
        chosen = [d for d in _numbered(session, event) if d.number == wanted]
        if not chosen:
            raise Refused(f"no document is numbered {wanted}")
    else:
        chosen = [d for d in _numbered(session, event) if d.status == DocumentStatus.ACCEPTED]
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    companions_done: set[int] = set()
    for document in chosen:
        stem = safe_stem(document.number or "")
        written.append(_put(store, out_dir / f"{stem}.{_extension(document)}", document))
        if document.message_id in companions_done:
            continue
        companions_done.add(document.message_id)
        extras = [
            c
            for c in document.message.documents
            if c.role == DocumentRole.COMPANION and c.status == DocumentStatus.COMPANION
        ]
        for k, companion in enumerate(extras, start=1):
            suffix = "" if len(extras) == 1 else f"-{k}"
            target = out_dir / f"{stem}-companion{suffix}.{_extension(companion)}"
            written.append(_put(store, target, companion))
    return written


def _put(store: BlobStore, target: Path, document: Document) -> Path:
    try:
        data = store.get(document.sha256)
    except (OSError, ValueError):
        raise Refused(
            f"the file of {document.number or document.filename} is missing from the store"
        ) from None
    _write_file(target, data)
    return target


def row_dicts(rows: Iterable[DocumentRow]) -> list[dict[str, str]]:
    return [dict(zip(HEADINGS, r.cells(), strict=True)) for r in rows]


def document_download_name(document: Document, fallback_name: str) -> str:
    """A document's download name: its number (JCA-MV-I-004.docx) once numbered."""
    if document.number:
        return f"{safe_stem(document.number)}.{_extension(document)}"
    return fallback_name

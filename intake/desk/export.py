"""The documents list the secretariat publishes, and the documents' files.

`document_rows` is one row per numbered document (number, title, source,
contacts, received, status, file names), in number order, revisions after
their original. `write_csv` and `write_xlsx` write it; every cell that came
from a contributor is written as text, and in CSV a cell that a spreadsheet
would take for a formula (=, +, -, @ first) is prefixed with an apostrophe
(OWASP's advice against CSV injection). `write_documents` writes the files
under names built from their numbers only: a sender's file name is never a
path.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from intake.config import EventSettings
from intake.desk import Refused
from intake.desk.show import local_time, utc_time
from intake.domain import DocumentRole, DocumentStatus
from intake.models import Document, InboundMessage
from intake.revisions import normalise_number
from intake.store import BlobStore

HEADINGS = ("Number", "Title", "Source", "Contacts", "Received", "Received (UTC)", "Status", "File names")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXTENSIONS = {"docx": "docx", "doc": "doc", "docm": "docm", "pdf": "pdf", "zip": "zip"}


@dataclass(frozen=True)
class DocumentRow:
    number: str
    title: str
    source: str
    contacts: str
    received: str  # in the event's zone
    received_utc: str
    status: str
    file_names: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.number,
            self.title,
            self.source,
            self.contacts,
            self.received,
            self.received_utc,
            self.status,
            self.file_names,
        )


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
        .options(selectinload(Document.message).selectinload(InboundMessage.documents))
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
                received=local_time(message.received_at, event.timezone) or "",
                received_utc=utc_time(message.received_at) or "",
                status=d.status,
                file_names="; ".join(names),
            )
        )
    return rows


def _inert(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_csv(rows: Sequence[DocumentRow], out: IO[str], zone: str) -> None:
    """UTF-8 CSV with a header row (write a BOM first if the reader is Excel)."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([h if h != "Received" else f"Received ({zone})" for h in HEADINGS])
    for row in rows:
        writer.writerow([_inert(c) for c in row.cells()])


def write_xlsx(rows: Sequence[DocumentRow], out: IO[bytes], zone: str, title: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Documents"
    for column, heading in enumerate(HEADINGS, start=1):
        cell = sheet.cell(
            row=1, column=column, value=heading if heading != "Received" else f"Received ({zone})"
        )
        cell.font = Font(bold=True)
    for r, row in enumerate(rows, start=2):
        for column, value in enumerate(row.cells(), start=1):
            cell = sheet.cell(row=r, column=column, value=value)
            # openpyxl reads a leading "=" as a formula: a contributor's title must stay text.
            cell.data_type = "s"
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    for letter, width in zip("ABCDEFGH", (22, 50, 36, 50, 24, 24, 12, 40), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    book.properties.title = title
    book.save(out)


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

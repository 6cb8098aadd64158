"""Files handed out: a document as it arrived (named by its number once numbered), a message as
it arrived (.eml), the documents list and the intake log as filtered, as CSV or Excel.

Everything a contributor sent is hostile (OWASP's File Upload cheat sheet): files go out as
attachments (Content-Disposition) with a name we build, as `application/octet-stream` with
`nosniff` and a sandboxing CSP, never inline."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from flask import Blueprint, Response, abort

from intake.desk import Refused
from intake.desk.export import (
    document_download_name,
    document_rows,
    log_xlsx,
    safe_stem,
    write_csv,
    write_xlsx,
)
from intake.desk.show import unjudged_part
from intake.listing import iter_message_entries
from intake.listing import write_csv as write_log_csv
from intake.models import Document, InboundMessage, utcnow
from intake.web.context import attachment, desk, safe_filename
from intake.web.submissions import list_filter

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

blueprint = Blueprint("downloads", __name__)


@blueprint.get("/documents/<int:document_id>/file")
def download(document_id: int) -> Any:
    d = desk()
    with d.sessions() as session:
        document = session.get(Document, document_id)
        if document is None:
            abort(404)
        fallback = safe_stem(document.number) if document.number else f"document-{document.id}"
        name = document_download_name(document, safe_filename(document.filename, fallback))
        try:
            data = d.store.get(document.sha256)
        except (OSError, ValueError):
            abort(404, description="the file is missing from the store")
    return attachment(data, name)


@blueprint.get("/export.<fmt>")
def export(fmt: str) -> Response:
    if fmt not in ("csv", "xlsx"):
        abort(404)
    event = desk().settings.event
    with desk().sessions() as session:
        rows = document_rows(session, event)
    zone = event.timezone
    stem = safe_filename(f"{event.acronym}-documents-{utcnow().astimezone(zone):%Y-%m-%d}", "documents")
    if fmt == "csv":
        text = io.StringIO()
        write_csv(rows, text, zone.key)  # after a BOM, so that Excel reads the UTF-8 names right
        return attachment(text.getvalue().encode("utf-8"), f"{stem}.csv", "text/csv")
    buffer = io.BytesIO()
    write_xlsx(rows, buffer, zone.key, f"{event.acronym} documents")
    return attachment(buffer.getvalue(), f"{stem}.xlsx", XLSX)


@blueprint.get("/messages/<int:message_id>/files/<int:index>")
def unjudged_file(message_id: int, index: int) -> Any:
    """A file of a message never judged (held): to look at before releasing it."""
    d = desk()
    with d.sessions() as session:
        row = session.get(InboundMessage, message_id)
        if row is None or row.event != d.settings.event.id:
            abort(404)
        try:
            filename, data = unjudged_part(d.store, row, index)
        except Refused as exc:
            abort(404, description=str(exc))
    return attachment(data, safe_filename(filename, f"message-{message_id}-file-{index + 1}"))


@blueprint.get("/messages/<int:message_id>/original.eml")
def original(message_id: int) -> Any:
    """The message's bytes as received: to open in a mail program (never shown by the browser)."""
    d = desk()
    with d.sessions() as session:
        row = session.get(InboundMessage, message_id)
        if row is None or row.event != d.settings.event.id:
            abort(404)
        try:
            data = d.store.get(row.sha256)
        except (OSError, ValueError):
            abort(404, description="the message is missing from the store")
    return attachment(data, f"{d.settings.event.acronym}-message-{message_id}.eml")


@blueprint.get("/log.<fmt>")
def log_export(fmt: str) -> Any:
    """The intake log with the list's filters (every page of it), as CSV or Excel."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    f, _, _, problems = list_filter()
    if problems:
        abort(400, description="; ".join(problems))
    event = desk().settings.event
    f = dataclasses.replace(f, limit=None, offset=0)
    stem = safe_filename(f"{event.acronym}-intake-log-{utcnow().astimezone(event.timezone):%Y-%m-%d}", "log")
    with desk().sessions() as session:
        entries = iter_message_entries(session, f)
        if fmt == "csv":
            text = io.StringIO()
            write_log_csv(entries, text, event.timezone, bom=True)
            return attachment(text.getvalue().encode("utf-8"), f"{stem}.csv", "text/csv")
        buffer = io.BytesIO()
        log_xlsx(entries, buffer, event.timezone, f"{event.acronym} intake log")
    return attachment(buffer.getvalue(), f"{stem}.xlsx", XLSX)

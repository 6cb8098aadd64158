"""Files handed out: a document as it arrived, and the documents list as CSV or Excel.

Everything a contributor sent is hostile: files go out as attachments with a
name made safe, as `application/octet-stream` with `nosniff` and a sandboxing
CSP, never inline."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, abort

from intake.desk.export import document_rows, safe_stem, write_csv, write_xlsx
from intake.models import Document, utcnow
from intake.web.context import attachment, desk, safe_filename

blueprint = Blueprint("downloads", __name__)


@blueprint.get("/documents/<int:document_id>/file")
def download(document_id: int) -> Any:
    d = desk()
    with d.sessions() as session:
        document = session.get(Document, document_id)
        if document is None:
            abort(404)
        fallback = safe_stem(document.number) if document.number else f"document-{document.id}"
        name = safe_filename(document.filename, fallback)
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
        write_csv(rows, text, zone.key)
        # A BOM so that Excel reads the UTF-8 names right.
        return attachment(("\ufeff" + text.getvalue()).encode("utf-8"), f"{stem}.csv", "text/csv")
    buffer = io.BytesIO()
    write_xlsx(rows, buffer, zone.key, f"{event.acronym} documents")
    return attachment(
        buffer.getvalue(),
        f"{stem}.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )

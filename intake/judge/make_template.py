"""Produce an event's document template (.docx) in the ITU-T 2025-2028 layout.

The header table follows ITU-T's contribution template (../shared/notes/itu.md
§1.1, §1.4): the ITU block with the study period, the document number, the
group, "Original: English", Question(s), place and date of the meeting, then
Source, Title, Purpose, Contact (name, organization, country | Tel, E-mail),
Keywords and Abstract. What the contributor fills in is yellow-highlighted text
in square brackets, which is also what the judge learns as placeholders. The
output is byte-for-byte reproducible, so a test can tell when the shipped file
is stale:

    python -m intake.judge.make_template --config config/jca-mv-2.toml \
        --out config/jca-mv-template.docx
"""

from __future__ import annotations

import argparse
import io
import sys
import tomllib
import zipfile
from datetime import datetime
from pathlib import Path

import docx
from docx.document import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_COLOR_INDEX
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, Twips
from docx.table import _Cell
from docx.text.paragraph import Paragraph

from intake.config import ConfigError, EventSettings
from intake.judge.deadline import day_text

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entry times: the same bytes on every run
_WIDTHS = (Twips(1418), Twips(4111), Twips(4111))  # label | value | value: 17 cm, as ITU-T's

CHECKLIST = (
    "Before submitting this document:",
    "–\tUpdate the information highlighted in yellow above: Source, Title, Purpose, "
    "contact information, Keywords and Abstract.",
    '–\tMake sure that "Track Changes" is turned off.',
    "–\tRemove any remaining yellow highlighting, including the square brackets.",
)


def _text(
    paragraph: Paragraph, text: str, *, bold: bool = False, sample: bool = False, size: float | None = None
) -> None:
    """Add a run; a sample (placeholder) run is highlighted yellow, as in ITU-T's template."""
    for n, line in enumerate(text.split("\n")):
        run = paragraph.add_run()
        if n:
            run.add_break()
        parts = line.split("\t")
        for m, part in enumerate(parts):
            if m:
                run.add_tab()
            run.add_text(part)
        run.bold = bold or None
        if size:
            run.font.size = Pt(size)
        if sample:
            run.font.highlight_color = WD_COLOR_INDEX.YELLOW


def _fill(cell: _Cell, text: str, **style: object) -> Paragraph:
    paragraph = cell.paragraphs[0]
    _text(paragraph, text, **style)  # type: ignore[arg-type]
    return paragraph


def _page_number(paragraph: Paragraph) -> None:
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), " PAGE ")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "2"
    run.append(text)
    field.append(run)
    paragraph.add_run("- ")
    paragraph._p.append(field)
    paragraph.add_run(" -")


def build(event: EventSettings) -> bytes:
    """The template's bytes for this event."""
    number = f"{event.numbering_prefix}{'x' * event.numbering_width}"
    document = docx.Document()
    _page_setup(document, number)
    _header_table(document, event, number)
    document.add_paragraph()
    _text(document.add_paragraph(), "[Your text starts here.", sample=True)
    for line in CHECKLIST:
        _text(document.add_paragraph(), line, sample=True)
    _text(document.add_paragraph(), "]", sample=True)
    document.add_paragraph("_______________________").alignment = WD_ALIGN_PARAGRAPH.CENTER
    _properties(document, event)
    raw = io.BytesIO()
    document.save(raw)
    return _reproducible(raw.getvalue())


def _page_setup(document: Document, number: str) -> None:
    """Times New Roman 12 on A4; pages 2 onwards carry "- n -" and the document number."""
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"  # type: ignore[attr-defined]
    style.font.size = Pt(12)  # type: ignore[attr-defined]
    section = document.sections[0]
    section.page_width, section.page_height = Twips(11907), Twips(16840)  # A4
    for side in ("top_margin", "bottom_margin", "left_margin", "right_margin"):
        setattr(section, side, Twips(1134))
    section.different_first_page_header_footer = True  # the first page has the table
    header = section.header
    _page_number(header.paragraphs[0])
    header.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    header.add_paragraph(number).alignment = WD_ALIGN_PARAGRAPH.CENTER


_FIELDS = (
    ("Source:", "[Insert source(s): organization(s) and country]"),
    ("Title:", "[Insert title (always in English)]"),
    ("Purpose:", "[Proposal, Discussion or Information]"),
    ("Contact:", None),
    ("Keywords:", "[Insert keywords, separated by commas]"),
    (
        "Abstract:",
        "[Insert an abstract under 200 words that describes the proposals and "
        "content of the document. It will be used to describe your document in "
        "the meeting report.]",
    ),
)


def _header_table(document: Document, event: EventSettings, number: str) -> None:
    """The first page's table: the ITU block, the number, the group, the meeting, the fields."""
    table = document.add_table(rows=11, cols=3)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for row in table.rows:
        for cell, width in zip(row.cells, _WIDTHS, strict=True):
            cell.width = width

    itu = table.cell(0, 0).merge(table.cell(2, 1))
    _fill(itu, "INTERNATIONAL TELECOMMUNICATION UNION", size=8)
    _text(itu.add_paragraph(), "TELECOMMUNICATION\nSTANDARDIZATION SECTOR", bold=True, size=13)
    _text(itu.add_paragraph(), f"STUDY PERIOD {event.checks.study_period}", size=10)
    _fill(table.cell(0, 2), number, bold=True, size=14)
    _fill(table.cell(1, 2), f"{event.group} ({event.acronym})", bold=True)
    _fill(table.cell(2, 2), "Original: English")

    _fill(table.cell(3, 0), "Question(s):", bold=True)
    _fill(table.cell(3, 1), "N/A")
    _fill(table.cell(3, 2), f"{event.meeting_place}, {day_text(event.meeting_date)}")
    banner = _fill(table.cell(4, 0).merge(table.cell(4, 2)), "DOCUMENT", bold=True)
    banner.alignment = WD_ALIGN_PARAGRAPH.CENTER

    for offset, (label, sample) in enumerate(_FIELDS):
        row = 5 + offset
        _fill(table.cell(row, 0), label, bold=True)
        if sample is None:
            _fill(table.cell(row, 1), "Insert contact name\nInsert organization\nInsert country", sample=True)
            details = table.cell(row, 2).paragraphs[0]
            _text(details, "Tel:\t+")
            _text(details, "xx", sample=True)
            _text(details, "\nE-mail:\t")
            _text(details, "a@b.com", sample=True)
        else:
            _fill(table.cell(row, 1).merge(table.cell(row, 2)), sample, sample=True)


def _properties(document: Document, event: EventSettings) -> None:
    props = document.core_properties
    props.title = f"{event.acronym} document template"
    props.subject = event.name
    props.author = event.address_name or event.acronym
    props.keywords = event.acronym
    props.comments = "Made by intake.judge.make_template"
    props.created = props.modified = datetime(event.meeting_date.year, 1, 1)
    props.last_modified_by = props.author
    props.revision = 1


def _reproducible(data: bytes) -> bytes:
    """The same package with fixed entry times, so equal input gives equal bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def load_event(config: Path) -> EventSettings:
    """The config file's [event], without requiring its template to exist yet."""
    from intake.config.loader import _Reader  # the one config reader; the template may not exist yet

    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    tables = {name: dict(raw.get(name, {})) for name in ("service", "imap", "smtp", "event")}
    tables["event"].pop("template", None)
    return _Reader(tables, {}, config.resolve().parent, config).event()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the event's TOML file")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .docx")
    args = parser.parse_args(argv)
    try:
        data = build(load_event(args.config))
    except (ConfigError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"make_template: {exc}", file=sys.stderr)
        return 2
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

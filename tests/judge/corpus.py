"""Builders for the judge's test corpus: every file is made here, none is stored.

Word documents are made three ways, as contributors make them: ITU-T's own
template (../shared/fixtures) filled in with python-docx, which keeps Word's real
structure; the shipped JCA-MV template filled in; and documents written from
scratch with python-docx. Hostile and odd files are written byte by byte with
zipfile, a small compound-file (CFB) writer and a TNEF writer.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import docx
from docx.document import Document as DocxDocument
from docx.enum.text import WD_COLOR_INDEX
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Twips
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

ROOT = Path(__file__).resolve().parents[2]
ITU_TEMPLATE = Path("/work/shared/fixtures/itu-t-contribution-template-2025-2028.docx")
if not ITU_TEMPLATE.exists():  # beside a clone of the repository, as ../shared
    ITU_TEMPLATE = ROOT.parent / "shared" / "fixtures" / ITU_TEMPLATE.name
JCA_TEMPLATE = ROOT / "config" / "jca-mv-template.docx"

GROUP = "Joint Coordination Activity on Metaverse Standardization"
TITLE = "Proposed update to the metaverse standardization roadmap"
SOURCE = "Example Telecom Research Institute (Republic of Korea)"
ABSTRACT = (
    "This document proposes an update to the metaverse standardization roadmap, adding "
    "three recent work items and a table of liaison contacts."
)
CONTACT = ("Jane Doe", "Example Telecom Research Institute", "Korea (Republic of)")
TEL, EMAIL = "+82 42 000 0000", "jane.doe@example.org"
BODY = (
    "1 Introduction",
    "The roadmap has not been updated since the first meeting. This document proposes text.",
    "2 Proposal",
    "Add the three work items listed in the annex to clause 6 of the roadmap.",
)


def save(document: DocxDocument) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- filling a template's header ----------------------------------------------


def cells(row_element: object, table: Table) -> list[_Cell]:
    """The row's real cells (one per <w:tc>), not python-docx's grid-expanded view."""
    return [_Cell(tc, table) for tc in row_element.tc_lst]  # type: ignore[attr-defined]


def set_text(paragraph: Paragraph, text: str, highlight: bool = False) -> None:
    """Replace a paragraph's runs by `text`, keeping its paragraph properties (its style)."""
    for child in list(paragraph._p):
        if child.tag != qn("w:pPr"):
            paragraph._p.remove(child)
    for n, line in enumerate(text.split("\n")):
        run = paragraph.add_run()
        if n:
            run.add_break()
        for m, part in enumerate(line.split("\t")):
            if m:
                run.add_tab()
            run.add_text(part)
        if highlight:
            run.font.highlight_color = WD_COLOR_INDEX.YELLOW


def set_cell(cell: _Cell, text: str, highlight: bool = False) -> None:
    """Put `text` in the cell's first paragraph and drop the others."""
    first, *rest = cell.paragraphs
    set_text(first, text, highlight)
    for paragraph in rest:
        paragraph._p.getparent().remove(paragraph._p)


def rows(document: DocxDocument) -> Iterable[tuple[Table, list[_Cell]]]:
    for table in document.tables:
        for row in table._tbl.tr_lst:
            yield table, cells(row, table)


def set_field(document: DocxDocument, label: str, *values: str, occurrence: int = 0) -> None:
    """Fill the value cells after the row's `label:` cell (the n-th such row)."""
    seen = 0
    for _, row in rows(document):
        if row and row[0].text.strip() == label:
            if seen == occurrence:
                for cell, value in zip(row[1:], values, strict=False):
                    set_cell(cell, value)
                return
            seen += 1
    raise KeyError(label)


def replace_text(document: DocxDocument, old: str, new: str) -> None:
    """Replace text in every run of the body and the page headers."""
    parts = [document.element.body]
    for section in document.sections:
        for header in (section.header, section.first_page_header, section.even_page_header):
            if not header.is_linked_to_previous:
                parts.append(header._element)
    for part in parts:
        for t in part.iter(qn("w:t")):
            if t.text and old in t.text:
                t.text = t.text.replace(old, new)


def drop_highlight(document: DocxDocument) -> None:
    parts = [document.element]
    for section in document.sections:
        for header in (section.header, section.first_page_header, section.even_page_header):
            parts.append(header._element)
    for part in parts:
        for mark in list(part.iter(qn("w:highlight"))):
            mark.getparent().remove(mark)


def drop_body_from(document: DocxDocument, start: str) -> None:
    """Remove the template's own body text from the paragraph starting with `start`."""
    body = document.element.body
    dropping = False
    for child in list(body):
        if child.tag == qn("w:p"):
            text = "".join(t.text or "" for t in child.iter(qn("w:t")))
            if text.startswith(start):
                dropping = True
            if dropping:
                body.remove(child)


def write_body(document: DocxDocument, lines: Iterable[str] = BODY) -> None:
    """Add text paragraphs before the final section properties."""
    body = document.element.body
    sect = body.find(qn("w:sectPr"))
    for line in lines:
        paragraph = document.add_paragraph(line)
        if sect is not None:
            body.remove(paragraph._p)
            sect.addprevious(paragraph._p)


def filled_itu(edit: Callable[[DocxDocument], None] | None = None) -> bytes:
    """ITU-T's own template, filled in correctly for JCA-MV (two contacts)."""
    document = docx.Document(str(ITU_TEMPLATE))
    table = document.tables[0]
    top = [cells(tr, table) for tr in table._tbl.tr_lst]
    set_cell(top[0][2], "JCA-MV-I-xxx")
    set_cell(top[1][2], GROUP)
    set_cell(top[3][1], "N/A")
    set_cell(top[3][2], "Geneva, 13 May 2026")
    set_field(document, "Source:", SOURCE)
    set_field(document, "Title:", TITLE)
    set_field(document, "Contact:", "\n".join(CONTACT), f"Tel:\t{TEL}\nE-mail:\t{EMAIL}")
    set_field(
        document,
        "Contact:",
        "Kim Minsu\nExample University\nKorea (Republic of)",
        "Tel:\t+82 2 000 0000\nE-mail:\tminsu.kim@example.ac.kr",
        occurrence=1,
    )
    set_field(document, "Abstract:", ABSTRACT)
    replace_text(document, "SG12-Cn", "JCA-MV-I-xxx")
    drop_body_from(document, "[Your text starts here")
    write_body(document)
    drop_highlight(document)
    if edit:
        edit(document)
    return save(document)


def filled_jca(edit: Callable[[DocxDocument], None] | None = None) -> bytes:
    """The shipped JCA-MV template, filled in correctly."""
    document = docx.Document(str(JCA_TEMPLATE))
    set_field(document, "Source:", SOURCE)
    set_field(document, "Title:", TITLE)
    set_field(document, "Purpose:", "Proposal")
    set_field(document, "Contact:", "\n".join(CONTACT), f"Tel:\t{TEL}\nE-mail:\t{EMAIL}")
    set_field(document, "Keywords:", "metaverse, roadmap")
    set_field(document, "Abstract:", ABSTRACT)
    drop_body_from(document, "[Your text starts here")
    write_body(document)
    drop_highlight(document)
    if edit:
        edit(document)
    return save(document)


def header_table(document: DocxDocument, rows_: list[tuple[str, ...]], where: Any = None) -> None:
    """A header table of label and value cells, in the body or in a page header."""
    width = max(len(r) for r in rows_)
    if where is None:
        table = document.add_table(rows=0, cols=width)
    else:  # a page header's add_table wants a width
        table = where.add_table(rows=0, cols=width, width=Twips(9640))
    for values in rows_:
        row = table.add_row()
        for cell, value in zip(row.cells, values, strict=False):
            set_cell(cell, value)


def scratch(labels: dict[str, str] | None = None, in_page_header: bool = False) -> bytes:
    """A document written from scratch with python-docx, in the ITU layout."""
    labels = labels or {}
    document = docx.Document()
    identity = [
        (
            "INTERNATIONAL TELECOMMUNICATION UNION\nTELECOMMUNICATION STANDARDIZATION SECTOR\n"
            "STUDY PERIOD 2025-2028",
            f"JCA-MV-I-xxx\n{GROUP}\nOriginal: English",
        ),
        (labels.get("Question(s):", "Question(s):"), "N/A", "Geneva, 13 May 2026"),
    ]
    fields = [
        (labels.get("Source:", "Source:"), SOURCE),
        (labels.get("Title:", "Title:"), TITLE),
        (labels.get("Contact:", "Contact:"), "\n".join(CONTACT), f"Tel: {TEL}\nE-mail: {EMAIL}"),
        (labels.get("Abstract:", "Abstract:"), ABSTRACT),
    ]
    if in_page_header:
        section = document.sections[0]
        header_table(document, [*identity, *fields], where=section.header)
    else:
        header_table(document, [*identity, *fields])
    for line in BODY:
        document.add_paragraph(line)
    return save(document)


def merged_contacts() -> bytes:
    """Two contacts under one "Contact:" cell merged down over both rows (older templates)."""
    document = docx.Document()
    header_table(
        document,
        [
            (f"STUDY PERIOD 2025-2028\n{GROUP}", "Geneva, 13 May 2026", ""),
            ("Source:", SOURCE, ""),
            ("Title:", TITLE, ""),
            ("Contact:", "\n".join(CONTACT), f"E-mail: {EMAIL}"),
            ("", "Kim Minsu\nExample University\nKorea (Republic of)", "E-mail: minsu.kim@example.ac.kr"),
            ("Abstract:", ABSTRACT, ""),
        ],
    )
    table = document.tables[0]
    label = table.cell(3, 0).merge(table.cell(4, 0))
    set_cell(label, "Contact:")
    for line in BODY:
        document.add_paragraph(line)
    return save(document)


def scratch_paragraphs() -> bytes:
    """A header typed as paragraphs ("Source: …"), no table at all."""
    document = docx.Document()
    for line in (
        "INTERNATIONAL TELECOMMUNICATION UNION",
        "STUDY PERIOD 2025-2028",
        f"{GROUP} (JCA-MV)",
        "Geneva, 13 May 2026",
        f"Source: {SOURCE}",
        f"Title: {TITLE}",
        f"Contact: {CONTACT[0]}, {CONTACT[1]}, {CONTACT[2]}, E-mail: {EMAIL}",
        "Abstract:",
        ABSTRACT,
        *BODY,
    ):
        document.add_paragraph(line)
    return save(document)


def plain_document(lines: Iterable[str] = BODY) -> bytes:
    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    return save(document)


# --- editing documents at the XML level ----------------------------------------


def add_insertion(document: DocxDocument) -> None:
    """A tracked insertion and deletion in the first body paragraph with text."""
    paragraph = next(p for p in document.paragraphs if p.text.strip())
    ins = OxmlElement("w:ins")
    ins.set(qn("w:id"), "901")
    ins.set(qn("w:author"), "Reviewer")
    ins.set(qn("w:date"), "2026-04-01T10:00:00Z")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = " (revised)"
    run.append(text)
    ins.append(run)
    paragraph._p.append(ins)
    deletion = OxmlElement("w:del")
    deletion.set(qn("w:id"), "902")
    deletion.set(qn("w:author"), "Reviewer")
    run = OxmlElement("w:r")
    gone = OxmlElement("w:delText")
    gone.text = "old words"
    run.append(gone)
    deletion.append(run)
    paragraph._p.append(deletion)


def track_changes_on(document: DocxDocument) -> None:
    settings = document.settings.element
    settings.insert(0, OxmlElement("w:trackRevisions"))


def highlight_word(document: DocxDocument, word: str = "roadmap") -> None:
    """Highlight one body run yellow, as a contributor might leave it."""
    paragraph = next(p for p in document.paragraphs if word in p.text)
    run = paragraph.add_run(f" {word}")
    run.font.highlight_color = WD_COLOR_INDEX.YELLOW


# --- raw packages ------------------------------------------------------------------

CT_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
CT_MACRO = "application/vnd.ms-word.document.macroEnabled.main+xml"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def content_types(main: str = CT_MAIN, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main}"/>{extra}</Types>'
    ).encode()


PACKAGE_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
).encode()


def document_xml(body: str, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}'
        f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>{body}</w:body></w:document>'
    ).encode()


def para(text: str) -> str:
    return f'<w:p><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def raw_docx(parts: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as package:
        for name, data in parts.items():
            package.writestr(name, data)
    return out.getvalue()


def minimal_parts(body: str | None = None, prolog: str = "") -> dict[str, bytes]:
    return {
        "[Content_Types].xml": content_types(),
        "_rels/.rels": PACKAGE_RELS,
        "word/document.xml": document_xml(body if body is not None else para("Hello"), prolog),
    }


def with_rels(parts: dict[str, bytes], rels: str, settings: bool = True) -> dict[str, bytes]:
    """Add word/_rels/document.xml.rels (and a settings part that uses rId1)."""
    parts = dict(parts)
    parts["word/_rels/document.xml.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f"{rels}</Relationships>"
    ).encode()
    return parts


def settings_rels(target: str, mode: str = ' TargetMode="External"') -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/attachedTemplate" Target="{target}"{mode}/>'
        "</Relationships>"
    ).encode()


def attach_template(data: bytes, target: str) -> bytes:
    """The remote (or local) template trick: settings.xml names a template by relationship."""
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        parts = {info.filename: package.read(info) for info in package.infolist()}
    settings = parts["word/settings.xml"].decode()
    assert f'xmlns:r="{R_NS}"' in settings
    at = settings.index(">", settings.index("<w:settings")) + 1
    parts["word/settings.xml"] = (
        settings[:at] + '<w:attachedTemplate r:id="rIdT1"/>' + settings[at:]
    ).encode()
    parts["word/_rels/settings.xml.rels"] = settings_rels(target).replace(b"rId1", b"rIdT1")
    return raw_docx(parts)


def replace_part(data: bytes, name: str, new: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        parts = {info.filename: package.read(info) for info in package.infolist()}
    parts[name] = new
    return raw_docx(parts)


def billion_laughs() -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    prolog = f"<!DOCTYPE w:document [{entities}]>"
    return raw_docx(minimal_parts(para("&lol9;"), prolog))


def xxe() -> bytes:
    prolog = '<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return raw_docx(minimal_parts(para("&xxe;"), prolog))


def external_dtd() -> bytes:
    prolog = '<!DOCTYPE w:document SYSTEM "http://attacker.example/evil.dtd">'
    return raw_docx(minimal_parts(para("Hello"), prolog))


def macro_docx() -> bytes:
    """A .docm's content (macro content type and vbaProject.bin), as if renamed .docx."""
    extra = '<Override PartName="/word/vbaProject.bin" ContentType="application/vnd.ms-office.vbaProject"/>'
    parts = minimal_parts()
    parts["[Content_Types].xml"] = content_types(CT_MACRO, extra)
    parts["word/vbaProject.bin"] = b"\xd0\xcf\x11\xe0" + b"\x00" * 600  # its bytes do not matter
    return raw_docx(parts)


def spreadsheet() -> bytes:
    parts = {
        "[Content_Types].xml": (
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.sheet.main+xml"/></Types>'
        ),
        "_rels/.rels": PACKAGE_RELS.replace(b"word/document.xml", b"xl/workbook.xml"),
        "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
    }
    return raw_docx(parts)


def plain_zip(names: Iterable[str] = ("notes.txt",)) -> bytes:
    return raw_docx({name: b"some notes\n" for name in names})


def zip_with_raw_name(name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for part, data in minimal_parts().items():
            package.writestr(part, data)
        package.writestr(zipfile.ZipInfo(name), b"x")
    return out.getvalue()


def duplicate_part() -> bytes:
    out = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate: that is the point
        with zipfile.ZipFile(out, "w") as package:
            for part, data in minimal_parts().items():
                package.writestr(part, data)
            package.writestr("word/document.xml", document_xml(para("Second copy")))
    return out.getvalue()


def many_parts(count: int) -> bytes:
    parts = minimal_parts()
    for n in range(count):
        parts[f"customXml/item{n}.bin"] = b""
    return raw_docx(parts, zipfile.ZIP_STORED)


def encrypted_member() -> bytes:
    """A package whose document part has the 'encrypted' flag set (bit 0)."""
    data = bytearray(raw_docx(minimal_parts(), zipfile.ZIP_STORED))
    name = b"word/document.xml"
    local = data.find(b"PK\x03\x04" + bytes(2))  # every local header; patch the one with the name
    while local >= 0:
        name_len = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30 : local + 30 + name_len] == name:
            data[local + 6] |= 1
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_len] == name:
            data[central + 8] |= 1
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def bad_crc() -> bytes:
    """A stored document part with one byte changed after the CRC was written."""
    data = bytearray(raw_docx(minimal_parts(para("Hello world")), zipfile.ZIP_STORED))
    at = data.find(b"Hello world")
    data[at] = ord("J")
    return bytes(data)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# --- zip bombs ---------------------------------------------------------------------

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")


def _raw_zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """Write a zip by hand: (name, deflated data, crc, declared size, method) per entry.

    zipfile cannot write a part whose directory lies about its size; a bomb needs that.
    """
    out = io.BytesIO()
    central = io.BytesIO()
    for name, data, crc, size, method in entries:
        offset = out.tell()
        raw_name = name.encode()
        out.write(_LOCAL.pack(b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(raw_name), 0))
        out.write(raw_name)
        out.write(data)
        central.write(
            _CENTRAL.pack(
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(raw_name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
        )
        central.write(raw_name)
    directory = central.getvalue()
    start = out.tell()
    out.write(directory)
    out.write(_END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), start, 0))
    return out.getvalue()


def _deflated(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def zip_bomb(size: int = 2**30, honest: bool = True) -> bytes:
    """A .docx whose document part inflates to `size` bytes (1 GiB by default) of XML.

    Made from one deflated MiB of spaces repeated: a full flush between copies makes
    each one a stand-alone deflate block, so the stream is valid and small (~1 MB).
    """
    head = document_xml("")[: -len(b"</w:body></w:document>")]
    tail = b"</w:body></w:document>"
    mib = b" " * 2**20
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    last = packer.compress(tail) + packer.flush()
    copies = (size - len(head) - len(tail)) // len(mib)
    stream = first + block * copies + last
    crc = zlib.crc32(head)
    for _ in range(copies):
        crc = zlib.crc32(mib, crc)
    crc = zlib.crc32(tail, crc)
    inflated = len(head) + copies * len(mib) + len(tail)
    entries = [
        (name, _deflated(data), zlib.crc32(data), len(data), 8)
        for name, data in (("[Content_Types].xml", content_types()), ("_rels/.rels", PACKAGE_RELS))
    ]
    entries.append(("word/document.xml", stream, crc, inflated if honest else 1000, 8))
    return _raw_zip(entries)


# --- compound files (Word 97-2003, password-protected Office) ------------------------

_FREE, _END_OF_CHAIN, _FAT_SECTOR, _NO_STREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal CFB (v3, 512-byte sectors): one FAT sector, one directory sector.

    Each stream is padded to at least 4096 bytes so that it lives in the regular
    FAT and no mini stream is needed. At most three streams.
    """
    assert len(streams) <= 3
    sector = 512
    body: list[bytes] = []
    fat = [_FAT_SECTOR, _END_OF_CHAIN]  # sector 0: FAT, sector 1: directory
    starts: list[tuple[str, int, int]] = []
    next_sector = 2
    for name, data in streams.items():
        data = data.ljust(4096, b"\0")
        data = data.ljust(-(-len(data) // sector) * sector, b"\0")
        count = len(data) // sector
        starts.append((name, next_sector, len(data)))
        fat.extend(list(range(next_sector + 1, next_sector + count)) + [_END_OF_CHAIN])
        next_sector += count
        body.append(data)
    assert len(fat) <= 128
    fat_sector = struct.pack("<128I", *(fat + [_FREE] * (128 - len(fat))))

    def entry(name: str, kind: int, left: int, right: int, child: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBB", len(raw), kind, 1)
            + struct.pack("<III", left, right, child)
            + bytes(16)
            + bytes(4)
            + bytes(16)
            + struct.pack("<IQ", start, size)
        )

    ids = list(range(1, len(starts) + 1))
    directory = entry("Root Entry", 5, _NO_STREAM, _NO_STREAM, ids[0], _END_OF_CHAIN, 0)
    for n, (name, start, size) in enumerate(starts):
        right = ids[n + 1] if n + 1 < len(ids) else _NO_STREAM
        directory += entry(name, 2, _NO_STREAM, right, _NO_STREAM, start, size)
    directory = directory.ljust(sector, b"\0")
    unused = (
        bytes(64)
        + struct.pack("<HBB", 0, 0, 0)
        + struct.pack("<III", _NO_STREAM, _NO_STREAM, _NO_STREAM)
        + bytes(44)
    )
    directory = directory[: 128 * (len(starts) + 1)] + unused * (3 - len(starts))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, _END_OF_CHAIN, 0, _END_OF_CHAIN, 0)
        + struct.pack("<109I", 0, *([_FREE] * 108))
    )
    assert len(header) == 512
    return header + fat_sector + directory + b"".join(body)


def legacy_doc() -> bytes:
    return compound_file({"WordDocument": b"\xec\xa5" + bytes(100), "1Table": bytes(100)})


def encrypted_docx() -> bytes:
    """What Word writes for a password-protected .docx: a CFB with the encrypted package."""
    info = struct.pack("<HHI", 4, 4, 0x40) + b"<encryption/>"  # agile encryption header
    return compound_file({"EncryptionInfo": info, "EncryptedPackage": bytes(5000)})


# --- other files ---------------------------------------------------------------------

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nEMAIL:jane.doe@example.org\r\nEND:VCARD\r\n"
P7S = bytes.fromhex("3082011b06092a864886f70d010702a082010c30820108020101310b300906")
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A winmail.dat with the given attachments (title and data attributes)."""

    def obj(level: int, name: int, kind: int, data: bytes) -> bytes:
        return (
            struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
        )

    out = struct.pack("<IH", 0x223E9F78, 1)
    out += obj(1, 0x9006, 0x0009, struct.pack("<I", 0x00010000))  # TNEF version
    out += obj(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))  # OEM code page
    for name, data in files:
        out += obj(2, 0x9002, 0x0006, bytes(14))  # rendering data: starts an attachment
        out += obj(2, 0x8010, 0x0001, name.encode() + b"\0")  # file name
        out += obj(2, 0x800F, 0x0006, data)  # data
    return out

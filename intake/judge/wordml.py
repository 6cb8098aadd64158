"""Reading a Word (.docx) package's text, tables and marks, from a safe `Archive`.

Our own streaming reader rather than python-docx: it sees every part through
the safety layer's bounded, defused reading, keeps only what the judge needs
(paragraph text, table cells, highlighted spans, revision counts), and never
meets python-docx's KeyError on dangling relationships. It reads the main
document, the page headers it references and the settings; every other XML
part is read only up to its root element (where a DTD would have to be), and
every part is drained through the byte budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from intake.findings import found
from intake.judge.safety import (
    Archive,
    PrologOnly,
    Refusal,
    RelsReader,
    XmlTarget,
    check_relationships,
    rels_name,
    resolve,
)

_W = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",  # "Strict Open XML" saves
)
_R = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships",
)
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_YELLOW_FILLS = {"ffff00", "yellow"}
# Old properties kept beside a formatting revision: not what the reader sees.
_FORMAT_CHANGES = {
    "rPrChange",
    "pPrChange",
    "sectPrChange",
    "tblPrChange",
    "trPrChange",
    "tcPrChange",
    "tblGridChange",
    "numberingChange",
}
# Text a reader does not see: deleted text, field codes, content-control settings.
_INVISIBLE = {"delText", "instrText", "delInstrText", "sdtPr", "sdtEndPr"}


@dataclass
class Paragraph:
    text: str
    highlights: list[tuple[int, int]] = field(default_factory=list)  # [start, end) in text


@dataclass
class Cell:
    paragraphs: list[Paragraph]
    continued: bool = False  # the lower part of a vertically merged cell

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.paragraphs)


@dataclass
class Row:
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def paragraphs(self) -> list[Paragraph]:
        return [p for row in self.rows for cell in row.cells for p in cell.paragraphs]


Block = Paragraph | Table


@dataclass
class Marks:
    """Revision marks and highlighting anywhere in the parts read."""

    insertions: int = 0
    deletions: int = 0
    moves: int = 0
    format_changes: int = 0
    highlighted: list[str] = field(default_factory=list)  # highlighted texts, in order

    @property
    def revisions(self) -> int:
        return self.insertions + self.deletions + self.moves + self.format_changes


@dataclass
class WordContent:
    body: list[Block]
    page_headers: list[list[Block]]  # first-page header first, then default, then even
    marks: Marks
    track_revisions: bool  # "Track Changes" is switched on


class _ParaBuilder:
    def __init__(self) -> None:
        self.pieces: list[tuple[str, bool]] = []
        self.floating: list[Block] = []  # text boxes anchored in this paragraph
        self.run_highlight = False

    def finish(self) -> Paragraph:
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        at = 0
        joinable = False  # only spaces since the last highlighted piece: one span goes on
        for piece, lit in self.pieces:
            if lit and piece.strip():
                if spans and joinable:
                    spans[-1] = (spans[-1][0], at + len(piece))
                else:
                    spans.append((at, at + len(piece)))
                joinable = True
            elif piece.strip() or "\n" in piece:
                joinable = False
            parts.append(piece)
            at += len(piece)
        return Paragraph("".join(parts), spans)


_C = TypeVar("_C", _ParaBuilder, Cell, Table)


class _StoryReader:
    """An XML target that turns a body or header part into blocks, counting marks."""

    def __init__(self, marks: Marks, budget: list[int]) -> None:
        self.blocks: list[Block] = []
        self.marks = marks
        self.budget = budget  # [characters still to keep], shared by all stories
        self.stack: list[str] = []  # local names of open W elements ("" for others)
        self.skip = 0  # depth inside an element whose content is not read
        self.containers: list[_ParaBuilder | Cell | Table] = []
        self.in_text = False
        self.track_revisions = False

    # The parser gives "{namespace}local" names.
    @staticmethod
    def _local(tag: str) -> tuple[str, str]:
        if tag.startswith("{"):
            ns, _, local = tag[1:].partition("}")
            return ns, local
        return "", tag

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.skip:
            self.skip += 1
            return
        ns, local = self._local(tag)
        if ns == _MC and local == "Fallback":
            self.skip = 1  # the same content again, for older readers
            return
        name = local if ns in _W else ""
        parent = self.stack[-1] if self.stack else ""
        self.stack.append(name)
        if not name:
            return
        if name in _FORMAT_CHANGES:
            self.marks.format_changes += 1
            self.skip = 1
            self.stack.pop()
            return
        if name in _INVISIBLE:
            self.skip = 1
            self.stack.pop()
            return
        if name == "ins":
            self.marks.insertions += 1
        elif name == "del":
            self.marks.deletions += 1
        elif name in ("moveFrom", "moveTo"):
            self.marks.moves += 1
            if name == "moveFrom" and parent != "rPr":
                self.skip = 1  # the old place of moved text
                self.stack.pop()
        elif name == "p":
            self.containers.append(_ParaBuilder())
        elif name == "tbl":
            self.containers.append(Table())
        elif name == "tr":
            table = self._innermost(Table)
            if table is not None:
                table.rows.append(Row())
        elif name == "tc":
            self.containers.append(Cell([]))
        elif name == "vMerge" and parent == "tcPr":
            cell = self._innermost(Cell)
            if cell is not None:
                cell.continued = _attr(attrib, "val") != "restart"
        elif name == "r":
            para = self._innermost(_ParaBuilder)
            if para is not None:
                para.run_highlight = False
        elif name == "highlight" and parent == "rPr" and self._grandparent() == "r":
            para = self._innermost(_ParaBuilder)
            if para is not None and _attr(attrib, "val") not in ("", "none"):
                para.run_highlight = _attr(attrib, "val").lower() == "yellow"
        elif name == "shd" and parent == "rPr" and self._grandparent() == "r":
            para = self._innermost(_ParaBuilder)
            if para is not None and _attr(attrib, "fill").lower() in _YELLOW_FILLS:
                para.run_highlight = True
        elif name == "t":
            self.in_text = True
        elif name == "tab" and parent == "r":
            self._add("\t")
        elif name in ("br", "cr"):
            self._add("\n")
        elif name == "noBreakHyphen":
            self._add("-")
        elif name == "trackRevisions":
            self.track_revisions = _attr(attrib, "val").lower() not in ("false", "0", "off")

    def _grandparent(self) -> str:
        return self.stack[-3] if len(self.stack) >= 3 else ""

    def end(self, tag: str) -> None:
        if self.skip:
            self.skip -= 1
            return
        name = self.stack.pop() if self.stack else ""
        if name == "t":
            self.in_text = False
        elif name == "p":
            builder = self.containers.pop() if self.containers else None
            if isinstance(builder, _ParaBuilder):
                paragraph = builder.finish()
                for lo, hi in paragraph.highlights:
                    self.marks.highlighted.append(token_span(paragraph.text, lo, hi))
                self._emit(paragraph)
                for block in builder.floating:
                    self._emit(block)
        elif name == "tc":
            cell = self.containers.pop() if self.containers else None
            table = self._innermost(Table)
            if isinstance(cell, Cell) and table is not None and table.rows:
                table.rows[-1].cells.append(cell)
        elif name == "tbl":
            done = self.containers.pop() if self.containers else None
            if isinstance(done, Table):
                self._emit(done)

    def _emit(self, block: Block) -> None:
        parent = self.containers[-1] if self.containers else None
        if parent is None:
            self.blocks.append(block)
        elif isinstance(parent, Cell):
            # A table inside a cell reads as more lines of that cell.
            parent.paragraphs.extend(block.paragraphs() if isinstance(block, Table) else [block])
        elif isinstance(parent, _ParaBuilder):
            parent.floating.append(block)

    def _innermost(self, kind: type[_C]) -> _C | None:
        """The nearest open container of a kind; a table or cell is not looked for past a paragraph."""
        for item in reversed(self.containers):
            if isinstance(item, kind):
                return item
            if kind is not _ParaBuilder and isinstance(item, _ParaBuilder):
                return None
        return None

    def _add(self, text: str) -> None:
        para = self._innermost(_ParaBuilder)
        if not isinstance(para, _ParaBuilder) or self.budget[0] <= 0:
            return
        text = text[: self.budget[0]]
        self.budget[0] -= len(text)
        para.pieces.append((text, para.run_highlight))

    def data(self, text: str) -> None:
        if self.in_text and not self.skip:
            self._add(text)

    def close(self) -> None:
        return None


def token_span(text: str, lo: int, hi: int) -> str:
    """The highlighted text widened to whole words: "n" in "SG12-Cn" reads "SG12-Cn"."""
    while lo > 0 and not text[lo - 1].isspace():
        lo -= 1
    while hi < len(text) and not text[hi].isspace():
        hi += 1
    return text[lo:hi]


def _attr(attrib: dict[str, str], local: str) -> str:
    for key, value in attrib.items():
        if key.rsplit("}", 1)[-1] == local:
            return value
    return ""


class _HeaderRefs:
    """Collects the relationship ids of page headers while the main part is read."""

    def __init__(self, inner: _StoryReader) -> None:
        self.inner = inner
        self.ids: list[tuple[str, str]] = []  # (type: first/default/even, r:id)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag.endswith("}headerReference") and tag[1:].split("}")[0] in _W:
            rid = next((v for k, v in attrib.items() if k[1:].split("}")[0] in _R), "")
            self.ids.append((_attr(attrib, "type") or "default", rid))
        self.inner.start(tag, attrib)

    def end(self, tag: str) -> None:
        self.inner.end(tag)

    def data(self, text: str) -> None:
        self.inner.data(text)

    def close(self) -> None:
        return None


def read_word(archive: Archive, main_part: str) -> WordContent:
    """Read the document; raises Refusal (safety or damage) on the first problem."""
    limits = archive.limits
    marks = Marks()
    budget = [limits.max_text_chars]
    done: set[str] = set()

    def parse(part: str, target: XmlTarget) -> None:
        done.add(part.lower())
        archive.parse(part, target)

    # Every relationship part first: nothing is read from a package that links outside.
    rels: dict[str, RelsReader] = {}
    for name in archive.names:
        if name.lower().endswith(".rels"):
            reader = RelsReader()
            parse(name, reader)
            rels[name.lower()] = reader
            check_relationships(name, reader.items)

    if not archive.has(main_part):
        raise Refusal(found("safety.damaged", detail=f"the main part {main_part} is missing"))
    body = _StoryReader(marks, budget)
    refs = _HeaderRefs(body)
    parse(main_part, refs)

    main_rels = rels.get(rels_name(main_part).lower())
    targets = {r.id: resolve(main_part, r.target) for r in (main_rels.items if main_rels else [])}
    order = {"first": 0, "default": 1, "even": 2}
    headers: list[list[Block]] = []
    for _, rid in sorted(refs.ids, key=lambda item: order.get(item[0], 3)):
        part = targets.get(rid)
        if not part or part.lower() in done or not archive.has(part):
            continue  # a dangling reference: Word shows no header there either
        story = _StoryReader(marks, budget)
        parse(part, story)
        headers.append(story.blocks)

    track = False
    settings = next(
        (
            resolve(main_part, r.target)
            for r in (main_rels.items if main_rels else [])
            if r.type == "settings"
        ),
        None,
    )
    if settings and archive.has(settings) and settings.lower() not in done:
        options = _StoryReader(Marks(), [0])
        parse(settings, options)
        track = options.track_revisions

    for name in archive.names:
        if name.lower() in done:
            continue
        if name.lower().endswith((".xml", ".vml")):
            archive.parse(name, PrologOnly())
        else:
            archive.drain(name)
    return WordContent(body=body.blocks, page_headers=headers, marks=marks, track_revisions=track)

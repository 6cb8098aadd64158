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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from intake.findings import found
from intake.judge.safety import (
    Archive,
    PrologOnly,
    Refusal,
    Relationship,
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


_FALLBACK = "\0mc:Fallback"  # not a Word name: the same content again, for older readers
_NAMES: dict[str, str] = {}  # expat's "namespace}local" -> the Word name, "" or _FALLBACK


def _word_name(tag: str) -> str:
    """The local name of a Word element ("" for any other), remembered across documents."""
    name = _NAMES.get(tag)
    if name is None:
        ns, _, local = tag.rpartition("}")
        name = local if ns in _W else _FALLBACK if (ns, local) == (_MC, "Fallback") else ""
        if len(_NAMES) < 4096:  # a hostile file's made-up names are not kept forever
            _NAMES[tag] = name
    return name


class _StoryReader:
    """An XML target that turns a body or header part into blocks, counting marks.

    Each element costs one dictionary look-up unless its name is one the reader acts on
    (`_ACTIONS`): a document.xml holds some 500 elements, most of them run properties."""

    def __init__(
        self, marks: Marks, budget: list[int], header_refs: list[tuple[str, str]] | None = None
    ) -> None:
        self.blocks: list[Block] = []
        self.marks = marks
        self.budget = budget  # [characters still to keep], shared by all stories
        self.stack: list[str] = []  # Word names of open elements ("" for others)
        self.skip = 0  # depth inside an element whose content is not read
        self.containers: list[_ParaBuilder | Cell | Table] = []
        self.in_text = False
        self.track_revisions = False
        self.header_refs = header_refs  # (type: first/default/even, r:id) of page headers, if wanted

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.skip:
            self.skip += 1
            return
        name = _word_name(tag)
        if name == _FALLBACK:
            self.skip = 1
            return
        self.stack.append(name)
        action = _ACTIONS.get(name) if name else None
        if action is not None:
            action(self, name, attrib)

    def _parent(self) -> str:
        return self.stack[-2] if len(self.stack) >= 2 else ""

    def _grandparent(self) -> str:
        return self.stack[-3] if len(self.stack) >= 3 else ""

    def _skip(self, name: str, attrib: dict[str, str]) -> None:
        self.skip = 1
        self.stack.pop()

    def _format_change(self, name: str, attrib: dict[str, str]) -> None:
        self.marks.format_changes += 1
        self._skip(name, attrib)

    def _insertion(self, name: str, attrib: dict[str, str]) -> None:
        self.marks.insertions += 1

    def _deletion(self, name: str, attrib: dict[str, str]) -> None:
        self.marks.deletions += 1

    def _move(self, name: str, attrib: dict[str, str]) -> None:
        self.marks.moves += 1
        if name == "moveFrom" and self._parent() != "rPr":
            self._skip(name, attrib)  # the old place of moved text

    def _open(self, name: str, attrib: dict[str, str]) -> None:
        self.containers.append(_ParaBuilder() if name == "p" else Table() if name == "tbl" else Cell([]))

    def _row(self, name: str, attrib: dict[str, str]) -> None:
        table = self._innermost(Table)
        if table is not None:
            table.rows.append(Row())

    def _merge(self, name: str, attrib: dict[str, str]) -> None:
        cell = self._innermost(Cell) if self._parent() == "tcPr" else None
        if cell is not None:
            cell.continued = _attr(attrib, "val") != "restart"

    def _run(self, name: str, attrib: dict[str, str]) -> None:
        para = self._innermost(_ParaBuilder)
        if para is not None:
            para.run_highlight = False

    def _highlight(self, name: str, attrib: dict[str, str]) -> None:
        if self._parent() != "rPr" or self._grandparent() != "r":
            return
        para = self._innermost(_ParaBuilder)
        if para is None:
            return
        if name == "highlight":
            if _attr(attrib, "val") not in ("", "none"):
                para.run_highlight = _attr(attrib, "val").lower() == "yellow"
        elif _attr(attrib, "fill").lower() in _YELLOW_FILLS:
            para.run_highlight = True

    def _text(self, name: str, attrib: dict[str, str]) -> None:
        self.in_text = True

    def _character(self, name: str, attrib: dict[str, str]) -> None:
        if name != "tab" or self._parent() == "r":
            self._add(_CHARACTERS[name])

    def _track(self, name: str, attrib: dict[str, str]) -> None:
        self.track_revisions = _attr(attrib, "val").lower() not in ("false", "0", "off")

    def _header(self, name: str, attrib: dict[str, str]) -> None:
        if self.header_refs is not None:
            rid = next((v for k, v in attrib.items() if k.rpartition("}")[0] in _R), "")
            self.header_refs.append((_attr(attrib, "type") or "default", rid))

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


_CHARACTERS = {"tab": "\t", "br": "\n", "cr": "\n", "noBreakHyphen": "-"}
# What the reader does on opening a Word element; every other element is only stacked.
_ACTIONS: dict[str, Callable[[_StoryReader, str, dict[str, str]], None]] = {
    **{name: _StoryReader._format_change for name in _FORMAT_CHANGES},
    **{name: _StoryReader._skip for name in _INVISIBLE},
    "ins": _StoryReader._insertion,
    "del": _StoryReader._deletion,
    "moveFrom": _StoryReader._move,
    "moveTo": _StoryReader._move,
    "p": _StoryReader._open,
    "tbl": _StoryReader._open,
    "tc": _StoryReader._open,
    "tr": _StoryReader._row,
    "vMerge": _StoryReader._merge,
    "r": _StoryReader._run,
    "highlight": _StoryReader._highlight,
    "shd": _StoryReader._highlight,
    "t": _StoryReader._text,
    **{name: _StoryReader._character for name in _CHARACTERS},
    "trackRevisions": _StoryReader._track,
    "headerReference": _StoryReader._header,
}


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
    rels: dict[str, list[Relationship]] = {}
    for name in archive.names:
        if name.lower().endswith(".rels"):
            rels[name.lower()] = archive.relationships(name)
            check_relationships(name, rels[name.lower()])

    if not archive.has(main_part):
        raise Refusal(found("safety.damaged", detail=f"the main part {main_part} is missing"))
    header_refs: list[tuple[str, str]] = []
    body = _StoryReader(marks, budget, header_refs)
    parse(main_part, body)

    main_rels = rels.get(rels_name(main_part).lower(), [])
    targets = {r.id: resolve(main_part, r.target) for r in main_rels}
    order = {"first": 0, "default": 1, "even": 2}
    headers: list[list[Block]] = []
    for _, rid in sorted(header_refs, key=lambda item: order.get(item[0], 3)):
        part = targets.get(rid)
        if not part or part.lower() in done or not archive.has(part):
            continue  # a dangling reference: Word shows no header there either
        story = _StoryReader(marks, budget)
        parse(part, story)
        headers.append(story.blocks)

    track = False
    settings = next(
        (resolve(main_part, r.target) for r in main_rels if r.type == "settings"),
        None,
    )
    if settings and archive.has(settings) and settings.lower() not in done:
        options = _StoryReader(Marks(), [0])
        parse(settings, options)
        track = options.track_revisions

    for name in archive.names:
        if name.lower() in done or name.lower() in archive.parsed:
            continue
        if name.lower().endswith((".xml", ".vml")):
            archive.parse(name, PrologOnly())
        else:
            archive.drain(name)
    return WordContent(body=body.blocks, page_headers=headers, marks=marks, track_revisions=track)

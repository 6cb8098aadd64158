"""Reading a document's header block as a person reads it.

The header is the table (or the lines) at the top of the first page where the
template puts its labels ("Source:", "Title:", "Contact:" …) beside their values,
under the ITU block that names the sector, study period, group and meeting. It
may be the first table of the body, or sit in the page header; labels may be in
cells of their own or typed as "Label: value". `read_zone` sorts what it finds
into labelled entries, the header's other text (its identity), and the body.
Which texts are labels is the caller's `LabelTest`: any short "Word:" when a
template is being learned, the template's own labels when a document is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from intake.judge.wordml import Block, Cell, Paragraph, Row, Table, WordContent
from intake.text import same_label, split_inline_label

# The header sits in the first blocks of the body; a label further down is body text.
_ZONE_BLOCKS = 40
# ITU-T splits a contact over two cells (name, organization, country | Tel, E-mail).
_WHOLE_ROW = ("contact",)


@dataclass
class Entry:
    """One label found in a header, with the paragraphs that are its value."""

    key: str
    label: str
    value: list[Paragraph] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.value).strip()


@dataclass
class Zone:
    entries: list[Entry] = field(default_factory=list)
    identity: list[Paragraph] = field(default_factory=list)  # header text outside the fields
    body: list[Paragraph] = field(default_factory=list)


# A label test: (text, whole) -> (key, label) or None. `whole` is False for "Label: value".
LabelTest = Callable[[str, bool], tuple[str, str] | None]


def read_zone(content: WordContent, is_label: LabelTest, learning: bool = False) -> Zone:
    zone = Zone()
    for story in content.page_headers:
        _read_blocks(story, is_label, zone, learning)
    body = content.body
    end = 0
    for index, block in enumerate(body[:_ZONE_BLOCKS]):
        if _holds_label(block, is_label, learning):
            end = index + 1
    last = body[end - 1] if end else None
    if isinstance(last, Paragraph) and is_label(last.text, True):
        # A label alone on its line takes the next paragraph with text as its value.
        while end < len(body) and _blank(body[end]):
            end += 1
        end = min(end + 1, len(body))
    _read_blocks(body[:end], is_label, zone, learning)
    for block in body[end:]:
        zone.body.extend(block.paragraphs() if isinstance(block, Table) else [block])
    return zone


def _blank(block: Block) -> bool:
    return isinstance(block, Paragraph) and not block.text.strip()


def _holds_label(block: Block, is_label: LabelTest, learning: bool) -> bool:
    if isinstance(block, Table):
        for row in block.rows:
            for cell in row.cells:
                if cell.continued:
                    continue
                if is_label(cell.text, True):
                    return True
                if not learning and cell.paragraphs and _inline(cell.paragraphs[0], is_label):
                    return True
        return False
    return bool(is_label(block.text, True) or _inline(block, is_label))


def _inline(para: Paragraph, is_label: LabelTest) -> tuple[str, str, str] | None:
    parts = split_inline_label(para.text)
    if not parts or not parts[1]:
        return None
    hit = is_label(parts[0], False)
    return (hit[0], hit[1], parts[1]) if hit else None


def _read_blocks(blocks: list[Block], is_label: LabelTest, zone: Zone, learning: bool) -> None:
    seen_label = False
    pending: Entry | None = None  # a label alone on its line, waiting for its value
    for block in blocks:
        if isinstance(block, Table):
            last: Entry | None = None
            for row in block.rows:
                last = _read_row(row, is_label, zone, last, learning)
                seen_label = seen_label or last is not None
            pending = None
            continue
        alone = is_label(block.text, True) if block.text.strip() else None
        typed = None if alone else _inline(block, is_label)
        if alone:
            pending = Entry(alone[0], alone[1])
            zone.entries.append(pending)
            seen_label = True
        elif typed:
            zone.entries.append(Entry(typed[0], typed[1], [Paragraph(typed[2])]))
            pending = None
            seen_label = True
        elif pending is not None and block.text.strip():
            pending.value.append(block)
            pending = None
        elif not seen_label:
            zone.identity.append(block)


def _read_row(row: Row, is_label: LabelTest, zone: Zone, last: Entry | None, learning: bool) -> Entry | None:
    """Read one table row; returns the entry that a following row may continue."""
    cells = row.cells
    marks = [
        (index, found_label)
        for index, cell in enumerate(cells)
        if not cell.continued and (found_label := is_label(cell.text, True))
    ]
    if marks:
        for cell in cells[: marks[0][0]]:
            _identity(zone, cell)
        entry: Entry | None = None
        for n, (index, (key, label)) in enumerate(marks):
            stop = marks[n + 1][0] if n + 1 < len(marks) else len(cells)
            values = [c for c in cells[index + 1 : stop] if not c.continued]
            entry = Entry(key, label)
            zone.entries.append(entry)
            take = values if any(same_label(key, k) for k in _WHOLE_ROW) else values[:1]
            for cell in take:
                entry.value.extend(cell.paragraphs)
            for cell in values[len(take) :]:
                _identity(zone, cell)
        return entry
    if not learning:
        # "Source: ETRI" typed into one cell.
        hits = {
            id(cell): hit
            for cell in cells
            if not cell.continued and cell.paragraphs and (hit := _inline(cell.paragraphs[0], is_label))
        }
        if hits:
            inline: Entry | None = None
            for cell in cells:
                hit = hits.get(id(cell))
                if hit is None:
                    _identity(zone, cell)
                    continue
                inline = Entry(hit[0], hit[1], [Paragraph(hit[2]), *cell.paragraphs[1:]])
                zone.entries.append(inline)
            return inline
    if last is not None and any(c.text.strip() for c in cells):
        if not last.text:
            # The label stood alone on its row: this row is its value.
            for cell in cells:
                if not cell.continued:
                    last.value.extend(cell.paragraphs)
            return last
        lead = cells[0]
        if lead.continued or not lead.text.strip():
            # Continued under a label cell merged downwards ("Contact:" over two rows).
            rest = [p for cell in cells[1:] if not cell.continued for p in cell.paragraphs]
            another = any(same_label(last.key, k) for k in _WHOLE_ROW) and "@" in last.text
            if another and any("@" in p.text for p in rest):
                # Each contact has its own e-mail address: this row is the next contact.
                last = Entry(last.key, last.label)
                zone.entries.append(last)
            last.value.extend(rest)
            return last
    for cell in cells:
        _identity(zone, cell)
    return None


def _identity(zone: Zone, cell: Cell) -> None:
    if not cell.continued:
        zone.identity.extend(cell.paragraphs)

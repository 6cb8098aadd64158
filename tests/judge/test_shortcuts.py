"""Reading a header quickly gives exactly what reading it plainly gives.

Reading a document's header takes shortcuts for speed: a label test that looks
only at the start of a long paragraph and remembers short texts, a body search
that first asks whether a sample's words occur anywhere, an inline-label split
that rules prose out before its pattern, a character map built a word at a
time. Each is compared here with a plain reference written out in full, on
generated texts: prose, labels typed every way, sample texts left in several
paragraphs, non-ASCII forms (full-width letters and colons, combining marks,
Hangul jamo, ligatures, non-breaking and ideographic spaces), brackets and
colons in odd places. The generator is seeded, so a failure can be replayed.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace

import pytest

from intake.config import EventSettings
from intake.judge import _model
from intake.judge import template as t
from intake.judge.header import read_zone
from intake.judge.meeting import _read_dates, meeting_dates
from intake.judge.wordml import Cell, Marks, Paragraph, Row, Table, WordContent
from intake.text import (
    _fold_chars_with_map,
    display,
    display_head,
    fold,
    fold_chars,
    fold_with_map,
    label_key,
    same_label,
    split_inline_label,
)

SAMPLES = (
    "[Your text starts here",
    "Before submitting this document",
    "Insert contact name",
    "[Insert source(s)]",
    "a@b.com",
    "+xx",
)
# Pieces that fold, display or split differently from plain ASCII letters.
TRICKY = (
    *"abcXYZ019 :;[]()-_.,@'\"/\t\n\r\x0b\x0c\x1c\x00",
    "\u00a0",  # no-break space
    "\u3000",  # ideographic space
    "\u2028",  # line separator
    "\u200b",  # zero-width space
    "\u00ad",  # soft hyphen
    "\u2011",  # non-breaking hyphen
    "\u2019",  # right single quotation mark
    "\u201c",
    "\uff1a",  # full-width colon
    "\ufe55",  # small colon
    "\uff3b",  # full-width brackets
    "\uff3d",
    "\u0301",  # combining acute
    "e\u0301",
    "\u1100\u1161",  # Hangul jamo that compose
    "\u11a8",
    "\ufb01",  # fi ligature
    "\u2460",  # circled one
    "\u0661",  # Arabic-Indic one
    "\uff11",  # full-width one
    "\u03a3",
    "\u00df",
    "\u0130",
    "\uff33\uff4f\uff55\uff52\uff43\uff45",  # full-width "Source"
)
LABELS = ("Source", "Title", "Contact", "Question(s)", "E-mail", "Abstract", "SOURCE", "Contacts")
PROSE = "This contribution proposes an update to the metaverse standardization roadmap. "


class Texts:
    """Seeded texts that exercise the shortcuts: short, long, label-like, with samples."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def piece(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.1:
            return rng.choice(SAMPLES)
        if roll < 0.2:
            return rng.choice(LABELS) + rng.choice((":", " :", "\uff1a", "", "::", "\u00a0:"))
        if roll < 0.3:
            return PROSE[: rng.randint(0, len(PROSE))]
        return rng.choice(TRICKY)

    def text(self) -> str:
        rng = self.rng
        text = "".join(self.piece() for _ in range(rng.choice((0, 1, 2, 5, 12, 30, 60))))
        if rng.random() < 0.15:  # a label padded out past any head: "Source      :::"
            colons = ":" * rng.choice((0, 1, 2, 4, 50))
            text = rng.choice(LABELS) + " " * rng.randint(0, 70) + colons + " " * rng.randint(0, 30) + text
        if rng.random() < 0.15:
            text = text.replace(" ", " " * rng.randint(1, 40))
        if rng.random() < 0.1:
            text = text.upper()
        return text

    def many(self, count: int) -> Iterator[str]:
        return (self.text() for _ in range(count))


def _texts(seed: int, count: int = 3000) -> list[str]:
    fixed = [
        "",
        " ",
        "Source:",
        "Source" + " " * 60 + ":::",
        "Source" + " " * 60 + ": :",
        "x" * 45 + " " + ":" * 50,
        "Source" + ":" * 60 + " " * 30,  # the head is long only for its colons
        "S......o......u......r......c......e" + " " * 60 + ":",  # a 36-character label
        "Title" + "\u00a0" * 50 + "\uff1a",
        "e" + " " * 47 + "\u0301" * 3 + " tail",
        PROSE * 3,
        PROSE.replace(" ", "\u3000") * 2,
    ]
    return fixed + list(Texts(seed).many(count))


# --- the plain references -----------------------------------------------------


def plain_split_inline_label(text: str) -> tuple[str, str] | None:
    pattern = r"^\s*(?P<label>[^\W\d_][^:\n]{0,40}?)\s*:\s*(?P<value>.*)$"
    match = re.match(pattern, unicodedata.normalize("NFKC", text).replace("\u00a0", " "), re.DOTALL)
    return (match.group("label").strip(), match.group("value").strip()) if match else None


def plain_spec(model: t.TemplateModel, key: str) -> t.FieldSpec | None:
    return next((f for f in model.fields if same_label(f.key, key)), None)


def plain_label(model: t.TemplateModel, text: str) -> tuple[str, str] | None:
    """A document's label: the whole text displayed, at most 40 characters, a field's key."""
    shown = display(text).rstrip(":").rstrip()
    if not shown or len(shown) > 40:
        return None
    spec = plain_spec(model, label_key(shown))
    return (spec.key, spec.label) if spec else None


def plain_body_hits(paragraphs: list[Paragraph], needles: t.Needles) -> list[str]:
    """Every paragraph with text searched, one after the other."""
    return [q for p in paragraphs if p.text.strip() for q in t._hits(p.text, needles, False)]


# --- the shortcuts against them -----------------------------------------------


MODEL = t.TemplateModel(
    fields=(
        *t.BUILTIN.fields,
        t.FieldSpec("contacts", "Contacts"),  # "contact" came first: it wins
        t.FieldSpec("", "Nothing"),  # an empty key names no field
        t.FieldSpec("s", "S"),
    )
)


@pytest.mark.parametrize("seed", [1, 2])
def test_text_helpers_match_their_plain_forms(seed: int) -> None:
    for text in _texts(seed):
        assert fold(text) == " ".join(fold_chars(text).split()), ascii(text)
        if text.isascii():
            assert fold_with_map(text) == _fold_chars_with_map(text), ascii(text)
            assert fold(text) == _fold_chars_with_map(text)[0]
        folded, where = fold_with_map(text)
        assert len(folded) == len(where) and where == sorted(where), ascii(text)
        assert split_inline_label(text) == plain_split_inline_label(text), ascii(text)
        for size in (0, 8, 48):
            head, whole = display_head(text, size), display(text)
            assert not head or whole == head or whole.startswith(head + " "), (ascii(text), size)


@pytest.mark.parametrize("seed", [3, 4])
def test_the_label_test_matches_reading_the_whole_text(seed: int) -> None:
    warm = t._known(MODEL)
    for text in _texts(seed):
        expected = plain_label(MODEL, text)
        assert warm(text, True) == expected, ascii(text)
        assert warm(text, False) == expected, ascii(text)  # a second time: as remembered
        assert t._known(replace(MODEL))(text, True) == expected, ascii(text)  # nothing remembered


def test_a_full_memory_of_readings_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(t, "_KEPT_READINGS", 3)
    model = replace(MODEL)
    test = t._known(model)
    for text in [*_texts(5, 300), *_texts(5, 300)]:
        assert test(text, True) == plain_label(MODEL, text), ascii(text)
        assert len(model._readings) <= 3


def test_fields_are_found_by_key_as_same_label_finds_them() -> None:
    keys = {f.key for f in MODEL.fields} | {"", "s", "ss", "sources", "titles", "question", "contactss"}
    for key in {*keys, *(k + "s" for k in keys), *(k[:-1] for k in keys)}:
        assert MODEL.spec(key) == plain_spec(MODEL, key), key
    flipped = replace(MODEL, fields=tuple(reversed(MODEL.fields)))
    assert flipped.spec("contact") == plain_spec(flipped, "contact") == t.FieldSpec("contacts", "Contacts")


@pytest.mark.parametrize("seed", [6, 7])
def test_meeting_dates_match_reading_every_line(seed: int) -> None:
    texts = Texts(seed)
    lines = [
        "13 May 2026",
        "Geneva, 12-13 May 2026",
        "STUDY PERIOD 2025-2028",
        "\uff11\uff13 May \uff12\uff10\uff12\uff16",  # full-width digits
        "\u0661\u0663 May \u0662\u0660\u0662\u0666",  # Arabic-Indic digits
    ]
    for _ in range(1500):
        line = texts.text()
        if texts.rng.random() < 0.3:
            line += " " + texts.rng.choice(lines)
        lines.append(line)
    for line in lines:
        assert meeting_dates(line) == _read_dates(line), ascii(line)


def _body(texts: Texts, count: int) -> list[Paragraph]:
    """Paragraphs of prose, some blank, some with samples typed the ways people type them."""
    forms = (
        "[Your text starts here.",
        "[YOUR   TEXT\u00a0starts here]",
        "\uff3bYour text starts here",  # full-width bracket
        "Before submitting this document, check it",
        "before\nsubmitting  this DOCUMENT",
        "Before submit ting this document",  # the words, but not the sample
        "this document, before submitting it",
    )
    out = []
    for _ in range(count):
        roll = texts.rng.random()
        if roll < 0.1:
            out.append(Paragraph(texts.rng.choice(("", " ", "\t\n"))))
        elif roll < 0.35:
            text = texts.text()
            at = texts.rng.randint(0, len(text))
            out.append(Paragraph(text[:at] + texts.rng.choice(forms) + text[at:]))
        else:
            out.append(Paragraph(PROSE * texts.rng.randint(1, 8) + texts.text()))
    return out


@pytest.mark.parametrize("seed", range(8, 14))
def test_the_body_search_finds_what_searching_each_paragraph_finds(seed: int) -> None:
    needles = t.Needles.of((SAMPLES[0], SAMPLES[1], "[Insert", "x"))
    texts = Texts(seed)
    for count in (0, 1, 5, 40):
        body = _body(texts, count)
        found = [q for hits in t._body_hits(body, needles) for q in hits]
        assert found == plain_body_hits(body, needles)
        for para in body:  # never ruled out where a sample is
            chars = fold_chars(para.text)
            if any(n in fold(para.text) for n in (*needles.exact, *needles.prefixes)):
                assert needles.may_be_in(chars), ascii(para.text)
    clean = [Paragraph(PROSE * 5) for _ in range(30)]
    assert t._body_hits(clean, needles) == []
    left = "Before\u00a0submitting this document"
    last = [*clean, Paragraph(left)]  # only the last paragraph has one
    assert [q for hits in t._body_hits(last, needles) for q in hits] == [left]


def _document(texts: Texts) -> WordContent:
    """An ITU-style header table, a few header lines as paragraphs, then a generated body."""

    def cell(text: str) -> Cell:
        return Cell([Paragraph(line) for line in text.split("\n")])

    rows = [
        ("INTERNATIONAL TELECOMMUNICATION UNION", "JCA-MV-I-xxx"),
        ("STUDY PERIOD 2025-2028", "Geneva, 13 May 2026"),
        ("Question(s): N/A", texts.text()),
        ("Source\u00a0:", texts.rng.choice(("ETRI", "[Insert source(s)]", texts.text()))),
        ("TITLE\uff1a", texts.text()),
        ("Contact:", "Jane Doe\nInsert organization\nE-mail: a@b.com"),
        (texts.text(), texts.text()),
        ("Abstract:", texts.rng.choice(("[Insert", PROSE, texts.text()))),
    ]
    table = Table([Row([cell(a), cell(b)]) for a, b in rows])
    lines = [Paragraph(texts.text()) for _ in range(3)]
    return WordContent([table, *lines, *_body(texts, 60)], [], Marks(), False)


@pytest.mark.parametrize("seed", range(14, 20))
def test_a_header_is_read_as_the_plain_label_test_reads_it(seed: int, event: EventSettings) -> None:
    texts = Texts(seed)
    for model in (MODEL, _model(event, event.checks)):

        def plain_test(text: str, whole: bool, model: t.TemplateModel = model) -> tuple[str, str] | None:
            return plain_label(model, text)

        for _ in range(10):
            content = _document(texts)
            assert read_zone(content, t._known(model)) == read_zone(content, plain_test)


@pytest.mark.parametrize("seed", range(20, 24))
def test_placeholders_in_the_body_are_reported_as_each_paragraph_has_them(
    seed: int, event: EventSettings
) -> None:
    texts = Texts(seed)
    model = _model(event, event.checks)
    needles = t.Needles.of((*model.body_placeholders, *event.checks.body_placeholders))
    for _ in range(10):
        content = _document(texts)
        result = t.check(content, model, event.checks, event)
        body = read_zone(content, t._known(model)).body
        reported = [
            f.detail
            for f in result.findings
            if f.code == "template.placeholder" and f.params["where"] == "the text of the document"
        ]
        expected: list[str] = []
        for quote in plain_body_hits(body, needles):  # each reported once, where first left
            if all(fold(quote) != fold(e) for e in expected):
                expected.append(quote)
        assert reported == expected
        again = t.check(content, replace(model), event.checks, event)  # nothing remembered
        assert again == result
        assert [f.params for f in again.findings] == [f.params for f in result.findings]

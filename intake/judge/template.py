"""The event's document template: what its header asks for, and whether a document gives it.

`learn` reads the configured template .docx: its header labels (a table row that
starts with a "Label:" cell, or a "Label: …" paragraph) in the first body
tables or in the page header, and its placeholders (yellow-highlighted text,
text in square brackets, "Insert …"), per field, in the header's other cells
and in the body. `check` reads a document's header the same way, tolerant as a
person is of case, spacing, full-width colons and non-breaking spaces, and
returns its findings with the title, source, contacts and abstract it found.
Nothing about JCA-MV is written here: the group, meeting and study period come
from the event and its checks, the labels and sample texts from the template.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from intake.config import EventSettings
from intake.config.checks import Checks, FieldRule
from intake.findings import Found, found
from intake.judge.header import Entry, LabelTest, read_zone
from intake.judge.meeting import group_findings, meeting_findings, period_findings
from intake.judge.wordml import Paragraph, WordContent, token_span
from intake.text import (
    display,
    display_head,
    fold,
    fold_chars,
    fold_with_map,
    label_key,
    same_label,
    shorten,
    word_count,
)

_LEARNABLE_LABEL = re.compile(r"^[^\W\d_][\w ()/'.-]{0,30}$")


@dataclass(frozen=True)
class FieldSpec:
    key: str  # label_key of the label
    label: str  # as the template writes it, without the colon
    placeholders: tuple[str, ...] = ()


@dataclass(frozen=True)
class TemplateModel:
    fields: tuple[FieldSpec, ...]
    header_placeholders: tuple[str, ...] = ()  # the header's cells outside the fields
    body_placeholders: tuple[str, ...] = ()

    def spec(self, key: str) -> FieldSpec | None:
        """The first field whose key is the same label as `key` (see `same_label`).

        Asked of every short text in a document's header: looked up, not searched for.
        """
        first = self._first_field
        at = [first[k] for k in (key, key + "s", key[:-1] if key.endswith("s") else "") if k in first]
        return self.fields[min(at)] if at else None

    @functools.cached_property
    def _readings(self) -> dict[str, tuple[str, str] | None]:
        """Texts of documents already read as one of these fields' labels, or as none."""
        return {}

    @functools.cached_property
    def _first_field(self) -> dict[str, int]:
        """Each field key's first position; an empty key names no field."""
        first: dict[str, int] = {}
        for index, spec in enumerate(self.fields):
            if spec.key:
                first.setdefault(spec.key, index)
        return first


# Used when an event names no template: the ITU-T 2025-2028 header's labels.
BUILTIN = TemplateModel(
    fields=tuple(
        FieldSpec(label_key(label), label)
        for label in (
            "Question(s)",
            "Source",
            "Title",
            "Purpose",
            "Contact",
            "Keywords",
            "Abstract",
        )
    )
)


def _learnable(text: str, whole: bool) -> tuple[str, str] | None:
    """In a template, a label is a short phrase ending in a colon."""
    shown = display(text)
    if whole:
        if not shown.endswith(":"):
            return None
        shown = shown[:-1].rstrip()
    if not _LEARNABLE_LABEL.match(shown) or len(shown.split()) > 3:
        return None
    return label_key(shown), shown


# The longest label a document's header may have, as displayed without its colon.
_LABEL_MAX = 40


def _too_long(head: str) -> bool:
    """Whether a text whose display begins with `head` is longer than a label.

    That display is `head`, or `head`, a space and more; stripped of its closing colons
    and then of white space it keeps all of `head` or is `head` so stripped, never shorter.
    """
    return len(head.rstrip(":").rstrip()) > _LABEL_MAX


# Texts short enough to be labels have their reading kept, per template, up to this many:
# a header's labels and set lines ("STUDY PERIOD 2025-2028") recur document after document.
_KEPT_READINGS = 4096
_UNREAD = ("", "")  # not a reading: `test` compares by identity


def _known(model: TemplateModel) -> LabelTest:
    """In a document, a label is one the template has, however it is typed.

    Every block near the top of a document is asked, a header's cells twice; a reading
    depends on the text alone, so a short text's is kept on the template for the next
    time, and a long text is read from its start (`_reading`).
    """
    kept = model._readings

    def test(text: str, whole: bool) -> tuple[str, str] | None:
        if len(text) > 2 * _LABEL_MAX:
            return _reading(model, text)
        reading = kept.get(text, _UNREAD)  # one look: another thread may clear it meanwhile
        if reading is _UNREAD:
            if len(kept) >= _KEPT_READINGS:
                kept.clear()
            reading = kept[text] = _reading(model, text)
        return reading

    return test


def _reading(model: TemplateModel, text: str) -> tuple[str, str] | None:
    """The template's field that `text` is the label of, if any."""
    if len(text) > 2 * _LABEL_MAX and _too_long(display_head(text, _LABEL_MAX + 8)):
        return None  # prose: its first words are longer than a label (see _too_long)
    shown = display(text).rstrip(":").rstrip()
    if not shown or len(shown) > _LABEL_MAX:
        return None
    spec = model.spec(label_key(shown))
    return (spec.key, spec.label) if spec else None


# --- learning a template ------------------------------------------------------


def _samples(paragraphs: Iterable[Paragraph], keep: set[str]) -> list[str]:
    """The sample texts a template asks to replace, in order, without repeats: highlighted
    text (widened to whole words), text in [square brackets] even across paragraphs, and
    lines starting with "Insert"."""
    out: list[str] = []
    bracket_open = False  # a "[" in an earlier paragraph not yet closed

    def add(text: str) -> None:
        text = text.strip()
        folded = fold(text)
        if sum(ch.isalnum() for ch in folded) >= 2 and folded not in keep and text not in out:
            out.append(text)

    for para in paragraphs:
        text = para.text
        for lo, hi in para.highlights:
            for line in token_span(text, lo, hi).split("\n"):
                add(line)
        for match in re.finditer(r"\[[^\[\]]*\]", text):
            add(match.group())
        for line in text.split("\n"):
            if fold(line).startswith("insert "):
                add(line)
        if bracket_open:
            close = text.find("]")
            for line in (text if close < 0 else text[: close + 1]).split("\n"):
                add(line)
            bracket_open = close < 0
        opened = text.rfind("[")
        if opened >= 0 and "]" not in text[opened:]:
            add(text[opened:])
            bracket_open = True
    return out


def learn(content: WordContent, checks: Checks) -> TemplateModel:
    """The template's header fields and sample texts. Raises ValueError if it has no labels."""
    keep = {fold(k) for k in checks.keep}
    zone = read_zone(content, _learnable, learning=True)
    specs: dict[str, FieldSpec] = {}
    for entry in zone.entries:
        known = specs.get(entry.key)
        samples = _samples(entry.value, keep)
        if known is None:
            specs[entry.key] = FieldSpec(entry.key, entry.label, tuple(samples))
        else:
            merged = known.placeholders + tuple(s for s in samples if s not in known.placeholders)
            specs[entry.key] = FieldSpec(known.key, known.label, merged)
    if not specs:
        raise ValueError("no header labels (such as 'Source:' or 'Title:') were found in it")
    return TemplateModel(
        fields=tuple(specs.values()),
        header_placeholders=tuple(_samples(zone.identity, keep)),
        body_placeholders=tuple(_samples(zone.body, keep)),
    )


# --- checking a document ------------------------------------------------------


@dataclass
class HeaderResult:
    findings: list[Found] = field(default_factory=list)
    title: str | None = None
    source: str | None = None
    abstract: str | None = None
    contacts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Needles:
    """Sample texts prepared for searching: folded once, not once per paragraph."""

    exact: tuple[str, ...]
    prefixes: tuple[str, ...]  # "[Insert": the placeholder runs on to its closing bracket

    @classmethod
    def of(cls, samples: Iterable[str]) -> Needles:
        folded = list(dict.fromkeys(f for f in map(fold, samples) if f))
        prefixes = tuple(f for f in folded if f.startswith("[") and not f.endswith("]"))
        return cls(tuple(f for f in folded if f not in prefixes), prefixes)

    @functools.cached_property
    def words(self) -> tuple[tuple[str, ...], ...]:
        """Each sample's words, longest (the likeliest to be missing) first."""
        return tuple(
            tuple(sorted(set(needle.split(" ")), key=len, reverse=True))
            for needle in (*self.exact, *self.prefixes)
        )

    def may_be_in(self, chars: str) -> bool:
        """False when no sample is in a text whose `fold_chars` is `chars` (True: look closer).

        A sample is folded, so each of its words lies within one word of the text's fold,
        and so within `chars`; searching for them spares folding the text word by word.
        """
        return any(all(word in chars for word in words) for words in self.words)


@functools.lru_cache(maxsize=64)
def _needles(samples: tuple[str, ...]) -> Needles:
    """`Needles.of`, kept: every document of an event is searched for the same samples."""
    return Needles.of(samples)


def _hits(text: str, needles: Needles, whole_brackets: bool) -> list[str]:
    """The sample texts left in `text`, quoted as the document writes them."""
    quick = fold(text)
    exact = [n for n in needles.exact if n in quick]
    prefixes = [p for p in needles.prefixes if p in quick]
    if not exact and not prefixes and not (whole_brackets and "[" in quick):
        return []
    folded, where = fold_with_map(text)
    spans: list[tuple[int, int]] = []
    for needle in prefixes:
        spans.extend(m.span() for m in re.finditer(re.escape(needle) + r"[^\]]*\]?", folded))
    for needle in exact:
        start = folded.find(needle)
        while start >= 0:
            end = start + len(needle)
            before_ok = not needle[0].isalnum() or start == 0 or not folded[start - 1].isalnum()
            after_ok = not needle[-1].isalnum() or end == len(folded) or not folded[end].isalnum()
            if before_ok and after_ok:
                spans.append((start, end))
            start = folded.find(needle, start + 1)
    chosen: list[tuple[int, int]] = []
    for lo, hi in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if all(hi <= a or lo >= b for a, b in chosen):
            chosen.append((lo, hi))
    quotes = [text[where[lo] : where[hi - 1] + 1] for lo, hi in sorted(chosen)]
    if whole_brackets:
        taken = {fold(q) for q in quotes}
        for line in text.split("\n"):
            shown = display(line)
            bracketed = len(shown) >= 3 and shown.startswith("[") and shown.endswith("]")
            if bracketed and not any(fold(shown) in t or t in fold(shown) for t in taken):
                quotes.append(line.strip())
    return quotes


def _body_hits(paragraphs: list[Paragraph], needles: Needles) -> list[list[str]]:
    """`_hits` of each paragraph of the body, in order, or none when none can have any.

    The body is most of a document and seldom has a sample text left: one search of
    all of it folded rules that out; only if some sample's words occur is each
    paragraph searched as before.
    """
    texts = [p.text for p in paragraphs]
    chars = [fold_chars(text) for text in texts]
    if not needles.may_be_in("\n".join(chars)):
        return []
    return [
        _hits(text, needles, whole_brackets=False) if needles.may_be_in(folded) else []
        for text, folded in zip(texts, chars, strict=True)
    ]


_EMAIL = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~-]+@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)*\.[^\W\d_]{2,}"
)


def _emails(text: str) -> tuple[list[str], list[str]]:
    """(valid addresses, tokens that look like addresses but are not)."""
    valid: list[str] = []
    invalid: list[str] = []
    for token in re.findall(r"\S*@\S*", display(text)):
        token = token.strip("<>()[]{};,.:'\"").removeprefix("mailto:")
        if not token:
            continue
        local = token.split("@", 1)[0]
        ok = (
            _EMAIL.fullmatch(token) is not None
            and not local.startswith(".")
            and not local.endswith(".")
            and ".." not in token
        )
        (valid if ok else invalid).append(token)
    return valid, invalid


_CONTACT_LABEL = re.compile(r"^(telephone|tel|phone|fax|e-?mail|mail)\b\s*[.:]?\s*", re.IGNORECASE)


def _contact(entry: Entry, samples: set[str]) -> dict[str, Any]:
    """One contact's name, organization, country, Tel and e-mail, as far as given."""
    person: dict[str, Any] = {
        "name": None,
        "organization": None,
        "country": None,
        "tel": None,
        "email": None,
    }
    plain: list[str] = []
    for raw in entry.text.split("\n"):
        line = display(raw)
        if not line or fold(line) in samples:
            continue
        label = _CONTACT_LABEL.match(line)
        kind = label.group(1).lower() if label else ""
        value = line[label.end() :].strip() if label else line
        valid = [v for v in _emails(value)[0] if fold(v) not in samples]
        if valid:
            person["email"] = person["email"] or valid[0]
        elif kind.startswith(("tel", "phone")):
            if value and fold(value) not in samples:
                person["tel"] = value
        elif not kind:
            plain.append(line)
    for key, value in zip(("name", "organization", "country"), plain, strict=False):
        person[key] = value
    return person


def check(content: WordContent, model: TemplateModel, checks: Checks, event: EventSettings) -> HeaderResult:
    result = HeaderResult()
    zone = read_zone(content, _known(model))
    keys = {entry.key for entry in zone.entries}
    if len(keys) < min(2, len(model.fields)):
        result.findings.append(
            found("template.no_header", group=event.group, acronym=event.acronym, address=event.address)
        )
        result.findings.extend(_marks(content, checks))
        return result

    header_samples = (
        *model.header_placeholders,
        *checks.placeholders,
        *(p for spec in model.fields for p in spec.placeholders),
    )
    field_needles = _needles(header_samples)  # every field's samples, in any field
    # Made for another group or meeting: said first, it explains much of what follows.
    identity_text = "\n".join(p.text for p in zone.identity)
    result.findings.extend(group_findings(identity_text, event))
    result.findings.extend(meeting_findings(zone.identity, event))
    result.findings.extend(period_findings(identity_text, checks))
    quotes = _Quotes(result.findings)

    for spec in model.fields:
        filled = [e for e in zone.entries if e.key == spec.key and e.text]
        _check_field(spec, filled, checks.rule(spec.key), field_needles, quotes, result)

    header_needles = _needles((*model.header_placeholders, *checks.placeholders))
    quotes.report("the header", _hits(identity_text, header_needles, whole_brackets=False))

    body_needles = _needles((*model.body_placeholders, *checks.body_placeholders))
    for hits in _body_hits(zone.body, body_needles):
        quotes.report("the text of the document", hits)
    result.findings.extend(_marks(content, checks))
    return result


class _Quotes:
    """Placeholder findings: each sample text reported once per place it was left in."""

    def __init__(self, findings: list[Found]) -> None:
        self.findings = findings
        self.seen: set[tuple[str, str]] = set()

    def report(self, where: str, quotes: list[str]) -> None:
        for quote in quotes:
            mark = (where, fold(quote))
            if mark not in self.seen:
                self.seen.add(mark)
                self.findings.append(
                    found("template.placeholder", detail=quote, text=shorten(quote), where=where)
                )


def _check_field(
    spec: FieldSpec,
    filled: list[Entry],
    rule: FieldRule,
    needles: Needles,
    quotes: _Quotes,
    result: HeaderResult,
) -> None:
    """One header field: present if required, no sample text left, its limits; what it says, kept."""
    if not filled:
        if rule.required:
            result.findings.append(found("template.missing_field", field=spec.label))
        return
    where = f"the “{spec.label}” field"
    sample_folds = {*needles.exact, *needles.prefixes}
    left: list[str] = []
    for entry in filled:
        hits = _hits(entry.text, needles, whole_brackets=True)
        left.extend(hits)
        quotes.report(where, hits)
    if rule.max_words and not left:
        words = word_count(filled[0].text)
        if words > rule.max_words:
            result.findings.append(
                found("template.too_many_words", field=spec.label, words=words, limit=rule.max_words)
            )
    if rule.email:
        result.findings.extend(_email_findings(spec, filled, left, sample_folds))
    if same_label(spec.key, "contact"):
        people = [_contact(e, sample_folds) for e in filled]
        result.contacts = [p for p in people if any(p.values())]
    elif not left:
        text = "\n".join(display(p.text) for e in filled[:1] for p in e.value).strip()
        if same_label(spec.key, "title"):
            result.title = " ".join(text.split()) or None
        elif same_label(spec.key, "source"):
            result.source = " ".join(text.split()) or None
        elif same_label(spec.key, "abstract"):
            result.abstract = text or None


def _email_findings(
    spec: FieldSpec, filled: list[Entry], left: list[str], sample_folds: set[str]
) -> list[Found]:
    """A field that must give an e-mail address and gives none (a sample address is reported already)."""
    valid: list[str] = []
    invalid: list[str] = []
    for entry in filled:
        good, bad = _emails(entry.text)
        valid.extend(good)
        invalid.extend(bad)
    sample_mail = any("@" in q for q in left)
    valid = [v for v in valid if fold(v) not in sample_folds]
    if valid or sample_mail:
        return []
    seen_text = f"“{invalid[0]}” is not a valid address" if invalid else "none given"
    return [found("template.contact_email", detail=seen_text, field=spec.label, found=seen_text)]


def _marks(content: WordContent, checks: Checks) -> list[Found]:
    """Highlighting and revision marks, anywhere in the document."""
    out: list[Found] = []
    marks = content.marks
    if checks.tracked_changes:
        if marks.revisions:
            parts = [
                (marks.insertions, "insertion"),
                (marks.deletions, "deletion"),
                (marks.moves, "move"),
                (marks.format_changes, "formatting change"),
            ]
            what = ", ".join(f"{n} {word}{'s' if n > 1 else ''}" for n, word in parts if n)
            out.append(found("template.tracked_changes", detail=what, count=what))
        elif content.track_revisions:
            out.append(found("template.track_changes_on"))
    lit = [text for text in marks.highlighted if text.strip()]
    if checks.highlight and lit:
        out.append(
            found(
                "template.highlight",
                detail="; ".join(shorten(t, 60) for t in lit[:10]),
                sample=shorten(lit[0], 60),
                count=len(lit),
            )
        )
    return out

"""Whose meeting a header is for: the group, the meeting's date and the study period.

The group is the event's (its name or acronym, in any spelling a reader accepts);
another study group, JCA, focus group or TSAG named instead is "made for another
group". A date written in the header far from the meeting's is "made for another
meeting"; a study period other than the checks' is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from intake.config import EventSettings
from intake.config.checks import Checks
from intake.findings import Found, found
from intake.judge.deadline import day_text
from intake.judge.wordml import Paragraph
from intake.text import display, fold, fold_with_map, shorten

_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_Build = Callable[[re.Match[str]], tuple[date, date]]
_DATE_FORMS: list[tuple[re.Pattern[str], _Build]] = []


def _month(name: str) -> int:
    return _MONTHS[name[:3]]


def _form(pattern: str) -> Callable[[_Build], _Build]:
    def register(build: _Build) -> _Build:
        _DATE_FORMS.append((re.compile(pattern), build))
        return build

    return register


@_form(rf"\b(\d{{1,2}})\s+{_MONTH}\s*(?:-|to)\s*(\d{{1,2}})\s+{_MONTH},?\s+(\d{{4}})\b")
def _across_months(m: re.Match[str]) -> tuple[date, date]:
    year = int(m.group(5))
    return date(year, _month(m.group(2)), int(m.group(1))), date(year, _month(m.group(4)), int(m.group(3)))


@_form(rf"\b(\d{{1,2}})\s*(?:-|to|and)\s*(\d{{1,2}})\s+{_MONTH},?\s+(\d{{4}})\b")
def _day_range(m: re.Match[str]) -> tuple[date, date]:
    year, month = int(m.group(4)), _month(m.group(3))
    return date(year, month, int(m.group(1))), date(year, month, int(m.group(2)))


@_form(rf"\b{_MONTH}\s+(\d{{1,2}})(?:\s*-\s*(\d{{1,2}}))?,?\s+(\d{{4}})\b")
def _month_first(m: re.Match[str]) -> tuple[date, date]:
    year, month = int(m.group(4)), _month(m.group(1))
    first = int(m.group(2))
    return date(year, month, first), date(year, month, int(m.group(3) or first))


@_form(rf"\b(\d{{1,2}})\s+{_MONTH},?\s+(\d{{4}})\b")
def _one_day(m: re.Match[str]) -> tuple[date, date]:
    day = date(int(m.group(3)), _month(m.group(2)), int(m.group(1)))
    return day, day


@_form(r"\b(\d{4})-(\d{2})-(\d{2})\b")
def _iso(m: re.Match[str]) -> tuple[date, date]:
    day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return day, day


_ASCII_DIGIT = re.compile(r"[0-9]")


def meeting_dates(text: str) -> list[tuple[date, date, str]]:
    """Every date or date range written in `text`, with the words it was read from."""
    if text.isascii() and not _ASCII_DIGIT.search(text):
        return []  # every form has a digit; most header lines have none
    return _read_dates(text)


def _read_dates(text: str) -> list[tuple[date, date, str]]:
    """`meeting_dates` without its shortcut: every form tried on the folded text."""
    folded, where = fold_with_map(text)
    taken: list[tuple[int, int]] = []
    out: list[tuple[date, date, str]] = []
    for pattern, build in _DATE_FORMS:
        for match in pattern.finditer(folded):
            lo, hi = match.span()
            if any(lo < b and hi > a for a, b in taken):
                continue
            try:
                first, last = build(match)
            except ValueError:  # 31 February and the like: not a date
                continue
            taken.append((lo, hi))
            out.append((first, last, text[where[lo] : where[hi - 1] + 1]))
    return out


_OTHER_GROUPS = (
    r"\bstudy group\s*\d+",
    r"\bsg\s?\d{1,2}\b",
    r"\bjca[- ]?[a-z0-9]+(?:-[a-z0-9]+)?",
    r"\bjoint coordination activity (?:on|for) [a-z][a-z ,&-]*",
    r"\bfocus group on [a-z][a-z ,&-]*",
    r"\bfg[- ][a-z0-9]+",
    r"\btsag\b",
    r"\btelecommunication standardization advisory group\b",
)


def _acronym_pattern(acronym: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in re.split(r"[- ]+", fold(acronym)) if p]
    return re.compile(r"(?<![a-z0-9])" + r"[- ]?".join(parts) + r"(?![a-z0-9])")


def _spelling(text: str) -> str:
    """British and American spellings of a group's name read alike ("standardisation")."""
    return re.sub(r"isation\b", "ization", text)


def _topic(name: str) -> str:
    """The first word after "on"/"for" in a group's name: "metaverse" for JCA-MV."""
    match = re.search(r"\b(?:on|for)\s+([a-z0-9]+)", name)
    return match.group(1) if match else name


def group_findings(identity: str, event: EventSettings) -> list[Found]:
    folded, where = fold_with_map(identity)
    ours_name = _spelling(fold(event.group))
    ours_acronym = _acronym_pattern(event.acronym)
    if (ours_name and ours_name in _spelling(folded)) or ours_acronym.search(folded):
        return []
    for pattern in _OTHER_GROUPS:
        for match in re.finditer(pattern, folded):
            text = match.group().strip()
            if ours_acronym.fullmatch(text) or _topic(_spelling(text)) == _topic(ours_name):
                continue  # our own group, written another way
            lo, hi = match.start(), match.start() + len(text)
            quote = identity[where[lo] : where[hi - 1] + 1]
            return [
                found(
                    "template.wrong_group",
                    detail=quote,
                    found=shorten(quote, 100),
                    group=event.group,
                    acronym=event.acronym,
                )
            ]
    return [found("template.group_missing", group=event.group, acronym=event.acronym)]


def period_findings(identity: str, checks: Checks) -> list[Found]:
    expected = fold(checks.study_period)
    for match in re.finditer(r"study period\s*(\d{4})\s*-\s*(\d{4})", fold(identity)):
        period = f"{match.group(1)}-{match.group(2)}"
        if period != expected:
            return [found("template.study_period", found=period, expected=checks.study_period)]
    return []


# A date this close to the meeting is taken for the document's own date, not another meeting.
_MEETING_SLACK = timedelta(days=31)


def meeting_findings(identity: list[Paragraph], event: EventSettings) -> list[Found]:
    day = event.meeting_date
    dates = [(a, b, line.text) for line in identity for a, b, _ in meeting_dates(line.text)]
    if not dates or any(first - _MEETING_SLACK <= day <= last + _MEETING_SLACK for first, last, _ in dates):
        return []
    line = dates[0][2]
    return [
        found(
            "template.wrong_meeting",
            detail=display(line),
            found=shorten(line, 100),
            place=event.meeting_place,
            date=day_text(event.meeting_date),
        )
    ]

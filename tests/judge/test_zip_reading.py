"""Reading a package's parts in one piece (`Archive._whole`) gives what the 64 KiB loop gives.

The one-piece read is only a faster way to the same outcome: the same bytes for a sound
part, and, for a damaged one or one over a budget, the same refusal with the same words
(it then leaves the part to the loop). Each test compares the two ways on the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.config.checks import Limits
from intake.judge import safety
from intake.judge.safety import Archive, Refusal
from tests.judge import corpus as c

Outcome = tuple[object, ...]
_DEFAULTS = Limits()


@cache
def _docx() -> bytes:
    return c.filled_jca()


def _outcome(data: bytes, limits: Limits, check: bool) -> list[Outcome]:
    """What reading every part gives, in order: its bytes, or the refusal's code and detail.
    Without `check`, the directory's declared sizes are not held against the budgets first: as
    when a header lies about them, only the reading can find a part too large."""
    try:
        archive = Archive(data, limits)
        if check:
            archive.check()
    except Refusal as refusal:
        return [("refused at open", refusal.finding.code, refusal.finding.detail)]
    out: list[Outcome] = []
    for name in archive.names:
        try:
            out.append(("read", name, archive.read(name)))
        except Refusal as refusal:
            out.append(("refused", name, refusal.finding.code, refusal.finding.detail))
    return out


def _both(data: bytes, limits: Limits = _DEFAULTS, check: bool = True) -> tuple[list[Outcome], list[Outcome]]:
    """The outcome with the one-piece read allowed, and with every part left to the loop."""
    whole = _outcome(data, limits, check)
    saved = safety.WHOLE_BYTES
    safety.WHOLE_BYTES = -1
    try:
        looped = _outcome(data, limits, check)
    finally:
        safety.WHOLE_BYTES = saved
    return whole, looped


def test_every_part_of_a_sound_document_is_read_in_one_piece_as_zipfile_reads_it() -> None:
    data = _docx()
    archive = Archive(data, Limits())
    archive.check()
    with zipfile.ZipFile(io.BytesIO(data)) as reference:
        infos = reference.infolist()
        assert {i.compress_type for i in infos} >= {zipfile.ZIP_DEFLATED}
        for info in infos:
            whole = archive._whole(archive._by_name[info.filename.lower()])
            assert whole is not None, f"{info.filename} was not read in one piece"
            assert whole == reference.read(info.filename)
    assert archive.read_total == 0  # `_whole` alone counts nothing; `chunks` does
    for name in archive.names:
        archive.drain(name)
    assert archive.read_total == sum(i.file_size for i in infos)


def test_a_stored_part_is_read_in_one_piece_too() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr("a.bin", b"\x89PNG" + bytes(range(256)) * 40, compress_type=zipfile.ZIP_STORED)
        package.writestr("b.xml", b"<a>" + b"x" * 5000 + b"</a>", compress_type=zipfile.ZIP_DEFLATED)
    whole, looped = _both(out.getvalue())
    assert whole == looped
    assert [o[0] for o in whole] == ["read", "read"]


def _corrupt(data: bytes, name: str, what: str) -> bytes:
    """`data` with one part damaged in one way."""
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        info = package.getinfo(name)
    at = info.header_offset
    name_length = int.from_bytes(data[at + 26 : at + 28], "little")
    extra_length = int.from_bytes(data[at + 28 : at + 30], "little")
    start = at + 30 + name_length + extra_length
    buffer = bytearray(data)
    if what == "flipped byte":  # the deflate stream or the CRC check fails
        buffer[start + info.compress_size // 2] ^= 0x55
    elif what == "local name":  # the local header names another part
        buffer[at + 30] ^= 0x01
    elif what == "local signature":
        buffer[at : at + 4] = b"PK\x09\x09"
    elif what == "cut stream":  # the stream ends before its end marker: the rest is zeros
        for i in range(start + info.compress_size // 2, start + info.compress_size):
            buffer[i] = 0
    elif what == "declared size":  # the directory declares one byte fewer than the part has
        entry = data.find(b"PK\x01\x02")
        while entry >= 0:
            if int.from_bytes(data[entry + 42 : entry + 46], "little") == at:
                break
            entry = data.find(b"PK\x01\x02", entry + 4)
        assert entry >= 0
        size = int.from_bytes(data[entry + 24 : entry + 28], "little")
        buffer[entry + 24 : entry + 28] = (size - 1).to_bytes(4, "little")
    return bytes(buffer)


@pytest.mark.parametrize(
    "what", ["flipped byte", "local name", "local signature", "cut stream", "declared size"]
)
def test_a_damaged_part_is_refused_with_the_same_words_either_way(what: str) -> None:
    damaged = _corrupt(_docx(), "word/document.xml", what)
    whole, looped = _both(damaged)
    assert whole == looped
    refused = [o for o in whole if o[0] != "read"]
    assert refused, f"{what}: the damaged part was read"
    assert all(o[2] in ("safety.damaged", "safety.zip_bomb") for o in refused if o[0] == "refused")


@pytest.mark.parametrize("budget", ["part", "total"])
def test_a_part_over_a_budget_is_refused_with_the_same_words_either_way(budget: str) -> None:
    sizes = sorted(i.file_size for i in zipfile.ZipFile(io.BytesIO(_docx())).infolist())
    limit = sizes[len(sizes) // 2]  # half the parts fit, half do not
    limits = (
        replace(Limits(), max_part_bytes=limit)
        if budget == "part"
        else replace(Limits(), max_total_bytes=sum(sizes) // 3)
    )
    whole, looped = _both(_docx(), limits, check=False)
    assert whole == looped
    assert any(o[0] == "refused" and o[2] == "safety.zip_bomb" for o in whole)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))
def test_any_damage_gives_the_same_outcome_either_way(cuts: list[tuple[int, int]]) -> None:
    buffer = bytearray(_docx())
    for where, mask in cuts:
        buffer[where % len(buffer)] ^= mask
    whole, looped = _both(bytes(buffer))
    assert whole == looped

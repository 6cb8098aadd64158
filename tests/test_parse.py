"""The parser's guards against mail-parser's known bugs and hostile input."""

from __future__ import annotations

import base64
import binascii
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from intake.parse import Unparseable, parse_message


def test_rfc2231_non_ascii_file_name_and_encoded_subject() -> None:
    msg = EmailMessage()
    msg["From"] = "=?utf-8?b?0KTRkdC00L7RgCDQmNCy0LDQvdC+0LI=?= <f.ivanov@example.ru>"
    msg["Subject"] = "Wkład: interoperacyjność światów wirtualnych"
    msg.set_content("x")
    msg.add_attachment(
        b"PK\x03\x04data",
        maintype="application",
        subtype="octet-stream",
        filename="Вклад по метавселенной.docx",
    )
    inbound = parse_message(msg.as_bytes())
    assert inbound.subject == "Wkład: interoperacyjność światów wirtualnych"
    assert inbound.sender == "f.ivanov@example.ru"
    assert inbound.sender_name == "Фёдор Иванов"
    assert [p.filename for p in inbound.parts] == ["Вклад по метавселенной.docx"]
    assert inbound.parts[0].payload == b"PK\x03\x04data"


def test_raw_8bit_header_is_kept_not_dropped() -> None:
    raw = b"From: a@example.org\r\nSubject: caf\xc3\xa9 na\xefve\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n"
    inbound = parse_message(raw)
    # UTF-8 fails on the lone \xef, so the value is read as Latin-1: nothing is dropped.
    assert inbound.subject == "cafÃ© naïve"
    utf8 = parse_message(b"From: a@example.org\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n")
    assert utf8.subject == "café"


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("Größe 日本語.docx".encode(), "Größe 日本語.docx"),  # raw UTF-8, as some clients send
        ("Größe.docx".encode("latin-1"), "Größe.docx"),  # raw Latin-1: not UTF-8, read as Latin-1
    ],
)
def test_raw_8bit_file_name_parameter_is_decoded_not_replaced(encoded: bytes, expected: str) -> None:
    raw = (
        b"From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b'--b\r\nContent-Type: application/octet-stream; name="' + encoded + b'"\r\n'
        b'Content-Disposition: attachment; filename="' + encoded + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nUEsDBGRhdGE=\r\n--b--\r\n"
    )
    inbound = parse_message(raw)
    assert [p.filename for p in inbound.parts if p.filename] == [expected]
    assert inbound.parts[-1].payload == b"PK\x03\x04data"


def test_forwarded_message_parts_are_listed_once() -> None:
    inner = EmailMessage()
    inner["From"] = "author@example.org"
    inner["Subject"] = "original"
    inner.set_content("inner text that must not leak into the outer body")
    inner.add_attachment(b"%PDF-1.4 inner", maintype="application", subtype="pdf", filename="inner.pdf")
    outer = EmailMessage()
    outer["From"] = "forwarder@example.org"
    outer["Subject"] = "Fwd: original"
    outer.set_content("see the forwarded message")
    outer.add_attachment(inner)
    inbound = parse_message(outer.as_bytes())
    assert [(p.filename, p.nested) for p in inbound.parts] == [("inner.pdf", True)]
    assert "must not leak" not in inbound.text
    assert "see the forwarded message" in inbound.text


def test_header_injection_is_flattened() -> None:
    raw = b"From: a@example.org\r\nSubject: =?utf-8?q?hello=0D=0ABcc:_victim@example.org?=\r\n\r\nx\r\n"
    inbound = parse_message(raw)
    assert inbound.subject is not None and "\n" not in inbound.subject and "\r" not in inbound.subject


def test_bad_message_id_and_from_do_not_raise() -> None:
    raw = (
        b"From: =?UTF-8?Q?=0AMy_self?= <me@example.org>\r\n"
        b"Message-ID: <[b378@microsoft.com]>\r\nSubject: s\r\n\r\nx\r\n"
    )
    inbound = parse_message(raw)
    assert inbound.message_id == "<[b378@microsoft.com]>"
    assert inbound.sender == "me@example.org"


@pytest.mark.parametrize("raw", [b"", b"\x00\x01\x02 not mail \xff", b"just some words without headers\n"])
def test_bytes_that_are_not_mail_are_unparseable(raw: bytes) -> None:
    with pytest.raises(Unparseable):
        parse_message(raw)


def test_very_deep_nesting_is_unparseable_not_a_crash() -> None:
    depth = 3000
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth)
    )
    raw = b"From: a@example.org\r\nSubject: deep\r\n" + head + b"Content-Type: text/plain\r\n\r\nx\r\n"
    with pytest.raises(Unparseable):
        parse_message(raw)


def test_missing_from_is_reported_not_raised() -> None:
    inbound = parse_message(b"Subject: no sender\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n")
    assert inbound.sender is None


# Base64 bodies decoded outside the feedparser (intake.parse._Hollow), in every message with one
# of HOLLOW_RUN bytes or more. The sizes are small here so that every shape is quick; bench/
# measures the memory.


def _big_message(shape: str) -> bytes:
    import os

    msg = EmailMessage()
    msg["From"] = "Zoë Müller <z@example.org>"
    msg["Subject"] = "Beitrag"
    msg["Message-ID"] = "<big@example.org>"
    msg.set_content("Dear secretariat,\n\nattached.\n")
    data = os.urandom(60_000)
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    if shape in ("crlf", "lf", "two", "bad_padding", "blank_line_inside"):
        msg.add_attachment(data, maintype="application", subtype=docx.split("/")[1], filename="Größe.docx")
    if shape == "two":
        msg.add_attachment(data[::-1], maintype="application", subtype="pdf", filename="b.pdf")
    if shape == "text_body":
        msg.add_attachment(
            ("Größe " * 20_000).encode(), maintype="text", subtype="plain", filename="notes.txt"
        )
    if shape == "forwarded":
        inner = EmailMessage()
        inner["From"] = "a@example.org"
        inner["Subject"] = "inner"
        inner.set_content("inner body\n")
        inner.add_attachment(data, maintype="application", subtype="pdf", filename="inner.pdf")
        msg.add_attachment(inner)
    if shape == "not_base64_encoded":  # base64-looking lines in a 7bit part: its text, as written
        lines = ("QUJD" * 19 + "\n") * 2000
        msg.add_attachment(lines, subtype="plain", filename="looks-like-base64.txt", cte="7bit")
    raw = msg.as_bytes(policy=email.policy.SMTP if shape != "lf" else email.policy.default)
    if shape in ("bad_padding", "blank_line_inside"):
        start = raw.index(b"\r\n\r\n", raw.index(b"wordprocessingml")) + 4
    if shape == "bad_padding":  # one base64 character too many: the whole parse decides
        raw = raw[:start] + b"A" + raw[start:]
    if shape == "blank_line_inside":  # a blank line splits the body: the whole parse decides
        raw = raw[: start + 5000] + b"\r\n" + raw[start + 5000 :]
    return raw


@pytest.mark.parametrize(
    "shape",
    ["crlf", "lf", "two", "text_body", "forwarded", "not_base64_encoded", "bad_padding", "blank_line_inside"],
)
def test_large_message_parses_exactly_as_the_whole_parse_does(
    shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import intake.parse as parse

    raw = _big_message(shape)
    monkeypatch.setattr(parse, "HOLLOW_FROM", 2**40)
    whole = parse_message(raw)  # the plain parse
    monkeypatch.undo()
    assert parse_message(raw) == whole  # the default: bodies over HOLLOW_RUN (16 KiB) taken out
    monkeypatch.setattr(parse, "HOLLOW_RUN", 1024)
    hollowed = parse_message(raw)
    assert hollowed == whole
    assert [p.filename for p in whole.parts if p.filename]  # the shape has a file
    # How many bodies are taken out. In "not_base64_encoded" and "blank_line_inside"
    # one is, its token does not come back as a whole payload, and the message is
    # parsed whole; "bad_padding" is not taken out at all.
    expected = {"crlf": 1, "lf": 1, "two": 2, "text_body": 1, "forwarded": 1, "bad_padding": 0}
    assert len(parse._Hollow(raw).decoded) == expected.get(shape, 1)


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _plainly_decoded(body: bytes) -> bytes | None:
    """The rule for a body decoded outside the parser, written the plain way with the stdlib:
    only base64 characters and line ends, a multiple of four once the line ends are gone,
    then `b64decode(validate=True)`."""
    if body.translate(None, _ALPHABET + b"=\r\n"):
        return None
    compact = body.translate(None, b"\r\n")
    if len(compact) % 4:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        return None


_BODIES = st.one_of(
    st.binary(max_size=60).map(base64.encodebytes),  # sound, LF line ends
    st.binary(max_size=60).map(lambda b: base64.encodebytes(b).replace(b"\n", b"\r\n")),  # as IMAP gives it
    st.lists(
        st.sampled_from([b"QU", b"Jk", b"A", b"=", b"==", b"\r\n", b"\n", b"\r", b" ", b"-", b"\xe9"])
    ).map(b"".join),
    st.binary(max_size=40)
    .map(lambda b: base64.b64encode(b) + b"\r\n")
    .flatmap(lambda body: st.integers(0, len(body)).map(lambda cut: body[:cut] + b"=" + body[cut:])),
)


@settings(max_examples=800, deadline=None)
@example(body=b"QUJD====\r\n")  # padding after a whole group: binascii takes it, pybase64 does not
@example(body=b"QUI=QUJD\r\n")
@given(body=_BODIES)
def test_a_body_is_decoded_outside_the_parser_only_as_the_stdlib_decodes_it(body: bytes) -> None:
    from intake import parse

    compact = parse._without_line_ends(body)
    assert compact == body.translate(None, b"\r\n")
    ours, plain = parse._base64(compact), _plainly_decoded(body)
    if ours is not None:
        assert ours == plain  # never a body the stdlib refuses, never other bytes
    elif plain is not None:  # left to the parser: only more padding after a whole group
        assert compact.rstrip(b"=") != compact and len(compact.rstrip(b"=")) % 4 == 0, body


def test_too_many_multiparts_counted_in_any_case() -> None:
    import intake.parse as parse

    nested = b"".join(
        b"Content-Type: %s; boundary=b%d\r\n\r\n--b%d\r\n" % (kind, i, i)
        for i, kind in enumerate([b"multipart/mixed", b"MULTIPART/Mixed", b"Multipart/alternative"] * 34)
    )
    raw = b"From: a@example.org\r\nSubject: deep\r\n" + nested
    assert parse._too_many_multiparts(raw)
    with pytest.raises(parse.Unparseable):
        parse_message(raw)
    # "multipart/" in a body, not in a Content-Type, is not a nested part
    body = b"From: a@example.org\r\nSubject: text\r\n\r\n" + b"multipart/mixed\r\n" * 150
    assert not parse._too_many_multiparts(body)
    assert parse_message(body).sender == "a@example.org"

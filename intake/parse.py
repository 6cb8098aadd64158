"""Parse raw message bytes into an `Inbound`: sender, subject, ids, file parts.

mail-parser does the parse; its known bugs are guarded here (see
../shared/notes/packages.md §3):
- a raw 8-bit byte in a header is dropped silently by mail-parser, so header
  values are decoded here from the underlying message (UTF-8, else Latin-1);
- a forwarded message's parts are listed twice and its text leaks into the
  body, so file parts are collected by walking the MIME tree ourselves;
- any header access can raise on hostile input (cpython #114906), so each one
  is guarded and a failure becomes a defect, not an exception.
A message that cannot be understood as e-mail at all raises `Unparseable`.

Base64 bodies: the stdlib feedparser under mail-parser reads a body one line
at a time in Python (about 1.3 ms of a submission's 3.5 ms parse, for a 100 KB
attachment) and holds about 8x a message's size at its peak (a str of it, a
list of its lines, the joined payload, the decoded bytes). So each base64 body
of `HOLLOW_RUN` bytes or more is decoded here directly from the raw bytes (one
`binascii` call) and replaced, for the parser, by a one-line token; the decoded
bytes go back into the part whose payload is the token. Only when every token
comes back exactly as one part's payload is that parse used; otherwise the
message is parsed whole, as any other.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.header
import email.parser
import email.policy
import email.utils
import itertools
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message

import mailparser
import pybase64
from mailparser.exceptions import MailParserError

from intake.charsets import decode, readable

log = logging.getLogger(__name__)

# Headers whose absence, all together, means the bytes are not an e-mail.
_ANY_OF = ("from", "date", "message-id", "subject", "to", "received", "content-type", "mime-version")
_MAX_HEADER_CHARS = 65536  # what is kept of the headers for screening and display


class Unparseable(Exception):
    """The bytes cannot be read as an e-mail message."""


@dataclass(frozen=True)
class Part:
    """One part of the message that carries a file (attachment or named inline part)."""

    index: int
    filename: str | None
    content_type: str
    disposition: str | None
    content_id: str | None
    payload: bytes
    nested: bool  # inside a forwarded message (message/rfc822)


@dataclass(frozen=True)
class Inbound:
    message_id: str | None
    sender: str | None  # the From address, lower-cased
    sender_name: str | None
    reply_to: str | None
    subject: str | None
    date: datetime | None  # the sender's Date: header; recorded, never decisive
    headers: tuple[tuple[str, str], ...]
    parts: tuple[Part, ...]
    text: str
    defects: tuple[str, ...]

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]


# Real mail nests a few multiparts (a forward of a signed message with an
# alternative body: 4 or 5); the stdlib parser's time grows with depth x lines.
MAX_MULTIPARTS = 100
_MULTIPART = re.compile(rb"content-type:[ \t]*(?:\r?\n[ \t]+)?multipart/", re.IGNORECASE)


HOLLOW_FROM = 0  # messages larger than this have their large base64 bodies decoded here: all
HOLLOW_RUN = 16 * 2**10  # base64 text in one body worth decoding outside the parser
_BLANK_LINE = re.compile(rb"\n\r?\n")


class _Hollow:
    """The large base64 bodies of one message, decoded, and the raw bytes with each
    replaced by a token line that the parser decodes to a unique marker."""

    def __init__(self, raw: bytes) -> None:
        self.decoded: dict[bytes, bytes] = {}
        self.taken: set[bytes] = set()
        nonce = secrets.token_hex(16).encode()
        pieces: list[bytes] = []
        kept = 0
        for blank in _BLANK_LINE.finditer(raw):
            start = blank.end()
            if start < kept:
                continue
            # Base64 has no "-": the first one ends the body, and must begin its boundary line.
            dash = raw.find(b"-", start)
            if dash < 1 or raw[dash - 1 : dash + 2] != b"\n--" or dash - 1 - start < HOLLOW_RUN:
                continue
            end = dash  # the body's last line ending stays with the boundary below it
            body = raw[start:end]
            compact = _without_line_ends(body)
            del body  # held once at a time: this is about memory
            data = _base64(compact)
            del compact
            if data is None:
                continue
            marker = b"intake-hollow:" + nonce + b":%d" % len(self.decoded)
            self.decoded[marker] = data
            newline = b"\r\n" if raw[end - 2 : end] == b"\r\n" else b"\n"
            pieces += [raw[kept:start], base64.b64encode(marker), newline]
            kept = end
        pieces.append(raw[kept:])
        self.raw = b"".join(pieces) if self.decoded else raw

    def take(self, payload: bytes) -> bytes:
        data = self.decoded.get(payload)
        if data is None or payload in self.taken:
            return payload
        self.taken.add(payload)
        return data

    @property
    def complete(self) -> bool:
        return self.taken == self.decoded.keys()


def _without_line_ends(body: bytes) -> bytes:
    """The body's lines joined (CRLF, as IMAP gives mail, or LF; any other CR or LF dropped too)."""
    compact = body.replace(b"\r\n", b"") if b"\r" in body else body.replace(b"\n", b"")
    if b"\n" in compact or b"\r" in compact:
        compact = compact.translate(None, b"\r\n")
    return compact


def _base64(compact: bytes) -> bytes | None:
    """The bytes of a body of base64 lines, its line ends dropped; None if it is anything else:
    a character outside the alphabet, padding before the end, a length that is not a multiple
    of four. Then the parser decodes the body (leniently, as email does), so only a body every
    decoder reads alike is decoded here. pybase64 validates and decodes with SIMD, some fifty
    times faster than binascii; it is stricter than binascii in one case (more padding after a
    whole group), which only leaves that body to the parser (tests/test_parse.py)."""
    if len(compact) % 4:
        return None
    try:
        return pybase64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _too_many_multiparts(raw: bytes) -> bool:
    # Every match of _MULTIPART ends in "multipart/": counting those (at C speed, 0.2 ms for
    # 150 KB) bounds the count, and the case-blind regex (1.6 ms) runs only above the limit.
    if raw.lower().count(b"multipart/") <= MAX_MULTIPARTS:
        return False
    return sum(1 for _ in itertools.islice(_MULTIPART.finditer(raw), MAX_MULTIPARTS + 1)) > MAX_MULTIPARTS


def parse_message(raw: bytes) -> Inbound:
    if _too_many_multiparts(raw):
        raise Unparseable(f"the MIME structure has more than {MAX_MULTIPARTS} nested parts")
    raw, repairs = lenient_header_block(raw)
    if len(raw) > HOLLOW_FROM:
        hollow = _Hollow(raw)
        if hollow.decoded:
            try:
                inbound = _parse(hollow.raw, hollow, repairs)
            except Exception:
                inbound = None
            if inbound is not None and hollow.complete:
                return inbound
            del inbound, hollow
    return _parse(raw, None, repairs)


# A header field's name and colon (RFC 5322 ftext), the same with blanks before the
# colon (`From  :`), and the mailbox-format separator line.
_FIELD = re.compile(rb"[!-9;-~]+:")
_FIELD_SPACED = re.compile(rb"([!-9;-~]+)[ \t]+:")
_ENVELOPE = re.compile(rb">?From [^ \t:]")  # "From  :" is a field written badly, not a separator
_LEADING_JUNK = re.compile(rb"(?:[ \t]*\r?\n|>?From [^ \t:\r\n][^\n]*\n)+")
_HEADER_SCAN = 256 * 2**10  # header blocks longer than this are not repaired


def lenient_header_block(raw: bytes) -> tuple[bytes, list[str]]:
    """The bytes with their header block read as lenient mail clients read it, and
    the repairs made (as defects); the stored raw bytes are never changed.

    - blank lines and mailbox `From ` lines before the first header are skipped;
    - `Name  : value` (blanks before the colon) is read as `Name: value`;
    - a line that is neither a field nor indented, followed by more fields, is the
      continuation of the field above it (a folding that lost its indentation).
    The strict parser would end the header block at any of them, and lose the
    sender, subject and attachments that follow.
    """
    repairs: list[str] = []
    lead = _LEADING_JUNK.match(raw)
    start = lead.end() if lead else 0
    if start:
        repairs.append("blank or mailbox 'From ' lines before the headers were skipped")
    blank = _BLANK_LINE.search(raw, start, start + _HEADER_SCAN)
    end = blank.start() + 1 if blank else None
    if end is None:
        return (raw[start:] if start else raw), repairs
    lines = raw[start:end].split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    fields = [bool(_FIELD.match(line)) for line in lines]
    out: list[bytes] = []
    changed = False
    for index, line in enumerate(lines):
        spaced = None if fields[index] else _FIELD_SPACED.match(line)
        if fields[index] or line[:1] in (b" ", b"\t") or _ENVELOPE.match(line):
            out.append(line)
        elif spaced is not None:
            out.append(spaced.group(1) + b":" + line[spaced.end() :])
            repairs.append("a header name had blanks before its colon")
            changed = True
        elif any(fields[index + 1 :]):
            out.append(b" " + line)
            repairs.append("a header line was neither a field nor indented (read as a continuation)")
            changed = True
        else:
            out.extend(lines[index:])  # the body begins without its blank line: left as it is
            break
    if not changed:
        return (raw[start:] if start else raw), repairs
    return b"\n".join(out) + b"\n" + raw[end:], repairs


def _parse(raw: bytes, hollow: _Hollow | None, repairs: list[str] | None = None) -> Inbound:
    try:
        parsed = mailparser.parse_from_bytes(raw)
        msg = parsed.message
    except (MailParserError, RecursionError) as exc:
        raise Unparseable(
            f"the MIME structure is too deeply nested or broken ({type(exc).__name__})"
        ) from exc
    except Exception as exc:  # the parser's contract changes between releases
        raise Unparseable(f"the parser failed: {type(exc).__name__}") from exc

    defects: list[str] = list(repairs or ())
    declared = _declared_charset(msg)
    headers = _decoded_headers(msg, defects, declared)
    names = {name.lower() for name, _ in headers}
    if not names.intersection(_ANY_OF):
        raise Unparseable("no e-mail headers were found")

    def first(name: str) -> str | None:
        for key, value in headers:
            if key.lower() == name:
                return value
        return None

    sender_name, sender = _sender(first, defects)
    _, reply_to = _address(first("reply-to"), defects, "Reply-To")
    try:
        parts, text = _walk(msg, defects, hollow, declared)
    except RecursionError as exc:
        raise Unparseable("the MIME structure is nested too deeply") from exc
    try:
        defects.extend(str(d) for d in (parsed.defects_categories or []))
    except Exception:
        defects.append("defects could not be listed")
    return Inbound(
        message_id=_message_id(first("message-id")),
        sender=sender,
        sender_name=sender_name,
        reply_to=reply_to,
        subject=first("subject"),
        date=_date(parsed, defects),
        headers=tuple(headers),
        parts=tuple(parts),
        text=text,
        defects=tuple(dict.fromkeys(defects)),
    )


def parse_headers(raw: bytes) -> Inbound | None:
    """The header block alone, for a message whose body cannot be parsed: it is
    quarantined, but recorded with the sender, subject and Message-ID it does have."""
    raw, defects = lenient_header_block(raw)
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[: end + 4])
    except Exception:
        return None
    headers = _decoded_headers(msg, defects, _declared_charset(msg))
    if not {name.lower() for name, _ in headers}.intersection(_ANY_OF):
        return None
    first = {name.lower(): value for name, value in reversed(headers)}
    sender_name, sender = _sender(first.get, defects)
    _, reply_to = _address(first.get("reply-to"), defects, "Reply-To")
    return Inbound(
        message_id=_message_id(first.get("message-id")),
        sender=sender,
        sender_name=sender_name,
        reply_to=reply_to,
        subject=first.get("subject"),
        date=None,
        headers=tuple(headers),
        parts=(),
        text="",
        defects=tuple(defects),
    )


def _declared_charset(msg: Message) -> str | None:
    """The charset the message declares: its own, else its first text part's. A raw
    8-bit header or file name was most likely written in it."""
    try:
        for part in msg.walk():
            charset = part.get_content_charset()
            if charset:
                return str(charset)
    except Exception:
        return None
    return None


def _decode_raw(value: str, declared: str | None = None) -> str:
    """compat32 keeps 8-bit header bytes as surrogates: read them in the declared
    charset (intake.charsets: valid UTF-8 is preferred to a single-byte charset),
    else UTF-8, else detection."""
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value
    if data.isascii():
        return value
    return decode(data, declared, utf8_first=True)


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words, each by its charset label as mail clients read
    it (intake.charsets); on any failure keep the text as it is."""
    if "=?" not in value:
        return value
    try:
        decoded = email.header.decode_header(value)
    except Exception:
        return value
    chunks: list[str] = []
    previous: bool | None = None  # was the previous chunk an encoded word?
    for data, charset in decoded:
        text = data if isinstance(data, str) else decode(data, charset)
        encoded = charset is not None
        # decode_header drops the blanks around encoded words; one goes back between an
        # encoded word and plain text (as email.header.make_header does), none between
        # two encoded words (RFC 2047 section 6.2).
        between = previous is not None and previous != encoded and text and chunks and chunks[-1]
        if between and not (chunks[-1][-1].isspace() or text[0].isspace()):
            chunks.append(" ")
        chunks.append(text)
        previous = encoded
    return "".join(chunks)


def _clean(value: str) -> str:
    """One line of text a person reads: no controls, no invisible characters."""
    return readable(value)


def _decoded_headers(msg: Message, defects: list[str], declared: str | None) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    total = 0
    try:
        items = list(msg.raw_items())  # type: ignore[attr-defined]
    except Exception:
        defects.append("headers could not be read")
        return result
    for name, value in items:
        try:
            text = _clean(_decode_words(_decode_raw(str(value), declared)))
        except Exception:
            defects.append(f"header {name!r} could not be decoded")
            continue
        total += len(name) + len(text)
        if total > _MAX_HEADER_CHARS:
            defects.append("headers truncated")
            break
        result.append((_clean(str(name)), text))
    return result


def _address(value: str | None, defects: list[str], header: str) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:
        defects.append(f"{header} could not be parsed")
        return None, None
    for name, addr in pairs:
        addr = addr.strip().strip("<>").lower()
        local, at, domain = addr.rpartition("@")
        if at and local and domain and " " not in addr and len(addr) <= 320:
            return (name.strip() or None), addr
    defects.append(f"{header} has no valid address")
    return None, None


_SENDER_HEADERS = ("from", "sender", "reply-to", "return-path")


def _sender(first: Callable[[str], str | None], defects: list[str]) -> tuple[str | None, str | None]:
    """(display name, address) of who sent the message: From, else the first of
    Sender, Reply-To and Return-Path that holds an address (a malformed From line
    from a person should not cost the message its answer)."""
    name, address = _address(first("from"), defects, "From")
    if address is not None:
        return name, address
    for header in _SENDER_HEADERS[1:]:
        other_name, other = _address(first(header), [], header)
        if other is not None:
            defects.append(f"no address in From; the sender is taken from {header.title()}")
            return (name or other_name), other
    return name, None


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value[:998] or None


def _date(parsed: mailparser.MailParser, defects: list[str]) -> datetime | None:
    try:
        value = parsed.date
    except Exception:
        defects.append("Date header could not be parsed")
        return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _walk(
    msg: Message, defects: list[str], hollow: _Hollow | None = None, declared: str | None = None
) -> tuple[list[Part], str]:
    parts: list[Part] = []
    texts: list[str] = []
    for part, nested in _leaves(msg, nested=False):
        try:
            content_type = part.get_content_type()
        except Exception:
            content_type = "application/octet-stream"
        disposition = _disposition(part)
        filename = _filename(part, defects, declared)
        is_body_text = (
            content_type in ("text/plain", "text/html") and filename is None and disposition != "attachment"
        )
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            defects.append("a part could not be decoded")
            payload = None
        if not isinstance(payload, bytes):
            payload = b""
        if hollow is not None:
            payload = hollow.take(payload)
        if is_body_text:
            if content_type == "text/plain" and not nested:
                texts.append(_text_of(part, payload))
            continue
        if (
            filename is None
            and disposition != "attachment"
            and content_type.startswith(("text/", "multipart/"))
        ):
            continue
        try:
            content_id = part.get("Content-ID")
        except Exception:
            content_id = None
        parts.append(
            Part(
                index=len(parts),
                filename=filename,
                content_type=content_type,
                disposition=disposition,
                content_id=_clean(str(content_id)) if content_id else None,
                payload=payload,
                nested=nested,
            )
        )
    return parts, "\n".join(texts)


def _leaves(msg: Message, nested: bool) -> Iterator[tuple[Message, bool]]:
    """Every non-multipart part, marking those inside a message/rfc822."""
    try:
        content_type = msg.get_content_type()
    except Exception:
        content_type = "application/octet-stream"
    payload = msg.get_payload()
    if msg.is_multipart() and isinstance(payload, list):
        inner_nested = nested or content_type == "message/rfc822"
        for sub in payload:
            if isinstance(sub, Message):
                yield from _leaves(sub, inner_nested)
    else:
        yield msg, nested


def _disposition(part: Message) -> str | None:
    try:
        value = part.get_content_disposition()
    except Exception:
        return None
    return value.lower() if isinstance(value, str) else None


def _with_8bit_params_decoded(part: Message, declared: str | None) -> Message:
    """The part itself, or, when its Content-Disposition or Content-Type holds raw
    8-bit bytes, a stand-in with just those two headers decoded (the part's or the
    message's declared charset, else UTF-8, else detection). compat32 would turn
    such a header into a Header of unknown-8bit before get_param sees it, and that
    replaces every non-ASCII byte by U+FFFD."""
    raw = [
        (key, value)
        for key, value in part.raw_items()
        if key.lower() in ("content-disposition", "content-type")
    ]
    if not any(isinstance(value, str) and not value.isascii() for _, value in raw):
        return part
    charset = None
    with contextlib.suppress(Exception):
        charset = part.get_content_charset()
    stand_in = Message()
    for key, value in raw:
        stand_in[key] = _decode_raw(str(value), charset or declared)
    return stand_in


def _filename(part: Message, defects: list[str], declared: str | None = None) -> str | None:
    try:
        source = _with_8bit_params_decoded(part, declared)
        name = source.get_param("filename", header="content-disposition") or source.get_param("name")
    except Exception:
        defects.append("a file name could not be read")
        return None
    if isinstance(name, tuple):  # RFC 2231: (charset, language, %-decoded value)
        charset, _, value = name
        try:
            name = decode(bytes(str(value), "raw-unicode-escape"), charset or None)
        except Exception:
            name = str(value)
    if not name:
        return None
    text = _clean(_decode_words(_decode_raw(str(name), declared)))
    return text[:255] or None


def _text_of(part: Message, payload: bytes) -> str:
    charset = None
    with contextlib.suppress(Exception):
        charset = part.get_content_charset()
    return decode(payload, charset)

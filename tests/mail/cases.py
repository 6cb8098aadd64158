"""A catalogue of real-world mail, written byte by byte the way each mail program sends it.

Every case is built here (nothing is downloaded or copied from another
project) and carries the outcome the intake log must show for it: status,
decoded subject, and the documents found with their decoded file names.

    python -m tests.mail.cases DIR    # writes every case to DIR/<name>.eml

The layouts follow what the programs really emit, as catalogued by Discourse,
RT and django-helpdesk (../shared/notes/ingestion.md §4): Outlook's
winmail.dat, Apple Mail's inline attachments, RFC 2231 file names, Japanese,
Chinese and Russian legacy charsets, raw 8-bit headers, missing headers,
broken MIME, S/MIME signatures and forwarded messages.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import struct
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from intake.config import EventSettings, load_settings
from intake.samples import Contributor, make_docx

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TO = "tsbjcamv@itu.int"
# Before the shipped event's deadline (2026-04-30 23:59:59 Geneva time).
RECEIVED = datetime(2026, 4, 27, 8, 30, tzinfo=UTC)
DATE = "Mon, 27 Apr 2026 10:29:13 +0200"
CRLF = b"\r\n"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Document:
    """One document the log must list: its decoded file name, role and status."""

    filename: str | None
    role: str
    status: str
    numbered: bool = False


@dataclass(frozen=True)
class MailCase:
    name: str
    what: str  # the real-world situation, in words
    raw: bytes
    status: str
    subject: str | None
    documents: tuple[Document, ...]
    message_id: str | None  # as the log shows it
    sender: str | None
    received_at: datetime = RECEIVED


# --- building blocks -----------------------------------------------------------------------


def b64(data: bytes, width: int = 76) -> bytes:
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + width] for i in range(0, len(encoded), width))


def encoded_word(text: str, charset: str, encoding: str = "B") -> str:
    data = text.encode(charset)
    if encoding == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    quoted = "".join(
        chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else f"={b:02X}" for b in data
    )
    return f"=?{charset}?Q?{quoted}?="


def rfc2231_continuations(name: str, charset: str = "UTF-8", chunk: int = 40) -> str:
    """`filename*0*=UTF-8''...; filename*1*=...`, the way Thunderbird folds a long name."""
    quoted = urllib.parse.quote(name.encode(charset), safe="")
    pieces: list[str] = []
    while quoted:
        cut = min(chunk, len(quoted))
        while "%" in quoted[max(cut - 2, 0) : cut] and cut < len(quoted):
            cut -= 1  # never split a %XX escape
        pieces.append(quoted[:cut])
        quoted = quoted[cut:]
    lines = [f" filename*0*={charset}''{pieces[0]}"]
    lines += [f" filename*{i}*={piece}" for i, piece in enumerate(pieces[1:], start=1)]
    return ";\r\n".join(lines)


def headers(*lines: str | bytes) -> bytes:
    return b"".join((line.encode("ascii") if isinstance(line, str) else line) + CRLF for line in lines)


@functools.cache
def submission(title: str, who: Contributor) -> bytes:
    """A filled-in JCA-MV input document (the ITU-T header block), as Word saves it."""
    return make_docx(event(), title, who.organization, who, "An abstract about the metaverse.")


@functools.cache
def event() -> EventSettings:
    """The shipped JCA-MV event; the mailbox settings it requires are not used here."""
    unused = {
        "INTAKE_IMAP_HOST": "imap.invalid",
        "INTAKE_IMAP_USER": TO,
        "INTAKE_IMAP_PASSWORD": "unused",
        "INTAKE_SMTP_HOST": "smtp.invalid",
    }
    return load_settings(REPO / "config" / "jca-mv-2.toml", env=unused).event


# --- Outlook's winmail.dat (TNEF, MS-OXTNEF) -----------------------------------------------

TNEF_SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 0x01, 0x02
# Attribute ids: (type << 16) | id, as MS-OXTNEF §2.1.3.2 lists them.
ATT_TNEF_VERSION = 0x00089006
ATT_OEM_CODEPAGE = 0x00069007
ATT_MESSAGE_CLASS = 0x00078008
ATT_ATTACH_REND_DATA = 0x00069002
ATT_ATTACH_TITLE = 0x00018010
ATT_ATTACH_DATA = 0x0006800F
ATT_ATTACHMENT = 0x00069005
PT_UNICODE, PR_ATTACH_LONG_FILENAME = 0x001F, 0x3707


def tnef_attribute(level: int, attribute: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", checksum)


def winmail_dat(filename: str, data: bytes, short_name: str = "CONTRI~1.DOC") -> bytes:
    """A TNEF stream as Outlook writes it for one attached file with a long Unicode name."""
    long_name = (filename + "\0").encode("utf-16-le")
    padding = b"\0" * (-len(long_name) % 4)
    mapi_props = (
        struct.pack("<I", 1)  # one property
        + struct.pack("<HH", PT_UNICODE, PR_ATTACH_LONG_FILENAME)
        + struct.pack("<II", 1, len(long_name))  # one value, its length
        + long_name
        + padding
    )
    rendering = struct.pack("<HIHHI", 0x0001, 0xFFFFFFFF, 0xFFFF, 0xFFFF, 0)  # attachment by value
    return b"".join(
        [
            struct.pack("<IH", TNEF_SIGNATURE, 0x1234),
            tnef_attribute(LVL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000)),
            tnef_attribute(LVL_MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0)),
            tnef_attribute(LVL_MESSAGE, ATT_MESSAGE_CLASS, b"IPM.Microsoft Mail.Note\0"),
            tnef_attribute(LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, rendering),
            tnef_attribute(LVL_ATTACHMENT, ATT_ATTACH_TITLE, short_name.encode("ascii") + b"\0"),
            tnef_attribute(LVL_ATTACHMENT, ATT_ATTACH_DATA, data),
            tnef_attribute(LVL_ATTACHMENT, ATT_ATTACHMENT, mapi_props),
        ]
    )


# --- the cases ---------------------------------------------------------------------------------

PEOPLE = {
    "outlook": Contributor("Chris Exchange", "chris@corp.example.com", "Example Corp", "Canada"),
    "apple": Contributor("Anne Pomme", "anne@mac.example.fr", "Institut Exemple", "France"),
    "gmail": Contributor("Фёдор Иванов", "fedor.ivanov@gmail.example", "НИИ Радио", "Russian Federation"),
    "japan": Contributor("山田太郎", "taro@example.co.jp", "Example KK", "Japan"),
    "taiwan": Contributor("陳大文", "dawen@example.com.tw", "Example Institute", "Chinese Taipei"),
    "russia": Contributor("Ольга Петрова", "olga@example.ru", "Институт Пример", "Russian Federation"),
    "eightbit": Contributor("Zoë Müller", "zoe@example.de", "Beispiel GmbH", "Germany"),
    "noid": Contributor("Pat Noid", "pat@example.net", "Example Net", "Kenya"),
    "nodate": Contributor("Dana Nodate", "dana@example.net", "Example Net", "Chile"),
    "broken": Contributor("Bo Ken", "bo@example.se", "Exempel AB", "Sweden"),
    "mismatch": Contributor("Mia Match", "mia@example.se", "Exempel AB", "Sweden"),
    "deep": Contributor("Dee Nest", "dee@example.org", "Example Org", "India"),
    "smime": Contributor("Sam Signer", "sam@secure.example.ch", "Secure Example SA", "Switzerland"),
    "forward": Contributor("Fran Forward", "fran@example.it", "Esempio SpA", "Italy"),
    "author": Contributor("Ada Author", "ada@example.it", "Esempio SpA", "Italy"),
}


def outlook_winmail() -> MailCase:
    who = PEOPLE["outlook"]
    name = "Contribution – Outlook.docx"
    docx = submission("Interoperability of avatars across platforms", who)
    tnef = winmail_dat(name, docx)
    raw = (
        headers(
            f"From: {who.name} <{who.address}>",
            f"To: {TO}",
            "Subject: Contribution from Example Corp",
            f"Date: {DATE}",
            "Message-ID: <0A1B2C3D4E5F@EXCH01.corp.example.com>",
            "Thread-Topic: Contribution from Example Corp",
            "Thread-Index: AdnR2yZr0nX3y0m1Qk6n3Y0q3m5E8A==",
            "Accept-Language: en-US",
            "Content-Language: en-US",
            "X-MS-Has-Attach: yes",
            "X-MS-TNEF-Correlator: <0A1B2C3D4E5F@EXCH01.corp.example.com>",
            "X-Mailer: Microsoft Outlook 16.0",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="_002_0A1B2C3D4E5F_"',
            "",
            "--_002_0A1B2C3D4E5F_",
            'Content-Type: text/plain; charset="us-ascii"',
            "Content-Transfer-Encoding: quoted-printable",
            "",
            "Dear secretariat,",
            "",
            "please find our contribution attached.",
            "",
            "--_002_0A1B2C3D4E5F_",
            'Content-Type: application/ms-tnef; name="winmail.dat"',
            'Content-Disposition: attachment; filename="winmail.dat"',
            "Content-Transfer-Encoding: base64",
            "",
        )
        + b64(tnef)
        + CRLF
        + headers("", "--_002_0A1B2C3D4E5F_--")
    )
    return MailCase(
        "outlook_winmail",
        "Outlook in rich-text mode: the .docx packed inside winmail.dat (TNEF)",
        raw,
        status="accepted",
        subject="Contribution from Example Corp",
        documents=(
            Document("winmail.dat", "not_a_document", "not_a_document"),
            Document(name, "document", "accepted", numbered=True),
        ),
        message_id="<0A1B2C3D4E5F@EXCH01.corp.example.com>",
        sender=who.address,
    )


def apple_inline() -> MailCase:
    who = PEOPLE["apple"]
    name = "Proposition JCA-MV.docx"
    docx = submission("Spatial anchors for shared virtual spaces", who)
    boundary = "Apple-Mail=_5E1F4B8C-2D3A-4E9B-9C1D-7A6B5C4D3E2F"
    raw = (
        headers(
            f"From: {who.name} <{who.address}>",
            "Content-Type: multipart/mixed;",
            f'\tboundary="{boundary}"',
            "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3731.700.6\\))",
            "Subject: Proposition pour la JCA-MV",
            f"Date: {DATE}",
            "Message-Id: <7C2E9A1B-3F4D-4B6A-8E2C-1D9F0A3B5C7E@mac.example.fr>",
            f"To: {TO}",
            "X-Mailer: Apple Mail (2.3731.700.6)",
            "",
            "",
            f"--{boundary}",
            "Content-Transfer-Encoding: 7bit",
            "Content-Type: text/plain;",
            "\tcharset=us-ascii",
            "",
            "Bonjour,",
            "",
            "",
            f"--{boundary}",
            "Content-Disposition: inline;",
            f'\tfilename="{name}"',
            f"Content-Type: {DOCX};",
            "\tx-unix-mode=0644;",
            f'\tname="{name}"',
            "Content-Transfer-Encoding: base64",
            "",
        )
        + b64(docx)
        + CRLF
        + headers(
            "",
            f"--{boundary}",
            "Content-Transfer-Encoding: 7bit",
            "Content-Type: text/plain;",
            "\tcharset=us-ascii",
            "",
            "",
            "Cordialement,",
            "Anne",
            "",
            f"--{boundary}--",
        )
    )
    return MailCase(
        "apple_inline",
        "Apple Mail: the document as an inline part with a file name, text before and after",
        raw,
        status="accepted",
        subject="Proposition pour la JCA-MV",
        documents=(Document(name, "document", "accepted", numbered=True),),
        message_id="<7C2E9A1B-3F4D-4B6A-8E2C-1D9F0A3B5C7E@mac.example.fr>",
        sender=who.address,
    )


def gmail_rfc2231() -> MailCase:
    who = PEOPLE["gmail"]
    name = "Предложение по дорожной карте метавселенной JCA-MV.docx"
    docx = submission("Roadmap for metaverse identity", who)
    boundary = "000000000000a1b2c3061f4e5d6c"
    raw = (
        headers(
            "MIME-Version: 1.0",
            f"From: {encoded_word(who.name, 'UTF-8')} <{who.address}>",
            f"Date: {DATE}",
            "Message-ID: <CAFx9k=Qz7o8JbQe1pQ2mRr3S4t5U6v7W8x9Y0z@mail.gmail.example>",
            f"Subject: {encoded_word('Вклад для JCA-MV: дорожная карта', 'UTF-8')}",
            f"To: {TO}",
            f'Content-Type: multipart/mixed; boundary="{boundary}"',
            "",
            f"--{boundary}",
            'Content-Type: text/plain; charset="UTF-8"',
            "Content-Transfer-Encoding: base64",
            "",
        )
        + b64("Добрый день! Вклад во вложении.\r\n".encode())
        + CRLF
        + headers(
            f"--{boundary}",
            f"Content-Type: {DOCX};",
            f' name="{encoded_word(name, "UTF-8")}"',
            "Content-Disposition: attachment;",
            rfc2231_continuations(name),
            "Content-Transfer-Encoding: base64",
            "X-Attachment-Id: f_lx1y2z3a0",
            "Content-ID: <f_lx1y2z3a0>",
            "",
        )
        + b64(docx)
        + CRLF
        + headers(f"--{boundary}--")
    )
    return MailCase(
        "gmail_rfc2231",
        "A long Cyrillic file name in RFC 2231 continuations (filename*0*=, filename*1*=, ...)",
        raw,
        status="accepted",
        subject="Вклад для JCA-MV: дорожная карта",
        documents=(Document(name, "document", "accepted", numbered=True),),
        message_id="<CAFx9k=Qz7o8JbQe1pQ2mRr3S4t5U6v7W8x9Y0z@mail.gmail.example>",
        sender=who.address,
    )


def _legacy_charset_case(
    key: str, charset: str, subject: str, body: str, name: str, title: str, name_style: str, mid: str
) -> tuple[bytes, Contributor]:
    who = PEOPLE[key]
    docx = submission(title, who)
    if name_style == "rfc2047":  # what Japanese and Chinese mailers do
        params = [f' name="{encoded_word(name, charset)}"']
        disposition = [f' filename="{encoded_word(name, charset)}"']
    else:  # RFC 2231 in the legacy charset
        quoted = urllib.parse.quote(name.encode(charset), safe="")
        params = [f' name="{encoded_word(name, charset)}"']
        disposition = [f" filename*={charset}''{quoted}"]
    raw = (
        headers(
            f"From: {encoded_word(who.name, charset)} <{who.address}>",
            f"To: {TO}",
            f"Subject: {encoded_word(subject, charset, 'B' if charset != 'KOI8-R' else 'Q')}",
            f"Date: {DATE}",
            f"Message-ID: {mid}",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="----=_Part_1_2026"',
            "",
            "------=_Part_1_2026",
            f"Content-Type: text/plain; charset={charset}",
            "Content-Transfer-Encoding: 7bit"
            if charset == "ISO-2022-JP"
            else "Content-Transfer-Encoding: 8bit",
            "",
        )
        + body.encode(charset)
        + CRLF
        + headers("------=_Part_1_2026", f"Content-Type: {DOCX};", *params)
        + headers("Content-Disposition: attachment;", *disposition, "Content-Transfer-Encoding: base64", "")
        + b64(docx)
        + CRLF
        + headers("------=_Part_1_2026--")
    )
    return raw, who


def iso_2022_jp() -> MailCase:
    subject = "メタバース標準化への寄書"
    name = "寄書 メタバース.docx"
    mid = "<20260427102913.1234@mail.example.co.jp>"
    raw, who = _legacy_charset_case(
        "japan", "ISO-2022-JP", subject, "お世話になっております。寄書を添付いたします。", name,
        "Metaverse terminology", "rfc2047", mid,
    )  # fmt: skip
    return MailCase(
        "iso_2022_jp",
        "A Japanese mailer: ISO-2022-JP subject, body and RFC 2047 file name",
        raw,
        status="accepted",
        subject=subject,
        documents=(Document(name, "document", "accepted", numbered=True),),
        message_id=mid,
        sender=who.address,
    )


def big5() -> MailCase:
    subject = "元宇宙標準化提案"
    name = "元宇宙標準化提案.docx"
    mid = "<tw.20260427.5678@mail.example.com.tw>"
    raw, who = _legacy_charset_case(
        "taiwan", "Big5", subject, "您好，附件是我們的提案。", name,
        "Metaverse use cases in Chinese Taipei", "rfc2047", mid,
    )  # fmt: skip
    return MailCase(
        "big5",
        "A Traditional Chinese mailer: Big5 subject, 8-bit body and RFC 2047 file name",
        raw,
        status="accepted",
        subject=subject,
        documents=(Document(name, "document", "accepted", numbered=True),),
        message_id=mid,
        sender=who.address,
    )


def koi8_r() -> MailCase:
    subject = "Вклад: сети и метавселенная"
    name = "Вклад ИП.docx"
    mid = "<koi8.20260427.9@mail.example.ru>"
    raw, who = _legacy_charset_case(
        "russia", "KOI8-R", subject, "Добрый день! Вклад во вложении.", name,
        "Networks for the metaverse", "rfc2231", mid,
    )  # fmt: skip
    return MailCase(
        "koi8_r",
        "A Russian mailer: KOI8-R quoted-printable subject, 8-bit body, RFC 2231 KOI8-R file name",
        raw,
        status="accepted",
        subject=subject,
        documents=(Document(name, "document", "accepted", numbered=True),),
        message_id=mid,
        sender=who.address,
    )


def eight_bit_headers() -> MailCase:
    who = PEOPLE["eightbit"]
    subject = "Beitrag für die JCA-MV: Größenordnung"
    name = "Beitrag Größe.docx"
    docx = submission("Scale of virtual worlds", who)
    raw = (
        headers(
            f"From: {who.name} <{who.address}>".encode(),
            f"To: {TO}",
            f"Subject: {subject}".encode(),
            f"Date: {DATE}",
            "Message-ID: <8bit.1@example.de>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="8bit"',
            "",
            "--8bit",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
            "Grüße aus Köln.".encode(),
            "--8bit",
            f'Content-Type: {DOCX}; name="{name}"'.encode(),
            f'Content-Disposition: attachment; filename="{name}"'.encode(),
            "Content-Transfer-Encoding: base64",
            "",
        )
        + b64(docx)
        + CRLF
        + headers("--8bit--")
    )
    return MailCase(
        "eight_bit_headers",
        "Raw UTF-8 bytes in From, Subject and the file name, with no encoded words",
        raw,
        status="accepted",
        subject=subject,
        documents=(Document(name, "document", "accepted", numbered=True),),
        message_id="<8bit.1@example.de>",
        sender=who.address,
    )


def _simple(
    who: Contributor, subject: str, name: str, docx: bytes, extra: tuple[str, ...], boundary: str
) -> bytes:
    return (
        headers(
            f"From: {who.name} <{who.address}>",
            f"To: {TO}",
            f"Subject: {subject}",
            *extra,
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{boundary}"',
            "",
            f"--{boundary}",
            "Content-Type: text/plain; charset=us-ascii",
            "",
            "Attached.",
            f"--{boundary}",
            f'Content-Type: {DOCX}; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            "Content-Transfer-Encoding: base64",
            "",
        )
        + b64(docx)
        + CRLF
    )


def missing_message_id() -> MailCase:
    who = PEOPLE["noid"]
    docx = submission("Haptics in virtual meetings", who)
    raw = _simple(who, "Input without a Message-ID", "haptics.docx", docx, (f"Date: {DATE}",), "noid")
    raw += headers("--noid--")
    return MailCase(
        "missing_message_id",
        "A home-made mailer that sends no Message-ID",
        raw,
        status="accepted",
        subject="Input without a Message-ID",
        documents=(Document("haptics.docx", "document", "accepted", numbered=True),),
        message_id=None,
        sender=who.address,
    )


def missing_date() -> MailCase:
    who = PEOPLE["nodate"]
    docx = submission("Accessibility of virtual worlds", who)
    raw = _simple(
        who, "Input without a Date", "accessibility.docx", docx, ("Message-ID: <nodate.1@example.net>",), "nd"
    )
    raw += headers("--nd--")
    return MailCase(
        "missing_date",
        "A script that sends no Date header",
        raw,
        status="accepted",
        subject="Input without a Date",
        documents=(Document("accessibility.docx", "document", "accepted", numbered=True),),
        message_id="<nodate.1@example.net>",
        sender=who.address,
    )


def missing_closing_boundary() -> MailCase:
    who = PEOPLE["broken"]
    docx = submission("Digital twins of cities", who)
    # The mail ends after the document: no closing --boundary-- line.
    raw = _simple(
        who,
        "Input with a cut-off MIME structure",
        "twins.docx",
        docx,
        (f"Date: {DATE}", "Message-ID: <cut.1@example.se>"),
        "cut",
    )
    return MailCase(
        "missing_closing_boundary",
        "A gateway that cut the closing boundary: the document is still all there",
        raw,
        status="accepted",
        subject="Input with a cut-off MIME structure",
        documents=(Document("twins.docx", "document", "accepted", numbered=True),),
        message_id="<cut.1@example.se>",
        sender=who.address,
    )


def boundary_mismatch() -> MailCase:
    who = PEOPLE["mismatch"]
    docx = submission("Mismatched boundaries", who)
    raw = _simple(
        who,
        "Input whose boundary is not the declared one",
        "mismatch.docx",
        docx,
        (f"Date: {DATE}", "Message-ID: <mismatch.1@example.se>"),
        "real-boundary",
    )
    raw += headers("--real-boundary--")
    # A broken mailer declares one boundary and uses another: no part can be found.
    raw = raw.replace(b'boundary="real-boundary"', b'boundary="declared-boundary"', 1)
    return MailCase(
        "boundary_mismatch",
        "A broken mailer declares one boundary and uses another: no part can be seen",
        raw,
        status="correspondence",  # no document can be seen: not refused, read by a person (issue 11)
        subject="Input whose boundary is not the declared one",
        documents=(),
        message_id="<mismatch.1@example.se>",
        sender=who.address,
    )


def deep_nesting(depth: int = 3000) -> MailCase:
    who = PEOPLE["deep"]
    head = headers(
        f"From: {who.name} <{who.address}>",
        f"To: {TO}",
        "Subject: Nested three thousand deep",
        f"Date: {DATE}",
        "Message-ID: <deep.3000@example.org>",
        "MIME-Version: 1.0",
    )
    nest = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth)
    )
    tail = b"Content-Type: text/plain\r\n\r\nthe bottom\r\n"
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return MailCase(
        "deep_nesting",
        f"multipart/mixed nested {depth} deep: refused as unreadable, not a crash",
        head + nest + tail + closing,
        status="quarantined",
        # Its headers are perfectly readable, even if its structure is not.
        subject="Nested three thousand deep",
        documents=(),
        message_id="<deep.3000@example.org>",
        sender=who.address,
    )


def smime_signed() -> MailCase:
    who = PEOPLE["smime"]
    name = "Secure input.docx"
    docx = submission("Trust and identity in the metaverse", who)
    # A DER SignedData prefix (OID 1.2.840.113549.1.7.2) padded to a plausible length;
    # nothing in intake verifies signatures, it only has to look like one.
    signature = bytes.fromhex("3082052806092a864886f70d010702a0820519") + bytes(range(256)) * 5
    outer, inner = "----F6A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5", "------------A1B2C3D4E5F6A7B8C9D0E1F2"
    raw = (
        headers(
            f"From: {who.name} <{who.address}>",
            f"To: {TO}",
            "Subject: Signed contribution",
            f"Date: {DATE}",
            "Message-ID: <smime.1@secure.example.ch>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/signed; protocol="application/pkcs7-signature";',
            f' micalg=sha-256; boundary="{outer}"',
            "",
            "This is an S/MIME signed message",
            "",
            f"--{outer}",
            f'Content-Type: multipart/mixed; boundary="{inner}"',
            "",
            f"--{inner}",
            "Content-Type: text/plain; charset=UTF-8; format=flowed",
            "Content-Transfer-Encoding: 7bit",
            "",
            "Signed input attached.",
            "",
            f"--{inner}",
            f'Content-Type: {DOCX}; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            "Content-Transfer-Encoding: base64",
            "",
        )
        + b64(docx)
        + CRLF
        + headers(
            "",
            f"--{inner}--",
            "",
            f"--{outer}",
            'Content-Type: application/pkcs7-signature; name="smime.p7s"',
            "Content-Transfer-Encoding: base64",
            'Content-Disposition: attachment; filename="smime.p7s"',
            "Content-Description: S/MIME Cryptographic Signature",
            "",
        )
        + b64(signature)
        + CRLF
        + headers("", f"--{outer}--")
    )
    return MailCase(
        "smime_signed",
        "Thunderbird S/MIME: multipart/signed around the text and the .docx, plus smime.p7s",
        raw,
        status="accepted",
        subject="Signed contribution",
        documents=(
            Document(name, "document", "accepted", numbered=True),
            Document("smime.p7s", "not_a_document", "not_a_document"),
        ),
        message_id="<smime.1@secure.example.ch>",
        sender=who.address,
    )


def forwarded() -> MailCase:
    fwd, author = PEOPLE["forward"], PEOPLE["author"]
    name = "Contributo originale.docx"
    docx = submission("Metaverse for cultural heritage", author)
    inner = (
        headers(
            f"From: {author.name} <{author.address}>",
            f"To: {fwd.name} <{fwd.address}>",
            "Subject: Contributo per la JCA-MV",
            "Date: Fri, 24 Apr 2026 17:02:11 +0200",
            "Message-ID: <orig.42@example.it>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="inner-b"',
            "",
            "--inner-b",
            "Content-Type: text/plain; charset=utf-8",
            "",
            "Fran, could you send this on to the secretariat?",
            "--inner-b",
            f'Content-Type: {DOCX}; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            "Content-Transfer-Encoding: base64",
            "",
        )
        + b64(docx)
        + CRLF
        + headers("--inner-b--")
    )
    raw = (
        headers(
            f"From: {fwd.name} <{fwd.address}>",
            f"To: {TO}",
            "Subject: Fwd: Contributo per la JCA-MV",
            f"Date: {DATE}",
            "Message-ID: <fwd.43@example.it>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="outer-b"',
            "",
            "--outer-b",
            "Content-Type: text/plain; charset=utf-8",
            "",
            "Forwarding Ada's contribution as an attachment.",
            "--outer-b",
            "Content-Type: message/rfc822",
            'Content-Disposition: attachment; filename="Contributo per la JCA-MV.eml"',
            "",
        )
        + inner
        + headers("--outer-b--")
    )
    return MailCase(
        "forwarded",
        "A submission forwarded as an attachment (message/rfc822) with the .docx inside",
        raw,
        status="accepted",
        subject="Fwd: Contributo per la JCA-MV",
        documents=(Document(name, "document", "accepted", numbered=True),),
        message_id="<fwd.43@example.it>",
        sender=fwd.address,
    )


BUILDERS: tuple[Callable[[], MailCase], ...] = (
    outlook_winmail,
    apple_inline,
    gmail_rfc2231,
    iso_2022_jp,
    big5,
    koi8_r,
    eight_bit_headers,
    missing_message_id,
    missing_date,
    missing_closing_boundary,
    boundary_mismatch,
    deep_nesting,
    smime_signed,
    forwarded,
)
NAMES = tuple(b.__name__ for b in BUILDERS)


def all_cases() -> list[MailCase]:
    """Every case, each received a minute after the one before (all before the deadline)."""
    return [
        dataclasses.replace(build(), received_at=RECEIVED + timedelta(minutes=i))
        for i, build in enumerate(BUILDERS)
    ]


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in all_cases():
        path = directory / f"{case.name}.eml"
        path.write_bytes(case.raw)
        paths.append(path)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "mail-catalogue")
    for written in write_all(target):
        print(written)

"""Hand-made messages for what the fetched corpus lacks (issue 11, acceptance 3).

Each is written byte by byte the way the mailer named in `what` writes it, and
carries what the intake log must show: status, subject, sender name, file
names, and whether a reply is queued. Nothing is copied from another project.
"""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass

from tests.mail.cases import CRLF as NL
from tests.mail.cases import DATE, DOCX, PEOPLE, TO, b64, headers, submission

BOUNDARY = "----=_NextPart_000_0012_01DA0000.11112222"


@dataclass(frozen=True)
class WorldCase:
    name: str
    what: str
    raw: bytes
    status: str
    subject: str | None
    sender_name: str | None
    filenames: tuple[str, ...] = ()
    replied: bool = True  # a reply is queued (False: never answer this one)


def _b(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(_codec(charset))).decode()}?="


def _codec(charset: str) -> str:
    return {"gb2312": "gbk", "shift_jis": "cp932", "ks_c_5601-1987": "cp949", "euc-kr": "cp949"}.get(
        charset, charset
    )


def _with_docx(
    head: bytes,
    filename_header: bytes,
    title: str,
    text: bytes = b"Please find my contribution.",
) -> bytes:
    # Each case's document has a title of its own: the same file twice is a resend (already_numbered).
    docx = submission(title, PEOPLE["author"])
    return (
        head
        + headers("MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"')
        + NL
        + headers(f"--{BOUNDARY}", "Content-Type: text/plain; charset=utf-8", "")
        + text
        + NL
        + headers(f"--{BOUNDARY}", f"Content-Type: {DOCX}", "Content-Transfer-Encoding: base64")
        + filename_header
        + NL
        + NL
        + b64(docx)
        + NL
        + headers(f"--{BOUNDARY}--")
    )


def gbk_under_gb2312() -> WorldCase:
    # 镕 and 喆 are in GBK, not in GB2312: Foxmail and old Outlook label such text gb2312.
    subject = "投稿：朱镕的元宇宙互操作性文稿"
    filename = "元宇宙文稿-陶喆.docx"
    quoted = urllib.parse.quote(filename.encode("gbk"), safe="")
    raw = _with_docx(
        headers(
            f"From: {_b('陶喆', 'gb2312')} <zhe@example.cn>",
            f"To: {TO}",
            f"Subject: {_b(subject, 'gb2312')}",
            f"Date: {DATE}",
            "Message-ID: <gbk-1@example.cn>",
            "X-Mailer: Foxmail 7.2",
        ),
        f"Content-Disposition: attachment; filename*=gb2312''{quoted}".encode(),
        "Interoperability of virtual worlds",
    )
    return WorldCase(
        "gbk_under_gb2312", "Foxmail: GBK text labelled gb2312", raw, "accepted", subject, "陶喆", (filename,)
    )


def gbk_encoded_word_file_name() -> WorldCase:
    filename = "朱镕的文稿.docx"
    raw = _with_docx(
        headers(
            "From: zhu@example.cn",
            f"To: {TO}",
            "Subject: contribution",
            f"Date: {DATE}",
            "Message-ID: <gbk-2@example.cn>",
        ),
        f'Content-Disposition: attachment; filename="{_b(filename, "gb2312")}"'.encode(),
        "Digital identity across virtual worlds",
    )
    return WorldCase(
        "gbk_encoded_word_file_name", "Outlook: RFC 2047 gb2312 file name", raw, "accepted",
        "contribution", None, (filename,),
    )  # fmt: skip


def shift_jis_subject() -> WorldCase:
    # ① and ㈱ are NEC extensions: CP932, not JIS X 0208.
    subject = "①メタバース標準化への寄書（㈱サンプル）"
    raw = (
        headers(
            f"From: {_b('山田太郎', 'shift_jis')} <taro@example.co.jp>",
            f"To: {TO}",
            f"Subject: {_b(subject, 'shift_jis')}",
            f"Date: {DATE}",
            "Message-ID: <sjis-1@example.co.jp>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=shift_jis",
            "",
        )
        + "寄書を添付します。".encode("cp932")
        + NL
    )
    return WorldCase("shift_jis_subject", "Becky!: Shift_JIS", raw, "correspondence", subject, "山田太郎")


def euc_kr_subject() -> WorldCase:
    # 똠 and 햏 exist only in CP949 (Unified Hangul Code), not in EUC-KR proper.
    subject = "메타버스 표준화 기고 (똠방각하 햏)"
    raw = (
        headers(
            f"From: {_b('김철수', 'euc-kr')} <cs.kim@example.kr>",
            f"To: {TO}",
            f"Subject: {_b(subject, 'euc-kr')}",
            f"Date: {DATE}",
            "Message-ID: <euckr-1@example.kr>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=euc-kr",
            "",
        )
        + "기고문을 보냅니다.".encode("cp949")
        + NL
    )
    return WorldCase(
        "euc_kr_subject", "Outlook Express (Korean): EUC-KR", raw, "correspondence", subject, "김철수"
    )


def ks_c_5601_subject() -> WorldCase:
    subject = "똠방각하: 메타버스 기고"
    raw = headers(
        "From: lee@example.kr",
        f"To: {TO}",
        f"Subject: {_b(subject, 'ks_c_5601-1987')}",
        f"Date: {DATE}",
        "Message-ID: <ksc-1@example.kr>",
        "",
        "text",
    )
    return WorldCase("ks_c_5601_subject", "Outlook: ks_c_5601-1987", raw, "correspondence", subject, None)


def raw_8bit_declared_charset() -> WorldCase:
    # A hand-rolled script: raw GBK bytes in the headers, the body's charset declared.
    subject = "关于元宇宙标准化的文稿（镕）"
    name = "王小明"
    filename = "文稿-镕.docx"
    head = (
        b"From: " + name.encode("gbk") + b" <wang@example.cn>" + NL
        + f"To: {TO}".encode() + NL
        + b"Subject: " + subject.encode("gbk") + NL
        + f"Date: {DATE}".encode() + NL
        + b"Message-ID: <raw8-1@example.cn>" + NL
    )  # fmt: skip
    docx = submission("Avatars that travel between virtual worlds", PEOPLE["author"])
    raw = (
        head
        + headers("MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"', "")
        + headers(f"--{BOUNDARY}", "Content-Type: text/plain; charset=gb2312", "")
        + "请查收。".encode("gbk")
        + NL
        + headers(f"--{BOUNDARY}", f"Content-Type: {DOCX}", "Content-Transfer-Encoding: base64")
        + b'Content-Disposition: attachment; filename="'
        + filename.encode("gbk")
        + b'"'
        + NL
        + NL
        + b64(docx)
        + NL
        + headers(f"--{BOUNDARY}--")
    )
    return WorldCase(
        "raw_8bit_declared_charset", "a script: raw GBK headers", raw, "accepted", subject, name, (filename,)
    )


def windows_1252_as_latin1() -> WorldCase:
    subject = "“Metaverse” contribution – €0 cost"
    data = subject.encode("cp1252")
    raw = headers(
        "From: =?iso-8859-1?Q?Ren=E9e_M=FCller?= <renee@example.de>",
        f"To: {TO}",
        f"Subject: =?iso-8859-1?B?{base64.b64encode(data).decode()}?=",
        f"Date: {DATE}",
        "Message-ID: <cp1252-1@example.de>",
        "",
        "text",
    )
    return WorldCase(
        "windows_1252_as_latin1", "Outlook: Windows-1252 labelled ISO-8859-1", raw, "correspondence", subject,
        "Renée Müller",
    )  # fmt: skip


def utf7_subject() -> WorldCase:
    subject = "Contribution ☺ Größe"
    raw = headers(
        "From: old@example.org",
        f"To: {TO}",
        f"Subject: =?unicode-1-1-utf-7?B?{base64.b64encode(subject.encode('utf-7')).decode()}?=",
        f"Date: {DATE}",
        "Message-ID: <utf7-1@example.org>",
        "",
        "text",
    )
    return WorldCase("utf7_subject", "an old mailer: UTF-7", raw, "correspondence", subject, None)


def c1_and_invisible() -> WorldCase:
    raw = headers(
        "From: =?utf-8?Q?Eve=C2=85_=E2=80=AEexample?= <eve@example.org>",
        f"To: {TO}",
        "Subject: =?utf-8?Q?Con=C2=9Atribution=E2=80=8B_text?=",
        f"Date: {DATE}",
        "Message-ID: <c1-1@example.org>",
        "",
        "text",
    )
    return WorldCase("c1_and_invisible", "C1 controls and a bidi override", raw, "correspondence",
                     "Contribution text", "Eve example")  # fmt: skip


def malformed_continuation() -> WorldCase:
    raw = headers(
        "From: Ana Folding <ana@example.es>",
        f"To: {TO}",
        "Subject: Contribution on metaverse",
        "interoperability (second line lost its indentation)",
        f"Date: {DATE}",
        "Message-ID: <fold-1@example.es>",
        "",
        "text",
    )
    return WorldCase(
        "malformed_continuation", "a script: folding without indentation", raw, "correspondence",
        "Contribution on metaverse interoperability (second line lost its indentation)", "Ana Folding",
    )  # fmt: skip


def spaces_before_colon() -> WorldCase:
    raw = headers(
        "From  : Bob Spaces <bob@example.org>",
        f"To: {TO}",
        "Subject : Contribution",
        f"Date: {DATE}",
        "Message-ID: <colon-1@example.org>",
        "",
        "text",
    )
    return WorldCase(
        "spaces_before_colon", "a script: `From  :`", raw, "correspondence", "Contribution", "Bob Spaces"
    )


def blank_line_and_mbox_from_first() -> WorldCase:
    raw = NL + headers(
        "From carol@example.org Mon Apr 27 10:29:13 2026",
        "From: Carol Mbox <carol@example.org>",
        f"To: {TO}",
        "Subject: Contribution sent from an mbox",
        f"Date: {DATE}",
        "Message-ID: <mbox-1@example.org>",
        "",
        "text",
    )
    return WorldCase(
        "blank_line_and_mbox_from_first", "an mbox export: blank line and `From ` first", raw,
        "correspondence", "Contribution sent from an mbox", "Carol Mbox",
    )  # fmt: skip


def bounce_empty_return_path() -> WorldCase:
    raw = headers(
        "Return-Path: <>",
        "From: MAILER-DAEMON",
        f"To: {TO}",
        "Subject: Returned message",
        f"Date: {DATE}",
        "",
        "The message could not be delivered.",
    )
    return WorldCase(
        "bounce_empty_return_path", "a bare MTA: Return-Path <>, From MAILER-DAEMON", raw, "ignored",
        "Returned message", None, replied=False,
    )  # fmt: skip


def postmaster_no_domain() -> WorldCase:
    raw = headers(
        "From: Postmaster",
        f"To: {TO}",
        "Subject: Message status",
        f"Date: {DATE}",
        "",
        "Your message could not be delivered.",
    )
    return WorldCase(
        "postmaster_no_domain", "old Exchange: From Postmaster, no address", raw, "ignored",
        "Message status", None, replied=False,
    )  # fmt: skip


def _auto_subject(name: str, subject: str, sender: str) -> WorldCase:
    raw = headers(
        f"From: {sender}",
        f"To: {TO}",
        f"Subject: {_b(subject, 'utf-8')}",
        f"Date: {DATE}",
        f"Message-ID: <{name}@example.org>",
        "",
        "I am away.",
    )
    what = "an automatic subject, no automatic header"
    return WorldCase(name, what, raw, "ignored", subject, None, replied=False)


def automatic_subjects() -> list[WorldCase]:
    return [
        _auto_subject("auto_generated_brackets", "[AUTO GENERATED] Ticket 4711 received", "desk@example.org"),
        _auto_subject("auto_generated_colon", "Auto-generated: your message", "system@example.org"),
        _auto_subject("ooo_chinese", "自动回复：关于文稿", "li@example.cn"),
        _auto_subject("ooo_russian", "Автоматический ответ: вклад", "ivan@example.ru"),
        _auto_subject("ooo_arabic", "رد تلقائي: المساهمة", "ahmed@example.eg"),
        _auto_subject("ooo_french", "Réponse automatique : contribution", "jean@example.fr"),
        _auto_subject("ooo_spanish", "Respuesta automática: contribución", "ana@example.es"),
    ]


def all_world_cases() -> list[WorldCase]:
    return [
        gbk_under_gb2312(),
        gbk_encoded_word_file_name(),
        shift_jis_subject(),
        euc_kr_subject(),
        ks_c_5601_subject(),
        raw_8bit_declared_charset(),
        windows_1252_as_latin1(),
        utf7_subject(),
        c1_and_invisible(),
        malformed_continuation(),
        spaces_before_colon(),
        blank_line_and_mbox_from_first(),
        bounce_empty_return_path(),
        postmaster_no_domain(),
        *automatic_subjects(),
    ]

"""Realistic sample submissions, for the demo and the benchmark.

Each sample is the raw bytes of an e-mail as a mail client would send it, and
the time the mail server received it. The documents are real .docx files
laid out like the ITU-T template's header block.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from intake.config import EventSettings

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True)
class Contributor:
    name: str
    address: str
    organization: str
    country: str


CONTRIBUTORS = (
    Contributor(
        "Jane Doe", "jane.doe@example.org", "Example Telecom Research Institute", "Korea (Republic of)"
    ),
    Contributor("Łukasz Żółć", "lukasz@example.pl", "Instytut Łączności", "Poland"),
    Contributor("王小明", "xiaoming.wang@example.cn", "China Academy of ICT", "China"),
    Contributor("Фёдор Иванов", "f.ivanov@example.ru", "НИИ Радио", "Russian Federation"),
    Contributor("فاطمة الزهراء", "fatima@example.ae", "Telecommunications Authority", "United Arab Emirates"),
    Contributor("Amara Okafor", "amara.okafor@example.ng", "Lagos Digital Lab", "Nigeria"),
)


def make_docx(
    event: EventSettings,
    title: str,
    source: str,
    contact: Contributor,
    abstract: str,
    filler_paragraphs: int = 3,
) -> bytes:
    """A document laid out like the ITU-T header block (see ../shared/notes/itu.md)."""
    import docx

    document = docx.Document()
    header = document.add_table(rows=9, cols=2)
    cells = [
        ("INTERNATIONAL TELECOMMUNICATION UNION", "JCA-MV-I-xxx"),
        ("TELECOMMUNICATION STANDARDIZATION SECTOR", event.group),
        ("STUDY PERIOD 2025-2028", "Original: English"),
        ("Question(s): N/A", f"{event.meeting_place}, {event.meeting_date:%d %B %Y}".replace(" 0", " ")),
        ("DOCUMENT", ""),
        ("Source:", source),
        ("Title:", title),
        ("Purpose:", "Proposal"),
        (
            "Contact:",
            f"{contact.name}\n{contact.organization}\n{contact.country}\n"
            f"Tel: +41 22 730 0000\nE-mail: {contact.address}",
        ),
    ]
    for row, (left, right) in zip(header.rows, cells, strict=True):
        row.cells[0].text = left
        row.cells[1].text = right
    summary = document.add_table(rows=2, cols=2)
    summary.rows[0].cells[0].text = "Keywords:"
    summary.rows[0].cells[1].text = "metaverse; interoperability; roadmap"
    summary.rows[1].cells[0].text = "Abstract:"
    summary.rows[1].cells[1].text = abstract
    document.add_heading("1 Introduction", level=1)
    for i in range(filler_paragraphs):
        document.add_paragraph(
            f"Paragraph {i + 1}. This contribution discusses {title.lower()} in the context of the "
            "JCA-MV standardization roadmap, and proposes text for the next revision."
        )
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_message(
    sender: Contributor,
    to: str,
    subject: str,
    body: str,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    date: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{sender.name} <{sender.address}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=sender.address.split("@")[1])
    if date is not None:
        msg["Date"] = format_datetime(date)
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def _resent(
    event: EventSettings, who: Contributor, document: bytes, when: datetime
) -> tuple[str, bytes, datetime]:
    """The first document sent again by its author, byte for byte, in a new message (issue 11)."""
    raw = make_message(
        who,
        event.address,
        "Resending: roadmap update",
        "Dear secretariat,\n\nI got no acknowledgement, so here is our input again.\n\nJane",
        [("JCA-MV roadmap update.docx", DOCX, document)],
        date=when,
    )
    return "the same document sent again, in a new message", raw, when


def _thanks(event: EventSettings, who: Contributor, when: datetime) -> tuple[str, bytes, datetime]:
    """Thanks in answer to the first acknowledgement, as a mail program writes it (issue 11):
    `Re:` and the number in the subject, no document. Correspondence, and not answered."""
    number = f"{event.numbering_prefix}{1:0{event.numbering_width}d}"
    raw = make_message(
        who,
        event.address,
        f"Re: Input document for JCA-MV: roadmap update [{number}]",
        "Dear secretariat,\n\nthank you, well received.\n\nJane",
        date=when,
    )
    return "thanks in answer to the acknowledgement", raw, when


_ABSTRACT = (
    "This contribution proposes an update to the metaverse standardization roadmap, "
    "covering interoperability of virtual worlds and digital identity."
)


def _doc(event: EventSettings, title: str, who: Contributor) -> bytes:
    return make_docx(event, title, who.organization, who, _ABSTRACT)


def demo_mailbox(event: EventSettings) -> list[tuple[str, bytes, datetime]]:
    """A realistic morning in the mailbox: (what it shows, raw bytes, server receipt time)."""
    before = event.deadline - timedelta(days=2)
    jane = CONTRIBUTORS[0]
    valid = _doc(event, "Proposed update to the metaverse standardization roadmap", jane)
    samples = [*_submissions(event, before, valid), *_unfinished(event, before), *_other_mail(event, before)]
    samples.append(("the same message delivered twice", samples[0][1], before + timedelta(hours=4)))
    samples.append(_resent(event, jane, valid, before + timedelta(hours=4, minutes=20)))
    samples.append(_thanks(event, jane, before + timedelta(hours=4, minutes=40)))
    samples.append(
        (
            "bytes that are not an e-mail",
            b"\x00\x01 this is not an e-mail at all \xff\xfe\r\n",
            before + timedelta(hours=5),
        )
    )
    return samples


def _submissions(event: EventSettings, before: datetime, valid: bytes) -> list[tuple[str, bytes, datetime]]:
    """Finished documents sent before the deadline, plain and less plain."""
    jane, lukasz, wang, fedor, _, _ = CONTRIBUTORS
    return [
        (
            "a valid input document",
            make_message(
                jane,
                event.address,
                "Input document for JCA-MV: roadmap update",
                "Dear secretariat,\n\nPlease find attached our input document.\n\nBest regards,\nJane",
                [("JCA-MV roadmap update.docx", DOCX, valid)],
                date=before,
            ),
            before,
        ),
        (
            "a document with a non-ASCII file name",
            make_message(
                lukasz,
                event.address,
                "Wkład: interoperacyjność światów wirtualnych",
                "Szanowni Państwo,\n\nw załączeniu nasz wkład.\n",
                [
                    (
                        "Wkład – interoperacyjność.docx",
                        DOCX,
                        _doc(event, "Interoperability of virtual worlds", lukasz),
                    )
                ],
                date=before,
            ),
            before + timedelta(minutes=7),
        ),
        (
            "a Word document with a PDF companion",
            make_message(
                wang,
                event.address,
                "关于元宇宙数字身份的输入文稿",
                "您好，附件是我们的文稿（Word 和 PDF）。\n",
                [
                    ("数字身份.docx", DOCX, _doc(event, "Digital identity in the metaverse", wang)),
                    ("数字身份.pdf", "application/pdf", b"%PDF-1.7\n% sample companion\n%%EOF\n"),
                ],
                date=before,
            ),
            before + timedelta(minutes=31),
        ),
        (
            "a PDF alone",
            make_message(
                fedor,
                event.address,
                "Вклад: метавселенная и сети",
                "Добрый день! Наш вклад во вложении (PDF).\n",
                [("Вклад.pdf", "application/pdf", b"%PDF-1.4\n% only a PDF\n%%EOF\n")],
                date=before,
            ),
            before + timedelta(hours=1),
        ),
    ]


def _unfinished(event: EventSettings, before: datetime) -> list[tuple[str, bytes, datetime]]:
    """Documents made from the template and not (all) filled in."""
    jane, amara = CONTRIBUTORS[0], CONTRIBUTORS[5]
    unfinished = make_docx(event, "[Insert title (always in ENGLISH)]", "", amara, "")
    return [
        (
            "two documents, one unfinished",
            make_message(
                amara,
                event.address,
                "Two inputs for JCA-MV",
                "Dear secretariat,\n\nplease find our two input documents attached.\n",
                [
                    (
                        "Avatar interoperability.docx",
                        DOCX,
                        _doc(event, "Avatar interoperability requirements", amara),
                    ),
                    ("Second input (draft).docx", DOCX, unfinished),
                ],
                date=before,
            ),
            before + timedelta(minutes=45),
        ),
        (
            "a document made from the template but not filled in",
            make_message(
                jane,
                event.address,
                "Another input",
                "Hello, here is one more input document.\n",
                [("JCA-MV input.docx", DOCX, unfinished)],
                date=before,
            ),
            before + timedelta(minutes=50),
        ),
    ]


def _other_mail(event: EventSettings, before: datetime) -> list[tuple[str, bytes, datetime]]:
    """A question, a late document and an out-of-office reply."""
    _, _, _, _, fatima, amara = CONTRIBUTORS
    after = event.deadline + timedelta(hours=3)
    return [
        (
            "a question, no document",
            make_message(
                amara,
                event.address,
                "Question about the meeting",
                "Hello, is remote participation possible for the 2nd meeting?\n",
                date=before,
            ),
            before + timedelta(hours=2),
        ),
        (
            "a late submission",
            make_message(
                fatima,
                event.address,
                "مساهمة: معايير الميتافيرس",
                "السلام عليكم، مرفق مساهمتنا.\n",
                [("مساهمة.docx", DOCX, _doc(event, "Metaverse standards landscape", fatima))],
                date=event.deadline - timedelta(minutes=5),
            ),
            after,
        ),
        (
            "an out-of-office reply",
            make_message(
                amara,
                event.address,
                "Automatic reply: JCA-MV 2nd meeting",
                "I am out of the office until 15 May.\n",
                date=before,
                extra_headers={"Auto-Submitted": "auto-replied"},
            ),
            before + timedelta(hours=3),
        ),
    ]

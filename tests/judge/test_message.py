"""A whole message: every file part judged, the message's status from its documents.

Messages are real MIME, built with the standard library and read by the
project's parser, as the poller does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from intake.config import EventSettings
from intake.domain import DocumentStatus as D
from intake.domain import MessageStatus as M
from intake.judge import judge_message
from intake.parse import Inbound, parse_message
from intake.verdict import MessageVerdict
from tests.judge import corpus as c

ON_TIME = datetime(2026, 4, 20, 9, 30, tzinfo=UTC)
LATE = datetime(2026, 5, 2, 9, 30, tzinfo=UTC)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def message(*files: tuple[str, bytes, str], sent: datetime = ON_TIME, inline: bytes | None = None) -> Inbound:
    mail = EmailMessage()
    mail["From"] = "Jane Doe <jane.doe@example.org>"
    mail["To"] = "tsbjcamv@itu.int"
    mail["Subject"] = "Input document for JCA-MV"
    mail["Date"] = format_datetime(sent)
    mail["Message-ID"] = "<input-1@example.org>"
    mail.set_content("Dear secretariat, please find my input attached.\n")
    if inline is not None:
        mail.add_alternative("<p>Dear secretariat</p><img src='cid:logo@example.org'>", subtype="html")
        html = mail.get_body(("html",))
        assert isinstance(html, EmailMessage)
        html.add_related(inline, "image", "png", cid="<logo@example.org>")
    for name, data, mime in files:
        main, sub = mime.split("/")
        mail.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return parse_message(bytes(mail))


def statuses(verdict: MessageVerdict) -> list[tuple[str | None, str, str]]:
    return [(d.filename, d.role, d.status.value) for d in verdict.documents]


def test_one_good_document_is_accepted(event: EventSettings) -> None:
    verdict = judge_message(message(("input.docx", c.filled_jca(), DOCX)), event, ON_TIME)
    assert verdict.status is M.ACCEPTED
    assert verdict.findings == ()
    assert statuses(verdict) == [("input.docx", "document", "accepted")]
    assert verdict.documents[0].title == c.TITLE


def test_pdf_and_zip_beside_the_word_file_are_companions(event: EventSettings) -> None:
    inbound = message(
        ("input.docx", c.filled_jca(), DOCX),
        ("input.pdf", c.PDF, "application/pdf"),
        ("annex.zip", c.plain_zip(), "application/zip"),
    )
    verdict = judge_message(inbound, event, ON_TIME)
    assert verdict.status is M.ACCEPTED
    assert statuses(verdict) == [
        ("input.docx", "document", "accepted"),
        ("input.pdf", "companion", "companion"),
        ("annex.zip", "companion", "companion"),
    ]


def test_signatures_vcards_and_a_signature_logo_are_not_documents(event: EventSettings) -> None:
    inbound = message(
        ("input.docx", c.filled_jca(), DOCX),
        ("smime.p7s", c.P7S, "application/pkcs7-signature"),
        ("jane.vcf", c.VCARD, "text/vcard"),
        inline=c.PNG,
    )
    verdict = judge_message(inbound, event, ON_TIME)
    assert verdict.status is M.ACCEPTED
    kinds = {d.detected_type: (d.role, d.status) for d in verdict.documents}
    assert kinds == {
        "docx": ("document", D.ACCEPTED),
        "image": ("not_a_document", D.NOT_A_DOCUMENT),
        "signature": ("not_a_document", D.NOT_A_DOCUMENT),
        "vcard": ("not_a_document", D.NOT_A_DOCUMENT),
    }


def test_a_pdf_alone_is_refused(event: EventSettings) -> None:
    verdict = judge_message(message(("input.pdf", c.PDF, "application/pdf")), event, ON_TIME)
    assert verdict.status is M.REJECTED
    assert [f.code for f in verdict.documents[0].findings] == ["type.pdf_without_word"]


def test_one_good_and_one_refused_document_is_partial(event: EventSettings) -> None:
    inbound = message(
        ("good.docx", c.filled_jca(), DOCX),
        ("blank.docx", c.JCA_TEMPLATE.read_bytes(), DOCX),
    )
    verdict = judge_message(inbound, event, ON_TIME)
    assert verdict.status is M.PARTIAL
    assert [d.status for d in verdict.documents] == [D.ACCEPTED, D.REJECTED]


def test_a_message_without_any_document_is_correspondence_with_its_own_finding(
    event: EventSettings,
) -> None:
    """Issue 11: a question or thanks is not a refused submission, on time or not."""
    for inbound in (message(), message(inline=c.PNG)):
        verdict = judge_message(inbound, event, ON_TIME)
        assert verdict.status is M.CORRESPONDENCE
        assert [f.code for f in verdict.findings] == ["message.no_document"]
    late = judge_message(message(sent=LATE), event, LATE)
    assert late.status is M.CORRESPONDENCE and late.findings[0].code == "message.no_document"
    # A refused file is a document: that message stays rejected (the PDF alone, below).
    assert (
        judge_message(message(("input.pdf", c.PDF, "application/pdf")), event, ON_TIME).status is M.REJECTED
    )


def test_a_document_in_a_forwarded_message_is_judged(event: EventSettings) -> None:
    inner = EmailMessage()
    inner["From"] = "author@example.org"
    inner["Subject"] = "my input"
    inner.set_content("see attached")
    inner.add_attachment(
        c.filled_jca(), maintype="application", subtype=DOCX.split("/")[1], filename="forwarded.docx"
    )
    outer = EmailMessage()
    outer["From"] = "colleague@example.org"
    outer["To"] = "tsbjcamv@itu.int"
    outer["Subject"] = "Fwd: my input"
    outer["Date"] = format_datetime(ON_TIME)
    outer.set_content("Forwarding on behalf of the author.")
    outer.add_attachment(inner)
    verdict = judge_message(parse_message(bytes(outer)), event, ON_TIME)
    assert verdict.status is M.ACCEPTED
    assert statuses(verdict) == [("forwarded.docx", "document", "accepted")]


def test_the_files_inside_a_winmail_dat_are_judged(event: EventSettings) -> None:
    packed = c.tnef([("input.docx", c.filled_jca()), ("input.pdf", c.PDF)])
    inbound = message(("winmail.dat", packed, "application/ms-tnef"))
    verdict = judge_message(inbound, event, ON_TIME)
    assert verdict.status is M.ACCEPTED
    assert statuses(verdict) == [
        ("winmail.dat", "not_a_document", "not_a_document"),
        ("input.docx", "document", "accepted"),
        ("input.pdf", "companion", "companion"),
    ]
    unpacked = verdict.documents[1]
    assert unpacked.part_index == verdict.documents[0].part_index
    assert unpacked.payload is not None and unpacked.payload.startswith(b"PK")


def test_a_winmail_dat_that_cannot_be_unpacked_says_how_to_resend(event: EventSettings) -> None:
    for packed in (c.tnef([]), c.tnef([("x.docx", c.filled_jca())])[:40]):
        verdict = judge_message(message(("winmail.dat", packed, "application/ms-tnef")), event, ON_TIME)
        assert verdict.status is M.REJECTED
        (document,) = verdict.documents
        assert [f.code for f in document.findings] == ["type.winmail_dat"]
        assert "HTML" in document.findings[0].fix


def test_late_by_default_is_held_without_losing_findings(event: EventSettings) -> None:
    inbound = message(
        ("good.docx", c.filled_jca(), DOCX),
        ("blank.docx", c.JCA_TEMPLATE.read_bytes(), DOCX),
        sent=ON_TIME,
    )
    verdict = judge_message(inbound, event, LATE)
    assert verdict.status is M.LATE
    assert [d.status for d in verdict.documents] == [D.LATE, D.REJECTED]
    assert [f.code for f in verdict.findings] == ["deadline.late", "deadline.date_gap"]
    assert verdict.documents[1].findings  # the refused one keeps its findings


def test_late_under_the_reject_policy_is_rejected(event: EventSettings) -> None:
    strict = replace(event, late_policy="reject")
    verdict = judge_message(message(("good.docx", c.filled_jca(), DOCX), sent=LATE), strict, LATE)
    assert verdict.status is M.REJECTED
    assert [d.status for d in verdict.documents] == [D.REJECTED]
    assert [f.code for f in verdict.findings] == ["deadline.late_rejected"]


def test_late_with_only_refused_documents_is_rejected(event: EventSettings) -> None:
    inbound = message(("input.pdf", c.PDF, "application/pdf"), sent=LATE)
    verdict = judge_message(inbound, event, LATE)
    assert verdict.status is M.REJECTED
    assert [f.code for f in verdict.findings] == ["deadline.late"]


def test_within_the_grace_period_is_on_time(event: EventSettings) -> None:
    graced = replace(event, grace=timedelta(minutes=30))
    received = event.deadline + timedelta(minutes=20)
    inbound = message(("good.docx", c.filled_jca(), DOCX), sent=received)
    verdict = judge_message(inbound, graced, received)
    assert verdict.status is M.ACCEPTED
    assert [(f.code, f.severity.value) for f in verdict.findings] == [("deadline.grace", "info")]


def test_a_refused_companion_makes_the_message_partial(event: EventSettings) -> None:
    inbound = message(
        ("good.docx", c.filled_jca(), DOCX),
        ("annex.zip", c.plain_zip(["notes.txt", "../../etc/cron.d/x"]), "application/zip"),
    )
    verdict = judge_message(inbound, event, ON_TIME)
    assert verdict.status is M.PARTIAL
    assert statuses(verdict)[1] == ("annex.zip", "companion", "rejected")

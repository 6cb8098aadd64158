"""Composing replies: headers, encodings, injection, attachments, times, templates.

Every check re-parses the raw bytes with the stdlib, as a mail program would.
"""

from __future__ import annotations

import dataclasses
import email.header
import email.utils
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from intake.config import ConfigError, EventSettings
from intake.config.replies import parse_replies
from intake.domain import DocumentStatus, MessageStatus
from intake.findings import found
from intake.replies.compose import (
    ComposedReply,
    DocumentLine,
    FindingLine,
    RecipientError,
    ReplyContext,
    check_templates,
    compose_reply,
    one_line,
    reply_subject,
    time_left,
)
from intake.screen import screen
from intake.verdict import DocumentVerdict, MessageVerdict
from tests.replies.mail import human, message

WARNING = FindingLine(
    "template.old_version", "warning", "The document uses an older template.", "Use version 3."
)
NO_TITLE = FindingLine(
    "template.missing_field", "error", "The Title field is empty.", "Fill in the Title field."
)
MACRO = FindingLine("type.macro_enabled", "error", "The file contains macros.", "Save it as a plain .docx.")


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw))


def address_header(raw: bytes, name: str) -> tuple[str, str]:
    """(display name, address) of an address header, decoded per RFC 2047.

    Not with policy.default: its address parser keeps the folding whitespace
    between two adjacent encoded words of a display name (RFC 2047 §6.2 says
    to drop it), so a long Arabic name would come back with a space inside a
    word. The legacy decoder follows the RFC, as mail programs do.
    """
    value = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)[name]
    decoded = str(email.header.make_header(email.header.decode_header(value)))
    return email.utils.parseaddr(decoded)


def context(**changes: Any) -> ReplyContext:
    base = ReplyContext(
        recipient="alice@example.org",
        recipient_name="Alice Martin",
        received_at=datetime(2026, 4, 20, 8, 0, 59, tzinfo=UTC),
        subject="Input contribution on avatars",
        message_id="<CAF1234abc@mail.example.org>",
        references=("<root@example.org>",),
        documents=(
            DocumentLine(
                "avatars.docx",
                DocumentStatus.ACCEPTED,
                "JCA-MV-I-004",
                "Avatar interoperability",
                "Contoso Ltd",
                (WARNING,),
            ),
            DocumentLine("draft.docm", DocumentStatus.REJECTED, findings=(MACRO, NO_TITLE)),
        ),
    )
    return dataclasses.replace(base, **changes)


NOW = datetime(2026, 4, 28, 16, 0, tzinfo=UTC)  # 2 days 5 h 59 min before the deadline


def header_names(msg: EmailMessage) -> list[str]:
    return [name.lower() for name in msg]


EXPECTED_HEADERS = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
    "x-auto-response-suppress",
    "mime-version",
    "content-type",
]


# --- headers -----------------------------------------------------------------------------


def test_acknowledgement_headers(event: EventSettings) -> None:
    reply = compose_reply("acknowledgement", context(), event, NOW)
    msg = parse(reply.raw)
    assert header_names(msg) == EXPECTED_HEADERS
    assert msg["From"] == "ITU-T JCA-MV secretariat <tsbjcamv@itu.int>"
    assert msg["To"] == "Alice Martin <alice@example.org>"
    assert msg["Subject"] == "Re: Input contribution on avatars [JCA-MV-I-004]" == reply.subject
    assert msg["In-Reply-To"] == "<CAF1234abc@mail.example.org>"
    assert msg["References"].split() == ["<root@example.org>", "<CAF1234abc@mail.example.org>"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert re.fullmatch(r"<intake\.[0-9a-f]{32}@itu\.int>", msg["Message-ID"])
    assert msg["Message-ID"] == reply.rfc_message_id
    assert email.utils.parsedate_to_datetime(msg["Date"]) == NOW
    assert reply.recipient == "alice@example.org"


def test_message_ids_are_unique(event: EventSettings) -> None:
    ids = {compose_reply("acknowledgement", context(), event, NOW).rfc_message_id for _ in range(50)}
    assert len(ids) == 50


def test_long_message_ids_are_folded_not_encoded(event: EventSettings) -> None:
    long_ids = tuple(f"<{'x' * 90}.{n}@mail.gmail.com>" for n in range(12))
    reply = compose_reply(
        "acknowledgement",
        context(message_id="<" + "y" * 120 + "@example.org>", references=long_ids),
        event,
        NOW,
    )
    assert b"=?" not in reply.raw.split(b"\r\n\r\n", 1)[0].split(b"Subject:")[0]
    msg = parse(reply.raw)
    references = msg["References"].split()
    assert len(references) == 10  # the root and the latest ones
    assert references[0] == long_ids[0]
    assert references[-1] == "<" + "y" * 120 + "@example.org>"
    assert all(len(line) <= 998 for line in reply.raw.split(b"\r\n"))


def test_no_in_reply_to_without_a_usable_message_id(event: EventSettings) -> None:
    msg = parse(compose_reply("acknowledgement", context(message_id=None, references=()), event, NOW).raw)
    assert msg["In-Reply-To"] is None and msg["References"] is None


@pytest.mark.parametrize(
    ("original", "numbers", "expected"),
    [
        ("My input", ["JCA-MV-I-004"], "Re: My input [JCA-MV-I-004]"),
        ("Re: My input", [], "Re: My input"),
        ("RE: Re: AW: My input", [], "Re: My input"),
        ("Re: My input [JCA-MV-I-004]", ["JCA-MV-I-004"], "Re: My input [JCA-MV-I-004]"),
        ("Two inputs", ["JCA-MV-I-004", "JCA-MV-I-005"], "Re: Two inputs [JCA-MV-I-004, JCA-MV-I-005]"),
        ("回复：输入", [], "Re: 输入"),
        ("", [], "Re: (no subject)"),
        (None, [], "Re: (no subject)"),
        ("Re:", [], "Re: (no subject)"),
        ("Reply guidelines", [], "Re: Reply guidelines"),
    ],
)
def test_reply_subject(original: str | None, numbers: list[str], expected: str) -> None:
    assert reply_subject(original, numbers) == expected


def test_numbers_only_in_the_subject_of_an_acknowledgement(event: EventSettings) -> None:
    reply = compose_reply("rejection", context(), event, NOW)
    assert reply.subject == "Re: Input contribution on avatars"


# --- encodings -------------------------------------------------------------------------------

NAMES_AND_SUBJECTS = [
    ("محمد العلي", "مساهمة بشأن الميتافيرس والتوائم الرقمية"),
    ("李伟", "关于元宇宙标准化的输入文稿：数字孪生与化身互操作性"),
    ("Ана Петровић", "Вклад по стандартизации метавселенной — цифровые двойники"),
    ("José Müller-Łukasiewicz", "Contribución: “interoperabilidad” de avatares"),
]


@pytest.mark.parametrize(("name", "subject"), NAMES_AND_SUBJECTS)
def test_non_ascii_names_and_subjects_round_trip(event: EventSettings, name: str, subject: str) -> None:
    reply = compose_reply("acknowledgement", context(recipient_name=name, subject=subject), event, NOW)
    assert reply.raw.isascii()  # RFC 2047 / quoted-printable: no 8-bit bytes on the wire
    msg = parse(reply.raw)
    assert address_header(reply.raw, "To") == (name, "alice@example.org")
    assert msg["Subject"] == f"Re: {subject} [JCA-MV-I-004]"
    assert not msg.defects and not msg["Subject"].defects
    body = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert body is not None and html is not None
    assert f"Dear {name}," in body.get_content()
    assert subject in body.get_content()
    assert name in html.get_content()


def test_non_ascii_sender_display_name(event: EventSettings) -> None:
    name = "أمانة فريق التنسيق المشترك المعني بتقييس الميتافيرس"  # long: folded over 2 words
    arabic = dataclasses.replace(event, address_name=name)
    raw = compose_reply("acknowledgement", context(recipient_name="李伟" * 30), arabic, NOW).raw
    assert address_header(raw, "From") == (name, "tsbjcamv@itu.int")
    assert address_header(raw, "To") == ("李伟" * 30, "alice@example.org")


def test_idn_recipient_domain_is_converted(event: EventSettings) -> None:
    reply = compose_reply("acknowledgement", context(recipient="li@例え.jp"), event, NOW)
    assert reply.recipient == "li@xn--r8jz45g.jp"
    assert parse(reply.raw)["To"].addresses[0].domain == "xn--r8jz45g.jp"


# --- injection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "x\r\nBcc: victim@example.org",
        "x\nBcc: victim@example.org",
        "x\rBcc: victim@example.org",
        "x\r\n\r\n<html>body takeover",
        "x\u2028Bcc: victim@example.org",
        "x\x00\x0bBcc: victim@example.org",
    ],
)
def test_subject_and_name_cannot_add_headers(event: EventSettings, payload: str) -> None:
    reply = compose_reply(
        "acknowledgement",
        context(subject=payload, recipient_name=payload, message_id="<a@b>\r\nBcc: v@example.org"),
        event,
        NOW,
    )
    msg = parse(reply.raw)
    assert header_names(msg) == [h for h in EXPECTED_HEADERS if h != "in-reply-to"]
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Subject"].startswith("Re: x ")  # the payload stays inside the subject, as text
    assert "a@b" not in (msg["References"] or "")


def test_unsafe_recipient_is_refused(event: EventSettings) -> None:
    for recipient in ("alice@example.org\r\nBcc: v@example.org", "alice", '"a b"@example.org'):
        with pytest.raises(RecipientError):
            compose_reply("acknowledgement", context(recipient=recipient), event, NOW)


# Names without the characters that make an address header need quoting, so
# that the decoded header can be compared with the name as given.
NAMES = st.text(
    alphabet=st.characters(blacklist_characters='"<>(),;:\\@[]=', blacklist_categories=["Cs"]),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@example(subject="0000 00000000¡¡¡¡¡𐀀𐀀𐀀𐀀 ¡", name="")  # a space the stdlib folder dropped
@example(subject="x" * 250, name="李伟 " * 20)
@given(subject=st.text(max_size=300), name=NAMES)
def test_any_subject_or_name_gives_exactly_our_headers(event: EventSettings, subject: str, name: str) -> None:
    reply = compose_reply("late_notice", context(subject=subject, recipient_name=name), event, NOW)
    assert reply.raw.isascii()
    msg = parse(reply.raw)
    assert header_names(msg) == EXPECTED_HEADERS
    assert msg["Subject"] == reply.subject == reply_subject(subject)
    assert "\n" not in reply.subject and "\r" not in reply.subject
    assert address_header(reply.raw, "To") == (one_line(name, 100), "alice@example.org")


# --- content -------------------------------------------------------------------------------------


def test_acknowledgement_content(event: EventSettings) -> None:
    reply = compose_reply("acknowledgement", context(), event, NOW)
    text = reply.body_text
    for expected in (
        "Dear Alice Martin,",
        "JCA-MV-I-004",
        "Avatar interoperability",
        "Contoso Ltd",
        "avatars.docx",
        "The document uses an older template. Use version 3.",
        "draft.docm",
        "The file contains macros.",
        "How to fix it: Save it as a plain .docx.",
        "The Title field is empty.",
        "Wednesday 13 May 2026, Geneva",
        "pre-register for the meeting by Monday 4 May 2026",
        "Monday 20 April 2026, 10:00:59 CEST (08:00:59 UTC)",
    ):
        assert expected in text, expected
    assert reply.body_html is not None and "JCA-MV-I-004" in reply.body_html


def test_acknowledgement_without_preregistration(event: EventSettings) -> None:
    no_prereg = dataclasses.replace(event, preregistration_deadline=None)
    assert "pre-register" not in compose_reply("acknowledgement", context(), no_prereg, NOW).body_text


def test_rejection_lists_each_finding_with_its_fix_and_the_time_left(event: EventSettings) -> None:
    ctx = context(
        documents=(DocumentLine("draft.docm", DocumentStatus.REJECTED, findings=(MACRO, NO_TITLE)),),
        findings=(FindingLine("message.no_document", "error", "No document.", "Attach one."),),
    )
    text = compose_reply("rejection", ctx, event, NOW).body_text
    assert "- The file contains macros.\n  How to fix it: Save it as a plain .docx." in text
    assert "- The Title field is empty.\n  How to fix it: Fill in the Title field." in text
    assert "- No document.\n  How to fix it: Attach one." in text
    assert "Thursday 30 April 2026, 23:59 CEST (21:59 UTC)" in text
    assert "You have 2 days, 5 hours and 59 minutes left" in text


def test_rejection_after_the_deadline_says_so(event: EventSettings) -> None:
    text = compose_reply("rejection", context(), event, event.deadline + timedelta(minutes=5)).body_text
    assert "has passed" in text and "left to send" not in text


def test_zone_label_and_winter_time(event: EventSettings) -> None:
    winter = dataclasses.replace(
        event,
        deadline=datetime(2026, 1, 15, 23, 59, 59, tzinfo=event.timezone),
        replies=parse_replies({"zone_label": "Geneva time"}),
    )
    text = compose_reply("rejection", context(), winter, datetime(2026, 1, 14, 12, tzinfo=UTC)).body_text
    assert "Thursday 15 January 2026, 23:59 Geneva time (22:59 UTC)" in text


def test_deadline_across_midnight_utc_shows_both_days(event: EventSettings) -> None:
    early = dataclasses.replace(event, deadline=datetime(2026, 4, 30, 1, 30, tzinfo=event.timezone))
    text = compose_reply("rejection", context(), early, NOW).body_text
    assert "Thursday 30 April 2026, 01:30 CEST (Wednesday 29 April 2026, 23:30 UTC)" in text


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (timedelta(days=2, hours=3, minutes=7, seconds=30), "2 days, 3 hours and 7 minutes"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=1, minutes=1), "1 hour and 1 minute"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(0), None),
        (timedelta(seconds=-1), None),
    ],
)
def test_time_left(remaining: timedelta, expected: str | None) -> None:
    deadline = datetime(2026, 4, 30, 21, 59, 59, tzinfo=UTC)
    assert time_left(deadline, deadline - remaining) == expected


def test_rejection_attaches_the_blank_template(event: EventSettings, tmp_path: Path) -> None:
    template = tmp_path / "ITU-T contribution template.docx"
    template.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
    with_template = dataclasses.replace(event, template=template)
    msg = parse(compose_reply("rejection", context(), with_template, NOW).raw)
    attachments = list(msg.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_filename() == "ITU-T contribution template.docx"
    assert attachments[0].get_content_type() == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert attachments[0].get_content() == template.read_bytes()
    assert "attached to this message (ITU-T contribution template.docx)" in (
        msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    )
    # An acknowledgement never carries it.
    acknowledgement = compose_reply("acknowledgement", context(), with_template, NOW)
    assert not list(parse(acknowledgement.raw).iter_attachments())


@pytest.mark.parametrize(
    "changes",
    [
        {"template": None},  # no template file configured
        {"replies": {"attach_template": False}},  # a file, but the event links instead
    ],
)
def test_rejection_links_the_template_when_not_attached(
    event: EventSettings, tmp_path: Path, changes: dict[str, Any]
) -> None:
    template = tmp_path / "template.docx"
    template.write_bytes(b"PK\x03\x04")
    link = "https://www.itu.int/jca-mv/template.docx"
    replies = parse_replies({"template_link": link} | changes.pop("replies", {}))
    fields: dict[str, Any] = {"template": template, "replies": replies} | changes
    linked = dataclasses.replace(event, **fields)
    reply = compose_reply("rejection", context(), linked, NOW)
    assert f"download the blank template here: {link}" in reply.body_text
    assert f'<a href="{link}">' in (reply.body_html or "")
    assert not list(parse(reply.raw).iter_attachments())


def test_unreadable_template_means_no_attachment_not_no_reply(event: EventSettings, tmp_path: Path) -> None:
    missing = dataclasses.replace(event, template=tmp_path / "gone.docx")
    reply = compose_reply("rejection", context(), missing, NOW)
    assert not list(parse(reply.raw).iter_attachments())
    assert "blank template is attached" not in reply.body_text
    assert any("gone.docx" in p for p in check_templates(missing))


@pytest.mark.parametrize(
    ("policy_name", "words"),
    [("hold", "The secretariat reviews late submissions"), ("reject", "cannot be considered")],
)
def test_late_notice(event: EventSettings, policy_name: str, words: str) -> None:
    late_event = dataclasses.replace(event, late_policy=policy_name)
    received = datetime(2026, 4, 30, 22, 0, 12, tzinfo=UTC)
    reply = compose_reply("late_notice", context(received_at=received), late_event, received)
    assert "Friday 1 May 2026, 00:00:12 CEST (Thursday 30 April 2026, 22:00:12 UTC)" in reply.body_text
    assert "Thursday 30 April 2026, 23:59 CEST (21:59 UTC)" in reply.body_text
    assert words in reply.body_text
    assert words in (reply.body_html or "")


def test_html_is_escaped_and_text_is_not(event: EventSettings) -> None:
    evil = '<script>alert("x")</script> & <b>bold</b>'
    ctx = context(
        subject=evil,
        documents=(DocumentLine("a.docx", DocumentStatus.ACCEPTED, "JCA-MV-I-001", evil, evil),),
    )
    reply = compose_reply("acknowledgement", ctx, event, NOW)
    assert "<script>" not in (reply.body_html or "")
    assert "&lt;script&gt;" in (reply.body_html or "")
    assert evil in reply.body_text


def test_unknown_kind_and_naive_time_are_errors(event: EventSettings) -> None:
    with pytest.raises(ValueError):
        compose_reply("welcome", context(), event, NOW)
    with pytest.raises(ValueError):
        compose_reply("rejection", context(), event, NOW.replace(tzinfo=None))


def test_our_own_reply_coming_back_is_screened_out(event: EventSettings) -> None:
    reply: ComposedReply = compose_reply("acknowledgement", context(), event, NOW)
    result = screen(message(reply.raw.decode("ascii").split("\r\n\r\n", 1)[0]), event)
    assert result is not None and result.status is MessageStatus.IGNORED


# --- from a verdict -------------------------------------------------------------------------------


def test_context_from_verdict(event: EventSettings) -> None:
    inbound = human(
        "References: <a@example.org> <b@example.org>\nReply-To: office@example.org",
        subject="Two inputs",
    )
    verdict = MessageVerdict(
        status=MessageStatus.PARTIAL,
        findings=(found("message.defects", defects="x"),),  # info: recorded, not shown
        documents=(
            DocumentVerdict(
                0,
                "a.docx",
                None,
                "docx",
                10,
                "0" * 64,
                "document",
                DocumentStatus.ACCEPTED,
                title="Avatars",
                source="Contoso",
            ),
            DocumentVerdict(
                1,
                "b.docx",
                None,
                "docx",
                10,
                "1" * 64,
                "document",
                DocumentStatus.REJECTED,
                findings=(found("message.no_document"),),
            ),
        ),
    )
    ctx = ReplyContext.from_verdict(
        inbound, verdict, recipient="alice@example.org", received_at=NOW, numbers={0: "JCA-MV-I-007"}
    )
    assert ctx.recipient_name == "Alice Martin"
    assert ctx.references == ("<a@example.org>", "<b@example.org>")
    assert ctx.findings == ()
    assert [d.number for d in ctx.documents] == ["JCA-MV-I-007", None]
    assert ctx.documents[1].errors[0].message == "Your message carried no document."
    other = ReplyContext.from_verdict(inbound, verdict, recipient="office@example.org", received_at=NOW)
    assert other.recipient_name is None  # the name belongs to the From address
    assert compose_reply("acknowledgement", ctx, event, NOW).subject == "Re: Two inputs [JCA-MV-I-007]"


# --- templates and configuration ----------------------------------------------------------------


def test_shipped_templates_render(event: EventSettings) -> None:
    assert check_templates(event) == []


def _templates(tmp_path: Path, **overrides: str) -> Path:
    from intake.config import shipped_config_dir

    directory = tmp_path / "replies"
    directory.mkdir()
    for source in (shipped_config_dir() / "replies").glob("*.j2"):
        (directory / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    for name, text in overrides.items():
        path = directory / name.replace("__", ".")
        if text:
            path.write_text(text, encoding="utf-8")
        else:
            path.unlink()
    return directory


def test_check_templates_reports_each_broken_template(event: EventSettings, tmp_path: Path) -> None:
    directory = _templates(
        tmp_path,
        rejection__txt__j2="Dear {{ recipient_name }\n",  # syntax error
        acknowledgement__html__j2="<p>{{ recipent_name }}</p>",  # misspelt: undefined
        late_notice__txt__j2="",  # missing
    )
    custom = dataclasses.replace(event, replies=parse_replies({"templates_dir": str(directory)}))
    problems = check_templates(custom)
    assert len(problems) == 3
    assert any("rejection.txt.j2:1" in p for p in problems)
    assert any("acknowledgement.html.j2" in p and "recipent_name" in p for p in problems)
    assert any("late_notice.txt.j2: missing" in p for p in problems)


def test_edited_templates_are_used(event: EventSettings, tmp_path: Path) -> None:
    directory = _templates(tmp_path, late_notice__txt__j2="Late: {{ subject }} <{{ recipient }}>\n")
    custom = dataclasses.replace(event, replies=parse_replies({"templates_dir": str(directory)}))
    reply = compose_reply("late_notice", context(subject="A & B"), custom, NOW)
    assert reply.body_text == "Late: A & B <alice@example.org>\n"


def test_templates_cannot_reach_python_internals(event: EventSettings, tmp_path: Path) -> None:
    directory = _templates(
        tmp_path, late_notice__txt__j2="{{ recipient.__class__.__mro__[1].__subclasses__() }}"
    )
    custom = dataclasses.replace(event, replies=parse_replies({"templates_dir": str(directory)}))
    assert any("late_notice.txt.j2" in p and "SecurityError" in p for p in check_templates(custom))


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"templates_dir": "relative/dir"}, "event.replies.templates_dir"),
        ({"templates_dir": "/nonexistent/dir"}, "event.replies.templates_dir"),
        ({"template_link": "ftp://x/template.docx"}, "event.replies.template_link"),
        ({"template_link": "javascript:alert(1)"}, "event.replies.template_link"),
        ({"attach_template": "yes"}, "event.replies.attach_template"),
        ({"zone_label": 3}, "event.replies.zone_label"),
        ({"signature": "x"}, "event.replies.signature"),
    ],
)
def test_bad_replies_table(event: EventSettings, table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_replies(table)
    assert raised.value.setting == key


# --- the hand-written MIME against the stdlib's ------------------------------------------------
#
# compose_reply writes the MIME itself (intake/replies/compose.py says why). The reference
# below builds the same reply the way it was built before, with EmailMessage and the
# module's policy; with the same Message-ID and boundaries the bytes must be identical.


def _stdlib_reply(
    kind: str, ctx: ReplyContext, event: EventSettings, now: datetime, message_id: str
) -> bytes:
    from email.headerregistry import Address

    from intake.replies import compose
    from intake.replies.kinds import spec

    config = event.replies
    attachment = compose._template_file(kind, event, config)
    namespace = compose.template_namespace(
        kind, ctx, event, now, config, attachment[0] if attachment else None
    )
    text_template, html_template = spec(kind).templates
    msg = EmailMessage(policy=compose._POLICY)
    msg["From"] = Address(display_name=one_line(event.address_name, 100), addr_spec=event.address)
    msg["To"] = Address(
        display_name=namespace["recipient_name"] or "",
        addr_spec=compose.deliverable_address(ctx.recipient) or "",
    )
    msg["Subject"] = namespace["reply_subject"]
    msg["Date"] = email.utils.format_datetime(now.astimezone(event.timezone))
    msg["Message-ID"] = message_id
    parent = compose._message_id(ctx.message_id)
    if parent:
        msg["In-Reply-To"] = parent
    references = [r for r in (compose._message_id(r) for r in ctx.references) if r]
    if parent:
        references.append(parent)
    if len(references) > 10:
        references = references[:1] + references[-9:]
    if references:
        msg["References"] = " ".join(references)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(compose._render(config, text_template, namespace), cte="quoted-printable")
    msg.add_alternative(
        compose._render(config, html_template, namespace), subtype="html", cte="quoted-printable"
    )
    if attachment:
        filename = attachment[0]
        maintype, _, subtype = compose._OFFICE_TYPES[Path(filename).suffix.lower()].partition("/")
        msg.add_attachment(event.template.read_bytes(), maintype=maintype, subtype=subtype, filename=filename)  # type: ignore[union-attr]
    return msg.as_bytes()


def _same_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both builders draw boundaries from `random`: seed it the same before each build."""
    import email.generator

    from intake.replies import compose

    tokens = iter(range(10**18, 10**18 + 10**6))
    monkeypatch.setattr(compose.random, "randrange", lambda _n: next(tokens))

    def make_boundary(cls: Any, text: str | None = None) -> str:
        return "=" * 15 + f"{next(tokens):019d}" + "=="

    monkeypatch.setattr(email.generator.Generator, "_make_boundary", classmethod(make_boundary))


def _compare(
    monkeypatch: pytest.MonkeyPatch, kind: str, ctx: ReplyContext, event: EventSettings, now: datetime
) -> None:
    from intake.replies import compose

    _same_boundaries(monkeypatch)
    ours = compose_reply(kind, ctx, event, now)
    _same_boundaries(monkeypatch)
    reference = _stdlib_reply(kind, ctx, event, now, ours.rfc_message_id)
    assert ours.raw == reference
    compose._mailbox.cache_clear()


@pytest.mark.parametrize("kind", ["acknowledgement", "rejection", "late_notice", "secretariat_rejection"])
def test_mime_is_what_the_stdlib_writes(
    event: EventSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    template = tmp_path / "ITU-T contribution template.docx"
    template.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 400)
    with_template = dataclasses.replace(event, template=template)
    long_refs = tuple(f"<ref{i}.{'x' * 40}@example.org>" for i in range(14))
    for ctx in (
        context(),
        context(message_id=None, references=()),
        context(references=long_refs),
        context(message_id="<a=?utf-8?q?x?=b@example.org>"),
        *(context(recipient_name=name, subject=subject) for name, subject in NAMES_AND_SUBJECTS),
        context(subject="x" * 250, recipient_name="Dr. O'Brien, Jr."),
        context(subject="An input on avatars " * 8, recipient_name="A" * 90),
        *(
            context(recipient_name=n)
            for n in ("Dr. Alice Martin", 'Al "Ali" Martin', "Alice (Contoso)", "a@b")
        ),
        context(recipient="first.last+tag@sub.example.org", recipient_name=""),
        context(subject="An input on avatars and digital twins for the roadmap", recipient_name="a b"),
        context(subject="=?utf-8?q?caf=C3=A9?=", recipient_name="=?utf-8?q?x?="),
    ):
        _compare(monkeypatch, kind, ctx, with_template, NOW)
        _compare(monkeypatch, kind, ctx, event, NOW)
    arabic = dataclasses.replace(event, address_name="أمانة فريق التنسيق المشترك المعني بتقييس الميتافيرس")
    _compare(monkeypatch, kind, context(recipient_name="李伟" * 30), arabic, NOW)


@settings(max_examples=150, deadline=None)
@given(subject=st.text(max_size=200), name=st.text(max_size=80), body=st.text(max_size=300))
def test_any_reply_is_what_the_stdlib_writes(
    event: EventSettings, subject: str, name: str, body: str
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        ctx = context(subject=subject, recipient_name=name, note=body)
        _compare(monkeypatch, "secretariat_rejection", ctx, event, NOW)
        _compare(monkeypatch, "acknowledgement", ctx, event, NOW)


def test_the_blank_template_is_encoded_once(event: EventSettings, tmp_path: Path) -> None:
    from intake.replies import compose

    template = tmp_path / "template.docx"
    template.write_bytes(b"PK\x03\x04" + b"a" * 5000)
    with_template = dataclasses.replace(event, template=template)
    compose._attachment_part.cache_clear()
    for _ in range(5):
        compose_reply("rejection", context(), with_template, NOW)
    assert compose._attachment_part.cache_info().misses == 1
    template.write_bytes(b"PK\x03\x04" + b"b" * 6000)  # edited: read and encoded again
    msg = parse(compose_reply("rejection", context(), with_template, NOW).raw)
    assert [a.get_content() for a in msg.iter_attachments()] == [template.read_bytes()]


# --- the fast paths against the stdlib ------------------------------------------------------------
#
# compose.py writes the common cases itself (a long ASCII Subject, a printable header value, the
# clock of a moment) and leaves the rest to the stdlib. Each fast path must give the stdlib's
# bytes exactly; these tests compare the two directly, beside the whole-reply comparisons above.

_USUAL_SUBJECT = "Re: JCA-MV input document: Proposed update to the metaverse roadmap [JCA-MV-I-012]"
_SUBJECT_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII but the space
_SUBJECT_WORDS = st.one_of(
    st.text(alphabet="aZ9-:[]", min_size=1, max_size=12),
    st.text(alphabet=_SUBJECT_CHARS, min_size=1, max_size=90),
    st.integers(min_value=60, max_value=80).map(lambda n: "w" * n),  # about a line's length
)


@settings(max_examples=600, deadline=None)
@example(words=_USUAL_SUBJECT.split(" "), separator=" ")
@example(words=["x" * 69], separator=" ")  # fits beside "Subject: " exactly
@example(words=["x" * 70], separator=" ")  # alone on the second line
@example(words=["x" * 77], separator=" ")  # the longest word the fast path moves
@example(words=["x" * 78], separator=" ")  # too long to move: the stdlib's
@example(words=["Re:", "=?utf-8?q?caf=C3=A9?=", *["word"] * 15], separator=" ")  # decoded by the stdlib
@example(words=["a", "=?utf-8?q?x?=", "b" * 80], separator=" ")
@given(words=st.lists(_SUBJECT_WORDS, min_size=1, max_size=30), separator=st.sampled_from([" ", "  "]))
def test_subject_fold_is_the_stdlibs(words: list[str], separator: str) -> None:
    from intake.replies import compose

    for subject in (separator.join(words), " " + " ".join(words), " ".join(words) + " "):
        fast = compose._folded_words("Subject", subject)
        reference = compose._folded("Subject", subject)
        assert fast is None or fast == reference
        assert compose._subject(subject) == reference


def test_subject_fold_takes_the_fast_path_for_usual_subjects() -> None:
    from intake.replies import compose

    for subject in (
        _USUAL_SUBJECT,
        "Re: " + "An input on avatars " * 8 + "[JCA-MV-I-004, JCA-MV-I-005]",
        "Re: " + "x" * 72,  # alone on the second line
    ):
        assert compose._folded_words("Subject", subject) == compose._folded("Subject", subject)
    for subject in ("Re: caf\u00e9 " * 9, "Re: =?utf-8?q?x?= " * 6, "Re:  two  spaces " * 6, "x" * 100):
        assert compose._folded_words("Subject", subject.strip()) is None  # left to the stdlib


def test_one_line_skips_only_values_it_would_not_change() -> None:
    """`one_line` skips its per-character loop for printable values: no code point that the loop
    replaces is printable, so the loop would keep such a value as it is."""
    import sys
    import unicodedata

    from intake.replies import compose

    replaced = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Zl", "Zp") or chr(c) in compose._BIDI_OVERRIDES
    ]
    assert "\x00" in replaced and "\u2028" in replaced and "\u202e" in replaced
    assert not any(ch.isprintable() for ch in replaced)


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=120), limit=st.integers(min_value=1, max_value=130))
def test_one_line_is_the_per_character_rule(value: str, limit: int) -> None:
    from intake.replies import compose

    text = " ".join(compose._without_controls(value).split())
    expected = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    assert one_line(value, limit) == expected


@settings(max_examples=300, deadline=None)
@given(
    value=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    seconds=st.booleans(),
)
def test_moment_clock_is_strftimes(event: EventSettings, value: datetime, seconds: bool) -> None:
    from intake.replies import compose

    shown = compose.moment(value, event, "", seconds)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    local = value.astimezone(event.timezone)
    assert shown.local.endswith(f", {local.strftime(clock)} {local.tzname()}")
    assert shown.utc.endswith(f", {value.strftime(clock)} UTC")
    assert shown.iso == value.isoformat()


def test_moment_tells_the_repeated_hour_apart(event: EventSettings) -> None:
    """Two times of the hour repeated when summer time ends compare equal; the cache must not
    give one the other's text."""
    first = datetime(2026, 10, 25, 2, 30, tzinfo=event.timezone)
    second = first.replace(fold=1)
    assert first == second
    assert _moment_both(event, first) == "Sunday 25 October 2026, 02:30 CEST (00:30 UTC)"
    assert _moment_both(event, second) == "Sunday 25 October 2026, 02:30 CET (01:30 UTC)"
    assert _moment_both(event, first) == "Sunday 25 October 2026, 02:30 CEST (00:30 UTC)"


def _moment_both(event: EventSettings, value: datetime) -> str:
    from intake.replies.compose import moment

    return moment(value, event).both


def test_an_edited_template_is_used_within_a_second(
    event: EventSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Templates are asked of Jinja at most once a second; an edit is still picked up, without a
    restart, and `check_templates` always sees the file as it is."""
    import os

    from intake.replies import compose

    directory = _templates(tmp_path, late_notice__txt__j2="First wording.\n")
    custom = dataclasses.replace(event, replies=parse_replies({"templates_dir": str(directory)}))
    clock = [1000.0]
    monkeypatch.setattr(compose, "_monotonic", lambda: clock[0])
    assert compose_reply("late_notice", context(), custom, NOW).body_text == "First wording.\n"
    path = directory / "late_notice.txt.j2"
    path.write_text("Second wording.\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5 * 10**9))  # a new mtime, however coarse
    clock[0] += 0.5
    assert compose_reply("late_notice", context(), custom, NOW).body_text == "First wording.\n"
    clock[0] += 0.6
    assert compose_reply("late_notice", context(), custom, NOW).body_text == "Second wording.\n"
    path.write_text("{{ broken\n", encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 * 10**9))
    assert any("late_notice.txt.j2:1" in p for p in check_templates(custom))  # at once

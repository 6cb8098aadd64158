"""Mail that is not a submission (issue 11, part 2), end to end: Dovecot in, `intake poll
--once`, aiosmtpd out, on SQLite and PostgreSQL.

A message answering our mail (In-Reply-To or References naming one of our replies'
Message-IDs, or our number in a `Re:` subject) with no document is `correspondence` and
gets no reply; any other message from a person without a document is `correspondence`
and gets one notice (at most one a day per address), never a rejection.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from intake.samples import DOCX, Contributor, make_docx, make_message
from tests.support.dovecot import Dovecot
from tests.support.intake_env import REPO, IntakeEnv, config_on
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.dovecot

JANE = Contributor("Jane Doe", "jane.doe@example.org", "Example Org", "Switzerland")
ASKER = Contributor("Kofi Mensah", "kofi@example.gh", "Ghana Telecom", "Ghana")
LINK = "https://www.itu.int/jca-mv/template.docx"
PRECHECK = "https://intake.example.org/precheck/"
REPLIES = f"""
precheck_url = "{PRECHECK}"

[event.replies]
template_link = "{LINK}"
"""


def _env(dovecot: Dovecot, url: str, directory: Path, smtp: SmtpSink, extra: str = REPLIES) -> IntakeEnv:
    return config_on(dovecot, directory, url, smtp_port=smtp.port, extra=extra)


@pytest.fixture
def env(dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> IntakeEnv:
    return _env(dovecot, migrated_url, tmp_path, smtp_sink)


def _parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _by_subject(env: IntakeEnv) -> dict[str, dict[str, Any]]:
    return {e["subject"]: e for e in env.log_json()}


def test_a_thank_you_answering_our_acknowledgement_is_correspondence_and_gets_no_reply(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    before = event.deadline - timedelta(days=3)
    docx = make_docx(event, "Roadmap update", JANE.organization, JANE, "An abstract about the roadmap.")
    dovecot.append_many(
        "INBOX",
        [(make_message(JANE, event.address, "Roadmap input", "Attached.", [("r.docx", DOCX, docx)]), before)],
    )
    env.run("poll", "--once", check=True)
    [ack] = [_parsed(m.data) for m in smtp_sink.messages]
    [number] = [d["number"] for d in _by_subject(env)["Roadmap input"]["documents"]]
    assert number in str(ack["Subject"])
    ours = str(ack["Message-ID"])

    # As a mail program answers: Re: our subject (with the number), In-Reply-To our Message-ID.
    thanks = make_message(
        JANE,
        event.address,
        str(ack["Subject"]),
        "Thank you, well received.",
        extra_headers={"In-Reply-To": ours, "References": f"<{JANE.address}.1> {ours}"},
    )
    # Each way of answering on its own: only the Message-ID (a subject rewritten), only the number.
    by_id = make_message(JANE, event.address, "Thanks!", "Thanks.", extra_headers={"In-Reply-To": ours})
    by_references = make_message(
        JANE, event.address, "One more thing", "A question.", extra_headers={"References": ours}
    )
    by_number = make_message(JANE, event.address, f"RE: AW: {number} received", "Merci.")
    # A control: citing someone else's message is not answering ours.
    other = make_message(
        ASKER,
        event.address,
        "Re: a thread of our own",
        "Hello.",
        extra_headers={"In-Reply-To": "<x.1@example.gh>"},
    )
    later = before + timedelta(minutes=20)
    dovecot.append_many("INBOX", [(raw, later) for raw in (thanks, by_id, by_references, by_number, other)])
    env.run("poll", "--once", check=True)

    entries = _by_subject(env)
    for subject in (str(ack["Subject"]), "Thanks!", "One more thing", f"RE: AW: {number} received"):
        entry = entries[subject]
        assert entry["status"] == "correspondence", subject
        assert entry["replies"] == [], subject
        assert "answers our mail" in entry["reason"], subject
    assert ours in entries["Thanks!"]["reason"] and number in entries[f"RE: AW: {number} received"]["reason"]
    # The control is a question like any other: the notice, to that sender only.
    assert entries["Re: a thread of our own"]["status"] == "correspondence"
    assert [r["kind"] for r in entries["Re: a thread of our own"]["replies"]] == ["correspondence_notice"]
    assert [str(_parsed(m.data)["To"].addresses[0].addr_spec) for m in smtp_sink.messages[1:]] == [
        ASKER.address
    ]
    # Filed where the secretariat looks for it.
    assert len(dovecot.fetch_all("Intake/Correspondence")) == 5


def test_a_question_gets_one_notice_and_no_rejection(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    question = make_message(
        ASKER, event.address, "Remote participation?", "Is remote participation possible?"
    )
    dovecot.append_many("INBOX", [(question, event.deadline - timedelta(days=3))])
    env.run("poll", "--once", check=True)

    [entry] = env.log_json()
    assert entry["status"] == "correspondence"
    [queued] = entry["replies"]
    assert queued["kind"] == "correspondence_notice" and queued["status"] == "sent"
    [sent] = smtp_sink.messages
    notice = _parsed(sent.data)
    assert notice["In-Reply-To"] == _parsed(question)["Message-ID"]
    assert str(notice["Subject"]) == "Re: Remote participation?"
    text = notice.get_body(("plain",)).get_content()
    assert "reached the secretariat" in text and "receives input documents" in text
    assert LINK in text and event.address in text and "30 April 2026" in text
    assert "could not be accepted" not in text  # not the rejection's words
    # No template attached: the notice links it; and no attachment of any kind.
    assert [part.get_content_type() for part in notice.iter_attachments()] == []
    assert not [p for p in notice.walk() if p.get_filename()]
    # The deadline has passed (these tests run after 30 April 2026): the pre-check page is not offered.
    assert PRECHECK not in text


def test_the_notice_links_the_precheck_page_before_the_deadline(
    dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    env = _env(dovecot, migrated_url, tmp_path, smtp_sink)
    text = env.config_path.read_text(encoding="utf-8")
    env.config_path.write_text(text.replace('deadline = "2026-', 'deadline = "2099-'), encoding="utf-8")
    event = env.settings().event
    question = make_message(ASKER, event.address, "Template?", "Where is the template?")
    dovecot.append_many("INBOX", [(question, event.deadline - timedelta(days=3))])
    env.run("poll", "--once", check=True)
    [sent] = smtp_sink.messages
    text = _parsed(sent.data).get_body(("plain",)).get_content()
    assert PRECHECK in text and LINK in text and "30 April 2099" in text


def test_without_a_template_link_the_notice_attaches_the_template_and_says_so(
    dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    template = REPO / "config" / "jca-mv-template.docx"
    env = _env(dovecot, migrated_url, tmp_path, smtp_sink, f'template = "{template}"\n')
    event = env.settings().event
    question = make_message(ASKER, event.address, "How to submit?", "How do I send a contribution?")
    dovecot.append_many("INBOX", [(question, event.deadline - timedelta(days=1))])
    env.run("poll", "--once", check=True)
    [sent] = smtp_sink.messages
    notice = _parsed(sent.data)
    [attached] = list(notice.iter_attachments())
    assert attached.get_filename() == "jca-mv-template.docx"
    assert attached.get_content() == template.read_bytes()
    assert "the blank template is attached to this message (jca-mv-template.docx)" in (
        notice.get_body(("plain",)).get_content()
    )


def test_ten_questions_in_a_day_from_one_sender_get_one_notice(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    questions = [
        (
            make_message(ASKER, event.address, f"Question {i}", f"Question number {i}?"),
            event.deadline - timedelta(days=1, minutes=i),
        )
        for i in range(10)
    ]
    dovecot.append_many("INBOX", questions[:4])
    env.run("poll", "--once", check=True)
    dovecot.append_many("INBOX", questions[4:])  # a later poll counts the day's earlier notice
    env.run("poll", "--once", check=True)
    entries = env.log_json()
    assert [e["status"] for e in entries] == ["correspondence"] * 10
    statuses = [r["status"] for e in entries for r in e["replies"]]
    assert statuses.count("sent") == 1 and statuses.count("suppressed") == 9
    assert len(smtp_sink.messages) == 1


def test_an_event_may_turn_the_notice_off(
    dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    env = _env(dovecot, migrated_url, tmp_path, smtp_sink, REPLIES + "correspondence_notice = false\n")
    event = env.settings().event
    dovecot.append_many(
        "INBOX",
        [(make_message(ASKER, event.address, "Hello", "A question."), event.deadline - timedelta(days=1))],
    )
    env.run("poll", "--once", check=True)
    [entry] = env.log_json()
    assert entry["status"] == "correspondence" and entry["replies"] == []
    assert smtp_sink.messages == []
    shown = env.run("show", str(entry["id"]), check=True).stdout
    assert "correspondence_notice = false" in shown


def test_a_refused_document_is_still_rejected_and_listed_apart(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    before = event.deadline - timedelta(days=1)
    pdf = make_message(
        ASKER, event.address, "A PDF", "Attached.", [("in.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")]
    )
    question = make_message(JANE, event.address, "A question", "When is the meeting?")
    dovecot.append_many("INBOX", [(pdf, before), (question, before)])
    env.run("poll", "--once", check=True)
    entries = _by_subject(env)
    assert entries["A PDF"]["status"] == "rejected"
    assert [r["kind"] for r in entries["A PDF"]["replies"]] == ["rejection"]
    listed = env.run("log", "--status", "correspondence", "--format", "json", check=True).stdout
    assert [e["subject"] for e in json.loads(listed)] == ["A question"]


def test_marking_correspondence_answered_is_audited_and_survives_a_reprocess(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    before = event.deadline - timedelta(days=1)
    pdf = make_message(
        JANE, event.address, "A PDF", "Attached.", [("in.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")]
    )
    question = make_message(ASKER, event.address, "Visa letter?", "Can I get a visa support letter?")
    dovecot.append_many("INBOX", [(pdf, before), (question, before)])
    env.run("poll", "--once", check=True)
    ids = {e["subject"]: e["id"] for e in env.log_json()}
    # Judged again with today's rules, it is what it was: nothing changes, nothing is sent again.
    again = env.run("reprocess", "--all", "--apply", "--as", "anna", check=True).stdout
    assert "0 changed" in again and len(smtp_sink.messages) == 2

    refused = env.run("mark-answered", str(ids["A PDF"]), "--as", "anna")
    assert refused.returncode == 1 and "only a correspondence message" in refused.stderr
    done = env.run("mark-answered", str(ids["Visa letter?"]), "--as", "anna", "--reason", "sent the letter")
    assert done.returncode == 0 and "marked answered by anna" in done.stdout
    listed = json.loads(env.run("log", "--status", "answered", "--format", "json", check=True).stdout)
    assert [e["subject"] for e in listed] == ["Visa letter?"]
    assert (
        json.loads(env.run("log", "--status", "correspondence", "--format", "json", check=True).stdout) == []
    )
    shown = json.loads(env.run("show", str(ids["Visa letter?"]), "--format", "json", check=True).stdout)
    [marked] = [h for h in shown["history"] if h["action"] == "marked_answered"]
    assert marked["actor"] == "anna" and marked["detail"] == "sent the letter"
    # A reprocess does not undo a person's decision.
    after = env.run("reprocess", "--all", "--apply", "--as", "anna", check=True).stdout
    assert "marked_answered by anna: their decision stands" in after
    shown = json.loads(env.run("show", str(ids["Visa letter?"]), "--format", "json", check=True).stdout)
    assert shown["status"] == "answered"
    assert len(smtp_sink.messages) == 2

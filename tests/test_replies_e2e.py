"""Replies end to end: Dovecot in, the real poller, aiosmtpd out, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from pathlib import Path

import pytest

from intake.samples import CONTRIBUTORS, DOCX, Contributor, make_docx, make_message
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.dovecot

SCREENING = """
[event.screening]
trusted_authserv_ids = ["mx.itu.int"]
"""


@pytest.fixture
def env(make_env: MakeEnv, smtp_sink: SmtpSink) -> IntakeEnv:
    return make_env(smtp_port=smtp_sink.port, extra=SCREENING)


def person(i: int) -> Contributor:
    base = CONTRIBUTORS[i % len(CONTRIBUTORS)]
    return Contributor(base.name, f"person{i}@example{i}.org", base.organization, base.country)


def mailbox(env: IntakeEnv) -> dict[str, tuple[bytes, object]]:
    event = env.settings().event
    before = event.deadline - timedelta(days=3)
    abstract = "A short abstract of the contribution about metaverse interoperability."

    def doc(title: str, who: Contributor) -> bytes:
        return make_docx(event, title, who.organization, who, abstract)

    unfinished = make_docx(event, "[Insert title (always in ENGLISH)]", "", person(1), "")
    to = event.address
    cases: dict[str, tuple[bytes, object]] = {}
    p = [person(i) for i in range(10)]
    cases["valid"] = (
        make_message(
            p[0], to, "Roadmap input", "Attached.", [("roadmap.docx", DOCX, doc("Roadmap update", p[0]))]
        ),
        before,
    )
    cases["partial"] = (
        make_message(
            p[1],
            to,
            "Two inputs",
            "Attached.",
            [("good.docx", DOCX, doc("Avatar requirements", p[1])), ("draft.docx", DOCX, unfinished)],
        ),
        before,
    )
    cases["invalid"] = (
        make_message(
            p[2], to, "A PDF", "Attached.", [("input.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")]
        ),
        before,
    )
    cases["late"] = (
        make_message(p[3], to, "Late input", "Attached.", [("late.docx", DOCX, doc("Late thoughts", p[3]))]),
        event.deadline + timedelta(seconds=1),
    )
    cases["auto_reply"] = (
        make_message(
            p[4],
            to,
            "Out of Office: Roadmap input",
            "Away.",
            extra_headers={"Auto-Submitted": "auto-replied"},
        ),
        before,
    )
    bounce = (
        b"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example5.org>\r\n"
        b"To: tsbjcamv@itu.int\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <bounce-1@mx.example5.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example5.org\r\n"
        b"\r\nFinal-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--B--\r\n"
    )
    cases["bounce"] = (bounce, before)
    cases["list"] = (
        make_message(
            p[6],
            to,
            "[metaverse-l] Roadmap discussion",
            "List post.",
            [("roadmap.docx", DOCX, doc("List copy", p[6]))],
            extra_headers={"List-Id": "<metaverse-l.lists.example.org>", "Precedence": "list"},
        ),
        before,
    )
    own = Contributor("JCA-MV secretariat", to, "ITU", "Switzerland")
    cases["own"] = (make_message(own, to, "Re: Roadmap input", "Our own reply came back."), before)
    cases["spam"] = (
        make_message(
            p[8],
            to,
            "Cheap input",
            "Attached.",
            [("spam.docx", DOCX, doc("Spam title", p[8]))],
            extra_headers={"X-Spam-Flag": "YES"},
        ),
        before,
    )
    cases["dmarc"] = (
        make_message(
            p[9],
            to,
            "Spoofed input",
            "Attached.",
            [("forged.docx", DOCX, doc("Forged", p[9]))],
            extra_headers={"Authentication-Results": "mx.itu.int; spf=fail; dkim=none; dmarc=fail"},
        ),
        before,
    )
    return cases


def test_one_reply_for_each_answerable_kind_and_none_for_the_rest(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    cases = mailbox(env)
    dovecot.append_many("INBOX", [(raw, when) for raw, when in cases.values()])
    env.run("poll", "--once", check=True)

    entries = {e["subject"]: e for e in env.log_json()}
    status = {
        name: entries[next(s for s in entries if _subject(raw) == s)]["status"]
        for name, (raw, _) in cases.items()
    }
    assert status == {
        "valid": "accepted",
        "partial": "partial",
        "invalid": "rejected",
        "late": "late",
        "auto_reply": "ignored",
        "bounce": "ignored",
        "list": "ignored",
        "own": "ignored",
        "spam": "held",
        "dmarc": "held",
    }
    received = [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_sink.messages]
    assert len(received) == 4
    by_to = {str(m["To"].addresses[0].addr_spec): m for m in received}
    expected_kind = {
        "valid": "acknowledgement",
        "partial": "acknowledgement",
        "invalid": "rejection",
        "late": "late_notice",
    }
    for name, kind in expected_kind.items():
        raw, _ = cases[name]
        original = email.message_from_bytes(raw, policy=email.policy.default)
        sender = original["From"].addresses[0].addr_spec
        reply = by_to[sender]
        entry = entries[str(original["Subject"])]
        [queued] = entry["replies"]
        assert queued["kind"] == kind and queued["status"] == "sent"
        assert queued["recipient"] == sender
        assert reply["Message-ID"] == queued["message_id"]
        assert reply["From"].addresses[0].addr_spec == "tsbjcamv@itu.int"
        assert reply["In-Reply-To"] == original["Message-ID"]
        assert original["Message-ID"] in reply["References"]
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["X-Auto-Response-Suppress"] == "All"
        assert reply["Date"] is not None
        assert str(reply["Subject"]).startswith("Re: " + str(original["Subject"]))
        numbers = [d["number"] for d in entry["documents"] if d["number"]]
        if name in ("valid", "partial"):
            assert len(numbers) == 1
            assert numbers[0] in str(reply["Subject"])
            assert numbers[0] in reply.get_body(("plain",)).get_content()
        else:
            assert numbers == []
            assert not re.search(r"JCA-MV-I-\d+", str(reply["Subject"]))
    # Nobody else heard from us; those messages say why in the log.
    for name in ("auto_reply", "bounce", "list", "own", "spam", "dmarc"):
        entry = entries[_subject(cases[name][0])]
        assert entry["replies"] == [] and entry["reason"]

    # Each document's findings are in the log (issue 3): the PDF alone, the unfinished draft.
    invalid = entries[_subject(cases["invalid"][0])]
    assert [f["code"] for d in invalid["documents"] for f in d["findings"]] == ["type.pdf_without_word"]
    partial = entries[_subject(cases["partial"][0])]
    good, draft = partial["documents"]
    assert good["status"] == "accepted" and not [f for f in good["findings"] if f["severity"] == "error"]
    assert draft["status"] == "rejected"
    assert {"template.placeholder", "template.missing_field"} <= {f["code"] for f in draft["findings"]}
    assert good["title"] == "Avatar requirements"

    # A copy of each reply sent is in the mailbox's Sent folder, for the secretariat.
    sent_copies = dovecot.fetch_all("Sent")
    assert sorted(email.message_from_bytes(raw)["Message-ID"] for raw in sent_copies.values()) == sorted(
        m["Message-ID"] for m in received
    )

    # A second run sends nothing again.
    env.run("poll", "--once", check=True)
    assert len(smtp_sink.messages) == 4
    assert len(dovecot.fetch_all("Sent")) == 4


def _subject(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])


def test_smtp_down_then_back_delivers_each_once(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    cases = mailbox(env)
    wanted = ("valid", "partial", "invalid", "late")
    dovecot.append_many("INBOX", [cases[n] for n in wanted])  # type: ignore[misc]
    smtp_sink.stop()
    down = env.run("poll", "--once", check=True)
    assert "could not be sent yet" in down.stderr or "unreachable" in down.stderr
    replies = [r for e in env.log_json() for r in e["replies"]]
    assert len(replies) == 4 and {r["status"] for r in replies} == {"pending"}
    smtp_sink.start()
    env.run("poll", "--once", check=True)
    assert len(smtp_sink.messages) == 4
    env.run("poll", "--once", check=True)
    assert len(smtp_sink.messages) == 4
    assert {r["status"] for e in env.log_json() for r in e["replies"]} == {"sent"}
    ids = [email.message_from_bytes(m.data)["Message-ID"] for m in smtp_sink.messages]
    assert len(set(ids)) == 4


def test_ten_rejections_for_one_reason_get_one_reply(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    who = person(3)
    messages = [
        (
            make_message(
                who,
                event.address,
                f"Attempt {i}",
                "Attached.",
                [("input.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")],
            ),
            event.deadline - timedelta(days=1, minutes=i),
        )
        for i in range(10)
    ]
    dovecot.append_many("INBOX", messages)
    env.run("poll", "--once", check=True)
    entries = env.log_json()
    assert [e["status"] for e in entries] == ["rejected"] * 10
    statuses = [r["status"] for e in entries for r in e["replies"]]
    assert statuses.count("sent") == 1 and statuses.count("suppressed") == 9
    assert len(smtp_sink.messages) == 1


def test_non_ascii_names_and_injection_attempts(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    names = {
        "arabic": Contributor("فاطمة الزهراء", "fatima@example.ae", "هيئة الاتصالات", "الإمارات"),
        "chinese": Contributor("王小明", "wang@example.cn", "中国信息通信研究院", "中国"),
        "cyrillic": Contributor("Фёдор Иванов", "fedor@example.ru", "НИИ Радио", "Россия"),
    }
    subjects = {
        "arabic": "مساهمة: معايير الميتافيرس",
        "chinese": "关于元宇宙数字身份的输入文稿",
        "cyrillic": "Вклад: метавселенная и сети",
    }
    messages = []
    for key, who in names.items():
        docx = make_docx(event, "Metaverse " + key, who.organization, who, "An abstract.")
        messages.append(
            (
                make_message(
                    who,
                    event.address,
                    subjects[key],
                    "Attached.",
                    [(f"{subjects[key][:10]}.docx", DOCX, docx)],
                ),
                event.deadline - timedelta(days=1),
            )
        )
    evil = "Input\r\nBcc: victim@example.net\r\nX-Injected: yes"
    raw = (
        b"From: Mallory <mallory@example.org>\r\nTo: tsbjcamv@itu.int\r\n"
        b"Subject: =?utf-8?q?"
        + evil.replace("\r\n", "=0D=0A").replace(" ", "_").encode()
        + b"?=\r\nMessage-ID: <evil-1@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain\r\n\r\nno attachment\r\n"
    )
    messages.append((raw, event.deadline - timedelta(days=1)))
    dovecot.append_many("INBOX", messages)
    env.run("poll", "--once", check=True)
    assert len(smtp_sink.messages) == 4
    replies = {}
    for m in smtp_sink.messages:
        parsed = email.message_from_bytes(m.data, policy=email.policy.default)
        replies[parsed["To"].addresses[0].addr_spec] = (parsed, m)
    for key, who in names.items():
        parsed, m = replies[who.address]
        assert m.data.isascii()  # every header and body encoded for 7-bit transport
        assert parsed["To"].addresses[0].display_name == who.name
        assert str(parsed["Subject"]).startswith(f"Re: {subjects[key]}")
        assert who.name in parsed.get_body(("plain",)).get_content()
    parsed, m = replies["mallory@example.org"]
    assert list(m.rcpt_tos) == ["mallory@example.org"]
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    header_block = m.data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in header_block and b"\r\nX-Injected:" not in header_block


def test_two_processes_on_one_database_never_share_a_number_or_a_reply(
    dovecot: Dovecot, make_env: MakeEnv, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """Two pollers, each on its own folder, accept documents into one event at once."""
    first = make_env(tmp_path / "a", smtp_port=smtp_sink.port, imap_extra='folder = "INBOX"')
    second = make_env(tmp_path / "b", smtp_port=smtp_sink.port, imap_extra='folder = "Second"')
    event = first.settings().event
    abstract = "An abstract about interoperability."
    for folder, offset in (("INBOX", 0), ("Second", 100)):
        batch = []
        for i in range(offset, offset + 25):
            who = person(i)
            batch.append(
                (
                    make_message(
                        who,
                        event.address,
                        f"Input {i}",
                        "Attached.",
                        [(f"in{i}.docx", DOCX, make_docx(event, f"Title {i}", "Org", who, abstract))],
                    ),
                    event.deadline - timedelta(days=1),
                )
            )
        dovecot.append_many(folder, batch)
    runs = [first.popen("poll", "--once"), second.popen("poll", "--once")]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    entries = first.log_json()
    assert len(entries) == 50 and {e["status"] for e in entries} == {"accepted"}
    numbers = [d["number"] for e in entries for d in e["documents"] if d["number"]]
    assert len(numbers) == 50 and len(set(numbers)) == 50
    assert sorted(numbers) == [f"JCA-MV-I-{n:03d}" for n in range(1, 51)]
    ids = [email.message_from_bytes(m.data)["Message-ID"] for m in smtp_sink.messages]
    assert len(ids) == 50 and len(set(ids)) == 50
    # And each acknowledgement carries the number its document was given.
    for e in entries:
        [reply] = e["replies"]
        assert e["documents"][0]["number"] in reply["subject"]


def test_the_secretariat_gets_a_copy_of_each_reply(
    dovecot: Dovecot, make_env: MakeEnv, smtp_sink: SmtpSink
) -> None:
    env = make_env(smtp_port=smtp_sink.port, extra='[event.replies]\ncopy_to = ["Secretariat@ITU.example"]\n')
    cases = mailbox(env)
    dovecot.append_many("INBOX", [cases[n] for n in ("valid", "invalid")])  # type: ignore[misc]
    env.run("poll", "--once", check=True)
    assert len(smtp_sink.messages) == 2
    for message in smtp_sink.messages:
        assert "secretariat@itu.example" in message.rcpt_tos and len(message.rcpt_tos) == 2
        header_block = message.data.split(b"\r\n\r\n", 1)[0].lower()
        assert b"secretariat@itu.example" not in header_block  # no Bcc header for the contributor


def test_poll_once_delivers_each_batch_while_the_next_one_is_examined(
    env: IntakeEnv, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    """`intake poll --once` hands poll_once a `between` that delivers: the replies of each
    batch recorded go out (and to Sent, over the poller's own IMAP session) before the
    next batch is recorded, not all after the last one."""
    from dataclasses import replace

    from intake import db
    from intake.pipeline import deliver, poll_once
    from intake.store import BlobStore

    settings = env.settings()
    settings = replace(settings, imap=replace(settings.imap, batch_messages=3))
    event = settings.event
    who = [person(i) for i in range(7)]
    dovecot.append_many(
        "INBOX",
        [
            (
                make_message(
                    p,
                    event.address,
                    f"Input {i}",
                    "Attached.",
                    [
                        (
                            f"input{i}.docx",
                            DOCX,
                            make_docx(event, f"Avatars, part {i}", p.organization, p, "An abstract."),
                        )
                    ],
                ),
                event.deadline - timedelta(days=2),
            )
            for i, p in enumerate(who)
        ],
    )
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    seen: list[tuple[int, int, int]] = []  # (recorded so far, replies sent so far, copies in Sent)

    def between(mailbox: object, report: object) -> None:
        deliver(settings, sessions, report, mailbox)  # type: ignore[arg-type]
        seen.append(
            (sum(report.recorded.values()), len(smtp_sink.received()), len(dovecot.fetch_all("Sent")))
        )  # type: ignore[attr-defined]

    try:
        report = poll_once(settings, sessions, BlobStore(settings.data_dir), between=between)
        assert seen == [(3, 3, 3), (6, 6, 6)]  # after batches 1 and 2; batch 3 is the last
        assert sum(report.recorded.values()) == 7
        deliver(settings, sessions, report)
    finally:
        engine.dispose()
    sent = smtp_sink.received()
    assert sorted(r.rcpt_tos[0] for r in sent) == sorted(p.address for p in who)  # each once
    assert len(dovecot.fetch_all("Sent")) == 7

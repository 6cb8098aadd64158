"""Issue 11, part 1: the same document sent again is not numbered twice.

Dovecot in, the real `intake poll --once`, aiosmtpd out, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from intake.samples import CONTRIBUTORS, DOCX, Contributor, make_docx, make_message
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv, write_config
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.dovecot

ABSTRACT = "A short abstract of the contribution about metaverse interoperability."


@pytest.fixture
def env(make_env: MakeEnv, smtp_sink: SmtpSink) -> IntakeEnv:
    return make_env(smtp_port=smtp_sink.port)


AUTHOR = Contributor("Ana Petrović", "ana@example-univ.org", CONTRIBUTORS[0].organization, "Serbia")
CO_AUTHOR = Contributor("王小明", "wang@example.cn", CONTRIBUTORS[0].organization, "China")


def _document(env: IntakeEnv, title: str, who: Contributor = AUTHOR) -> bytes:
    return make_docx(env.settings().event, title, who.organization, who, ABSTRACT)


def _message(
    env: IntakeEnv, who: Contributor, subject: str, *files: tuple[str, bytes], body: str = ""
) -> bytes:
    attachments = [(name, DOCX, data) for name, data in files]
    return make_message(who, env.settings().event.address, subject, body or "Attached.", attachments)


def _poll(dovecot: Dovecot, env: IntakeEnv, *messages: tuple[bytes, datetime]) -> None:
    """Deliver these messages (raw, server receipt time), then run one poll."""
    dovecot.append_many("INBOX", list(messages))
    env.run("poll", "--once", check=True)


def _by_subject(env: IntakeEnv) -> dict[str, dict[str, Any]]:
    return {e["subject"]: e for e in env.log_json()}


def _replies(smtp_sink: SmtpSink) -> list[EmailMessage]:
    return [
        email.message_from_bytes(m.data, policy=email.policy.default)  # type: ignore[misc]
        for m in smtp_sink.messages
    ]


def _text(reply: EmailMessage) -> str:
    body = reply.get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())  # type: ignore[attr-defined]


def _numbers(entries: dict[str, dict[str, Any]]) -> list[str]:
    return [d["number"] for e in entries.values() for d in e["documents"] if d["number"]]


@pytest.mark.parametrize("same_poll", [False, True], ids=["two-polls", "one-batch"])
def test_the_same_file_sent_again_20_minutes_later_keeps_its_one_number(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink, same_poll: bool
) -> None:
    event = env.settings().event
    first_at = event.deadline - timedelta(days=3)
    data = _document(env, "Avatar interoperability requirements")
    first = _message(env, AUTHOR, "Contribution: avatar interoperability", ("avatars.docx", data))
    again = _message(
        env,
        AUTHOR,
        "Resending: avatar interoperability",
        ("avatars.docx", data),
        body="Resending, I got no acknowledgement.",
    )
    later = (again, first_at + timedelta(minutes=20))
    if same_poll:
        _poll(dovecot, env, (first, first_at), later)
    else:
        _poll(dovecot, env, (first, first_at))
        _poll(dovecot, env, later)

    entries = _by_subject(env)
    original = entries["Contribution: avatar interoperability"]
    resend = entries["Resending: avatar interoperability"]
    assert _numbers(entries) == ["JCA-MV-I-001"]
    assert original["status"] == "accepted"
    assert resend["status"] == "already_numbered"
    [known] = resend["documents"]
    assert known["status"] == "already_numbered" and known["number"] is None
    assert known["copy_of"] == original["documents"][0]["id"]
    assert "document.already_registered" in [f["code"] for f in known["findings"]]  # for the desk
    assert [r["kind"] for r in resend["replies"]] == ["already_registered"]
    assert [r["status"] for r in resend["replies"]] == ["sent"]

    replies = _replies(smtp_sink)
    assert len(replies) == 2
    answer = next(r for r in replies if "Resending" in str(r["Subject"]))
    text = _text(answer)
    assert "already registered" in text
    assert "JCA-MV-I-001, registered on" in text
    assert f"{first_at.astimezone(event.timezone).day} April 2026" in text
    assert "accepted and registered" not in text  # not a second acknowledgement
    # Filed in a folder of its own.
    assert len(dovecot.fetch_all("Intake/Already_numbered")) == 1


def test_a_co_author_sending_the_file_from_another_address_gets_the_same_answer(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    at = event.deadline - timedelta(days=2)
    data = _document(env, "Digital identity in virtual worlds")
    _poll(dovecot, env, (_message(env, AUTHOR, "Identity input", ("identity.docx", data)), at))
    co_author = _message(env, CO_AUTHOR, "Identity input (from my co-author)", ("身份.docx", data))
    _poll(dovecot, env, (co_author, at + timedelta(hours=1)))

    entries = _by_subject(env)
    resend = entries["Identity input (from my co-author)"]
    assert _numbers(entries) == ["JCA-MV-I-001"]
    assert resend["status"] == "already_numbered"
    assert resend["documents"][0]["copy_of"] == entries["Identity input"]["documents"][0]["id"]
    [reply] = resend["replies"]
    assert reply["kind"] == "already_registered" and reply["recipient"] == CO_AUTHOR.address
    answer = next(r for r in _replies(smtp_sink) if r["To"].addresses[0].addr_spec == CO_AUTHOR.address)
    assert "JCA-MV-I-001, registered on" in _text(answer)
    assert "身份.docx" in _text(answer)


def test_a_known_file_beside_a_new_one_numbers_only_the_new_one_and_names_the_known(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    at = event.deadline - timedelta(days=2)
    known = _document(env, "Haptics for remote meetings")
    new = _document(env, "Haptics: a second input")
    _poll(dovecot, env, (_message(env, AUTHOR, "Haptics", ("haptics.docx", known)), at))
    pair = _message(env, AUTHOR, "Haptics, and one more", ("haptics.docx", known), ("second.docx", new))
    _poll(dovecot, env, (pair, at + timedelta(minutes=20)))

    entries = _by_subject(env)
    both = entries["Haptics, and one more"]
    assert both["status"] == "accepted"
    assert [d["status"] for d in both["documents"]] == ["already_numbered", "accepted"]
    assert [d["number"] for d in both["documents"]] == [None, "JCA-MV-I-002"]
    assert both["documents"][0]["copy_of"] == entries["Haptics"]["documents"][0]["id"]
    assert sorted(_numbers(entries)) == ["JCA-MV-I-001", "JCA-MV-I-002"]
    [reply] = both["replies"]
    assert reply["kind"] == "acknowledgement"
    answer = next(r for r in _replies(smtp_sink) if "one more" in str(r["Subject"]))
    assert "JCA-MV-I-002" in str(answer["Subject"]) and "JCA-MV-I-001" not in str(answer["Subject"])
    text = _text(answer)
    assert "Your document has been accepted and registered: JCA-MV-I-002" in text
    assert "One document you sent is already registered" in text
    assert "JCA-MV-I-001 (haptics.docx), registered on" in text


def test_a_changed_file_with_the_same_title_is_numbered_and_resends_are_answered_once_a_day(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    at = event.deadline - timedelta(days=2)
    data = _document(env, "Spatial audio")
    changed = make_docx(event, "Spatial audio", AUTHOR.organization, AUTHOR, ABSTRACT + " Now longer.")
    assert changed != data
    messages = [(_message(env, AUTHOR, "Spatial audio", ("audio.docx", data)), at)]
    messages += [
        (
            _message(env, AUTHOR, f"Spatial audio, again ({i})", ("audio.docx", data)),
            at + timedelta(minutes=10 * i),
        )
        for i in range(1, 4)
    ]
    messages.append(
        (_message(env, AUTHOR, "Spatial audio, changed", ("audio.docx", changed)), at + timedelta(hours=1))
    )
    _poll(dovecot, env, *messages)

    entries = _by_subject(env)
    assert entries["Spatial audio, changed"]["status"] == "accepted"
    assert sorted(_numbers(entries)) == ["JCA-MV-I-001", "JCA-MV-I-002"]
    again = [entries[f"Spatial audio, again ({i})"] for i in range(1, 4)]
    assert {e["status"] for e in again} == {"already_numbered"}
    statuses = [r["status"] for e in again for r in e["replies"]]
    assert statuses == ["sent", "suppressed", "suppressed"]
    assert len(_replies(smtp_sink)) == 3  # two acknowledgements, one already-registered reply


def test_a_numbered_file_sent_again_after_the_deadline_is_registered_not_late(
    dovecot: Dovecot, env: IntakeEnv, smtp_sink: SmtpSink
) -> None:
    event = env.settings().event
    data = _document(env, "Persistent virtual worlds")
    _poll(
        dovecot,
        env,
        (_message(env, AUTHOR, "Worlds", ("worlds.docx", data)), event.deadline - timedelta(hours=1)),
    )
    late = _message(env, AUTHOR, "Worlds, did you get it?", ("worlds.docx", data))
    _poll(dovecot, env, (late, event.deadline + timedelta(hours=5)))

    entry = _by_subject(env)["Worlds, did you get it?"]
    assert entry["status"] == "already_numbered"
    assert [r["kind"] for r in entry["replies"]] == ["already_registered"]
    assert "JCA-MV-I-001, registered on" in _text(_replies(smtp_sink)[-1])


def test_copies_inside_one_recorded_batch_point_at_the_first(migrated_url: str, tmp_path: Path) -> None:
    """record_batch itself, with every message in one transaction: the first copy is numbered,
    each later one (alone, or beside a new file) points at it, and the batch's numbers run on."""
    from intake import db
    from intake.examine import examine
    from intake.mailbox import RawMessage
    from intake.models import Document, InboundMessage
    from intake.record import Place, enter_folder, record_batch
    from intake.store import BlobStore

    env = write_config(tmp_path, "127.0.0.1", 1, "u", "p", migrated_url)
    settings = env.settings()
    event = settings.event
    at = event.deadline - timedelta(days=1)
    a, b = _document(env, "First file"), _document(env, "Second file")
    raws = [
        _message(env, AUTHOR, "one", ("a.docx", a)),
        _message(env, CO_AUTHOR, "two", ("a.docx", a)),
        _message(env, AUTHOR, "three", ("b.docx", b), ("a.docx", a)),
        _message(env, AUTHOR, "four", ("b.docx", b)),
    ]
    batch = [
        examine(RawMessage(uid, at + timedelta(minutes=uid), len(raw), raw), event, 2**30)
        for uid, raw in enumerate(raws, start=1)
    ]
    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    try:
        enter_folder(sessions, settings.imap.mailbox_key, "INBOX", 1)
        place = Place(event.id, settings.imap.mailbox_key, "INBOX", 1)
        recorded = record_batch(sessions, BlobStore(settings.data_dir), place, batch, event)
        assert [r.status for r in recorded] == [
            "accepted",
            "already_numbered",
            "accepted",
            "already_numbered",
        ]
        with sessions() as session:
            rows = {m.subject: m for m in session.query(InboundMessage)}
            first_a = rows["one"].documents[0]
            first_b = rows["three"].documents[0]
            assert (first_a.number, first_b.number) == ("JCA-MV-I-001", "JCA-MV-I-002")
            assert rows["two"].documents[0].copy_of_id == first_a.id
            assert rows["three"].documents[1].copy_of_id == first_a.id
            assert rows["four"].documents[0].copy_of_id == first_b.id
            assert session.query(Document).filter(Document.number.is_not(None)).count() == 2
            assert [r.kind for r in rows["four"].replies] == ["already_registered"]
    finally:
        engine.dispose()


# --- mark_resends, the pure rule -----------------------------------------------------------------


def _doc(sha: str, status: str, role: str = "document") -> Any:
    from intake.domain import DocumentStatus
    from intake.verdict import DocumentVerdict

    return DocumentVerdict(0, f"{sha}.docx", None, "docx", 1, sha, role, DocumentStatus(status))


def _verdict(status: str, *documents: Any) -> Any:
    from intake.domain import MessageStatus
    from intake.verdict import MessageVerdict

    return MessageVerdict(MessageStatus(status), documents=documents)


@pytest.mark.parametrize(
    ("status", "documents", "after", "statuses"),
    [
        # Every accepted file known: the message is a resend.
        ("accepted", [("known", "accepted")], "already_numbered", ["already_numbered"]),
        # Beside a new file: the new one decides; the known one is named.
        (
            "accepted",
            [("known", "accepted"), ("new", "accepted")],
            "accepted",
            ["already_numbered", "accepted"],
        ),
        # Beside a refused file: still an acknowledgement, which explains the refusal.
        (
            "partial",
            [("known", "accepted"), ("bad", "rejected")],
            "partial",
            ["already_numbered", "rejected"],
        ),
        # After the deadline: a numbered file sent again is not late, it is registered.
        ("late", [("known", "late")], "already_numbered", ["already_numbered"]),
        ("late", [("known", "late"), ("new", "late")], "late", ["already_numbered", "late"]),
        # Refused, or not a document: nothing to say about it here.
        ("rejected", [("known", "rejected")], "rejected", ["rejected"]),
        ("accepted", [("new", "accepted"), ("known", "companion")], "accepted", ["accepted", "companion"]),
    ],
)
def test_mark_resends(status: str, documents: list[tuple[str, str]], after: str, statuses: list[str]) -> None:
    from datetime import UTC, datetime

    from intake.resends import mark_resends
    from intake.verdict import Registration

    roles = {"companion": "companion"}
    verdict = _verdict(status, *(_doc(sha, st, roles.get(st, "document")) for sha, st in documents))
    first = Registration(7, "JCA-MV-I-007", datetime(2026, 4, 1, 9, tzinfo=UTC))
    marked = mark_resends(verdict, {"known": first})
    assert marked.status == after
    assert [d.status for d in marked.documents] == statuses
    for d in marked.documents:
        assert (d.registered == first) is (d.status == "already_numbered")
        codes = [f.code for f in d.findings]
        assert codes == (["document.already_registered"] if d.registered else [])
    assert mark_resends(verdict, {}) is verdict

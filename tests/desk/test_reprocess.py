"""`intake reprocess` (acceptance 4): after a change of the template rules, only the affected
records change, the changes are shown first, and no reply is sent twice."""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from intake.models import InboundMessage, Reply
from tests.desk.conftest import Mail, cli, person, received
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import SmtpSink

RELAXED = """
[event.checks.fields]
abstract = { required = false }
"""


def _state(sessions: sessionmaker[Session]) -> dict[str, tuple[str, list[str | None], int]]:
    with sessions() as session:
        return {
            m.subject or "": (m.status, [d.number for d in m.documents], len(m.replies))
            for m in session.scalars(select(InboundMessage))
        }


def _kinds(sink: SmtpSink) -> Counter[tuple[str, str]]:
    """(recipient, first words of the subject) for each reply received."""
    return Counter((str(m["To"].addresses[0].addr_spec), str(m["Subject"])) for m in received(sink))


def test_reprocess_changes_only_what_the_new_rules_change_and_never_says_it_twice(
    env: IntakeEnv, mail: Mail, sessions: sessionmaker[Session], smtp_sink: SmtpSink
) -> None:
    p = [person(i) for i in range(4)]
    valid = mail.message(p[0], "Valid", [("valid.docx", mail.docx("Valid", p[0]))])
    no_abstract = mail.message(p[1], "No abstract", [("bare.docx", mail.docx("Bare", p[1], abstract=""))])
    pdf = mail.message(p[2], "Only a PDF", [("only.pdf", b"%PDF-1.4\n%%EOF\n")])
    late_bare = mail.message(p[3], "Late and bare", [("late.docx", mail.docx("Late", p[3], abstract=""))])
    mail.deliver(
        (valid, mail.before), (no_abstract, mail.before), (pdf, mail.before), (late_bare, mail.after)
    )
    before = _state(sessions)
    assert {s: v[0] for s, v in before.items()} == {
        "Valid": "accepted",
        "No abstract": "rejected",
        "Only a PDF": "rejected",
        "Late and bare": "rejected",
    }
    assert len(received(smtp_sink)) == 4
    original_config = env.config_path.read_text()
    env.config_path.write_text(original_config + RELAXED)

    # The dry run shows what would change, and changes nothing.
    dry = cli(env, "reprocess", "--all", "--as", "anna", check=True).stdout
    assert "Dry run: nothing was changed or sent" in dry
    assert "rejected -> accepted" in dry and "rejected -> late" in dry
    assert "bare.docx: rejected -> accepted" in dry and "- template.missing_field (error)" in dry
    assert "2 changed, 0 left for a person, 2 unchanged" in dry
    assert "Valid" not in dry and "Only a PDF" not in dry
    assert _state(sessions) == before and len(received(smtp_sink)) == 4

    # Applied: those two change, are answered once, and nothing else moves.
    applied = json.loads(cli(env, "reprocess", "--all", "--apply", "--as", "anna", "--format", "json").stdout)
    assert sorted(c["message"] for c in applied["changes"]) == sorted(
        [e for e in _ids(sessions, "No abstract", "Late and bare")]
    )
    after = _state(sessions)
    assert after["No abstract"] == ("accepted", ["JCA-MV-I-002"], 2)
    assert after["Late and bare"][0] == "late" and after["Late and bare"][2] == 2
    assert after["Valid"] == before["Valid"] and after["Only a PDF"] == before["Only a PDF"]
    kinds = _kinds(smtp_sink)
    assert len(received(smtp_sink)) == 6
    assert any(to == p[1].address and "JCA-MV-I-002" in subject for to, subject in kinds)

    # Again, and a poll: nothing new to say.
    again = cli(env, "reprocess", "--all", "--apply", "--as", "anna", check=True).stdout
    assert "0 changed" in again
    env.run("poll", "--once", check=True)
    assert len(received(smtp_sink)) == 6 and _state(sessions) == after

    # The old rules back: the number given stays (a person decides), and the late message goes
    # back to the rejection it was first sent, which is not sent again.
    env.config_path.write_text(original_config)
    back = cli(env, "reprocess", "--all", "--apply", "--as", "anna", check=True).stdout
    assert "JCA-MV-I-002 would now be rejected: numbers are never taken back" in back
    assert "already said this" in back
    final = _state(sessions)
    assert final["No abstract"] == after["No abstract"]
    assert final["Late and bare"][0] == "rejected"
    assert len(received(smtp_sink)) == 6
    with sessions() as session:
        said = [(r.message_id, r.kind) for r in session.scalars(select(Reply).where(Reply.status == "sent"))]
    assert len(said) == 6 and len(set(said)) == 6  # nobody got the same kind of reply twice
    trail = cli(env, "show", str(_ids(sessions, "Late and bare")[0]), "--format", "json", check=True).stdout
    assert [h["actor"] for h in json.loads(trail)["history"] if h["action"] == "reprocessed"] == [
        "anna",
        "anna",
    ]


def _ids(sessions: sessionmaker[Session], *subjects: str) -> list[int]:
    with sessions() as session:
        rows = {m.subject: m.id for m in session.scalars(select(InboundMessage))}
    return [rows[s] for s in subjects]

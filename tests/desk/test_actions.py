"""The secretariat's actions from the command line, on SQLite and PostgreSQL, with real mail.

Each action is one transaction with an audit event naming who, when and why;
a refused action exits 1 with one line and changes nothing.
"""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from intake.models import AuditEvent, Document, InboundMessage, Reply
from tests.desk.conftest import Mail, body, cli, person, received
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import SmtpSink


def _ids(env: IntakeEnv) -> dict[str, int]:
    return {e["subject"]: e["id"] for e in json.loads(cli(env, "log", "--format", "json").stdout)}


def test_admit_reject_release_withdraw_resend(
    env: IntakeEnv, mail: Mail, sessions: sessionmaker[Session], smtp_sink: SmtpSink
) -> None:
    p = [person(i) for i in range(4)]
    on_time = mail.message(p[0], "On time", [("a.docx", mail.docx("On time", p[0]))])
    late = mail.message(p[1], "Late input", [("late.docx", mail.docx("Late thoughts", p[1]))])
    spam = mail.message(
        p[2], "Flagged input", [("flagged.docx", mail.docx("Flagged", p[2]))], headers={"X-Spam-Flag": "YES"}
    )
    mail.deliver((on_time, mail.before), (late, mail.after), (spam, mail.before))
    ids = _ids(env)
    assert len(received(smtp_sink)) == 2  # the acknowledgement and the late notice
    # Nothing to admit on time: exit 1, one line, no traceback, nothing changed.
    refused = env.run("admit", str(ids["On time"]), "--as", "anna")
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "not late" not in refused.stdout
    assert "is accepted: only a late message can be admitted" in refused.stderr
    assert "Traceback" not in refused.stderr

    # Admit the late one: numbered, acknowledged at once, on the record.
    admitted = cli(
        env, "admit", str(ids["Late input"]), "--as", "anna", "--reason", "convener agreed", check=True
    )
    assert "JCA-MV-I-002" in admitted.stdout and "1 reply(ies) sent" in admitted.stdout
    ack = received(smtp_sink)[-1]
    assert ack["To"].addresses[0].addr_spec == p[1].address
    assert "JCA-MV-I-002" in str(ack["Subject"]) and "JCA-MV-I-002" in body(ack)
    again = cli(env, "admit", str(ids["Late input"]), "--as", "anna")
    assert again.returncode == 1 and "is accepted" in again.stderr

    # Release the held one: judged without the screening, numbered, answered.
    released = cli(env, "release", str(ids["Flagged input"]), "--as", "ben", check=True)
    assert "judged accepted (JCA-MV-I-003)" in released.stdout

    # Reject the first acceptance: the contributor gets the secretariat's reason; the number stays used.
    reason = "This input duplicates JCA-MV-I-002 from the same organisation."
    rejected = cli(env, "reject", str(ids["On time"]), "--reason", reason, "--as", "anna", check=True)
    assert "JCA-MV-I-001 stay used" in rejected.stdout
    notice = received(smtp_sink)[-1]
    assert notice["To"].addresses[0].addr_spec == p[0].address
    assert reason in body(notice) and "JCA-MV-I-001" in body(notice)
    assert cli(env, "reject", str(ids["On time"]), "--reason", "again", "--as", "anna").returncode == 1

    # Withdraw: the number is never given again.
    assert (
        cli(env, "withdraw", "JCA-MV-I-002", "--reason", "asked by the author", "--as", "ben").returncode == 0
    )
    twice = cli(env, "withdraw", "JCA-MV-I-002", "--reason", "again", "--as", "ben")
    assert twice.returncode == 1 and "already withdrawn" in twice.stderr
    assert cli(env, "withdraw", "JCA-MV-I-777", "--reason", "x", "--as", "ben").returncode == 1

    # Resend the acknowledgement of the admitted message: a new outbox row and a new Message-ID.
    with sessions() as session:
        reply = session.scalars(
            select(Reply).where(Reply.message_id == ids["Late input"], Reply.kind == "acknowledgement")
        ).one()
        reply_id, first_id = reply.id, reply.rfc_message_id
    count = len(received(smtp_sink))
    cli(env, "resend", str(reply_id), "--as", "anna", check=True)
    assert len(received(smtp_sink)) == count + 1
    resent = received(smtp_sink)[-1]
    assert resent["Message-ID"] != first_id and body(resent) == body(ack)

    with sessions() as session:
        statuses = {m.subject: m.status for m in session.scalars(select(InboundMessage))}
        assert statuses == {"On time": "rejected", "Late input": "accepted", "Flagged input": "accepted"}
        documents = {d.number: d.status for d in session.scalars(select(Document))}
        assert documents == {
            "JCA-MV-I-001": "rejected",
            "JCA-MV-I-002": "withdrawn",
            "JCA-MV-I-003": "accepted",
        }
        trail = [
            (e.actor, e.action, e.detail or "")
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.actor != "system").order_by(AuditEvent.id)
            )
        ]
    acted = [(actor, action) for actor, action, _ in trail if action != "reply"]
    assert acted == [
        ("anna", "numbered"),
        ("anna", "admitted"),
        ("ben", "numbered"),
        ("ben", "released"),
        ("anna", "rejected"),  # the document JCA-MV-I-001
        ("anna", "rejected"),  # the message
        ("ben", "withdrawn"),
        ("anna", "resent"),
    ]
    assert any("convener agreed" in detail for _, _, detail in trail)
    assert any(reason in detail for _, _, detail in trail)

    # show: by number, with the history of the record.
    shown = json.loads(cli(env, "show", "JCA-MV-I-002", "--format", "json", check=True).stdout)
    assert shown["id"] == ids["Late input"] and shown["received_local"].endswith(("CEST", "CET"))
    assert [h["action"] for h in shown["history"]][:2] == ["recorded", "reply"]
    assert {"admitted", "withdrawn", "resent"} <= {h["action"] for h in shown["history"]}
    text = cli(env, "show", str(ids["Late input"]), "--original", check=True).stdout
    assert "Late thoughts" in text and "Please find it attached." in text and "History:" in text

    # log: filters and CSV.
    assert [
        e["subject"] for e in json.loads(cli(env, "log", "--status", "rejected", "--format", "json").stdout)
    ] == ["On time"]
    found = cli(env, "log", "--search", "FLAGGED.docx", "--format", "json", check=True).stdout
    assert [e["subject"] for e in json.loads(found)] == ["Flagged input"]
    by_sender = cli(env, "log", "--sender", p[1].address, "--format", "csv", check=True).stdout
    rows = list(csv.DictReader(io.StringIO(by_sender)))
    assert [r["subject"] for r in rows] == ["Late input"] and rows[0]["numbers"] == "JCA-MV-I-002"
    day = mail.after.astimezone(mail.event.timezone).date().isoformat()
    late_only = json.loads(cli(env, "log", "--since", day, "--format", "json", check=True).stdout)
    assert [e["subject"] for e in late_only] == ["Late input"]
    assert env.run("log", "--since", "yesterday").returncode == 2  # a usage error, as argparse's

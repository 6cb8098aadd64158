"""Issue 11: a resend on the desk. `intake show` and the message page link it to the numbered
document; releasing a held copy and judging everything again never number it a second time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from intake.desk import accounts
from intake.models import Document, InboundMessage
from intake.web.app import create_app
from intake.web.options import WebOptions
from tests.desk.conftest import Mail, body, cli, person, received
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.dovecot


def _ids(env: IntakeEnv) -> dict[str, int]:
    return {e["subject"]: e["id"] for e in json.loads(cli(env, "log", "--format", "json").stdout)}


def _numbers(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(n for n in session.scalars(select(Document.number)) if n)


def test_a_resend_on_the_desk(
    env: IntakeEnv, mail: Mail, sessions: sessionmaker[Session], smtp_sink: SmtpSink
) -> None:
    author, colleague = person(1), person(2)
    data = mail.docx("Avatar ethics", author)
    first = mail.message(author, "Avatar ethics", [("ethics.docx", data)])
    again = mail.message(author, "Avatar ethics (resent)", [("ethics.docx", data)])
    flagged = mail.message(
        colleague, "Avatar ethics (flagged)", [("ethics.docx", data)], {"X-Spam-Flag": "YES"}
    )
    mail.deliver((first, mail.before))
    mail.deliver((again, mail.before + timedelta(minutes=20)), (flagged, mail.before + timedelta(minutes=30)))
    ids = _ids(env)
    assert _numbers(sessions) == ["JCA-MV-I-001"]

    # intake show: the resend names the number it already has; the original, where it was sent again.
    shown = cli(env, "show", str(ids["Avatar ethics (resent)"]), check=True).stdout
    assert "[already_numbered]" in shown
    assert f"Already registered as JCA-MV-I-001 (message #{ids['Avatar ethics']})" in shown
    assert "already_registered to " + author.address in shown
    original = cli(env, "show", "JCA-MV-I-001", check=True).stdout
    assert f"Sent again in: message #{ids['Avatar ethics (resent)']}" in original

    # Released, the held copy is judged as on arrival: a resend, answered with the number it has.
    released = cli(env, "release", str(ids["Avatar ethics (flagged)"]), "--as", "ben", check=True)
    assert "judged already_numbered" in released.stdout
    assert _numbers(sessions) == ["JCA-MV-I-001"]
    answer = received(smtp_sink)[-1]
    assert answer["To"].addresses[0].addr_spec == colleague.address
    assert "JCA-MV-I-001, registered on" in " ".join(body(answer).split())

    # Judged again with today's rules: nothing changes, nothing is numbered, nobody is answered.
    sent = len(received(smtp_sink))
    applied = cli(env, "reprocess", "--all", "--apply", "--as", "anna", check=True).stdout
    assert "0 changed, 0 left for a person, 3 unchanged" in applied
    assert _numbers(sessions) == ["JCA-MV-I-001"]
    assert len(received(smtp_sink)) == sent
    statuses = {e["subject"]: e["status"] for e in json.loads(cli(env, "log", "--format", "json").stdout)}
    assert statuses == {
        "Avatar ethics": "accepted",
        "Avatar ethics (resent)": "already_numbered",
        "Avatar ethics (flagged)": "already_numbered",
    }

    # The message page links the copy to the numbered document.
    accounts.add_user(sessions, "anna", None, "viewer", "setup")
    proxy = "127.0.0.9"
    app = create_app(env.settings(), WebOptions(proxy_user_header="X-Remote-User", trusted_proxies=(proxy,)))
    page = (
        app.test_client()
        .get(
            f"/messages/{ids['Avatar ethics (resent)']}",
            headers={"X-Remote-User": "anna"},
            environ_base={"REMOTE_ADDR": proxy},
        )
        .get_data(as_text=True)
    )
    assert (
        f'href="/messages/{ids["Avatar ethics"]}">JCA-MV-I-001</a>: the same file, not numbered again' in page
    )


def test_of_two_numbered_copies_reprocess_leaves_the_later_one_for_a_person(
    env: IntakeEnv, mail: Mail, sessions: sessionmaker[Session]
) -> None:
    """Two replicas recording copies at the same moment can number both (intake.resends says
    so): judged again, the first stays as it is, and the second is reported, not renumbered."""
    author = person(3)
    data = mail.docx("Twice numbered", author)
    mail.deliver(
        (mail.message(author, "First copy", [("x.docx", data)]), mail.before),
        (mail.message(author, "Second copy", [("x.docx", data)]), mail.before + timedelta(minutes=1)),
    )
    ids = _ids(env)
    with sessions.begin() as session:  # as if recorded by two replicas at once
        second = session.get(InboundMessage, ids["Second copy"])
        assert second is not None
        second.status = "accepted"
        second.documents[0].status, second.documents[0].copy_of_id = "accepted", None
        second.documents[0].number = "JCA-MV-I-002"
    report = cli(env, "reprocess", "--all", "--as", "anna", check=True).stdout
    assert "1 left for a person, 1 unchanged" in report, report
    assert "JCA-MV-I-002 would now be already_numbered" in report
    assert "JCA-MV-I-001 would now be" not in report

"""With several events in the configuration, the dashboard switches between them (issue 13): each
event's list, counts and exports, chosen per browser; real mail polled into each event's folder,
on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from intake.config import load_deployment
from intake.desk import accounts
from intake.samples import CONTRIBUTORS, DOCX, make_docx, make_message
from intake.web.app import create_app
from intake.web.options import WebOptions
from tests.desk.conftest import cli
from tests.support.dovecot import Dovecot
from tests.support.intake_env import EVENT, IntakeEnv

pytestmark = pytest.mark.dovecot

PROXY = "127.0.0.9"


def test_the_dashboard_switches_between_the_events_of_one_database(
    env: IntakeEnv, dovecot: Dovecot, sessions: object
) -> None:
    second = (
        EVENT.replace("[event]", "[[events]]")
        .replace('id = "jca-mv-2"', 'id = "sg20-2026"')
        .replace('acronym = "JCA-MV"', 'acronym = "SG20"')
        .replace('address = "tsbjcamv@itu.int"', 'address = "tsbsg20@itu.int"')
        .replace("JCA-MV-I-", "SG20-I-")
        .replace('deadline = "2026-04-30T23:59:59"', 'deadline = "2026-06-30T23:59:59"')
    )
    config = env.config_path.read_text().replace("[event]", "[[events]]", 1)
    config = config.replace("[event.screening]", "[events.screening]")
    env.config_path.write_text(config + second + '\n[events.imap]\nfolder = "SG20"\n')
    deployment = load_deployment(env.config_path, env={})
    who = CONTRIBUTORS[0]
    for settings, folder, subject in (
        (deployment[0], "INBOX", "Вклад for JCA-MV"),
        (deployment[1], "SG20", "Input for SG20"),
    ):
        event = settings.event
        docx = make_docx(event, subject, who.organization, who, "An abstract.")
        raw = make_message(who, event.address, subject, "Attached.", [("in.docx", DOCX, docx)])
        dovecot.append_many(folder, [(raw, event.deadline - timedelta(days=1))])
        cli(env, "--event", event.id, "poll", "--once", check=True)
    accounts.add_user(sessions, "anna", None, "admin", "setup")  # type: ignore[arg-type]

    options = WebOptions(proxy_user_header="X-Remote-User", trusted_proxies=(PROXY,))
    app = create_app(deployment[0], options, deployment)
    browser = app.test_client()
    environ = {"REMOTE_ADDR": PROXY}
    home = browser.get("/", headers={"X-Remote-User": "anna"}, environ_base=environ).get_data(as_text=True)
    # The first event by default, with a switcher naming both.
    assert "Вклад for JCA-MV" in home and "Input for SG20" not in home
    assert re.search(r'<option value="sg20-2026"[^>]*>SG20', home) and 'value="jca-mv-2" selected' in home
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home)
    assert csrf
    switched = browser.post(
        "/event", data={"event": "sg20-2026", "csrf_token": csrf.group(1)}, environ_base=environ
    )
    assert switched.status_code == 302
    cookie = switched.headers["Set-Cookie"]
    assert "intake_event=sg20-2026" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    other = browser.get("/", environ_base=environ).get_data(as_text=True)
    assert "Input for SG20" in other and "Вклад for JCA-MV" not in other
    assert "SG20-I-001" in other and 'value="sg20-2026" selected' in other
    # Everything the page offers follows: the documents export, a search.
    export = browser.get("/export.csv", environ_base=environ).get_data(as_text=True)
    assert "SG20-I-001" in export and "JCA-MV-I-001" not in export
    searched = browser.get("/?q=input", environ_base=environ).get_data(as_text=True)
    assert "Input for SG20" in searched
    # An event that is not configured is refused; the choice stays.
    assert (
        browser.post(
            "/event", data={"event": "nope", "csrf_token": csrf.group(1)}, environ_base=environ
        ).status_code
        == 404
    )
    # Without the form's token, nothing switches.
    assert browser.post("/event", data={"event": "jca-mv-2"}, environ_base=environ).status_code == 403
    assert "Input for SG20" in browser.get("/", environ_base=environ).get_data(as_text=True)

    # One event alone: no switcher.
    single = create_app(deployment[0], options).test_client()
    page = single.get("/", headers={"X-Remote-User": "anna"}, environ_base=environ).get_data(as_text=True)
    assert 'name="event"' not in page

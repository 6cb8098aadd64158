"""The desk's pages as the secretariat sees them (issue 13, "Seeing and finding"), in Chromium through
Playwright and over raw HTTP, against `intake web` as its own process, Dovecot in and aiosmtpd out,
on SQLite and on PostgreSQL (the module runs once per database).

The mailbox holds one of each case the secretariat meets: non-ASCII senders and subjects, two late
inputs, a message flagged as spam with a file, a partial one, a rejected one, one that is not
e-mail. Tests that decide (the bulk admit) come last in the file.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from intake import db
from intake.samples import Contributor
from tests.desk.conftest import SCREENING, Mail, body, person, received
from tests.desk.test_web import (
    ADMIN,
    ADMIN_PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    Client,
    _sign_in,
    _wait_for,
    add_desk_users,
)
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.dovecot import Dovecot
from tests.support.fixtures import _serve
from tests.support.intake_env import IntakeEnv, write_config
from tests.support.smtp import SmtpSink, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.dovecot

OLGA = Contributor("Ольга Иванова", "olga@example.ru", "Институт развития", "Russia")
LUKASZ = Contributor("Łukasz Żółkiewski", "l.zolkiewski@example.pl", "Politechnika Warszawska", "Poland")
NOT_EMAIL = b"\x00\x01\x02 this is not e-mail at all \xff\xfe\r\n"


@dataclass
class Site:
    env: IntakeEnv
    sink: SmtpSink
    base: str
    database: str
    ids: dict[str, int] = field(default_factory=dict)
    flagged_docx: bytes = b""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp(f"pages-{request.param}")
    url = f"sqlite:///{tmp / 'intake.db'}" if request.param == "sqlite" else create_pg_database()
    dovecot_iter = _serve()
    dovecot: Dovecot = next(dovecot_iter)
    sink = SmtpSink().start()
    server = None
    try:
        db.upgrade(url)
        env = write_config(
            tmp,
            dovecot.host,
            dovecot.port,
            dovecot.user,
            dovecot.password,
            url,
            smtp_port=sink.port,
            extra=SCREENING,
        )
        mail = Mail(env, dovecot)
        p = [person(i) for i in range(6)]
        flagged, flagged_docx = {"X-Spam-Flag": "YES"}, mail.docx("Flagged", p[3])
        mail.deliver(
            (
                mail.message(OLGA, "Вклад в метавселенную", [("vklad.docx", mail.docx("Вклад", OLGA))]),
                mail.before,
            ),
            (
                mail.message(LUKASZ, "Digital twins", [("twins.docx", mail.docx("Twins", LUKASZ))]),
                mail.before,
            ),
            (mail.message(p[1], "Late input one", [("late1.docx", mail.docx("Late one", p[1]))]), mail.after),
            (mail.message(p[2], "Late input two", [("late2.docx", mail.docx("Late two", p[2]))]), mail.after),
            (
                mail.message(p[3], "Cheap pills", [("flagged.docx", flagged_docx)], flagged),
                mail.before,
            ),
            (
                mail.message(
                    p[4], "Two files", [("good.docx", mail.docx("Good", p[4])), ("broken.docx", b"not word")]
                ),
                mail.before,
            ),
            (mail.message(p[5], "No file at all", []), mail.before),
            (NOT_EMAIL, mail.before),
        )
        add_desk_users(env)
        port = free_port()
        server = env.popen("web", "--port", str(port), "--idle-minutes", "30")
        _wait_for(port, server)
        log = json.loads(env.run("log", "--format", "json", check=True).stdout)
        ids = {e["subject"] or "(none)": e["id"] for e in log}
        statuses = {e["subject"] or "(none)": e["status"] for e in log}
        assert statuses == {
            "Вклад в метавселенную": "accepted",
            "Digital twins": "accepted",
            "Late input one": "late",
            "Late input two": "late",
            "Cheap pills": "held",
            "Two files": "partial",
            "No file at all": "rejected",
            "(none)": "quarantined",
        }, statuses
        yield Site(env, sink, f"http://127.0.0.1:{port}", request.param, ids, flagged_docx)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        sink.stop()
        for _ in dovecot_iter:  # the harness's clean-up
            pass
        if request.param == "postgresql":
            drop_pg_database(url)


def _rows(page: object) -> list[str]:
    return [t.strip() for t in page.locator("table.log tbody tr").all_inner_texts()]  # type: ignore[attr-defined]


def _subjects(page: object) -> list[str]:
    return sorted(page.locator("table.log tbody td.subject a").all_inner_texts())  # type: ignore[attr-defined]


# --- search: any case, any script, addresses, loose numbers; empty and unreadable filters --------


def test_search_finds_non_ascii_text_in_any_case_and_addresses(site: Site, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, VIEWER, VIEWER_PASSWORD)
    found = [
        ("q", "вклад", ["Вклад в метавселенную"]),
        ("q", "ВКЛАД", ["Вклад в метавселенную"]),
        ("sender", "żółkiewski", ["Digital twins"]),
        ("sender", "ŻÓŁKIEWSKI", ["Digital twins"]),
        # An address in the search box, as the secretariat's guide says; a number typed loosely.
        ("q", "L.Zolkiewski@example.PL", ["Digital twins"]),
        ("q", "person1@", ["Late input one"]),
        ("q", "jca-mv-i-1", ["Вклад в метавселенную"]),
    ]
    for box, typed, expected in found:
        page.fill("input[name=q]", typed if box == "q" else "")
        page.fill("input[name=sender]", typed if box == "sender" else "")
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state("load")
        assert _subjects(page) == expected, (site.database, typed, _rows(page))
    # Nothing found says so, not that nothing was ever recorded.
    page.fill("input[name=q]", "no-such-thing-anywhere")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("load")
    assert _rows(page) == ["No message matches these filters."]
    context.close()


def test_an_unreadable_date_filter_is_refused_not_ignored(site: Site) -> None:
    client = Client(site.base)
    client.sign_in(VIEWER, VIEWER_PASSWORD)
    status, _, page = client.request("GET", "/?since=30%2F04%2F2026")
    assert status == 400 and "not a date or date-time: &#39;30/04/2026&#39;" in page, page[-2000:]
    assert "Cheap pills" not in page  # nothing listed as if unfiltered
    status, _, page = client.request("GET", "/?until=2026-04-30")
    assert status == 200 and "Вклад в метавселенную" in page and "Late input one" not in page


# --- exports: the log as filtered, dates as dates, names by number, the original as .eml ---------


def test_the_log_exports_as_filtered_and_files_are_named_by_number(site: Site) -> None:
    client = Client(site.base)
    client.sign_in(VIEWER, VIEWER_PASSWORD)
    status, headers, text = client.request("GET", "/log.csv?q=%D0%92%D0%9A%D0%9B%D0%90%D0%94")  # ВКЛАД
    assert status == 200 and text.startswith("\ufeffid,")
    assert headers["content-disposition"].startswith("attachment;")
    assert headers["x-content-type-options"] == "nosniff"
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["subject"] for r in rows] == ["Вклад в метавселенную"]

    status, headers, _ = client.request("GET", "/log.csv?status=late")
    assert status == 200 and re.search(
        r"JCA-MV-intake-log-\d{4}-\d\d-\d\d\.csv", headers["content-disposition"]
    )

    raw = _get_bytes(site, client, "/log.xlsx")
    sheet = load_workbook(io.BytesIO(raw)).active
    assert sheet is not None
    header, *data = list(sheet.iter_rows(values_only=True))
    assert len(data) == 8  # every message, numbered or not
    assert all(isinstance(r[1], datetime) and isinstance(r[2], datetime) for r in data)
    late = {r[6]: r[header.index("late")] for r in data}
    assert late["Late input one"] == "late" and late["Digital twins"] is None

    # A numbered document downloads under its number, not what the sender called it.
    _, _, message = client.request("GET", f"/messages/{site.ids['Вклад в метавселенную']}")
    link = re.search(r'href="(/documents/\d+/file)"', message)
    assert link, message
    status, headers, _ = client.request("GET", link.group(1))
    assert status == 200 and "JCA-MV-I-001.docx" in headers["content-disposition"]

    # The original message, as received, as an .eml attachment.
    eml_path = f"/messages/{site.ids['Digital twins']}/original.eml"
    assert eml_path in client.request("GET", f"/messages/{site.ids['Digital twins']}")[2]
    status, headers, _ = client.request("GET", eml_path)
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert (
        headers["content-disposition"].startswith("attachment;") and ".eml" in headers["content-disposition"]
    )
    original = email.message_from_bytes(_get_bytes(site, client, eml_path), policy=email.policy.default)
    assert original["Subject"] == "Digital twins" and LUKASZ.address in str(original["From"])


def _get_bytes(site: Site, client: Client, path: str) -> bytes:
    import http.client

    connection = http.client.HTTPConnection(client.netloc, timeout=20)
    connection.request(
        "GET", path, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    assert response.status == 200, (path, response.status)
    return data


# --- replies: their text on the message page and in the outbox; each confirmation previews it ---


def _replies_to(site: Site, address: str) -> list[email.message.EmailMessage]:
    return [m for m in received(site.sink) if m["To"].addresses[0].addr_spec == address]


def _lines(text: str) -> str:
    """The text as a reader sees it (a flowed mail body keeps a space at the end of soft lines)."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _state(site: Site) -> list[tuple[int, str, int]]:
    log = json.loads(site.env.run("log", "--format", "json", check=True).stdout)
    return [(e["id"], e["status"], len(e["replies"])) for e in log]


def test_reply_texts_are_shown_and_every_confirmation_previews_its_reply(site: Site, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, ADMIN, ADMIN_PASSWORD)
    before = _state(site)

    # What the contributor received, word for word, on the message page and in the outbox.
    wait_until(lambda: _replies_to(site, OLGA.address), 60, "Olga's acknowledgement never reached the sink")
    [ack] = _replies_to(site, OLGA.address)
    sent_text = _lines(body(ack))
    assert "JCA-MV-I-001" in sent_text
    page.goto(f"{site.base}/messages/{site.ids['Вклад в метавселенную']}")
    shown = page.locator("pre.reply-text").first
    assert shown.is_visible() and _lines(shown.inner_text()) == sent_text
    assert "What the contributor received" in page.inner_text("tr.reply-body")
    shown_json = json.loads(site.env.run("show", "JCA-MV-I-001", "--format", "json", check=True).stdout)
    page.goto(f"{site.base}/outbox")
    row = page.locator(f"tr#reply-{shown_json['replies'][0]['id']}-text")
    assert not row.locator("pre.reply-text").is_visible()  # folded until asked for
    row.locator("summary").click()
    assert _lines(row.locator("pre.reply-text").inner_text()) == sent_text

    # Admit: the acknowledgement that will go, with the number it will carry.
    page.goto(f"{site.base}/messages/{site.ids['Late input one']}")
    page.click("a.button:has-text('Admit')")
    preview = page.inner_text("section.rehearsal")
    assert "The reply that will go" in preview and person(1).address in preview
    assert re.search(r"JCA-MV-I-00\d", page.inner_text("pre.reply-text")), preview

    # Release: the held message judged as it would be, and its acknowledgement.
    page.goto(f"{site.base}/messages/{site.ids['Cheap pills']}/release")
    assert person(3).address in page.inner_text("section.rehearsal")
    assert re.search(r"JCA-MV-I-00\d", page.inner_text("pre.reply-text"))

    # Reject a held (spam) message: not writing to the sender is the default.
    page.goto(f"{site.base}/messages/{site.ids['Cheap pills']}/reject")
    assert page.is_checked("input[name=notify][value=no]")
    assert "[the reason you write below]" in page.inner_text("pre.reply-text")
    page.goto(f"{site.base}/messages/{site.ids['Вклад в метавселенную']}/reject")
    assert not page.is_checked("input[name=notify][value=no]")

    # Reject a partial message: its accepted, numbered document is refused too, and it says so.
    page.goto(f"{site.base}/messages/{site.ids['Two files']}/reject")
    warning = page.inner_text("main")
    assert "JCA-MV-I-003" in warning and "refused too" in warning

    # Resend: the same text again.
    page.goto(f"{site.base}/messages/{site.ids['Вклад в метавселенную']}")
    page.click("a:has-text('Resend')")
    assert _lines(page.inner_text("pre.reply-text")) == sent_text

    # Previewing changed nothing: no status, no reply, no number (the rehearsal was rolled back).
    assert _state(site) == before
    context.close()


# --- a held message's files, before the decision ---------------------------------------------


def test_a_held_messages_files_are_listed_and_downloadable_before_release(
    site: Site, browser: object
) -> None:
    context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, VIEWER, VIEWER_PASSWORD)
    page.goto(f"{site.base}/messages/{site.ids['Cheap pills']}")
    listed = page.locator("ul.unjudged li")
    assert listed.count() == 1 and "flagged.docx" in listed.first.inner_text()
    assert "held" in page.inner_text("main")
    with page.expect_download() as info:
        listed.first.locator("a:has-text('Download')").click()
    download = info.value
    assert download.suggested_filename == "flagged.docx"
    assert Path(download.path()).read_bytes() == site.flagged_docx
    response = page.request.get(site.base + listed.first.locator("a").get_attribute("href"))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert page.request.get(f"{site.base}/messages/{site.ids['Cheap pills']}/files/7").status == 404
    # A judged message's files are its documents, not served this way.
    assert page.request.get(f"{site.base}/messages/{site.ids['Digital twins']}/files/0").status == 404
    context.close()

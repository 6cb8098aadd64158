"""The desk's pages as the secretariat sees them (issue 13, "Seeing and finding"), in Chromium through
Playwright and over raw HTTP, against `intake web` as its own process, Dovecot in and aiosmtpd out,
on SQLite and on PostgreSQL (the module runs once per database).

The mailbox holds one of each case the secretariat meets: non-ASCII senders and subjects, two late
inputs, a message flagged as spam with a file, a partial one, one without any file (correspondence),
one that is not e-mail. Tests that decide (the bulk admit) come last in the file.
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
from tests.support.intake_env import IntakeEnv, config_on
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
    dovecot: Dovecot | None = None


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
        env = config_on(dovecot, tmp, url, smtp_port=sink.port, extra=SCREENING)
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
            "No file at all": "correspondence",
            "(none)": "quarantined",
        }, statuses
        yield Site(env, sink, f"http://127.0.0.1:{port}", request.param, ids, flagged_docx, dovecot)
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
    assert "sandbox" in headers["content-security-policy"]
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
    assert "sandbox" in response.headers["content-security-policy"]
    assert page.request.get(f"{site.base}/messages/{site.ids['Cheap pills']}/files/7").status == 404
    # A judged message's files are its documents, not served this way.
    assert page.request.get(f"{site.base}/messages/{site.ids['Digital twins']}/files/0").status == 404
    context.close()


# --- the dashboard's top: what needs a person, the last poll, what waits in the mailbox ----------


def _attention(page: object) -> dict[str, str]:
    counts = page.locator("section.attention a.count")  # type: ignore[attr-defined]
    return {
        counts.nth(i).get_attribute("data-status"): counts.nth(i).locator("b").inner_text()
        for i in range(counts.count())
    }


def test_needs_a_person_panel_with_the_last_poll_and_the_mailbox(site: Site, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, VIEWER, VIEWER_PASSWORD)
    panel = _attention(page)
    assert {k: panel[k] for k in ("late", "held", "quarantined", "failed-replies")} == {
        "late": "2",
        "held": "1",
        "quarantined": "1",
        "failed-replies": "0",
    }, panel
    assert "received" not in panel and "accepted" not in panel  # only what needs a person
    # It comes first on the page, above the deadline.
    assert page.locator("main > section").first.get_attribute("class") == "attention"
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", page.inner_text("dd.last-poll")), page.inner_text(
        "dd.last-poll"
    )

    def backlog() -> str:
        page.reload()
        return page.inner_text("dd.backlog")

    wait_until(lambda: backlog().startswith("0 "), 60, lambda: f"the mailbox's backlog reads {backlog()!r}")
    assert site.dovecot is not None
    mail = Mail(site.env, site.dovecot)
    site.dovecot.append_many("INBOX", [(mail.message(person(9), "Unpolled", []), mail.before)])
    wait_until(
        lambda: backlog().startswith("1 "), 60, lambda: f"after one new message it reads {backlog()!r}"
    )

    page.click("section.attention a[data-status=late]")
    page.wait_for_load_state("load")
    assert _subjects(page) == ["Late input one", "Late input two"]
    context.close()


# --- sorting by the column headings, and pages -----------------------------------------------


def test_the_list_sorts_by_its_column_headings_and_pages(site: Site, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, VIEWER, VIEWER_PASSWORD)

    def column(selector: str, attribute: str | None = None) -> list[str]:
        cells = page.locator(f"table.log tbody tr {selector}")
        return [
            (cells.nth(i).get_attribute(attribute) or "") if attribute else cells.nth(i).inner_text()
            for i in range(cells.count())
        ]

    page.click("th[data-sort=subject] a")
    page.wait_for_load_state("load")
    subjects = [s for s in column("td.subject a") if s != "(no subject)"]
    assert subjects == sorted(subjects) and len(subjects) == 7, subjects
    assert page.get_attribute("th[data-sort=subject]", "aria-sort") == "ascending"
    page.click("th[data-sort=subject] a")  # again: the other way
    page.wait_for_load_state("load")
    assert [s for s in column("td.subject a") if s != "(no subject)"] == sorted(subjects, reverse=True)

    page.click("th[data-sort=sender] a")
    page.wait_for_load_state("load")
    senders = [s for s in column("td.from span", "title") if s]
    assert senders == sorted(senders) and len(senders) == 7, senders

    page.click("th[data-sort=id] a")
    page.wait_for_load_state("load")
    ids = [int(i) for i in column("td.id")]
    assert ids == sorted(ids, reverse=True) and len(ids) == 8

    # Sorting keeps the filter; filtering keeps the sort.
    page.goto(f"{site.base}/?status=late")
    page.click("th[data-sort=subject] a")
    page.wait_for_load_state("load")
    assert "status=late" in page.url and column("td.subject a") == ["Late input one", "Late input two"]
    page.fill("input[name=q]", "two")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("load")
    assert "sort=subject" in page.url and column("td.subject a") == ["Late input two"]

    # Pages: every message once, in order, however many there are.
    page.goto(f"{site.base}/?per=5&sort=id&order=asc")
    seen = [int(i) for i in column("td.id")]
    assert len(seen) == 5 and "Page 1 of 2" in page.inner_text("nav.pager")
    page.click("nav.pager a[rel=next]")
    page.wait_for_load_state("load")
    assert "per=5" in page.url and "Page 2 of 2" in page.inner_text("nav.pager")
    seen += [int(i) for i in column("td.id")]
    assert seen == sorted(site.ids.values()), seen
    context.close()


# --- a phone's width ---------------------------------------------------------------------------


# What sticks out on the right, for the failure message.
WIDER = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.scrollingElement.clientWidth + 0.5)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def test_at_390_px_nothing_scrolls_sideways_and_the_list_is_readable(site: Site, browser: object) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, ADMIN, ADMIN_PASSWORD)
    pages = [
        "/",
        "/?status=late",
        f"/messages/{site.ids['Two files']}",
        f"/messages/{site.ids['Cheap pills']}",
        f"/messages/{site.ids['(none)']}",
        f"/messages/{site.ids['Late input one']}/admit",
        "/outbox",
        "/audit",
    ]
    for path in pages:
        page.goto(site.base + path)
        page.wait_for_load_state("load")
        widths = page.evaluate(
            "() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
        )
        assert widths[0] <= widths[1], (site.database, path, widths, page.evaluate(WIDER))
        for link in page.locator("header.top nav a").all():  # the header's links, all on screen
            box = link.bounding_box()
            assert (
                link.is_visible() and box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            ), (
                path,
                link.inner_text(),
                box,
            )
    # The list as cards: each message's subject, status and sender readable within the screen.
    page.goto(site.base + "/")
    card = page.locator("table.log tbody tr", has_text="Вклад в метавселенную")
    box = card.bounding_box()
    assert box is not None and box["width"] <= 390
    for cell in ("td.subject", "td.from", "td.received"):
        assert card.locator(cell).is_visible(), cell
    assert page.locator("th[data-sort=subject] a").is_visible()  # sorting stays at hand
    context.close()


# --- bulk: admit several late inputs with one reason (last: it decides) -------------------------


def test_several_late_inputs_are_admitted_at_once_with_one_reason(site: Site, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, ADMIN, ADMIN_PASSWORD)
    page.goto(f"{site.base}/?status=late")
    ticks = page.locator("td.tick input[type=checkbox]")
    assert ticks.count() == 2
    for i in range(2):
        ticks.nth(i).check()
    page.click("form#bulk button[type=submit]")
    page.wait_for_load_state("load")
    assert "Admit 2 late message(s)?" in page.inner_text("h1")
    previews = page.locator("details.reply-preview")
    assert previews.count() == 2
    rehearsed = page.inner_text("section.rehearsal")
    assert person(1).address in rehearsed and person(2).address in rehearsed, rehearsed
    late = (site.ids["Late input one"], site.ids["Late input two"])
    assert {status for i, status, _ in _state(site) if i in late} == {"late"}  # looking changed nothing
    page.fill("input[name=reason]", "The chair admitted both")
    page.click("button:has-text('Yes, admit 2')")
    page.wait_for_load_state("load")
    done = page.inner_text("main")
    numbers = re.findall(r"JCA-MV-I-\d{3}", done)
    assert len(set(numbers)) == 2 and "not admitted" not in done, done
    context.close()

    for subject, who in (("Late input one", person(1)), ("Late input two", person(2))):
        shown = json.loads(
            site.env.run("show", str(site.ids[subject]), "--format", "json", check=True).stdout
        )
        assert shown["status"] == "accepted", shown["status"]
        admitted = [h for h in shown["history"] if h["action"] == "admitted"]
        assert admitted[0]["actor"] == ADMIN and "The chair admitted both" in admitted[0]["detail"]
        wait_until(
            lambda who=who: any("JCA-MV-I-" in str(m["Subject"]) for m in _replies_to(site, who.address)),
            60,
            f"no acknowledgement reached {who.address}",
        )
    # Ticking nothing, or a message that is no longer late, is said plainly.
    client = Client(site.base)
    csrf = client.sign_in(ADMIN, ADMIN_PASSWORD)
    status, _, text = client.request("POST", "/bulk/admit", {"csrf_token": csrf})
    assert status == 400 and "No message was ticked" in text
    status, _, text = client.request(
        "POST",
        "/bulk/admit",
        {"csrf_token": csrf, "confirm": "yes", "ids": str(site.ids["Late input one"])},
    )
    assert "not admitted" in text and "late" in text


# --- correspondence: needs a person until marked answered (issue 11) ----------------------------


def test_correspondence_needs_a_person_until_a_person_marks_it_answered(site: Site, browser: object) -> None:
    message_id = site.ids["No file at all"]
    asker = person(5).address
    # The sender was told once that the message reached the secretariat (no rejection).
    wait_until(lambda: _replies_to(site, asker), 60, "the correspondence notice never reached the sink")
    [notice] = _replies_to(site, asker)
    assert "reached the secretariat" in body(notice) and "could not be accepted" not in body(notice)

    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, site.base, ADMIN, ADMIN_PASSWORD)
    assert _attention(page)["correspondence"] == "1"
    page.click("section.attention a[data-status=correspondence]")
    page.wait_for_load_state("load")
    assert _subjects(page) == ["No file at all"]
    page.click("table.log tbody td.subject a")
    page.wait_for_load_state("load")
    page.click("a.button:has-text('Mark answered')")
    page.wait_for_load_state("load")
    assert "Nothing is sent" in page.inner_text("main")
    assert "No reply goes" in page.inner_text("section.rehearsal")
    page.fill("input[name=reason]", "Answered by phone: remote participation is possible")
    page.click("button:has-text('Yes, mark answered')")
    page.wait_for_load_state("load")
    assert f"message #{message_id} marked answered by {ADMIN}" in page.inner_text("main")
    page.goto(site.base + "/")
    assert _attention(page).get("correspondence", "0") == "0"
    # Only correspondence can be marked answered; the answered message no longer offers it.
    page.goto(f"{site.base}/messages/{message_id}")
    assert page.locator("a.button:has-text('Mark answered')").count() == 0
    context.close()

    shown = json.loads(site.env.run("show", str(message_id), "--format", "json", check=True).stdout)
    assert shown["status"] == "answered"
    [marked] = [h for h in shown["history"] if h["action"] == "marked_answered"]
    assert marked["actor"] == ADMIN and "Answered by phone" in marked["detail"]
    audit = Client(site.base)
    audit.sign_in(VIEWER, VIEWER_PASSWORD)
    status, _, text = audit.request("GET", f"/audit?actor={ADMIN}")
    assert status == 200 and "marked answered" in text and f"message #{message_id}" in text
    assert "Answered by phone" in text
    # Marking it answered wrote to nobody.
    assert [m["Message-ID"] for m in _replies_to(site, asker)] == [notice["Message-ID"]]
    # Twice is refused, by the command as by the page.
    again = site.env.run("mark-answered", str(message_id), "--as", "anna")
    assert again.returncode == 1 and "answered" in again.stderr

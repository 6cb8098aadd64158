"""The dashboard (acceptance 1-3) in a real browser and over raw HTTP: Debian's chromium driven by
Playwright, `intake web` as its own process, Dovecot in, aiosmtpd out, SQLite.

One server and one mailbox serve the module: the browser signs in, filters to late submissions,
admits one and sees its number; hostile subjects and file names stay text; and nothing is served
or done without a session, a role that may act and the form's CSRF token.
"""

from __future__ import annotations

import email.message
import http.client
import json
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import select, update

from intake import db
from intake.models import InboundMessage, WebSession
from tests.desk.conftest import SCREENING, Mail, body, person, received
from tests.support.dovecot import Dovecot
from tests.support.fixtures import _serve
from tests.support.intake_env import IntakeEnv, config_on
from tests.support.smtp import SmtpSink, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.dovecot

ADMIN, ADMIN_PASSWORD = "anna", "correct horse battery"
VIEWER, VIEWER_PASSWORD = "victor", "viewer password 1"
XSS_SUBJECT = '<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">'
XSS_FILE = '"><img src=x onerror=alert(1)>.docx'
XSS_TITLE = "<svg onload=alert(3)> title"


@dataclass
class Desk:
    env: IntakeEnv
    sink: SmtpSink
    base: str
    ids: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp("web")
    dovecot_iter = _serve()
    dovecot: Dovecot = next(dovecot_iter)
    sink = SmtpSink().start()
    url = f"sqlite:///{tmp / 'intake.db'}"
    db.upgrade(url)
    env = config_on(dovecot, tmp, url, smtp_port=sink.port, extra=SCREENING)
    mail = Mail(env, dovecot)
    p = [person(i) for i in range(4)]
    mail.deliver(
        (mail.message(p[0], "On time input", [("ontime.docx", mail.docx("On time", p[0]))]), mail.before),
        (mail.message(p[1], "Late input", [("late.docx", mail.docx("Late thoughts", p[1]))]), mail.after),
        (mail.message(p[2], XSS_SUBJECT, [(XSS_FILE, mail.docx(XSS_TITLE, p[2]))]), mail.before),
    )
    add_desk_users(env)
    port = free_port()
    server = env.popen("web", "--port", str(port), "--idle-minutes", "30")
    try:
        _wait_for(port, server)
        log = json.loads(env.run("log", "--format", "json", check=True).stdout)
        ids = {"on_time": log[0]["id"], "late": log[1]["id"], "xss": log[2]["id"]}
        yield Desk(env, sink, f"http://127.0.0.1:{port}", ids)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        sink.stop()
        for _ in dovecot_iter:  # runs the harness's clean-up
            pass


def add_desk_users(env: IntakeEnv) -> None:
    """The admin and the viewer the browser signs in as, through `intake user add`."""
    for name, password, role in ((ADMIN, ADMIN_PASSWORD, "admin"), (VIEWER, VIEWER_PASSWORD, "viewer")):
        added = subprocess.run(
            env.command("user", "add", name, "--role", role, "--password-stdin", "--as", "setup"),
            input=password + "\n",
            capture_output=True,
            text=True,
            env=env.env(),
            timeout=60,
        )
        assert added.returncode == 0, added.stderr


def _wait_for(port: int, server: subprocess.Popen[str]) -> None:
    """Until `intake web` listens on `port`: minutes on a loaded machine, not a fixed half-minute."""

    def listening() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"intake web exited: {server.stderr.read() if server.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(listening, 180, f"intake web (process {server.pid}) never listened on port {port}", every=0.1)


def _sign_in(page: object, base: str, name: str, password: str) -> None:
    page.goto(base + "/")  # type: ignore[attr-defined]
    assert "/login" in page.url  # type: ignore[attr-defined]
    page.fill("input[name=name]", name)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(base + "/")  # type: ignore[attr-defined]


# --- 1. sign in, filter, open, admit, see the number; the acknowledgement arrives ---------------


def test_a_late_submission_is_admitted_from_the_browser(desk: Desk, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, desk.base, ADMIN, ADMIN_PASSWORD)
    assert page.locator("text=Deadline").count() == 1

    page.select_option("select[name=status]", "late")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*status=late.*"))
    rows = page.locator("table.log tbody tr")
    assert rows.count() == 1 and "Late input" in rows.first.inner_text()
    received_cell = rows.first.locator("time").first
    assert received_cell.get_attribute("title").endswith("UTC")  # Geneva time shown, UTC on hover

    page.click("text=Late input")
    page.wait_for_url(re.compile(rf".*/messages/{desk.ids['late']}$"))
    page.click("a.button:has-text('Admit')")
    assert "Admit message" in page.inner_text("h1")
    page.fill("input[name=reason]", "The convener agreed")
    page.click("button:has-text('Yes, admit')")
    assert "admitted: JCA-MV-I-003" in page.inner_text("main")

    page.goto(desk.base + "/")
    late_row = page.locator("table.log tbody tr", has_text="Late input")
    assert "JCA-MV-I-003" in late_row.inner_text() and "accepted" in late_row.inner_text()
    context.close()

    def acknowledgements() -> list[email.message.EmailMessage]:
        return [m for m in received(desk.sink) if "JCA-MV-I-003" in str(m["Subject"])]

    wait_until(
        acknowledgements,
        120,
        lambda: f"no acknowledgement; the sink holds {[str(m['Subject']) for m in received(desk.sink)]}",
    )
    acks = acknowledgements()
    assert "JCA-MV-I-003" in body(acks[0]) and acks[0]["To"].addresses[0].addr_spec == person(1).address
    trail = json.loads(desk.env.run("show", str(desk.ids["late"]), "--format", "json", check=True).stdout)
    admitted = [h for h in trail["history"] if h["action"] == "admitted"]
    assert admitted[0]["actor"] == ADMIN and "The convener agreed" in admitted[0]["detail"]


# --- 2. hostile subject, file name and title are shown as text; no script runs -----------------


def test_hostile_text_is_shown_as_text_and_never_runs(desk: Desk, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # alert(), confirm(), prompt(): a script ran
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    _sign_in(page, desk.base, VIEWER, VIEWER_PASSWORD)
    texts = {}
    for path in ("/", f"/messages/{desk.ids['xss']}", "/outbox", "/audit"):
        response = page.goto(desk.base + path)
        assert response is not None and response.status == 200
        assert "script-src" not in response.headers["content-security-policy"]  # none allowed at all
        assert "default-src 'none'" in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
        assert page.evaluate("() => window.__xss") is None
        assert page.locator("img, svg, script").count() == 0
        texts[path] = page.inner_text("main")
    assert XSS_SUBJECT in texts["/"] and XSS_FILE in texts["/"]
    detail = texts[f"/messages/{desk.ids['xss']}"]
    assert XSS_SUBJECT in detail and XSS_FILE in detail and XSS_TITLE in detail
    assert dialogs == []
    page.goto(f"{desk.base}/messages/{desk.ids['xss']}")

    # The file downloads as an attachment under a safe name, never rendered inline.
    link = page.locator("a:has-text('Download')").first.get_attribute("href")
    assert link is not None
    response = page.request.get(desk.base + link)
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "<" not in disposition and '"' not in disposition[22:-1]
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    context.close()


# --- 3. no session, no role, no CSRF token: nothing is served or done ---------------------------


class Client:
    """A bare HTTP client that keeps its cookies and follows no redirect."""

    def __init__(self, base: str, source: str | None = None) -> None:
        self.netloc = urlsplit(base).netloc
        self.source = (source, 0) if source else None  # a loopback address to come from
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(self.netloc, timeout=20, source_address=self.source)
        head = dict(headers or {})
        if self.cookies:
            head["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if form is not None:
            data = urlencode(form)
            head["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=data, headers=head)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
            if "Expires=Thu, 01 Jan 1970" in value:
                del self.cookies[name]
        connection.close()
        return response.status, {k.lower(): v for k, v in response.headers.items()}, text

    def sign_in(self, name: str, password: str) -> str:
        status, _, page = self.request("GET", "/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page)
        assert status == 200 and token
        status, headers, _ = self.request(
            "POST", "/login", {"name": name, "password": password, "login_token": token.group(1), "next": "/"}
        )
        assert status == 302, status
        _, _, home = self.request("GET", "/")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', home)
        assert csrf
        return csrf.group(1)


def _status_of(desk: Desk, message_id: int) -> str:
    engine = db.make_engine(desk.env.database_url)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    select(InboundMessage.status).where(InboundMessage.id == message_id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_nothing_without_a_session_a_role_and_the_csrf_token(desk: Desk) -> None:
    on_time = desk.ids["on_time"]
    pages = [
        "/",
        "/?status=late",
        f"/messages/{on_time}",
        "/numbers/JCA-MV-I-001",
        "/documents/1/file",
        "/outbox",
        "/audit",
        "/export.csv",
        "/export.xlsx",
        f"/messages/{on_time}/reject",
        f"/messages/{on_time}/reprocess",
        "/documents/1/withdraw",
        "/replies/1/resend",
    ]
    anonymous = Client(desk.base)
    for path in pages:
        status, headers, text = anonymous.request("GET", path, headers={"X-Remote-User": ADMIN})
        assert status == 302 and headers["location"].startswith("/login"), path  # the proxy header is off
        assert "On time input" not in text and "@example" not in text and "PK" not in text  # nothing leaks
    for method in ("HEAD", "OPTIONS"):  # asked without a session: sent to sign in, as a GET is
        for path in ("/", "/documents/1/file", "/export.csv"):
            status, headers, _ = anonymous.request(method, path)
            assert status == 302 and headers["location"].startswith("/login"), (method, path, status)
    actions = [
        f"/messages/{on_time}/reject",
        f"/messages/{on_time}/reprocess",
        "/documents/1/withdraw",
        "/replies/1/resend",
        "/logout",
    ]
    for path in actions:
        status, _, _ = anonymous.request("POST", path, {"reason": "forged", "csrf_token": "x"})
        assert status in (401, 403), path

    # Wrong password: refused, no session.
    bad = Client(desk.base)
    status, _, page = bad.request("GET", "/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page)
    assert token
    status, _, _ = bad.request(
        "POST", "/login", {"name": ADMIN, "password": "wrong password!", "login_token": token.group(1)}
    )
    assert status == 401 and "intake_session" not in bad.cookies

    # A viewer reads but cannot act.
    viewer = Client(desk.base)
    viewer_csrf = viewer.sign_in(VIEWER, VIEWER_PASSWORD)
    assert viewer.request("GET", f"/messages/{on_time}")[0] == 200
    assert viewer.request("GET", "/export.csv")[0] == 200
    assert viewer.request("GET", f"/messages/{on_time}/reject")[0] == 403
    form = {"reason": "viewer tries", "csrf_token": viewer_csrf}
    assert viewer.request("POST", f"/messages/{on_time}/reject", form)[0] == 403

    # An admin's forged POSTs: no token, a wrong one, or from another site.
    admin = Client(desk.base)
    admin_csrf = admin.sign_in(ADMIN, ADMIN_PASSWORD)
    # A file keeps its own sandboxing policy; a page has the page policy.
    status, headers, _ = admin.request("GET", "/documents/1/file")
    assert status == 200 and headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert "form-action 'self'" in admin.request("GET", "/")[1]["content-security-policy"]
    assert admin.request("POST", f"/messages/{on_time}/reject", {"reason": "forged"})[0] == 403
    assert (
        admin.request("POST", f"/messages/{on_time}/reject", {"reason": "forged", "csrf_token": viewer_csrf})[
            0
        ]
        == 403
    )
    cross = admin.request(
        "POST",
        f"/messages/{on_time}/reject",
        {"reason": "forged", "csrf_token": admin_csrf},
        headers={"Origin": "http://attacker.example"},
    )
    assert cross[0] == 403
    assert _status_of(desk, on_time) == "accepted"
    # The same request with the token is done (so the refusals above were the checks, not a bug).
    status, _, page = admin.request(
        "POST",
        f"/messages/{on_time}/reject",
        {"reason": "Out of scope.", "csrf_token": admin_csrf, "notify": "no"},
    )
    assert status == 200 and "rejected" in page and _status_of(desk, on_time) == "rejected"

    # Sessions end: signing out, or expiry, sends the browser back to sign in.
    assert admin.request("POST", "/logout", {"csrf_token": admin_csrf})[0] == 302
    assert admin.request("GET", "/")[0] == 302
    engine = db.make_engine(desk.env.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(WebSession).values(expires_at=datetime(2020, 1, 1, tzinfo=UTC)))
    finally:
        engine.dispose()
    status, headers, _ = viewer.request("GET", "/")
    assert status == 302 and headers["location"].startswith("/login")


def test_a_reverse_proxys_user_header_is_trusted_only_when_asked_and_only_from_the_proxy(
    desk: Desk,
) -> None:
    from intake.web.app import create_app
    from intake.web.options import WebOptions

    settings = desk.env.settings()
    off = create_app(settings).test_client()
    assert off.get("/", headers={"X-Remote-User": ADMIN}).status_code == 302

    app = create_app(settings, WebOptions(proxy_user_header="X-Remote-User", trusted_proxies=("127.0.0.9",)))
    through_proxy = app.test_client()
    page = through_proxy.get(
        "/", headers={"X-Remote-User": VIEWER}, environ_base={"REMOTE_ADDR": "127.0.0.9"}
    )
    assert page.status_code == 200 and VIEWER in page.get_data(as_text=True)
    # The session it opened carries on without the header, like a signed-in browser.
    assert through_proxy.get("/outbox", environ_base={"REMOTE_ADDR": "127.0.0.9"}).status_code == 200
    around_it = app.test_client()
    assert (
        around_it.get(
            "/", headers={"X-Remote-User": ADMIN}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
        ).status_code
        == 302
    )
    stranger = app.test_client().get(
        "/", headers={"X-Remote-User": "nobody"}, environ_base={"REMOTE_ADDR": "127.0.0.9"}
    )
    assert stranger.status_code == 403

"""Signing in to the dashboard (issue 13, acceptance 2): `intake web` as its own process, on
SQLite and PostgreSQL, with clients coming from several loopback addresses (127.0.0.2, 127.0.0.3
...: the whole of 127/8 reaches the server on 127.0.0.1).

A stranger guessing at one address does not keep the real user out at another; guessing from many
addresses slows the account for new browsers but not for the browser the secretariat signed in
with before; guessing stays throttled after ten thousand other names; a restart forgets nothing;
`next=` never leads off the site and never answers 500; every refusal is in the audit trail.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import func, select

from intake import db
from intake.desk import throttle
from intake.models import AuditEvent, SignInThrottle
from tests.desk.test_web import Client, _wait_for
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import free_port

ANNA, ANNA_PASSWORD = "anna", "correct horse battery"
WRONG = "not the password"


@dataclass
class Server:
    env: IntakeEnv
    port: int
    process: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *options: str) -> None:
        self.process = self.env.popen("web", "--port", str(self.port), "--threads", "8", *options)
        _wait_for(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def client(self, source: str) -> Client:
        return Client(self.base, source=source)


@pytest.fixture
def server(make_env: MakeEnv) -> Iterator[Server]:
    # No mail server is reached by `intake web`; the IMAP settings are never used.
    env = make_env(imap=False)
    added = subprocess.run(
        env.command("user", "add", ANNA, "--role", "admin", "--password-stdin", "--as", "setup"),
        input=ANNA_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env.env(),
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    running = Server(env, free_port())
    running.start()
    try:
        yield running
    finally:
        running.stop()


def attempt(
    client: Client, name: str, password: str, next_path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    """One sign-in through the form, as a browser sends it."""
    status, _, page = client.request("GET", "/login", headers=headers)
    token = re.search(r'name="login_token" value="([^"]+)"', page)
    assert status == 200 and token, f"the sign-in page answered {status}"
    status, answer, _ = client.request(
        "POST",
        "/login",
        {"name": name, "password": password, "login_token": token.group(1), "next": next_path},
        headers=headers,
    )
    return status, answer


def refusals(url: str) -> list[str]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(AuditEvent.detail)
                .where(AuditEvent.action == "sign_in_refused")
                .order_by(AuditEvent.id)
            )
            return [str(detail) for (detail,) in rows]
    finally:
        engine.dispose()


def refused_count(details: list[str]) -> int:
    """Attempts the audit trail accounts for: one per wrong password, and each wait's count."""
    total = 0
    for detail in details:
        folded = re.search(r"\((\d+) attempts refused in this wait\)", detail)
        total += int(folded.group(1)) if folded else 1
    return total


def test_thirty_failures_from_one_address_do_not_stop_the_real_user_at_another(server: Server) -> None:
    stranger = server.client("127.0.0.2")
    answers = [attempt(stranger, ANNA, WRONG)[0] for _ in range(30)]
    assert set(answers) <= {401, 429}, answers
    assert answers[: throttle.FREE] == [401] * throttle.FREE, answers
    assert answers.count(429) >= 20, f"the stranger was hardly slowed: {answers}"
    # The stranger's address waits even with the right password, and is told how long.
    status, headers = attempt(stranger, ANNA, ANNA_PASSWORD)
    assert status == 429 and int(headers["retry-after"]) >= 1, (status, headers)

    # The real user, at another address and in a browser that never signed in here, is not stopped.
    real = server.client("127.0.0.3")
    status, headers = attempt(real, ANNA, ANNA_PASSWORD, "/outbox")
    assert status == 302 and headers["location"] == "/outbox", (status, headers)
    assert real.request("GET", "/outbox")[0] == 200

    # Every one of the 31 refusals is in the audit trail, named and placed.
    details = refusals(server.env.database_url)
    assert refused_count(details) == 31, details
    assert all("127.0.0.2" in d for d in details), details
    assert any(d.startswith("throttled: the address waits") for d in details), details


def test_guessing_from_many_addresses_slows_the_account_but_not_the_secretariats_browser(
    server: Server,
) -> None:
    secretariat = server.client("127.0.0.3")
    assert attempt(secretariat, ANNA, ANNA_PASSWORD)[0] == 302  # this browser is now known
    assert "intake_device" in secretariat.cookies

    # One wrong guess from each of many addresses: no address is slowed, the account is.
    answers = [attempt(server.client(f"127.0.1.{i}"), ANNA, WRONG)[0] for i in range(1, 13)]
    assert 429 in answers, f"guessing from twelve addresses was never slowed: {answers}"
    newcomer = server.client("127.0.2.1")
    status, _ = attempt(newcomer, ANNA, ANNA_PASSWORD)
    assert status == 429, "a browser new to the account should wait while it is under attack"

    # The browser that signed in before is counted on its own, and goes in.
    status, headers = attempt(secretariat, ANNA, ANNA_PASSWORD, "/audit")
    assert status == 302 and headers["location"] == "/audit", (status, headers)


def test_guessing_at_one_account_stays_throttled_after_10001_other_names(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full mode (INTAKE_FULL=1) sprays 10,001 names against the real bound; the short mode
    1,001 against a bound of 500, the same pruning at a tenth of the cost."""
    sprayed = 10_001
    if not os.environ.get("INTAKE_FULL"):
        monkeypatch.setattr(throttle, "MOST_ROWS", 500)
        sprayed = 1_001
    url = server.env.database_url
    for i in range(1, 4):  # over HTTP: one account guessed at from three addresses
        for _ in range(3):
            attempt(server.client(f"127.0.3.{i}"), ANNA, WRONG)
    assert attempt(server.client("127.0.3.9"), ANNA, ANNA_PASSWORD)[0] == 429

    # Then ten thousand and one other names, each from an address of its own, through the same
    # throttle the server uses (in this process, to spare ten thousand Argon2 hashes).
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)

    def anna() -> tuple[int, object]:
        with sessions() as session:
            row = session.scalars(
                select(SignInThrottle).where(SignInThrottle.scope == "account", SignInThrottle.key == ANNA)
            ).one()
            return row.failures, row.blocked_until

    try:
        before = anna()
        for i in range(sprayed):
            address = f"127.{10 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}"
            throttle.failed(sessions, throttle.Attempt(f"sprayed{i}", address))
        with sessions() as session:
            rows = session.execute(select(func.count()).select_from(SignInThrottle)).scalar_one()
        assert anna() == before, "the account's count changed under the spray"
    finally:
        engine.dispose()
    assert rows <= throttle.MOST_ROWS + 1, f"the throttle's table grew to {rows} rows"
    assert rows < sprayed, "nothing was pruned"

    # The account's count goes on where it was: the next wrong guess makes it wait longer
    # (a forgotten account would start again from one failure and no delay).
    assert attempt(server.client("127.0.4.1"), ANNA, WRONG)[0] == 401
    status, headers = attempt(server.client("127.0.4.2"), ANNA, ANNA_PASSWORD)
    assert status == 429, "the spray of names made the server forget the account under attack"
    assert int(headers["retry-after"]) >= throttle.delay(before[0] + 1).total_seconds()


def test_the_throttle_survives_a_restart(server: Server) -> None:
    engine = db.make_engine(server.env.database_url)
    try:
        for _ in range(14):  # an address well into its delays: 2**9 seconds
            throttle.failed(db.make_sessionmaker(engine), throttle.Attempt("someone", "127.0.0.2"))
    finally:
        engine.dispose()
    assert attempt(server.client("127.0.0.2"), ANNA, ANNA_PASSWORD)[0] == 429
    server.stop()
    server.start()
    status, headers = attempt(server.client("127.0.0.2"), ANNA, ANNA_PASSWORD)
    assert status == 429 and int(headers["retry-after"]) > 60, (status, headers)
    assert attempt(server.client("127.0.0.3"), ANNA, ANNA_PASSWORD)[0] == 302


# Values a browser would read as another site (after dropping tabs and newlines, and reading a
# backslash as a slash), or that cannot be a header at all.
HOSTILE_NEXT = [
    "/\t/evil.example/",
    "/\n/evil.example",
    "/\r\n/x",
    "/\n/x",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    " //evil.example",
    "\t//evil.example",
    "\x00//evil.example",
    "/\x0b/evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]


def _off_site(location: str) -> bool:
    read = re.sub(r"[\t\n\r]", "", location).strip("".join(chr(c) for c in range(0x21)))
    read = read.replace("\\", "/")
    parts = urlsplit(read)
    return bool(parts.scheme or parts.netloc or not read.startswith("/") or read.startswith("//"))


def test_next_never_leaves_the_site_and_never_answers_500(server: Server) -> None:
    client = server.client("127.0.0.5")
    for value in HOSTILE_NEXT:
        status, headers = attempt(client, ANNA, ANNA_PASSWORD, value)
        assert status == 302, (value, status)
        assert headers["location"] == "/", (value, headers["location"])
        # The sign-in page carries it on in its form only once made safe.
        status, _, page = client.request("GET", "/login?next=" + quote(value, safe=""))
        assert status == 200, (value, status)
        carried = re.search(r'name="next" value="([^"]*)"', page)
        assert carried and carried.group(1) == "/", (value, carried)
    for value in (
        "/outbox?status=failed",
        "/messages/7",
        "/%2F%2Fevil.example",
        "/a\\b",
        "/%0A/x\r\nSet-Cookie: a=b",
    ):
        status, headers = attempt(client, ANNA, ANNA_PASSWORD, value)
        assert status == 302 and not _off_site(headers["location"]), (value, headers["location"])
        assert "a=b" not in client.cookies, "a header was injected"
    assert attempt(client, ANNA, ANNA_PASSWORD, "/outbox?status=failed")[1]["location"] == (
        "/outbox?status=failed"
    )


def test_a_client_address_header_is_believed_only_when_configured_and_from_the_proxy(
    server: Server,
) -> None:
    forged = {"X-Forwarded-For": "127.0.9.9"}
    # Off by default: the header is ignored, whoever sends it.
    assert attempt(server.client("127.0.0.7"), ANNA, WRONG, headers=forged)[0] == 401
    server.stop()
    server.start("--client-address-header", "X-Forwarded-For", "--trusted-proxy", "127.0.0.7")
    # From the proxy: its last entry is the client. From anywhere else: the connection.
    chain = {"X-Forwarded-For": "127.0.9.8, 127.0.9.9"}
    assert attempt(server.client("127.0.0.7"), ANNA, WRONG, headers=chain)[0] == 401
    assert attempt(server.client("127.0.0.8"), ANNA, WRONG, headers=forged)[0] == 401
    details = refusals(server.env.database_url)
    assert [d.rsplit("from ", 1)[1] for d in details] == ["127.0.0.7", "127.0.9.9", "127.0.0.8"], details


def test_every_password_length_costs_one_hash(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A password over the length limit, or a name with no account, is refused after the same
    Argon2 verification as a wrong password: no shortcut tells them apart or skips the work."""
    from intake.desk import accounts

    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    try:
        accounts.add_user(sessions, ANNA, ANNA_PASSWORD, "admin", "setup")
        verified: list[int] = []
        real = accounts._HASHER

        class Counting:
            """The real hasher, counting its verifications."""

            def verify(self, stored: str, password: str) -> bool:
                verified.append(len(password))
                return real.verify(stored, password)

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

        monkeypatch.setattr(accounts, "_HASHER", Counting())
        for name, password in (
            (ANNA, WRONG),
            (ANNA, "x" * (accounts.MAX_PASSWORD + 1)),
            (ANNA, ANNA_PASSWORD + "x" * accounts.MAX_PASSWORD),
            ("nobody", "y" * 100_000),
        ):
            assert accounts.verify_password(sessions, name, password) is None
        assert verified == [len(WRONG), accounts.MAX_PASSWORD, accounts.MAX_PASSWORD, accounts.MAX_PASSWORD]
        assert accounts.verify_password(sessions, ANNA, ANNA_PASSWORD) is not None
    finally:
        engine.dispose()

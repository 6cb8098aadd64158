"""The desk's tests: a real Dovecot, the real poller and CLI, aiosmtpd, SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import io
import os
import shutil
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from intake import db
from intake.cli import main
from intake.samples import CONTRIBUTORS, DOCX, Contributor, make_docx, make_message
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import SmtpSink

SCREENING = """
[event.screening]
trusted_authserv_ids = ["mx.itu.int"]
"""


def person(i: int, domain: str | None = None) -> Contributor:
    base = CONTRIBUTORS[i % len(CONTRIBUTORS)]
    return Contributor(base.name, f"person{i}@{domain or f'example{i}.org'}", base.organization, base.country)


class Mail:
    """Builds a test mailbox for one IntakeEnv and delivers it through Dovecot and `intake poll`."""

    def __init__(self, env: IntakeEnv, dovecot: Dovecot) -> None:
        self.env, self.dovecot = env, dovecot
        self.event = env.settings().event
        self.before = self.event.deadline - timedelta(days=3)
        self.after = self.event.deadline + timedelta(hours=2)

    def docx(
        self, title: str, who: Contributor, abstract: str = "An abstract about metaverse things."
    ) -> bytes:
        return make_docx(self.event, title, who.organization, who, abstract)

    def message(
        self,
        who: Contributor,
        subject: str,
        files: list[tuple[str, bytes]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        attachments = [
            (name, DOCX if name.endswith(".docx") else "application/pdf", data) for name, data in files or []
        ]
        return make_message(
            who, self.event.address, subject, "Please find it attached.", attachments, extra_headers=headers
        )

    def deliver(self, *messages: tuple[bytes, datetime]) -> None:
        self.dovecot.append_many("INBOX", list(messages))
        self.env.run("poll", "--once", check=True)


@pytest.fixture
def env(make_env: MakeEnv, smtp_sink: SmtpSink) -> IntakeEnv:
    return make_env(smtp_port=smtp_sink.port, extra=SCREENING)


@pytest.fixture
def mail(env: IntakeEnv, dovecot: Dovecot) -> Mail:
    return Mail(env, dovecot)


@pytest.fixture
def sessions(env: IntakeEnv) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(env.database_url)
    try:
        yield db.make_sessionmaker(engine)
    finally:
        engine.dispose()


def received(sink: SmtpSink) -> list[EmailMessage]:
    return [
        email.message_from_bytes(m.data, policy=email.policy.default)  # type: ignore[misc]
        for m in sink.received()
    ]


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(env: IntakeEnv, *args: str, check: bool = False) -> Ran:
    """Run the real `intake` command line in this process (no interpreter start-up to wait for)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--config", str(env.config_path), *args])
    ran = Ran(code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"intake {' '.join(args)} exited {code}: {ran.stderr}")
    return ran


@pytest.fixture(scope="session")
def soffice() -> str:
    """LibreOffice's soffice: skipped where missing, except under CI=true (tests/run.sh installs it)."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        message = "LibreOffice is not installed: apt-get install libreoffice-calc-nogui"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (bash tests/run.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()

"""pytest fixtures for the Dovecot test server, and a config for intake on it (registered in
tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.dovecot import Dovecot, find_dovecot
from tests.support.intake_env import IntakeEnv, config_on, write_config


def _require_dovecot() -> None:
    if find_dovecot() is not None:
        return
    reason = "Dovecot is not installed: apt-get install dovecot-imapd (bash tests/run.sh does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _serve() -> Iterator[Dovecot]:
    _require_dovecot()
    workdir = Dovecot.make_workdir()
    server = Dovecot(workdir)
    try:
        server.start()
        yield server
    finally:
        # kill(), not stop(): Dovecot 2.3's graceful shutdown sleeps a fixed second,
        # and this workdir is thrown away anyway. Both go by PID.
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A fresh, empty Dovecot for one test."""
    yield from _serve()


@pytest.fixture(scope="session")
def dovecot_session() -> Iterator[Dovecot]:
    """One Dovecot shared by the whole session: use folders of your own, and
    don't stop or restart it."""
    yield from _serve()


@dataclass(frozen=True)
class MakeEnv:
    """Writes a config for this test's database (migrated; SQLite and PostgreSQL) and Dovecot, in
    tmp_path or `directory`: `make_env(smtp_port=smtp_sink.port)` is the whole call. The test's
    `dovecot` is started only when asked for (`imap=False`: no IMAP server, nothing listens on
    port 1); SMTP goes to `smtp_port` (the default, 1, refuses). `service`, `imap_extra` and
    `extra` as in write_config."""

    request: pytest.FixtureRequest
    database_url: str
    tmp_path: Path

    def __call__(
        self,
        directory: Path | None = None,
        *,
        imap: bool = True,
        smtp_port: int = 1,
        service: str = "",
        imap_extra: str = "",
        extra: str = "",
    ) -> IntakeEnv:
        where = directory or self.tmp_path
        more: dict[str, Any] = {
            "smtp_port": smtp_port,
            "service": service,
            "imap_extra": imap_extra,
            "extra": extra,
        }
        if imap:
            server: Dovecot = self.request.getfixturevalue("dovecot")
            return config_on(server, where, self.database_url, **more)
        return write_config(where, "127.0.0.1", 1, "nobody", "unused", self.database_url, **more)


@pytest.fixture
def make_env(request: pytest.FixtureRequest, migrated_url: str, tmp_path: Path) -> MakeEnv:
    """A config for intake on this test's migrated database (and Dovecot): see MakeEnv."""
    return MakeEnv(request, migrated_url, tmp_path)

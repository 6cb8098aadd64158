"""pytest fixtures for the Dovecot test server (registered in tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.dovecot import Dovecot, find_dovecot


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

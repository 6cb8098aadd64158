"""Fixtures for XOAUTH2: a fake identity provider, Dovecot and an SMTP server that ask it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from intake import db, oauth
from tests.oauth.idp import FakeIdentityProvider
from tests.oauth.servers import OAuthDovecot, XOAuth2Smtp
from tests.support.dovecot import Dovecot
from tests.support.fixtures import _require_dovecot

USER = "intake@example.org"  # the Dovecot harness's default user


@pytest.fixture(autouse=True)
def fresh_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no token cached in this process."""
    monkeypatch.setattr(oauth, "_providers", {})


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider(USER).start()
    # msal (through requests) trusts the fake's private CA; so do CLI subprocesses.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(provider.ca_file))
    try:
        yield provider
    finally:
        provider.stop()
        provider.remove_files()


@pytest.fixture
def oauth_dovecot(idp: FakeIdentityProvider) -> Iterator[Dovecot]:
    _require_dovecot()
    workdir = Dovecot.make_workdir()
    server = OAuthDovecot(workdir, idp.introspection_url)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def oauth_smtp(idp: FakeIdentityProvider) -> Iterator[XOAuth2Smtp]:
    server = XOAuth2Smtp(idp.introspection_url).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    db.upgrade(url)
    return url

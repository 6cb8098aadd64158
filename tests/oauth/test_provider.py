"""The token provider: each source, caching and refresh before expiry, refusals, no secrets shown."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import pytest

from intake.config import OAuthSettings, Secret
from intake.oauth import (
    AccessToken,
    CommandSource,
    FileSource,
    TokenError,
    TokenProvider,
    make_source,
    parse_token,
)
from tests.oauth.idp import CLIENT_ID, CLIENT_SECRET, TENANT, FakeIdentityProvider


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A source handing out tok-1, tok-2, ... with a given lifetime."""

    description = "a test source"

    def __init__(self, lifetime: float | None) -> None:
        self.lifetime = lifetime
        self.count = 0
        self.forgotten = 0

    def fetch(self) -> AccessToken:
        self.count += 1
        return AccessToken(f"tok-{self.count}", self.lifetime)

    def forget(self) -> None:
        self.forgotten += 1


def entra(idp: FakeIdentityProvider, secret: str = CLIENT_SECRET) -> OAuthSettings:
    return OAuthSettings(
        tenant=TENANT, client_id=CLIENT_ID, client_secret=Secret(secret), authority=idp.authority
    )


# --- caching and refresh --------------------------------------------------------------------


def test_a_token_is_reused_until_five_minutes_before_it_expires() -> None:
    clock, source = Clock(), Counting(3600)
    provider = TokenProvider(source, clock=clock)
    assert provider.token() == "tok-1"
    clock.now += 3299
    assert provider.token() == "tok-1"
    clock.now += 1  # 300 s left: renewed early, never presented expired
    assert provider.token() == "tok-2"
    assert provider.fetches == 2


def test_a_short_lived_token_is_renewed_at_half_its_lifetime() -> None:
    clock, source = Clock(), Counting(2)
    provider = TokenProvider(source, clock=clock)
    assert provider.token() == "tok-1"
    clock.now += 0.9
    assert provider.token() == "tok-1"
    clock.now += 0.1
    assert provider.token() == "tok-2"


def test_a_token_of_unknown_lifetime_is_fetched_for_every_sign_in() -> None:
    provider = TokenProvider(Counting(None), clock=Clock())
    assert [provider.token() for _ in range(3)] == ["tok-1", "tok-2", "tok-3"]


def test_a_refused_token_is_dropped_and_the_source_told() -> None:
    source = Counting(3600)
    provider = TokenProvider(source, clock=Clock())
    first = provider.token()
    provider.refused(first)
    assert source.forgotten == 1
    assert provider.token() == "tok-2"
    provider.refused("tok-1")  # a late report about an old token keeps the new one
    assert provider.token() == "tok-2"


# --- the token command and the token file -----------------------------------------------------


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "token_command.py"
    path.write_text(body)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def test_the_token_command_may_print_a_bare_token_or_json(tmp_path: Path) -> None:
    assert CommandSource(script(tmp_path, "print('ya29.bare-token')")).fetch() == AccessToken(
        "ya29.bare-token", None
    )
    printed = 'print(\'{"access_token": "at-json", "expires_in": 3599, "token_type": "Bearer"}\')'
    assert CommandSource(script(tmp_path, printed)).fetch() == AccessToken("at-json", 3599.0)


def test_a_failing_token_command_says_why_but_never_what_it_printed(tmp_path: Path) -> None:
    body = (
        "import sys\nprint('at-leaked-secret')\n"
        "print('invalid_grant: token revoked', file=sys.stderr)\nsys.exit(3)"
    )
    with pytest.raises(TokenError) as caught:
        CommandSource(script(tmp_path, body)).fetch()
    assert str(caught.value) == "the token command exited with status 3: invalid_grant: token revoked"
    with pytest.raises(TokenError, match="cannot be run"):
        CommandSource(str(tmp_path / "no-such-command")).fetch()
    with pytest.raises(TokenError, match="did not finish within 0.5 s"):
        CommandSource(script(tmp_path, "import time; time.sleep(5)"), timeout=0.5).fetch()


@pytest.mark.parametrize(
    ("printed", "problem"),
    [
        ("", "gave an empty token"),
        ("Bearer at-1", "more than one word"),
        ("{not json", "invalid JSON"),
        ('{"token": "x"}', "without an access_token"),
        ('{"access_token": "x", "expires_in": "soon"}', "bad expires_in"),
    ],
)
def test_what_a_token_source_gives_is_checked(printed: str, problem: str) -> None:
    with pytest.raises(TokenError, match=problem):
        parse_token(printed, "the token command")


def test_the_token_file_is_read_afresh_for_every_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("at-first\n")
    provider = TokenProvider(FileSource(path))
    assert provider.token() == "at-first"
    path.write_text('{"access_token": "at-second", "expires_in": 3600}')
    assert provider.token() == "at-second"
    path.unlink()
    with pytest.raises(TokenError, match="cannot be read"):
        provider.token()


# --- Microsoft 365: msal against the fake Entra ID -----------------------------------------------


def test_msal_client_credentials_are_cached_and_refetched_when_refused(idp: FakeIdentityProvider) -> None:
    provider = TokenProvider(make_source(entra(idp)))
    token = provider.token()
    assert idp.check(token) is not None
    assert provider.token() == token and idp.token_requests == 1
    provider.refused(token)  # msal's own cache would hand out the same token again
    assert provider.token() != token
    assert idp.token_requests == 2


def test_msal_failures_are_one_line_and_say_whether_to_retry(idp: FakeIdentityProvider) -> None:
    with pytest.raises(TokenError) as wrong:
        TokenProvider(make_source(entra(idp, secret="not-the-secret"))).token()
    assert not wrong.value.transient
    assert "invalid_client" in str(wrong.value) and "not-the-secret" not in str(wrong.value)
    assert idp.refused_requests == 1

    unknown = OAuthSettings(
        tenant="no-such-tenant", client_id=CLIENT_ID, client_secret=Secret("x"), authority=idp.authority
    )
    with pytest.raises(TokenError, match="no-such-tenant") as bad_tenant:
        TokenProvider(make_source(unknown)).token()
    assert not bad_tenant.value.transient and "\n" not in str(bad_tenant.value)

    settings = entra(idp)
    idp.stop()
    with pytest.raises(TokenError, match="cannot be reached") as down:
        TokenProvider(make_source(settings)).token()
    assert down.value.transient


def test_tokens_and_secrets_never_reach_the_log(
    idp: FakeIdentityProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = TokenProvider(make_source(entra(idp)))
    provider.refused(provider.token())
    provider.token()
    command = TokenProvider(CommandSource(script(tmp_path, "print('at-from-command')")))
    command.token()
    assert idp.issued and caplog.records
    for secret in [i.token for i in idp.issued] + [CLIENT_SECRET, "at-from-command"]:
        assert secret not in caplog.text
        assert secret not in repr(provider) + repr(entra(idp)) + repr(AccessToken(secret))


def test_the_outbox_retries_later_only_when_the_token_source_may_recover() -> None:
    from intake.replies.outbox import is_transient

    assert is_transient(TokenError("Microsoft Entra cannot be reached (ConnectionError)"))
    assert not is_transient(TokenError("refused the token request: invalid_client", transient=False))

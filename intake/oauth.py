"""OAuth2 access tokens for XOAUTH2 sign-in, shared by IMAP and SMTP.

A token comes from one of three sources (config: `OAuthSettings`):
  - a command that prints a token, or JSON with `access_token` and `expires_in`;
  - a file that something else keeps current (read at every sign-in);
  - the Microsoft 365 client-credentials flow, through msal.

`provider_for(settings)` gives the one `TokenProvider` of this process for that
source, so IMAP and SMTP share a token. It keeps a token whose lifetime is known
until shortly before it expires (`REFRESH_MARGIN`, at most half its lifetime),
so a sign-in never presents an expired token. A server may still refuse one
(revoked, or expired early): the caller reports it with `refused()` and asks
once more; see `Mailbox.connect` and `outbox._authenticate`.

Tokens and client secrets never appear in logs, reprs or error messages.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from intake.config import OAuthSettings, Secret

log = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0  # seconds: fetch a new token this long before the old one expires
COMMAND_TIMEOUT = 30.0
HTTP_TIMEOUT = 30.0
_TEXT_CHARS = 300

# Errors from the token endpoint that no retry will cure (RFC 6749 §5.2): the
# configuration is wrong. Anything else (server_error, network) may pass.
_PERMANENT = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}


class TokenError(Exception):
    """No access token could be had. `str()` is one line and holds no secret.

    transient: trying again later may help (the identity provider was down);
    False when the configuration is wrong (bad secret, unknown tenant).
    """

    def __init__(self, message: str, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    lifetime: float | None = None  # seconds it was valid for when fetched; None: unknown


class TokenSource(Protocol):
    description: str

    def fetch(self) -> AccessToken: ...

    def forget(self) -> None:
        """Drop any token the source itself keeps, so the next fetch gets a new one."""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_TEXT_CHARS]


def parse_token(text: str, where: str) -> AccessToken:
    """A bare token, or JSON `{"access_token": ..., "expires_in": seconds}`."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise TokenError(f"{where} gave invalid JSON", transient=False) from None
        value = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise TokenError(f"{where} gave JSON without an access_token", transient=False)
        expires_in = data.get("expires_in")
        try:
            lifetime = float(expires_in) if expires_in is not None else None
        except (TypeError, ValueError):
            raise TokenError(f"{where} gave a bad expires_in: {expires_in!r}", transient=False) from None
        text = value.strip()
    else:
        lifetime = None
    if not text:
        raise TokenError(f"{where} gave an empty token")
    if any(ch.isspace() for ch in text):
        raise TokenError(f"{where} gave more than one word; it must print only the token", transient=False)
    return AccessToken(text, lifetime)


class CommandSource:
    """Runs an operator's command (e.g. a Google OAuth helper) that prints a token."""

    def __init__(self, command: str, timeout: float = COMMAND_TIMEOUT) -> None:
        self.command = shlex.split(command)
        self.timeout = timeout
        self.description = "the token command"

    def fetch(self) -> AccessToken:
        try:
            done = subprocess.run(
                self.command, capture_output=True, timeout=self.timeout, text=True, check=False
            )
        except subprocess.TimeoutExpired:
            raise TokenError(f"the token command did not finish within {self.timeout:g} s") from None
        except OSError as exc:
            raise TokenError(f"the token command cannot be run ({exc.strerror})", transient=False) from None
        if done.returncode != 0:
            # Its error output, never its standard output: that is where a token would be.
            lines = done.stderr.strip().splitlines()
            detail = f": {_one_line(lines[-1])}" if lines else ""
            raise TokenError(f"the token command exited with status {done.returncode}{detail}")
        return parse_token(done.stdout, "the token command")

    def forget(self) -> None:
        pass


class FileSource:
    """A file kept current by something else; read afresh at every sign-in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"the token file {path}"

    def fetch(self) -> AccessToken:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise TokenError(f"the token file {self.path} cannot be read ({reason})") from None
        # The file's age is unknown, so a lifetime in it means nothing: never cached.
        return AccessToken(parse_token(text, f"the token file {self.path}").value, None)

    def forget(self) -> None:
        pass


class EntraSource:
    """Microsoft 365: the OAuth2 client-credentials flow of Microsoft Entra ID, via msal.

    msal finds the tenant's token endpoint, keeps the token in its cache until
    five minutes before it expires, and speaks Entra's error format.
    """

    def __init__(self, tenant: str, client_id: str, secret: Secret, authority: str, scope: str) -> None:
        self.authority = authority.rstrip("/") + "/" + tenant
        self.client_id = client_id
        self.secret = secret
        self.scope = scope
        self.description = f"Microsoft Entra ({urlsplit(authority).hostname}, tenant {tenant})"
        self._app: Any = None

    def _application(self) -> Any:
        import msal  # only deployments that use it pay for the import

        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self.secret.reveal(),
                authority=self.authority,
                # The operator names the authority; there is nothing to discover.
                instance_discovery=False,
                timeout=HTTP_TIMEOUT,
                token_cache=msal.TokenCache(),
            )
        return self._app

    def fetch(self) -> AccessToken:
        import requests

        try:
            result = self._application().acquire_token_for_client(scopes=[self.scope])
        except requests.RequestException as exc:
            raise TokenError(f"{self.description} cannot be reached ({type(exc).__name__})") from None
        except OSError as exc:  # e.g. REQUESTS_CA_BUNDLE names a missing file
            raise TokenError(f"{self.description}: {_one_line(str(exc))}", transient=False) from None
        except ValueError as exc:
            # msal's words for an authority it could not use (unknown tenant, not https).
            first = str(exc).split(". ")[0]
            raise TokenError(f"{self.description}: {_one_line(first)}", transient=False) from None
        token = result.get("access_token")
        if not isinstance(token, str) or not token:
            error = str(result.get("error") or "no access_token")
            description = str(result.get("error_description") or "").splitlines()
            detail = f" ({_one_line(description[0])})" if description else ""
            raise TokenError(
                f"{self.description} refused the token request: {error}{detail}",
                transient=error not in _PERMANENT,
            )
        expires_in = result.get("expires_in")
        return AccessToken(token, float(expires_in) if expires_in is not None else None)

    def forget(self) -> None:
        app = self._app
        if app is None:
            return
        cache = app.token_cache
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(entry)


class TokenProvider:
    """Hands out a current access token from one source; thread-safe."""

    def __init__(
        self,
        source: TokenSource,
        clock: Callable[[], float] = time.monotonic,
        margin: float = REFRESH_MARGIN,
    ) -> None:
        self.source = source
        self.fetches = 0  # how many tokens were fetched from the source
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"TokenProvider({self.source.description})"

    def token(self) -> str:
        """A token that stays valid for a while yet; raises TokenError."""
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._renew_at:
                return self._token
            fresh = self.source.fetch()
            self.fetches += 1
            self._token = None
            if fresh.lifetime is not None:
                # Early enough that a sign-in never carries an expired token; half the
                # lifetime at most, so that short-lived tokens are still reused.
                margin = min(self._margin, fresh.lifetime / 2)
                self._token, self._renew_at = fresh.value, now + fresh.lifetime - margin
                log.info(
                    "oauth: new access token from %s, valid for %d s",
                    self.source.description,
                    fresh.lifetime,
                )
            else:
                log.debug("oauth: access token from %s", self.source.description)
            return fresh.value

    def refused(self, token: str) -> None:
        """A server refused `token` (revoked, expired early): never hand it out again."""
        with self._lock:
            if self._token == token:
                self._token = None
            self.source.forget()


def make_source(settings: OAuthSettings) -> TokenSource:
    if settings.token_command:
        return CommandSource(settings.token_command)
    if settings.token_file:
        return FileSource(settings.token_file)
    if settings.tenant and settings.client_id and settings.client_secret:
        return EntraSource(
            settings.tenant, settings.client_id, settings.client_secret, settings.authority, settings.scope
        )
    raise TokenError("no OAuth2 token source is configured", transient=False)


_providers: dict[OAuthSettings, TokenProvider] = {}
_providers_lock = threading.Lock()


def provider_for(settings: OAuthSettings) -> TokenProvider:
    """The process-wide provider for this token source (IMAP and SMTP share it)."""
    with _providers_lock:
        provider = _providers.get(settings)
        if provider is None:
            provider = _providers[settings] = TokenProvider(make_source(settings))
        return provider

"""Mail servers that accept XOAUTH2 and check each token with the fake identity provider.

`OAuthDovecot`: the shared Dovecot harness with Dovecot 2.3's oauth2 passdb
added in front of its password file. Dovecot posts each token to the
provider's introspection URL (`introspection_mode = post`, RFC 7662) and
signs the user in when the answer says `"active": true` for that user. The
password stays valid, so the harness's own helpers (append_many) still work.

`XOAuth2Smtp`: an aiosmtpd server whose only AUTH mechanism is XOAUTH2,
implemented as an `auth_XOAUTH2` handler method that asks the same provider.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from tests.support.dovecot import Dovecot, DovecotError
from tests.support.smtp import Received, free_port


class OAuthDovecot(Dovecot):
    def __init__(self, workdir: Path, introspection_url: str) -> None:
        super().__init__(workdir)
        self.introspection_url = introspection_url

    def _write_config(self) -> None:
        super()._write_config()
        oauth_conf = self.workdir / "dovecot-oauth2.conf.ext"
        oauth_conf.write_text(
            f"""introspection_mode = post
introspection_url = {self.introspection_url}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""
        )
        oauth_conf.chmod(0o644)
        text = self.conf_path.read_text()
        oauth_passdb = f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n  args = {oauth_conf}\n}}\n"
        mechanisms = "auth_mechanisms = plain login"
        edits = {
            # No failure delay: a refused token is part of the tests, not an attack.
            f"{mechanisms}\n": f"{mechanisms} xoauth2\nauth_failure_delay = 0\n",
            "passdb {\n": oauth_passdb + "passdb {\n",
        }
        for old, new in edits.items():
            if old not in text:
                raise DovecotError(f"tests/support/dovecot.py no longer writes {old!r}: update OAuthDovecot")
            text = text.replace(old, new, 1)
        self.conf_path.write_text(text)


def introspect(url: str, token: str) -> dict[str, Any]:
    """Ask the identity provider about a token, as a mail server does (RFC 7662)."""
    data = urllib.parse.urlencode({"token": token}).encode()
    with urllib.request.urlopen(url, data=data, timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


class _Handler:
    def __init__(self, smtp: XOAuth2Smtp) -> None:
        self.smtp = smtp

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 2:
            blob: Any = base64.b64decode(args[1])
        else:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)  # aborted; already answered
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer.removeprefix("Bearer ")
        answer = await asyncio.to_thread(introspect, self.smtp.introspection_url, token)
        if answer.get("active") is True and answer.get("username") == user:
            with self.smtp.lock:
                self.smtp.logins.append(user)
            return AuthResult(success=True, auth_data=user)
        with self.smtp.lock:
            self.smtp.refusals += 1
        # XOAUTH2 failure (Google's and Microsoft's form): an error challenge the
        # client answers with an empty line, then 535.
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
        if not isinstance(await server.challenge_auth(error), bytes):
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        with self.smtp.lock:
            self.smtp.messages.append(Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), data))
        return "250 2.0.0 OK: queued"


class XOAuth2Smtp:
    """An SMTP server on 127.0.0.1 that requires AUTH XOAUTH2 before MAIL."""

    def __init__(self, introspection_url: str) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.introspection_url = introspection_url
        self.messages: list[Received] = []
        self.logins: list[str] = []
        self.refusals = 0
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> XOAuth2Smtp:
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            auth_required=True,
            auth_require_tls=False,  # loopback only; real servers need TLS first
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

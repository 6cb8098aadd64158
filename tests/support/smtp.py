"""An aiosmtpd SMTP server on loopback for tests: a real socket, no mocks.

`SmtpSink` records every accepted message, can answer the next N messages
with a 4xx or 5xx, can refuse chosen recipients, can require AUTH and can
speak TLS (STARTTLS or implicit). It can be stopped and started again on the
same port, which is how a test makes "the server is down" and "it is back".

Pitfalls handled here (../shared/notes/packages.md §8): a failing
authenticator must return `AuthResult(success=False, handled=False)` or the
client hangs; `Controller.start()` makes its own self-test connection, which
is not a message.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    """One accepted message: envelope sender, envelope recipients, raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def __iter__(self) -> Any:  # unpack as (envelope_from, rcpt_tos, bytes)
        return iter((self.mail_from, self.rcpt_tos, self.data))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Plan:
    """What the server answers; changed by the test thread, read by the server's."""

    data_answers: deque[str] = field(default_factory=deque)  # next DATA replies, then 250
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> RCPT reply
    delay: float = 0.0  # seconds to wait before answering DATA


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.sink._lock:
            answer = self.sink._plan.refused.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.sink._lock:
            delay = self.sink._plan.delay
            answer = self.sink._plan.data_answers.popleft() if self.sink._plan.data_answers else None
        if delay:
            await asyncio.sleep(delay)
        if answer:
            return answer
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        with self.sink._lock:
            self.sink.messages.append(Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), data))
        return "250 2.0.0 OK: queued"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that records what it accepts.

    credentials: require AUTH with this (user, password); wrong ones get 535.
    tls_context: with `implicit_tls` the whole connection is TLS (port 465
        style), otherwise STARTTLS is offered and required before MAIL.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        credentials: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.credentials = credentials
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.messages: list[Received] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._plan = _Plan()
        self._controller: Controller | None = None

    # --- life cycle ---------------------------------------------------------------------
    def start(self) -> SmtpSink:
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self.tls_context is not None and self.implicit_tls:
            kwargs["ssl_context"] = self.tls_context
        elif self.tls_context is not None:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)
        controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour switches -------------------------------------------------------------
    def fail_next(self, count: int, code: int = 451, text: str | None = None) -> None:
        """Answer the next `count` DATA commands with `code` (4xx or 5xx) instead of 250."""
        if not 400 <= code < 600:
            raise ValueError("a failure code is 4xx or 5xx")
        text = text or ("4.3.0 Try again later" if code < 500 else "5.7.1 Message rejected")
        with self._lock:
            self._plan.data_answers.extend([f"{code} {text}"] * count)

    def refuse(self, recipient: str, code: int = 550, text: str = "5.1.1 No such user") -> None:
        """Answer RCPT TO for this recipient with `code` until `clear`."""
        with self._lock:
            self._plan.refused[recipient.lower()] = f"{code} {text}"

    def slow_down(self, seconds: float) -> None:
        """Wait this long before answering each DATA (to make senders overlap)."""
        with self._lock:
            self._plan.delay = seconds

    def clear(self) -> None:
        with self._lock:
            self._plan = _Plan()

    # --- inspection ----------------------------------------------------------------------
    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if (user, password) == self.credentials:
                with self._lock:
                    self.logins.append(f"{mechanism}:{user}")
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

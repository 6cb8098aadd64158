"""How the dashboard is served: address, session lifetimes, the trusted proxy, cookies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WebOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    session_hours: float = 8.0  # a sign-in lasts at most this long...
    idle_minutes: float = 60.0  # ...and ends after this long without a request
    proxy_user_header: str | None = None  # e.g. X-Remote-User; None: not trusted (the default)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")  # the headers are believed from these only
    # e.g. X-Forwarded-For: the client's address as the trusted proxy saw it (its last entry);
    # None: the connection's own address (the default), which is all an untrusted header is worth.
    client_address_header: str | None = None
    secure_cookies: bool = False  # Secure cookies (behind HTTPS)
    threads: int = 4

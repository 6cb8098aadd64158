"""Serving the dashboard with waitress: a pure-Python production WSGI server, no build step."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from intake.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    session_hours: float = 8.0  # a sign-in lasts at most this long...
    idle_minutes: float = 60.0  # ...and ends after this long without a request
    proxy_user_header: str | None = None  # e.g. X-Remote-User; None: not trusted (the default)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")  # the header is believed from these only
    secure_cookies: bool = False  # Secure cookies (behind HTTPS)
    threads: int = 4


def serve(settings: Settings, options: WebOptions) -> int:
    from waitress import serve as waitress_serve

    from intake.web.app import create_app

    app = create_app(settings, options)
    if options.proxy_user_header:
        log.warning(
            "trusting the %s header from %s: the dashboard must be reachable through that proxy only",
            options.proxy_user_header,
            ", ".join(options.trusted_proxies),
        )
    log.info("the dashboard is at http://%s:%s/", options.host, options.port)
    waitress_serve(app, host=options.host, port=options.port, threads=options.threads, ident="intake")
    return 0

"""Serving the dashboard with waitress: a pure-Python production WSGI server, no build step."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from intake.config import Settings
from intake.web.app import create_app
from intake.web.options import WebOptions

log = logging.getLogger(__name__)


def serve(settings: Settings, options: WebOptions, events: Sequence[Settings] = ()) -> int:
    from waitress import serve as waitress_serve

    app = create_app(settings, options, events)
    if options.proxy_user_header:
        log.warning(
            "trusting the %s header from %s: the dashboard must be reachable through that proxy only",
            options.proxy_user_header,
            ", ".join(options.trusted_proxies),
        )
    log.info("the dashboard is at http://%s:%s/", options.host, options.port)
    waitress_serve(
        app,
        host=options.host,
        port=options.port,
        threads=options.threads,
        ident="intake",
        # waitress drops X-Forwarded-* headers unless it trusts the proxy itself; the app checks
        # the configured proxies (WebOptions.trusted_proxies) before believing the one it reads.
        clear_untrusted_proxy_headers=options.client_address_header is None,
    )
    return 0

"""Serving the pre-check page with waitress, as the desk is served, beside its judging workers."""

from __future__ import annotations

import logging

from intake.config import Settings
from intake.precheck.app import FORM_OVERHEAD, MiB, PrecheckOptions, create_app
from intake.precheck.judging import Bounds, Checker

log = logging.getLogger("intake.precheck")


def serve(settings: Settings, options: PrecheckOptions, bounds: Bounds | None = None) -> int:
    from waitress import serve as waitress_serve

    checker = Checker(settings.event, bounds)
    try:
        checker.wait_ready()
        app = create_app(settings, options, checker)
        log.info(
            "the pre-check page for %s is at http://%s:%s/ (files up to %s MB, %s a minute per address)",
            settings.event.id,
            options.host,
            options.port,
            settings.event.max_attachment_mb,
            options.per_minute,
        )
        waitress_serve(
            app,
            host=options.host,
            port=options.port,
            threads=options.threads,
            ident="intake",
            # Waitress reads the whole body before the app sees it: bound it here too, with room
            # for the app to answer an oversized upload with its own 413 page.
            max_request_body_size=2 * settings.event.max_attachment_mb * MiB + FORM_OVERHEAD,
        )
    finally:
        checker.close()
    return 0

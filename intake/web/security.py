"""The headers every response carries, the CSRF and origin checks of every POST, and the
error pages (never a traceback)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, render_template, request
from werkzeug.exceptions import HTTPException

from intake.desk import accounts

log = logging.getLogger("intake.web")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def check_form() -> None:
    """A POST from a signed-in user must come from this site and carry the session's CSRF token."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        abort(403, description="the request came from another site")
    if not accounts.same_token(g.user.csrf_token, request.form.get("csrf_token")):
        abort(403, description="this form has expired or did not come from this site: reload and retry")


def _headers(response: Response) -> Response:
    # A download sets its own, stricter policy (sandbox): keep it.
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _error(exc: HTTPException) -> tuple[str, int]:
    return render_template("error.html", code=exc.code, text=exc.description or exc.name), exc.code or 500


def _crash(exc: Exception) -> tuple[str, int]:
    log.exception("the dashboard failed on %s", request.path)
    return render_template("error.html", code=500, text="Something went wrong; it is in the log."), 500


def install(app: Flask) -> None:
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _error)
    app.register_error_handler(Exception, _crash)

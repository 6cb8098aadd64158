"""Signing in and out, and who each request comes from (a session cookie, or the trusted
proxy's header when one is configured).

Every page and file needs a signed-in session (else a redirect to sign-in;
a POST gets 403).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from intake.desk import accounts, throttle
from intake.web.context import desk
from intake.web.security import check_form

log = logging.getLogger("intake.web")

SESSION_COOKIE = "intake_session"
LOGIN_COOKIE = "intake_login"  # the sign-in form's own CSRF token (double submit)
DEVICE_COOKIE = "intake_device"  # a browser that has signed in here before (intake.desk.throttle)
OPEN_ENDPOINTS = ("signin.login", "signin.favicon", "static")

blueprint = Blueprint("signin", __name__)


def _from_proxy() -> accounts.SignedIn | None:
    d = desk()
    header = d.options.proxy_user_header
    if not header or request.remote_addr not in d.options.trusted_proxies:
        return None
    name = (request.headers.get(header) or "").strip()
    if not name:
        return None
    user = accounts.user_named(d.sessions, name)
    if user is None:
        abort(403, description=f"{name} has no account here (intake user add {name} --no-password)")
    current = accounts.load_session(d.sessions, request.cookies.get(SESSION_COOKIE), d.idle)
    if current is not None and current.user_id == user.id:
        return current
    token, signed = accounts.open_session(d.sessions, user, d.lifetime, f"proxy header {header}")
    g.new_token = token
    return signed


@blueprint.before_app_request
def _authenticate() -> Any:
    g.user = None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    d = desk()
    g.user = _from_proxy() or accounts.load_session(d.sessions, request.cookies.get(SESSION_COOKIE), d.idle)
    if g.user is None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return redirect(url_for("signin.login", next=request.full_path.rstrip("?")))
        abort(403, description="sign in first")
    if request.method == "POST":
        check_form()
    return None


@blueprint.after_app_request
def _new_session_cookie(response: Response) -> Response:
    token = getattr(g, "new_token", None)
    if token:
        _set_session_cookie(response, token)
    return response


def _set_session_cookie(response: BaseResponse, token: str) -> None:
    d = desk()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(d.lifetime.total_seconds()),
        httponly=True,
        secure=d.options.secure_cookies or request.is_secure,
        samesite="Strict",
        path="/",
    )


# What browsers drop from a URL before reading it (WHATWG URL: tabs and newlines anywhere,
# C0 controls and spaces at either end).
_DROPPED = re.compile(r"[\t\n\r]")
_EDGES = "".join(chr(c) for c in range(0x21))


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, or `/` (OWASP Unvalidated Redirects
    and Forwards Cheat Sheet). The value is read as a browser would read it (backslashes as
    slashes), and must then be a path with no host, no scheme and nothing unprintable."""
    text = _DROPPED.sub("", value or "").strip(_EDGES).replace("\\", "/")
    if not text.startswith("/") or text.startswith("//") or len(text) > 2000:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return "/"
    try:
        parts = urlsplit(text)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc:
        return "/"
    return text


def client_address() -> str:
    """The client's address: the connection's, or the configured header's when the connection
    comes from a trusted proxy (its last entry: the one that proxy added)."""
    options = desk().options
    remote = request.remote_addr or "unknown"
    header = options.client_address_header
    if not header or remote not in options.trusted_proxies:
        return remote
    given = (request.headers.get(header) or "").split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(given))
    except ValueError:
        return remote


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    problem, status, retry = None, 200, None
    if request.method == "POST":
        outcome = _sign_in()
        if isinstance(outcome, BaseResponse):
            return outcome
        problem, status, retry = outcome
    return _login_page(problem, status, retry)


def _sign_in() -> BaseResponse | tuple[str, int, int | None]:
    """Check the form and the password; a redirect when signed in, else what to say."""
    d = desk()
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie or not accounts.same_token(cookie, request.form.get("login_token")):
        abort(403, description="the sign-in form expired: reload the page and sign in again")
    attempt = throttle.Attempt(
        name=(request.form.get("name") or "").strip()[:64],
        address=client_address(),
        device_token=request.cookies.get(DEVICE_COOKIE),
    )
    target = safe_next(request.form.get("next"))
    wait = throttle.check(d.sessions, attempt)
    if wait is not None:
        log.warning("sign-in for %r from %s refused: %s", attempt.name, attempt.address, wait.sentence())
        return wait.sentence(), 429, wait.seconds
    user = accounts.verify_password(d.sessions, attempt.name, request.form.get("password") or "")
    if user is None:
        throttle.failed(d.sessions, attempt)
        log.warning("failed sign-in for %r from %s", attempt.name, attempt.address)
        return "That name and password do not match an account.", 401, None
    device = throttle.succeeded(d.sessions, attempt)
    token, _ = accounts.open_session(d.sessions, user, d.lifetime, "password")
    response = redirect(target)
    _set_session_cookie(response, token)
    response.set_cookie(
        DEVICE_COOKIE,
        device,
        max_age=int(throttle.DEVICE_LIFETIME.total_seconds()),
        httponly=True,
        samesite="Strict",
        path="/login",
        secure=d.options.secure_cookies or request.is_secure,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _login_page(problem: str | None, status: int, retry: int | None) -> Response:
    # Keep the token the browser holds: a second sign-in page (another tab, the favicon's
    # redirect) must not invalidate the form already shown.
    held = request.cookies.get(LOGIN_COOKIE) or ""
    login_token = held if re.fullmatch(r"[A-Za-z0-9_-]{32}", held) else secrets.token_urlsafe(24)
    page = render_template(
        "login.html", login_token=login_token, next=safe_next(request.args.get("next")), problem=problem
    )
    response = Response(page, status=status)
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    response.set_cookie(
        LOGIN_COOKIE,
        login_token,
        httponly=True,
        samesite="Strict",
        path="/login",
        secure=desk().options.secure_cookies,
    )
    return response


@blueprint.get("/favicon.ico")
def favicon() -> Response:
    return Response(status=204)  # no icon; and no sign-in redirect for the browser's own request


@blueprint.post("/logout")
def logout() -> Any:
    accounts.close_session(desk().sessions, g.user)
    response = redirect(url_for("signin.login"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response

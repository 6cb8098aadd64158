"""Signing in and out, and who each request comes from (a session cookie, or the trusted
proxy's header when one is configured).

Every page and file needs a signed-in session (else a redirect to sign-in;
a POST gets 403).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import deque
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from intake.desk import accounts
from intake.web.context import desk
from intake.web.security import check_form

log = logging.getLogger("intake.web")

SESSION_COOKIE = "intake_session"
LOGIN_COOKIE = "intake_login"  # the sign-in form's own CSRF token (double submit)
OPEN_ENDPOINTS = ("signin.login", "signin.favicon", "static")

blueprint = Blueprint("signin", __name__)


class Throttle:
    """At most `limit` failed sign-ins per name in `window`; then that name waits."""

    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        self.limit, self.window = limit, window
        self.failures: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def blocked(self, name: str) -> bool:
        now = time.monotonic()
        with self.lock:
            recent = self.failures.get(name.lower(), deque())
            while recent and now - recent[0] > self.window:
                recent.popleft()
            return len(recent) >= self.limit

    def failed(self, name: str) -> None:
        with self.lock:
            self.failures.setdefault(name.lower(), deque()).append(time.monotonic())
            if len(self.failures) > 10_000:  # bounded memory under a spray of names
                self.failures.clear()

    def succeeded(self, name: str) -> None:
        with self.lock:
            self.failures.pop(name.lower(), None)


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
        if request.method == "GET":
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


def _next_url(value: str | None) -> str:
    # Only a path on this site: never a redirect elsewhere.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return url_for("submissions.index")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    d = desk()
    problem = None
    status = 200
    if request.method == "POST":
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not cookie or not accounts.same_token(cookie, request.form.get("login_token")):
            abort(403, description="the sign-in form expired: reload the page and sign in again")
        name = (request.form.get("name") or "").strip()[:64]
        password = request.form.get("password") or ""
        throttle = d.throttle
        if throttle.blocked(name):
            problem, status = "Too many failed attempts for this name: wait a quarter of an hour.", 429
        else:
            user = accounts.verify_password(d.sessions, name, password)
            if user is None:
                throttle.failed(name)
                log.warning("failed sign-in for %r from %s", name, request.remote_addr)
                problem, status = "That name and password do not match an account.", 401
            else:
                throttle.succeeded(name)
                token, _ = accounts.open_session(d.sessions, user, d.lifetime, "password")
                response = redirect(_next_url(request.form.get("next")))
                _set_session_cookie(response, token)
                response.delete_cookie(LOGIN_COOKIE, path="/login")
                return response
    # Keep the token the browser holds: a second sign-in page (another tab, the favicon's
    # redirect) must not invalidate the form already shown.
    held = request.cookies.get(LOGIN_COOKIE) or ""
    login_token = held if re.fullmatch(r"[A-Za-z0-9_-]{32}", held) else secrets.token_urlsafe(24)
    page = render_template(
        "login.html", login_token=login_token, next=request.args.get("next", ""), problem=problem
    )
    response = Response(page, status=status)
    response.set_cookie(
        LOGIN_COOKIE,
        login_token,
        httponly=True,
        samesite="Strict",
        path="/login",
        secure=d.options.secure_cookies,
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

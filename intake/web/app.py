"""The dashboard's pages, sign-in, CSRF protection and security headers.

Everything a contributor sent is hostile: it reaches the page only through
Jinja2's autoescaping, the Content-Security-Policy forbids every script
(the pages have none), and files are sent as attachments with a name made
safe, as `application/octet-stream` with `nosniff`, never inline.

Every page and file needs a signed-in session (else a redirect to sign-in;
a POST gets 403). Every POST carries the session's CSRF token (else 403) and,
when the browser says where it comes from, must come from this site. Actions
need the admin role (a viewer gets 403) and go through a confirmation page.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, redirect, render_template, request, send_file, url_for
from markupsafe import Markup
from sqlalchemy import func, or_, select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from intake import db
from intake.compose import time_left
from intake.config import Settings
from intake.desk import Refused, accounts, actions, reprocess
from intake.desk.export import document_rows, safe_stem, write_csv, write_xlsx
from intake.desk.show import details, find_message, iso, original_text, utc_time
from intake.listing import SORTS, LogFilter, count_messages, message_entries, status_counts
from intake.models import (
    AuditEvent,
    Document,
    DocumentStatus,
    InboundMessage,
    MessageStatus,
    Reply,
    ReplyStatus,
    utcnow,
)
from intake.store import BlobStore
from intake.web.serve import WebOptions

log = logging.getLogger(__name__)

SESSION_COOKIE = "intake_session"
LOGIN_COOKIE = "intake_login"  # the sign-in form's own CSRF token (double submit)
PAGE_SIZE = 200
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Which actions apply to a message in which status (the desk refuses the others anyway).
MESSAGE_ACTIONS = {
    "admit": (MessageStatus.LATE,),
    "reject": actions.REJECTABLE,
    "release": (MessageStatus.HELD,),
    "reprocess": tuple(s for s in MessageStatus if s != MessageStatus.DUPLICATE),
}
STATUS_ORDER = [s.value for s in MessageStatus]


class _Throttle:
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


def safe_filename(name: str | None, fallback: str) -> str:
    """A download name with nothing a browser or file system could misread."""
    text = unicodedata.normalize("NFKC", name or "")
    text = re.sub(r"[^\w.\- ()\[\]]+", "_", text, flags=re.UNICODE).strip(" ._")
    text = re.sub(r"_+", "_", text)[:150]
    return text or fallback


def create_app(settings: Settings, options: WebOptions | None = None) -> Flask:
    options = options or WebOptions()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, TEMPLATES_AUTO_RELOAD=False)
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    store = BlobStore(settings.data_dir)
    event = settings.event
    zone = event.timezone
    lifetime = timedelta(hours=options.session_hours)
    idle = timedelta(minutes=options.idle_minutes)
    throttle = _Throttle()
    app.extensions["intake"] = {"engine": engine, "sessions": sessions}

    # --- helpers for templates ---------------------------------------------------------------
    def when(value: datetime | str | None) -> Markup:
        """A time in Geneva (the event's zone), with UTC on hover."""
        if value is None:
            return Markup("&ndash;")
        if isinstance(value, str):
            value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        local = value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        return Markup('<time datetime="{}" title="{}">{}</time>').format(iso(value), utc_time(value), local)

    app.jinja_env.globals.update(when=when, event=event, STATUS_ORDER=STATUS_ORDER)

    # --- who is asking ---------------------------------------------------------------------------
    def _from_proxy() -> accounts.SignedIn | None:
        header = options.proxy_user_header
        if not header or request.remote_addr not in options.trusted_proxies:
            return None
        name = (request.headers.get(header) or "").strip()
        if not name:
            return None
        user = accounts.user_named(sessions, name)
        if user is None:
            abort(403, description=f"{name} has no account here (intake user add {name} --no-password)")
        current = accounts.load_session(sessions, request.cookies.get(SESSION_COOKIE), idle)
        if current is not None and current.user_id == user.id:
            return current
        token, signed = accounts.open_session(sessions, user, lifetime, f"proxy header {header}")
        g.new_token = token
        return signed

    @app.before_request
    def _authenticate() -> Any:
        g.user = None
        if request.endpoint in ("login", "static", "favicon"):
            return None
        g.user = _from_proxy() or accounts.load_session(sessions, request.cookies.get(SESSION_COOKIE), idle)
        if g.user is None:
            if request.method == "GET":
                return redirect(url_for("login", next=request.full_path.rstrip("?")))
            abort(403, description="sign in first")
        if request.method == "POST":
            _check_origin()
            if not accounts.same_token(g.user.csrf_token, request.form.get("csrf_token")):
                abort(
                    403, description="this form has expired or did not come from this site: reload and retry"
                )
        return None

    def _check_origin() -> None:
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            abort(403, description="the request came from another site")

    def _admin() -> accounts.SignedIn:
        user: accounts.SignedIn = g.user
        if not user.can_act:
            abort(403, description="your account can read but not act (viewer)")
        return user

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        token = getattr(g, "new_token", None)
        if token:
            _set_session_cookie(response, token)
        return response

    def _set_session_cookie(response: BaseResponse, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(lifetime.total_seconds()),
            httponly=True,
            secure=options.secure_cookies or request.is_secure,
            samesite="Strict",
            path="/",
        )

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, text=exc.description or exc.name), exc.code or 500

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> tuple[str, int]:
        log.exception("the dashboard failed on %s", request.path)
        return render_template("error.html", code=500, text="Something went wrong; it is in the log."), 500

    # --- signing in and out -------------------------------------------------------------------
    def _next_url(value: str | None) -> str:
        # Only a path on this site: never a redirect elsewhere.
        if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
            return value
        return url_for("index")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        problem = None
        status = 200
        if request.method == "POST":
            cookie = request.cookies.get(LOGIN_COOKIE)
            if not cookie or not accounts.same_token(cookie, request.form.get("login_token")):
                abort(403, description="the sign-in form expired: reload the page and sign in again")
            name = (request.form.get("name") or "").strip()[:64]
            password = request.form.get("password") or ""
            if throttle.blocked(name):
                problem, status = "Too many failed attempts for this name: wait a quarter of an hour.", 429
            else:
                user = accounts.verify_password(sessions, name, password)
                if user is None:
                    throttle.failed(name)
                    log.warning("failed sign-in for %r from %s", name, request.remote_addr)
                    problem, status = "That name and password do not match an account.", 401
                else:
                    throttle.succeeded(name)
                    token, _ = accounts.open_session(sessions, user, lifetime, "password")
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
            secure=options.secure_cookies,
        )
        return response

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)  # no icon; and no sign-in redirect for the browser's own request

    @app.post("/logout")
    def logout() -> Any:
        accounts.close_session(sessions, g.user)
        response = redirect(url_for("login"))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- reading ------------------------------------------------------------------------------
    def _filter() -> tuple[LogFilter, dict[str, str], int]:
        args = {
            k: (request.args.get(k) or "").strip()[:200]
            for k in ("status", "since", "until", "sender", "q", "sort", "order")
        }
        page = max(1, _int(request.args.get("page"), 1))
        sort = args["sort"] if args["sort"] in SORTS else "received"
        descending = args["order"] != "asc"
        f = LogFilter(
            event=event.id,
            status=args["status"] or None,
            since=_date(args["since"], end=False),
            until=_date(args["until"], end=True),
            sender=args["sender"] or None,
            search=args["q"] or None,
            sort=sort,
            descending=descending,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        args["sort"], args["order"] = sort, "desc" if descending else "asc"
        return f, args, page

    def _date(text: str, end: bool) -> datetime | None:
        if not text:
            return None
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=zone)
        except ValueError:
            return None
        return day + timedelta(days=1) if end else day

    @app.get("/")
    def index() -> str:
        f, args, page = _filter()
        with sessions() as session:
            entries = message_entries(session, where=f)
            total = count_messages(session, f)
            counts = status_counts(session, event.id)
        now = utcnow()
        return render_template(
            "list.html",
            entries=entries,
            total=total,
            counts=counts,
            all_count=sum(counts.values()),
            args=args,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            deadline=event.deadline,
            left=time_left(event.deadline, now),
            sorts=list(SORTS),
        )

    @app.get("/messages/<int:message_id>")
    def message(message_id: int) -> str:
        with sessions() as session:
            try:
                found = details(session, event, message_id)
                row = find_message(session, event, message_id)
            except Refused:
                abort(404, description=f"there is no message #{message_id}")
            original = original_text(store, row)
        possible = [a for a, allowed in MESSAGE_ACTIONS.items() if found["status"] in allowed]
        return render_template("message.html", m=found, original=original, possible=possible)

    @app.get("/numbers/<path:number>")
    def by_number(number: str) -> Any:
        with sessions() as session:
            try:
                row = find_message(session, event, number)
            except Refused:
                abort(404, description="no document has that number")
        return redirect(url_for("message", message_id=row.id))

    @app.get("/documents/<int:document_id>/file")
    def download(document_id: int) -> Any:
        with sessions() as session:
            document = session.get(Document, document_id)
            if document is None:
                abort(404)
            fallback = safe_stem(document.number) if document.number else f"document-{document.id}"
            name = safe_filename(document.filename, fallback)
            try:
                data = store.get(document.sha256)
            except (OSError, ValueError):
                abort(404, description="the file is missing from the store")
        return _attachment(data, name)

    def _attachment(data: bytes, name: str, mimetype: str = "application/octet-stream") -> Response:
        response = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=name)
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    @app.get("/outbox")
    def outbox() -> str:
        page = max(1, _int(request.args.get("page"), 1))
        status = (request.args.get("status") or "").strip()
        with sessions() as session:
            query = select(Reply).where(Reply.event == event.id)
            if status:
                query = query.where(Reply.status == status)
            total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            replies = list(
                session.scalars(
                    query.order_by(Reply.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
                )
            )
            counts = dict(
                session.execute(
                    select(Reply.status, func.count()).where(Reply.event == event.id).group_by(Reply.status)
                ).all()
            )
        return render_template(
            "outbox.html",
            replies=replies,
            total=total,
            counts=counts,
            status=status,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            statuses=[s.value for s in ReplyStatus],
        )

    @app.get("/audit")
    def audit_trail() -> str:
        page = max(1, _int(request.args.get("page"), 1))
        actor = (request.args.get("actor") or "").strip()[:255]
        with sessions() as session:
            query = select(AuditEvent)
            if actor:
                query = query.where(or_(AuditEvent.actor == actor))
            total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            events = list(
                session.scalars(
                    query.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
                )
            )
            documents = {
                d.id: (d.number or d.filename, d.message_id)
                for d in session.scalars(
                    select(Document).where(
                        Document.id.in_(
                            [e.subject_id for e in events if e.subject_type == "document"] or [-1]
                        )
                    )
                )
            }
            replies = {
                r.id: r.message_id
                for r in session.scalars(
                    select(Reply).where(
                        Reply.id.in_([e.subject_id for e in events if e.subject_type == "reply"] or [-1])
                    )
                )
            }
        return render_template(
            "audit.html",
            events=events,
            documents=documents,
            replies=replies,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            actor=actor,
        )

    @app.get("/export.<fmt>")
    def export(fmt: str) -> Response:
        if fmt not in ("csv", "xlsx"):
            abort(404)
        with sessions() as session:
            rows = document_rows(session, event)
        stem = safe_filename(f"{event.acronym}-documents-{utcnow().astimezone(zone):%Y-%m-%d}", "documents")
        if fmt == "csv":
            text = io.StringIO()
            write_csv(rows, text, zone.key)
            # A BOM so that Excel reads the UTF-8 names right.
            return _attachment(("\ufeff" + text.getvalue()).encode("utf-8"), f"{stem}.csv", "text/csv")
        buffer = io.BytesIO()
        write_xlsx(rows, buffer, zone.key, f"{event.acronym} documents")
        return _attachment(
            buffer.getvalue(),
            f"{stem}.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )

    # --- acting ---------------------------------------------------------------------------------
    def _deliver_soon() -> None:
        """Send what the action queued, without making the person wait for the SMTP server."""
        from intake.outbox import deliver_pending

        def run() -> None:
            try:
                deliver_pending(sessions, settings, worker=f"web:{os.getpid()}:{threading.get_ident()}")
            except Exception as exc:  # the next poll sends it
                log.warning("reply left in the outbox for the next poll: %s", exc)

        threading.Thread(target=run, name="intake-web-deliver", daemon=True).start()

    def _act(run: Callable[[], actions.Done], back: str) -> Any:
        try:
            done = run()
        except Refused as exc:
            return render_template("done.html", ok=False, text=str(exc), back=back), 409
        if done.reply_ids:
            _deliver_soon()
        return render_template("done.html", ok=True, text=done.summary, back=back)

    @app.route("/messages/<int:message_id>/<action>", methods=["GET", "POST"])
    def message_action(message_id: int, action: str) -> Any:
        if action not in MESSAGE_ACTIONS:
            abort(404)
        user = _admin()
        with sessions() as session:
            row = session.get(InboundMessage, message_id)
            if row is None:
                abort(404)
            summary = {"id": row.id, "subject": row.subject, "sender": row.sender, "status": row.status}
        back = url_for("message", message_id=message_id)
        if request.method == "GET":
            preview = None
            if action == "reprocess":
                try:
                    preview = reprocess.plan(sessions, settings, [message_id])
                except Refused as exc:
                    return render_template("done.html", ok=False, text=str(exc), back=back), 409
            return render_template("confirm.html", action=action, m=summary, preview=preview, back=back)
        form = request.form
        reason = (form.get("reason") or "").strip() or None
        revision_of = (form.get("revision_of") or "").strip() or None
        as_new = form.get("as_new") == "yes"
        if action == "admit":
            return _act(
                lambda: actions.admit(
                    sessions,
                    settings,
                    message_id,
                    user.name,
                    reason=reason,
                    revision_of=revision_of,
                    as_new=as_new,
                ),
                back,
            )
        if action == "reject":
            notify = form.get("notify", "yes") == "yes"
            return _act(
                lambda: actions.reject(
                    sessions, settings, message_id, user.name, reason or "", notify=notify
                ),
                back,
            )
        if action == "release":
            return _act(
                lambda: actions.release(
                    sessions,
                    settings,
                    message_id,
                    user.name,
                    reason=reason,
                    revision_of=revision_of,
                    as_new=as_new,
                ),
                back,
            )
        try:
            report = reprocess.apply(sessions, settings, user.name, [message_id])
        except Refused as exc:
            return render_template("done.html", ok=False, text=str(exc), back=back), 409
        if report.queued:
            _deliver_soon()
        changed = report.changed
        text = (
            f"message #{message_id} judged again: "
            + ("; ".join(changed[0].lines) if changed else "nothing changed")
            + (f"; {report.replies[0]}" if report.replies else "")
        )
        if report.left_alone:
            text += f"; not changed: {report.left_alone[0].left_alone}"
        return render_template("done.html", ok=True, text=text, back=back)

    @app.route("/documents/<int:document_id>/withdraw", methods=["GET", "POST"])
    def withdraw(document_id: int) -> Any:
        user = _admin()
        with sessions() as session:
            document = session.get(Document, document_id)
            if document is None or not document.number:
                abort(404, description="no numbered document with that id")
            number, message_id = document.number, document.message_id
            withdrawn = document.status == DocumentStatus.WITHDRAWN
        back = url_for("message", message_id=message_id)
        if request.method == "GET":
            return render_template(
                "confirm.html",
                action="withdraw",
                m={"id": message_id, "number": number, "withdrawn": withdrawn},
                preview=None,
                back=back,
            )
        reason = (request.form.get("reason") or "").strip()
        return _act(lambda: actions.withdraw(sessions, settings, number, user.name, reason), back)

    @app.route("/replies/<int:reply_id>/resend", methods=["GET", "POST"])
    def resend(reply_id: int) -> Any:
        user = _admin()
        with sessions() as session:
            reply = session.get(Reply, reply_id)
            if reply is None:
                abort(404)
            summary = {
                "id": reply.id,
                "kind": reply.kind,
                "recipient": reply.recipient,
                "subject": reply.subject,
                "status": reply.status,
                "message": reply.message_id,
            }
        back = url_for("message", message_id=summary["message"]) if summary["message"] else url_for("outbox")
        if request.method == "GET":
            return render_template("confirm.html", action="resend", m=summary, preview=None, back=back)
        reason = (request.form.get("reason") or "").strip() or None
        return _act(lambda: actions.resend(sessions, settings, reply_id, user.name, reason=reason), back)

    return app


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default

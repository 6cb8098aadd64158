"""The pre-check page: a contributor uploads one .docx and reads what the service would answer.

Public and without sign-in, so it is built to be attacked (OWASP File Upload Cheat
Sheet): the upload's size is bounded before it is read (413 above the event's
`max_attachment_mb`); each address may upload `per_minute` files a minute (429
after that, with Retry-After); the file is judged by the service's own judge in a
bounded child process (`intake.precheck.judging`), never opened here, never
written to a file of ours and never served back; its name is only shown as text.
The pages carry the desk's Content-Security-Policy and headers (no script at all:
the file field itself takes a dropped file). Nothing here touches the database.

Routes: `GET /` the page; `POST /check` (form) the answer as a page;
`POST /api/check` (multipart field `document`) the answer as JSON;
`GET /template` the event's blank template; `GET /healthz`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from intake.config import Settings
from intake.precheck.judging import Busy, Checker
from intake.replies.compose import time_left
from intake.web.security import _headers  # the desk's CSP and headers, not a copy

log = logging.getLogger("intake.precheck")

MiB = 2**20
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the form's other fields, at most
FORM_MEMORY = MiB  # a text field's bytes held in memory, at most (see create_app)
FIELD = "document"


@dataclass(frozen=True)
class PrecheckOptions:
    host: str = "127.0.0.1"
    port: int = 8090
    per_minute: int = 20  # uploads a minute from one address
    trusted_proxies: tuple[str, ...] = ()  # X-Forwarded-For is believed from these only
    threads: int = 4


class RateLimit:
    """At most `limit` uploads per address in a sliding minute; memory bounded under a spray."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, address: str) -> float:
        """0 if this upload may go ahead (and count it); else the seconds until one may."""
        now = self.clock()
        with self.lock:
            recent = self.seen.setdefault(address, deque())
            while recent and now - recent[0] >= self.window:
                recent.popleft()
            if len(recent) >= self.limit:
                return max(1.0, self.window - (now - recent[0]))
            recent.append(now)
            if len(self.seen) > 50_000:  # forget idle addresses rather than grow without end
                for key in [k for k, v in self.seen.items() if not v or now - v[-1] >= self.window]:
                    del self.seen[key]
            return 0.0


class Refusal(Exception):
    def __init__(self, code: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after = code, message, retry_after


class _Site:
    """What the routes share: the event, the limits, the workers."""

    def __init__(self, settings: Settings, options: PrecheckOptions, checker: Checker) -> None:
        self.event = settings.event
        self.options = options
        self.checker = checker
        self.limit = self.event.max_attachment_mb * MiB
        self.sizes = f"{self.event.max_attachment_mb} MB"
        self.rate = RateLimit(options.per_minute)

    def page(self, **more: Any) -> str:
        event = self.event
        return render_template(
            "precheck.html",
            event=event,
            deadline=event.deadline.astimezone(event.timezone).strftime("%A %d %B %Y, %H:%M %Z"),
            left=time_left(event.deadline, datetime.now(UTC)),
            has_template=event.template is not None,
            sizes=self.sizes,
            **more,
        )

    def client(self) -> str:
        peer = request.remote_addr or "unknown"
        if peer in self.options.trusted_proxies:
            forwarded = request.headers.get("X-Forwarded-For", "").split(",")
            named = [a.strip() for a in forwarded if a.strip()]
            if named:
                return named[-1]  # the address the trusted proxy itself saw
        return peer

    def judge_upload(self) -> dict[str, Any]:
        wait = self.rate.allow(self.client())
        if wait:
            raise Refusal(
                429,
                f"You have checked {self.options.per_minute} files in the last minute, the most this "
                f"page checks from one address. Please try again in {int(wait) + 1} seconds.",
                wait,
            )
        if (request.content_length or 0) > self.limit + FORM_OVERHEAD:
            raise RequestEntityTooLarge
        upload = request.files.get(FIELD)
        if upload is None or not upload.filename:
            raise Refusal(400, "Choose your Word (.docx) document, then press Check.")
        data = upload.stream.read(self.limit + 1)
        upload.stream.close()
        if len(data) > self.limit:
            raise RequestEntityTooLarge
        try:
            answer = self.checker.check(upload.filename, data)
        except Busy:
            raise Refusal(
                503, "The page is busy checking other files. Please try again in a minute.", 60
            ) from None
        answer["file"] = upload.filename
        return answer

    def too_large(self) -> str:
        return (
            f"The file is larger than {self.sizes}, the most the {self.event.acronym} mailbox takes as "
            "an attachment. Make it smaller (compress its pictures, remove embedded videos) and check "
            "it again."
        )

    def error(self, code: int, text: str) -> tuple[Response | str, int]:
        if request.path.startswith("/api/"):
            return jsonify(error=text), code
        return self.page(refusal=text), code


def create_app(settings: Settings, options: PrecheckOptions, checker: Checker) -> Flask:
    site = _Site(settings, options, checker)
    event = site.event
    app = Flask(__name__)
    # Above MAX_CONTENT_LENGTH werkzeug answers 413 before reading the body (the multipart
    # wrapper allowed for). MAX_FORM_MEMORY_SIZE bounds the text fields (this form has none), but
    # werkzeug 3.1's multipart decoder also checks each 64 KB chunk of a file against it, with the
    # bytes it kept back from the chunk before (where a boundary might begin): at 64 KB, an upload
    # of a few chunks or more (nearly every real document) was refused as too large.
    app.config.update(MAX_CONTENT_LENGTH=site.limit + FORM_OVERHEAD, MAX_FORM_MEMORY_SIZE=FORM_MEMORY)

    @app.get("/")
    def index() -> str:
        return site.page()

    @app.post("/check")
    def check_page() -> tuple[str, int]:
        try:
            return site.page(result=site.judge_upload()), 200
        except RequestEntityTooLarge:
            return site.page(refusal=site.too_large()), 413
        except Refusal as refused:
            return site.page(refusal=refused.message), refused.code

    @app.post("/api/check")
    def check_api() -> tuple[Response, int]:
        try:
            return jsonify(site.judge_upload()), 200
        except RequestEntityTooLarge:
            return jsonify(error=site.too_large(), limit_bytes=site.limit), 413
        except Refusal as refused:
            response = jsonify(error=refused.message)
            if refused.retry_after:
                response.headers["Retry-After"] = str(int(refused.retry_after) + 1)
            return response, refused.code

    @app.get("/template")
    def template() -> Response:
        if event.template is None or not event.template.is_file():
            return Response("This meeting has no template file here.", 404, mimetype="text/plain")
        return send_file(
            event.template,
            mimetype="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            as_attachment=True,
            download_name=f"{event.acronym}-template.docx",
            max_age=0,
        )

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response | str, int]:
        code = exc.code or 500
        return site.error(code, site.too_large() if code == 413 else (exc.description or exc.name))

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> tuple[Response | str, int]:
        log.exception("the pre-check page failed on %s", request.path)
        return site.error(500, "Something went wrong on our side; please try again later.")

    app.after_request(_headers)
    return app

"""What every page of the dashboard reaches for: the desk's settings, database sessions and
blob store (one `Desk` per app), who is signed in, and how files are handed out."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, abort, current_app, g, has_request_context, render_template, request, send_file
from markupsafe import Markup
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from intake.config import Settings
from intake.desk import Refused, accounts, actions
from intake.desk.show import iso, utc_time
from intake.store import BlobStore
from intake.web.options import WebOptions

log = logging.getLogger("intake.web")

PAGE_SIZE = 200
# A downloaded file may run nothing and reach nothing, even if a browser renders it.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


@dataclass(frozen=True)
class Desk:
    settings: Settings
    options: WebOptions
    engine: Engine
    sessions: sessionmaker[Session]
    store: BlobStore
    # Every event of the configuration (with several `[[events]]`, the dashboard switches
    # between them); `settings` is the one this request acts on.
    events: tuple[Settings, ...] = ()

    @property
    def lifetime(self) -> timedelta:
        return timedelta(hours=self.options.session_hours)

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.options.idle_minutes)


EVENT_COOKIE = "intake_event"


def desk() -> Desk:
    """The desk of the app serving this request, acting on the event the person chose (the
    `intake_event` cookie, set by the switcher) or else the one `intake web` was started on."""
    if "desk" in g:
        chosen: Desk = g.desk
        return chosen
    found: Desk = current_app.extensions["intake"]
    wanted = request.cookies.get(EVENT_COOKIE) if has_request_context() else None
    for settings in found.events:
        if wanted and settings.event.id == wanted and settings is not found.settings:
            found = dataclasses.replace(found, settings=settings)
            break
    g.desk = found
    return found


def admin() -> accounts.SignedIn:
    """The signed-in user, if that user may act; else 403."""
    user: accounts.SignedIn = g.user
    if not user.can_act:
        abort(403, description="your account can read but not act (viewer)")
    return user


def number(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def pages(total: int, per: int = PAGE_SIZE) -> int:
    return max(1, -(-total // per))


def safe_filename(name: str | None, fallback: str) -> str:
    """A download name with nothing a browser or file system could misread."""
    text = unicodedata.normalize("NFKC", name or "")
    text = re.sub(r"[^\w.\- ()\[\]]+", "_", text, flags=re.UNICODE).strip(" ._")
    text = re.sub(r"_+", "_", text)[:150]
    return text or fallback


def attachment(data: bytes, name: str, mimetype: str = "application/octet-stream") -> Response:
    """A file to save, never to render: its own sandboxing CSP, which the page CSP leaves alone."""
    response = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=name)
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    return response


def when(value: datetime | str | None) -> Markup:
    """A time in the event's zone, with UTC on hover."""
    if value is None:
        return Markup("&ndash;")
    if isinstance(value, str):
        value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    local = value.astimezone(desk().settings.event.timezone).strftime("%Y-%m-%d %H:%M %Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso(value), utc_time(value), local)


def deliver_soon() -> None:
    """Send what an action queued, without making the person wait for the SMTP server."""
    from intake.replies.outbox import deliver_pending

    d = desk()

    def run() -> None:
        try:
            deliver_pending(d.sessions, d.settings, worker=f"web:{os.getpid()}:{threading.get_ident()}")
        except Exception as exc:  # the next poll sends it
            log.warning("reply left in the outbox for the next poll: %s", exc)

    threading.Thread(target=run, name="intake-web-deliver", daemon=True).start()


def act(run: Callable[[], actions.Done], back: str) -> Any:
    """Run one desk action; a refusal is a 409 page saying why."""
    try:
        done = run()
    except Refused as exc:
        return render_template("done.html", ok=False, text=str(exc), back=back), 409
    if done.reply_ids:
        deliver_soon()
    return render_template("done.html", ok=True, text=done.summary, back=back)

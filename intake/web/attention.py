"""What needs a person, at the top of the dashboard: the messages only a person can settle (by
status, from `intake.domain.MEANING`), the replies that failed, the last poll, and how many
messages wait in the mailbox for the next poll.

The mailbox is asked in the background, at most once every `BACKLOG_SECONDS`, and the page shows
the last answer with its time: a page never waits for the IMAP server, and an unreachable server
reads "unknown" with the reason, not an error page.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from intake.config import Settings
from intake.domain import MessageStatus, ReplyStatus, meaning
from intake.metrics import snapshot

log = logging.getLogger("intake.web")

BACKLOG_SECONDS = 10.0


@dataclass(frozen=True)
class Attention:
    waiting: list[tuple[str, int]]  # (status, how many) for each status that needs a person
    failed_replies: int
    last_poll_at: datetime | None
    backlog: str | None  # how many wait in the mailbox; None: not asked yet
    backlog_at: datetime | None


class Backlog:
    """How many messages wait in the mailbox's inbox folder, asked in the background."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._value: str | None = None
        self._at: datetime | None = None
        self._asking = False

    def current(self) -> tuple[str | None, datetime | None]:
        now = datetime.now(UTC)
        with self._lock:
            stale = self._at is None or now - self._at > timedelta(seconds=BACKLOG_SECONDS)
            if stale and not self._asking:
                self._asking = True
                threading.Thread(target=self._ask, name="intake-web-backlog", daemon=True).start()
            return self._value, self._at

    def _ask(self) -> None:
        from intake.mailbox import Mailbox

        try:
            imap = self.settings.imap
            with Mailbox(imap) as mailbox:
                mailbox.select(imap.folder)
                value = str(len(mailbox.uids()))
        except Exception as exc:  # an unreachable or unconfigured mailbox is shown, not raised
            value = (
                f"unknown ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
            )
            log.info("the mailbox could not be asked what waits: %s", value)
        with self._lock:
            self._value, self._at, self._asking = value, datetime.now(UTC), False


def _backlog(settings: Settings) -> Backlog:
    """The event's mailbox watcher (one per event: each may have its own mailbox)."""
    extensions: dict[str, Any] = current_app.extensions
    with _CREATE:
        watchers: dict[str, Backlog] = extensions.setdefault("intake.backlog", {})
        found = watchers.get(settings.event.id)
        if found is None:
            found = watchers[settings.event.id] = Backlog(settings)
    return found


_CREATE = threading.Lock()


def attention(session: Session, settings: Settings) -> Attention:
    snap = snapshot(session, settings.event.id)
    waiting = [(str(s), snap.messages.get(s, 0)) for s in MessageStatus if meaning(s).needs_person]
    backlog, backlog_at = _backlog(settings).current()
    return Attention(
        waiting=waiting,
        failed_replies=snap.replies.get(ReplyStatus.FAILED, 0),
        last_poll_at=snap.last_poll_at,
        backlog=backlog,
        backlog_at=backlog_at,
    )

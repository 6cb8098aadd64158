"""What the operator's tools read: `intake status`, and /healthz and /metrics.

The figures come from the database (the source of truth) at the moment they
are asked for, plus what only the running service knows (its last successful
poll, how long polls take). /metrics is Prometheus's text format, written by
prometheus-client; /healthz answers 200 when the database is reachable, the
last poll succeeded (within the last few intervals) and the last delivery run
could reach the SMTP server, else 503 with the reason.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake.domain import MessageStatus, ReplyStatus
from intake.models import Document, InboundMessage, MailboxState, Reply

log = logging.getLogger(__name__)
HEALTHY_INTERVALS = 3  # a poll must have succeeded within this many poll intervals


@dataclass(frozen=True)
class Snapshot:
    event: str
    messages: dict[str, int]
    documents: dict[str, int]
    replies: dict[str, int]
    last_poll_at: datetime | None


def snapshot(session: Session, event: str) -> Snapshot:
    def counts(column: Any, where: Any, model: Any = None) -> dict[str, int]:
        query = select(column, func.count()).where(where).group_by(column)
        if model is not None:
            query = query.select_from(model)
        return {str(k): int(n) for k, n in session.execute(query)}

    documents = dict(
        session.execute(
            select(Document.status, func.count())
            .join(InboundMessage, Document.message_id == InboundMessage.id)
            .where(InboundMessage.event == event)
            .group_by(Document.status)
        ).all()
    )
    last = session.execute(select(func.max(MailboxState.last_poll_at))).scalar()
    return Snapshot(
        event=event,
        messages=counts(InboundMessage.status, InboundMessage.event == event),
        documents={str(k): int(v) for k, v in documents.items()},
        replies=counts(Reply.status, Reply.event == event),
        last_poll_at=last.replace(tzinfo=UTC) if last is not None and last.tzinfo is None else last,
    )


class ServiceState:
    """What the running service knows about itself, for /metrics and /healthz."""

    def __init__(self, poll_interval: int) -> None:
        self.poll_interval = poll_interval
        self.started = datetime.now(UTC)
        self.last_success: datetime | None = None
        self.last_duration: float | None = None
        self.polls = 0
        self.failures = 0
        # Why the last poll, or the last delivery run, failed; "" once one succeeds again.
        self.poll_error = ""
        self.delivery_error = ""
        self._lock = threading.Lock()

    def poll_succeeded(self, duration: float) -> None:
        with self._lock:
            self.last_success, self.last_duration = datetime.now(UTC), duration
            self.polls += 1
            self.poll_error = ""

    def poll_failed(self, cause: str = "") -> None:
        with self._lock:
            self.failures += 1
            self.poll_error = cause or "the poll failed"

    def delivery_succeeded(self) -> None:
        with self._lock:
            self.delivery_error = ""

    def delivery_failed(self, cause: str) -> None:
        with self._lock:
            self.delivery_error = cause


class _Collector(Collector):
    def __init__(self, sessions: sessionmaker[Session], events: list[tuple[str, ServiceState]]) -> None:
        self.sessions, self.events = sessions, events

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "intake_messages", "Messages recorded, by status", labels=["event", "status"]
        )
        documents = GaugeMetricFamily(
            "intake_documents", "Documents recorded, by outcome", labels=["event", "status"]
        )
        outbox = GaugeMetricFamily(
            "intake_outbox", "Replies in the outbox, by status", labels=["event", "status"]
        )
        last = GaugeMetricFamily(
            "intake_last_successful_poll_timestamp_seconds", "When a poll last succeeded", labels=["event"]
        )
        duration = GaugeMetricFamily(
            "intake_poll_duration_seconds", "How long the last successful poll took", labels=["event"]
        )
        polls = GaugeMetricFamily(
            "intake_polls", "Polls since start, by outcome", labels=["event", "outcome"]
        )
        with self.sessions() as session:
            for event, state in self.events:
                snap = snapshot(session, event)
                for status in MessageStatus:
                    messages.add_metric([event, status.value], snap.messages.get(status.value, 0))
                for doc_status, n in sorted(snap.documents.items()):
                    documents.add_metric([event, doc_status], n)
                for reply_status in ReplyStatus:
                    outbox.add_metric([event, reply_status.value], snap.replies.get(reply_status.value, 0))
                last.add_metric([event], state.last_success.timestamp() if state.last_success else 0)
                duration.add_metric([event], state.last_duration or 0)
                polls.add_metric([event, "success"], state.polls)
                polls.add_metric([event, "failure"], state.failures)
        yield from (messages, documents, outbox, last, duration, polls)


def health(
    sessions: sessionmaker[Session], events: list[tuple[str, ServiceState]]
) -> tuple[bool, dict[str, Any]]:
    now = datetime.now(UTC)
    report: dict[str, Any] = {"database": "ok"}
    ok = True
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        ok = False
        report["database"] = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    for event, state in events:
        window = timedelta(seconds=state.poll_interval * HEALTHY_INTERVALS)
        entry: dict[str, Any] = {}
        if state.last_success is not None:
            entry["last_successful_poll"] = state.last_success.strftime("%Y-%m-%dT%H:%M:%SZ")
        if state.poll_error:
            # Unhealthy from the first failure until a poll (recording and filing) succeeds.
            entry["poll"] = state.poll_error
        elif state.last_success is None and now - state.started > window:
            entry["poll"] = "no poll has succeeded since the service started"
        elif state.last_success is not None and now - state.last_success > window:
            entry["poll"] = f"no successful poll for over {int(window.total_seconds())} s"
        if state.delivery_error:
            entry["delivery"] = state.delivery_error
        ok = ok and "poll" not in entry and "delivery" not in entry
        report[event] = entry
    report["status"] = "ok" if ok else "failing"
    return ok, report


def serve(
    host: str, port: int, sessions: sessionmaker[Session], events: list[tuple[str, ServiceState]]
) -> Callable[[], None]:
    """Serve /healthz and /metrics in a thread; returns a function that stops it."""
    registry = CollectorRegistry()
    registry.register(_Collector(sessions, events))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path == "/metrics":
                try:
                    body, code = generate_latest(registry), 200
                except SQLAlchemyError:
                    body, code = b"# the database is unreachable\n", 503
                self._answer(code, body, "text/plain; version=0.0.4; charset=utf-8")
            elif self.path == "/healthz":
                ok, report = health(sessions, events)
                self._answer(200 if ok else 503, json.dumps(report).encode(), "application/json")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("http: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("serving /healthz and /metrics on http://%s:%s", host, server.server_address[1])

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop

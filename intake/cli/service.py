"""The service's commands: `intake poll --once`, `run`, `status`, `outbox`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from intake import db
from intake.cli.context import EXIT_OK, NO_SERVER, Failure, require_schema, settle, validate_event
from intake.config import Settings
from intake.listing import write_json
from intake.mailbox import Mailbox, MailboxError

log = logging.getLogger("intake")


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """One full cycle: record new mail, deliver the replies due, copy them to Sent."""
    from intake.examine import ExamineError
    from intake.lease import PollerLock
    from intake.pipeline import PollReport, deliver, poll_once
    from intake.store import BlobStore

    require_schema(settings)
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    settle()
    try:
        report = PollReport()
        with PollerLock(engine, settings.imap.mailbox_key, settings.imap.folder) as lock:
            if lock.held:
                try:
                    report = poll_once(
                        settings,
                        sessions,
                        BlobStore(settings.data_dir),
                        # the replies of each batch recorded go out while the workers examine the next
                        between=lambda mailbox, report: deliver(settings, sessions, report, mailbox),
                    )
                except ExamineError as exc:
                    raise Failure(f"poll stopped: {exc}") from exc
                log.info("poll done: %s", report.summary())
            else:
                log.warning("%s is polling this mailbox now; this run only sends replies", lock.holder())
        deliver(settings, sessions, report)
        log.info("poll stages: %s", report.stages())
    finally:
        engine.dispose()
    return EXIT_OK


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from intake.config import load_deployment
    from intake.service import ServiceRefused, run_service

    require_schema(settings)
    deployment = [settings] if args.event else load_deployment(args.config)
    for each in deployment:
        validate_event(each)
    settle()
    try:
        return run_service(deployment)
    except ServiceRefused as exc:
        raise Failure(str(exc)) from None


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    """List the replies waiting or failed; `retry` puts the failed back in line."""
    from intake.replies.outbox import retry_failed

    require_schema(settings)
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    try:
        if args.action == "retry":
            count = retry_failed(sessions, args.ids or None)
            print(f"{count} failed replies are pending again; the next poll sends them", file=sys.stderr)
            return EXIT_OK
        from intake.listing import outbox_entries, write_outbox

        with sessions() as session:
            entries = outbox_entries(session, settings.event.id, all_statuses=args.all)
    finally:
        engine.dispose()
    if args.format == "json":
        write_json(entries, sys.stdout)
    else:
        write_outbox(entries, sys.stdout, settings.event.timezone)
    return EXIT_OK


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """Where the service stands: last poll, backlog, outbox, per event."""
    from intake.metrics import snapshot

    require_schema(settings)
    engine = db.make_engine(settings.database_url)
    try:
        with db.make_sessionmaker(engine)() as session:
            snap = snapshot(session, settings.event.id)
    finally:
        engine.dispose()
    backlog: int | str
    if not settings.imap:  # `status` reads the database; the mailbox only when configured
        backlog, mailbox_name = "unknown (no IMAP server configured)", "not configured"
    else:
        mailbox_name = f"{settings.imap.mailbox_key}/{settings.imap.folder}"
        try:
            with Mailbox(settings.imap) as mailbox:
                mailbox.select(settings.imap.folder)
                backlog = len(mailbox.uids())
        except MailboxError as exc:
            backlog = f"unknown ({exc})"
    result = {
        "event": settings.event.id,
        "mailbox": mailbox_name,
        "last_poll": snap.last_poll_at.strftime("%Y-%m-%dT%H:%M:%SZ") if snap.last_poll_at else None,
        "backlog": backlog,
        "messages": snap.messages,
        "outbox_pending": snap.replies.get("pending", 0) + snap.replies.get("sending", 0),
        "outbox_failed": snap.replies.get("failed", 0),
    }
    if args.format == "json":
        write_json([result], sys.stdout)
        return EXIT_OK
    tz = settings.event.timezone
    last = snap.last_poll_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z") if snap.last_poll_at else "never"
    print(f"event {result['event']}: mailbox {result['mailbox']}")
    print(f"  last poll:      {last}")
    print(f"  waiting in the mailbox: {backlog}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(snap.messages.items())) or "none yet"
    print(f"  messages:       {counts}")
    print(f"  outbox:         {result['outbox_pending']} pending, {result['outbox_failed']} failed")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("poll", help="read the mailbox and record new messages")
    p.add_argument("--once", action="store_true", required=True, help="one full cycle, then exit")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("run", help="run as a service: poll on a schedule until stopped")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="last poll, backlog, outbox, per event")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_status, needs=NO_SERVER)

    p = sub.add_parser("outbox", help="replies pending or failed; `outbox retry` tries the failed again")
    p.add_argument("action", nargs="?", choices=("list", "retry"), default="list")
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="with retry: only these replies")
    p.add_argument("--all", action="store_true", help="list sent and suppressed replies too")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_outbox, needs=NO_SERVER)

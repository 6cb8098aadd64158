"""The `intake` command. Machine-readable output goes to stdout, logs to stderr.

Exit codes: 0 done; 1 the work failed (a server or the database); 2 the
configuration is wrong or missing. Never a traceback for an expected failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from intake import cli_desk, db
from intake.config import ConfigError, Settings, load_settings
from intake.listing import write_json
from intake.mailbox import Mailbox, MailboxError
from intake.store import StoreError

log = logging.getLogger("intake")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class _JsonLines(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, ensure_ascii=False)


def _setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonLines()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
    # Third-party chatter at INFO is noise for an operator.
    for name in ("alembic", "imapclient", "aiosmtplib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # mail-parser warns of every part it does not keep as body text ("Email content
    # 'mixed' not handled"): one line per ordinary message, saying nothing to an operator.
    logging.getLogger("mailparser").setLevel(logging.ERROR)


def _db_error(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__


def _require_schema(settings: Settings) -> None:
    engine = db.make_engine(settings.database_url)
    try:
        current = db.current_revision(engine)
    finally:
        engine.dispose()
    head = db.head_revision()
    if current != head:
        raise _Failure(
            f"the database at {_safe_url(settings.database_url)} is at migration {current or 'none'}, "
            f"not {head}: run `intake db upgrade` first"
        )


class _Failure(Exception):
    """An expected failure: printed as one line, exit code 1."""


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(the configured database)"


def validate_event(settings: Settings) -> None:
    """The event's own tables: judging rules and template, screening, replies."""
    from intake.compose import validate_replies
    from intake.judge import validate_checks
    from intake.screen import validate_screening

    validate_checks(settings.event)
    validate_screening(settings.event)
    validate_replies(settings.event)


# -- commands -----------------------------------------------------------------
def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    db.upgrade(settings.database_url, args.revision)
    engine = db.make_engine(settings.database_url)
    try:
        print(
            f"database {_safe_url(settings.database_url)} is at {db.current_revision(engine)}",
            file=sys.stderr,
        )
    finally:
        engine.dispose()
    return EXIT_OK


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """One full cycle: record new mail, deliver the replies due, copy them to Sent."""
    from intake.lease import PollerLock
    from intake.poll import deliver_and_copy, poll_once
    from intake.store import BlobStore

    _require_schema(settings)
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    try:
        with PollerLock(engine, settings.imap.mailbox_key, settings.imap.folder) as lock:
            if lock.held:
                report = poll_once(settings, sessions, BlobStore(settings.data_dir))
                log.info("poll done: %s", report.summary())
            else:
                log.warning("%s is polling this mailbox now; this run only sends replies", lock.holder())
        deliver_and_copy(settings, sessions)
    finally:
        engine.dispose()
    return EXIT_OK


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from intake.config import load_deployment
    from intake.service import ServiceRefused, run_service

    _require_schema(settings)
    deployment = [settings] if args.event else load_deployment(args.config)
    for each in deployment:
        validate_event(each)
    try:
        return run_service(deployment)
    except ServiceRefused as exc:
        raise _Failure(str(exc)) from None


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    """Judge local files as the service would; 0 when all pass, 1 when any is refused."""
    from intake.judge.check_cli import run_check

    return run_check([Path(p) for p in args.files], settings.event, sys.stdout)


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    """List the replies waiting or failed; `retry` puts the failed back in line."""
    from intake.outbox import retry_failed

    _require_schema(settings)
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

    _require_schema(settings)
    engine = db.make_engine(settings.database_url)
    try:
        with db.make_sessionmaker(engine)() as session:
            snap = snapshot(session, settings.event.id)
    finally:
        engine.dispose()
    try:
        with Mailbox(settings.imap) as mailbox:
            mailbox.select(settings.imap.folder)
            backlog: int | str = len(mailbox.uids())
    except MailboxError as exc:
        backlog = f"unknown ({exc})"
    result = {
        "event": settings.event.id,
        "mailbox": f"{settings.imap.mailbox_key}/{settings.imap.folder}",
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


def cmd_check_config(settings: Settings, args: argparse.Namespace) -> int:
    """Say, line by line, whether each outside part is reachable with this config."""
    results: list[tuple[str, bool, str]] = [
        ("config", True, f"read {settings.config_path or 'the environment'}; event {settings.event.id}")
    ]
    from intake.compose import check_templates

    problems = check_templates(settings.event)
    results.append(
        ("replies", not problems, "; ".join(problems) if problems else "every reply template renders")
    )
    results.append(_check_database(settings))
    results.append(_check_imap(settings))
    results.append(_check_smtp(settings))
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return EXIT_OK if all(ok for _, ok, _ in results) else EXIT_FAILED


def _check_database(settings: Settings) -> tuple[str, bool, str]:
    engine = db.make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = db.current_revision(engine), db.head_revision()
        if current != head:
            return (
                "database",
                False,
                f"reachable, but at migration {current or 'none'} (run `intake db upgrade`)",
            )
        return ("database", True, f"{_safe_url(settings.database_url)} at migration {current}")
    except SQLAlchemyError as exc:
        return ("database", False, _db_error(exc))
    finally:
        engine.dispose()


def _check_imap(settings: Settings) -> tuple[str, bool, str]:
    try:
        with Mailbox(settings.imap) as mailbox:
            mailbox.select(settings.imap.folder)
            count = len(mailbox.uids())
        return (
            "imap",
            True,
            f"signed in to {settings.imap.host}:{settings.imap.port} as {settings.imap.user}; "
            f"{settings.imap.folder} holds {count} message(s)",
        )
    except MailboxError as exc:
        return ("imap", False, str(exc))


def _check_smtp(settings: Settings) -> tuple[str, bool, str]:
    import aiosmtplib

    from intake.oauth import TokenError
    from intake.outbox import _authenticate, smtp_auth

    s = settings.smtp

    async def probe() -> None:
        context = ssl.create_default_context()
        if s.ca_file:
            context.load_verify_locations(cafile=str(s.ca_file))
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=min(s.timeout, 15),
            use_tls=s.tls == "ssl",
            start_tls=s.tls == "starttls",
            tls_context=context,
        )
        await client.connect()
        try:
            auth = smtp_auth(s)
            if auth is not None:
                await _authenticate(client, auth)  # password or XOAUTH2, as the outbox does
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()

    try:
        asyncio.run(probe())
        return (
            "smtp",
            True,
            f"connected to {s.host}:{s.port}" + (f" and signed in as {s.user}" if s.user else ""),
        )
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TokenError) as exc:
        return ("smtp", False, f"SMTP server {s.host}:{s.port}: {str(exc).strip() or type(exc).__name__}")


# -- the parser -----------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the TOML config file (default: $INTAKE_CONFIG, "
        "else the shipped JCA-MV event with settings from the environment)",
    )
    parser.add_argument(
        "--event",
        metavar="ID",
        help="with several [[events]]: the one to act on (default: the first; "
        "`run` runs them all unless one is named)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="logs on stderr as text lines or as JSON lines",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("db", help="database migrations")
    dbsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply the migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("check-config", help="read the config and test the database, IMAP and SMTP")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("poll", help="read the mailbox and record new messages")
    p.add_argument("--once", action="store_true", required=True, help="one full cycle, then exit")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("run", help="run as a service: poll on a schedule until stopped")
    p.set_defaults(func=cmd_run)

    cli_desk.register(sub)  # log, show, admit, reject, release, withdraw, resend, reprocess, ... web

    p = sub.add_parser("status", help="last poll, backlog, outbox, per event")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("check", help="judge local files as the service would, and print the findings")
    p.add_argument("files", nargs="+", metavar="FILE", help="files or folders")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("outbox", help="replies pending or failed; `outbox retry` tries the failed again")
    p.add_argument("action", nargs="?", choices=("list", "retry"), default="list")
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="with retry: only these replies")
    p.add_argument("--all", action="store_true", help="list sent and suppressed replies too")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_outbox)

    p = sub.add_parser("demo", help="run the service against a local mailbox it starts itself")
    p.add_argument("--dir", default="var/demo", help="where the demo keeps its data (default var/demo)")
    p.add_argument(
        "--dashboard", action="store_true", help="then leave the dashboard running, with a printed sign-in"
    )
    p.add_argument("--port", type=int, default=8080, help="the dashboard's port (default 8080)")
    p.set_defaults(func=None, run=_run_demo)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from intake.demo import run_demo

    return run_demo(Path(args.dir), args.port if args.dashboard else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    try:
        if run is not None:
            _setup_logging("info")
            return run(args)
        settings = load_settings(args.config, event=args.event)
        validate_event(settings)
        _setup_logging(settings.log_level, args.log_format)
        result: int = args.func(settings, args)
        return result
    except ConfigError as exc:
        print(f"intake: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (MailboxError, StoreError) as exc:
        print(f"intake: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except _Failure as exc:
        print(f"intake: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        print(f"intake: database error: {_db_error(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("intake: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

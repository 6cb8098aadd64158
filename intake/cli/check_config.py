"""`intake check-config`: read the config and test the database, IMAP and SMTP, one line each."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from intake import db
from intake.cli.context import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    db_error,
    safe_url,
    setup_logging,
    validate_event,
)
from intake.config import Settings, config_problems, load_settings
from intake.mailbox import Mailbox, MailboxError


def run(args: argparse.Namespace) -> int:
    """Every missing or wrong setting at once (exit 2); else each outside part, line by line.
    Writes nothing: not even the SQLite file a first connection would create."""
    problems = config_problems(args.config)
    if problems:
        for problem in problems:
            print(f"intake: configuration error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    settings = load_settings(args.config, event=args.event)
    validate_event(settings)
    setup_logging(settings.log_level, args.log_format)
    return cmd_check_config(settings, args)


def cmd_check_config(settings: Settings, args: argparse.Namespace) -> int:
    """Say, line by line, whether each outside part is reachable with this config."""
    results: list[tuple[str, bool, str]] = [
        ("config", True, f"read {settings.config_path or 'the environment'}; event {settings.event.id}")
    ]
    from intake.replies.compose import check_templates

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
    missing = db.missing_sqlite_file(settings.database_url)
    if missing is not None:
        return ("database", False, f"there is no database at {missing} yet (run `intake db upgrade`)")
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
        return ("database", True, f"{safe_url(settings.database_url)} at migration {current}")
    except SQLAlchemyError as exc:
        return ("database", False, db_error(exc))
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
    from intake.replies.outbox import _authenticate, smtp_auth

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


def register(sub: Any) -> None:
    p = sub.add_parser("check-config", help="read the config and test the database, IMAP and SMTP")
    p.set_defaults(func=None, run=run)

"""What every `intake` command shares: exit codes, one-line failures, logging, and the
database sessions a command opens (after checking the schema is current)."""

from __future__ import annotations

import argparse
import gc
import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake import db
from intake.config import ConfigError, Settings
from intake.desk import Refused

log = logging.getLogger("intake")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_REFUSED = EXIT_FAILED
# A command's `needs` (set_defaults): the mail servers whose settings it must have. The
# database and the event are always read; they have defaults (the shipped event, SQLite).
NO_SERVER: frozenset[str] = frozenset()


class Failure(Exception):
    """An expected failure: printed as one line, exit code 1."""


class _JsonLines(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, ensure_ascii=False)


def settle() -> None:
    """For a command that works a while (a poll, the service): what it has loaded by now (the
    modules, SQLAlchemy's mappers, the settings) lives as long as it does. Collected once and
    frozen, it is left out of the garbage collector's full passes during the work: one of them
    walked ~95,000 objects for 0.17 s of a poll of 1,000 messages on the project machine."""
    gc.collect()
    gc.freeze()


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonLines()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
    # Third-party chatter at INFO is noise for an operator.
    # APScheduler says "Running job …" and "Job … executed successfully" at every run (even
    # after the job logged its own failure): the service logs each event itself, once.
    for name in ("alembic", "imapclient", "aiosmtplib", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # mail-parser warns of every part it does not keep as body text ("Email content
    # 'mixed' not handled"): one line per ordinary message, saying nothing to an operator.
    logging.getLogger("mailparser").setLevel(logging.ERROR)


def db_error(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(the configured database)"


def require_schema(settings: Settings) -> None:
    missing = db.missing_sqlite_file(settings.database_url)
    if missing is not None:  # opening it would leave an empty file behind
        raise Failure(f"there is no database at {missing} yet: run `intake db upgrade` first")
    engine = db.make_engine(settings.database_url)
    try:
        current = db.current_revision(engine)
    finally:
        engine.dispose()
    head = db.head_revision()
    if current != head:
        raise Failure(
            f"the database at {safe_url(settings.database_url)} is at migration {current or 'none'}, "
            f"not {head}: run `intake db upgrade` first"
        )


@contextmanager
def database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the configured database, once its schema is known to be current."""
    require_schema(settings)
    engine = db.make_engine(settings.database_url)
    try:
        yield db.make_sessionmaker(engine)
    finally:
        engine.dispose()


def validate_event(settings: Settings) -> None:
    """What the event's settings name outside the file: the template, and the header fields
    `[event.checks]` names in it. (The tables themselves are parsed when they are loaded.)"""
    from intake.judge import validate_checks

    validate_checks(settings.event)


def refused(exc: Refused) -> int:
    print(f"intake: {exc}", file=sys.stderr)
    return EXIT_REFUSED


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid{os.getuid()}"


def actor_option() -> argparse.ArgumentParser:
    """`--as NAME`: who acts, for the audit trail."""
    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument(
        "--as",
        dest="actor",
        metavar="NAME",
        default=default_actor(),
        help="who is acting, for the audit trail (default: your user name)",
    )
    return actor


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Keep a logger's warnings off the terminal while the caller says the same thing itself."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def deliver_now(settings: Settings, sessions: sessionmaker[Session]) -> str:
    """Send what the outbox holds now, and say in one line what became of it; a failure leaves
    the replies in the outbox for the next poll."""
    from intake.replies.outbox import deliver_pending

    waits = "the reply waits in the outbox for the next poll"
    try:
        with _quiet("intake.replies.outbox"):
            report = deliver_pending(sessions, settings, worker=f"desk:{socket.gethostname()}:{os.getpid()}")
    except ConfigError as exc:  # the command needs no SMTP server; sending does
        return f"no SMTP server is configured ({exc}): {waits}"
    except Exception as exc:  # the action is committed; sending is retried by every poll
        return f"sending failed ({exc}): {waits}"
    if report.sent:
        return f"{report.sent} reply(ies) sent"
    if report.unreachable:
        return f"the SMTP server is unreachable ({report.unreachable}): {waits}"
    if report.retried or report.failed:
        return f"the SMTP server did not take the reply yet: {waits}"
    return "nothing to send"


def parse_time(text: str, settings: Settings, end_of_day: bool) -> datetime:
    """A date (local midnight; the next one for --until) or a date-time, local unless it has an offset."""
    from intake.listing import read_when

    try:
        return read_when(text, settings.event.timezone, end_of_day)
    except ValueError as exc:
        raise Refused(str(exc)) from None


def when_argument(text: str) -> str:
    """An argparse type: a --since/--until that cannot be read is a usage error (exit 2)."""
    from zoneinfo import ZoneInfo

    from intake.listing import read_when

    try:
        read_when(text, ZoneInfo("UTC"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text

"""The `intake` command. Machine-readable output goes to stdout, logs to stderr.

Exit codes: 0 done; 1 the work failed (a server or the database); 2 the
configuration is wrong or missing. Never a traceback for an expected failure.

Each command group is a module with a `register(subparsers)`; `context` holds
what they share (exit codes, logging, database sessions).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import os
import select
import signal
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from intake.cli import (
    accounts,
    acting,
    check,
    check_config,
    database,
    demo,
    digest,
    files,
    precheck,
    reading,
    service,
)
from intake.cli.context import (
    EXIT_CONFIG,
    EXIT_FAILED,
    Failure,
    db_error,
    setup_logging,
    validate_event,
)
from intake.config import SECTIONS, ConfigError, load_settings
from intake.mailbox import MailboxError
from intake.store import StoreError

COMMAND_GROUPS = (
    database,
    check_config,
    service,
    reading,
    acting,
    files,
    accounts,
    digest,
    check,
    precheck,
    demo,
)


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
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # `kill -USR1 PID` prints where every thread of a running command is, to its stderr: what an
    # operator (or a test) needs to see why a process does not stop or does not move on.
    # Not where standard error is no file (main() called in-process under a test's capture).
    with contextlib.suppress(AttributeError, OSError, ValueError):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    try:
        if run is not None:  # a command that reads the settings itself (demo, check-config)
            setup_logging("info")
            return run(args)
        settings = load_settings(args.config, event=args.event, needs=getattr(args, "needs", SECTIONS))
        validate_event(settings)
        setup_logging(settings.log_level, args.log_format)
        result: int = args.func(settings, args)
        return result
    except ConfigError as exc:
        print(f"intake: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (MailboxError, StoreError, Failure) as exc:
        print(f"intake: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        print(f"intake: database error: {db_error(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("intake: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _stdout_gone():  # a pipe of our own broke (a worker's): a failure, said as one
            print(f"intake: {exc}", file=sys.stderr)
            return EXIT_FAILED
        # `intake log | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _stdout_gone() -> bool:
    """Whether the reader of our standard output has gone: the write end of a pipe whose
    reader closed polls as POLLERR (a file, a terminal or /dev/null never do)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


if __name__ == "__main__":
    sys.exit(main())

"""`intake digest [--since SPAN] [--send]`: the secretariat's daily digest, printed or mailed."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from intake.cli.context import EXIT_FAILED, EXIT_OK, NO_SERVER, database, parse_time, refused
from intake.config import ConfigError, Settings
from intake.desk import Refused

_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def read_since(text: str, settings: Settings, now: datetime) -> datetime:
    """`24h`, `90m`, `2d`, `1w` before now, or a date or date-time (local unless it has an offset)."""
    span = _SPAN.match(text)
    if span:
        return now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
    return parse_time(text, settings, end_of_day=False)


def cmd_digest(settings: Settings, args: argparse.Namespace) -> int:
    from intake.digest import gather, render_text, send_digest
    from intake.digest.sending import DEFAULT_SPAN

    now = datetime.now(UTC)
    try:
        since = read_since(args.since, settings, now) if args.since else None
    except Refused as exc:
        return refused(exc)
    if args.send and not settings.event.digest_to:
        raise ConfigError("event.digest_to", "missing: --send mails the digest to these addresses")
    with database(settings) as sessions:
        if args.send:
            outcome = send_digest(sessions, settings, now, slot=None, since=since)
            print(f"intake: the digest {outcome.why}", file=sys.stderr)
            return EXIT_OK if outcome.sent else EXIT_FAILED
        from intake.digest import last_sent_end

        with sessions() as session:
            last = None if since is not None else last_sent_end(session, settings.event.id)
            start = since or last or now - DEFAULT_SPAN
            digest = gather(session, settings, start, now, since_last=last is not None)
    sys.stdout.write(render_text(digest, settings))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "digest",
        help="the daily digest: what is new since the last one, what needs a person, failed replies",
    )
    p.add_argument(
        "--since",
        metavar="SPAN",
        help="24h, 90m, 2d, or a date or date-time (default: since the last digest sent, else 24h)",
    )
    p.add_argument(
        "--send",
        action="store_true",
        help="mail it to [event] digest_to (and record it: the next digest starts here) instead of printing",
    )
    # It reads the database; only --send needs the SMTP server, and says so when it is missing.
    p.set_defaults(func=cmd_digest, needs=NO_SERVER)

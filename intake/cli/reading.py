"""Reading the intake log: `intake log` (filtered) and `intake show` (one message)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from intake.cli.context import EXIT_OK, NO_SERVER, database, parse_time, refused, when_argument
from intake.config import Settings, load_deployment
from intake.desk import Refused


def cmd_log(settings: Settings, args: argparse.Namespace) -> int:
    from intake.listing import LogFilter, iter_message_entries, write_csv, write_json, write_table

    try:
        where = LogFilter(
            event=None if args.all_events else settings.event.id,
            status=args.status,
            since=parse_time(args.since, settings, False) if args.since else None,
            until=parse_time(args.until, settings, True) if args.until else None,
            sender=args.sender,
            search=args.search,
            numbering=tuple(s.event for s in load_deployment(settings.config_path, needs=NO_SERVER))
            if args.all_events
            else (settings.event,),
            sort=args.sort or ("received" if args.format == "table" else "id"),
            descending=args.desc,
            limit=args.limit,
        )
    except Refused as exc:
        return refused(exc)
    if args.format == "xlsx" and not args.out:
        return refused(Refused("an .xlsx file needs --out FILE"))
    with database(settings) as sessions, sessions() as session:
        entries = iter_message_entries(session, where)  # streamed: read while written
        if args.format == "xlsx":
            return _log_xlsx(settings, entries, args.out)
        if args.format == "json":
            write_json(entries, sys.stdout)
        elif args.format == "csv":
            write_csv(entries, sys.stdout, settings.event.timezone, bom=args.bom)
        else:
            write_table(entries, sys.stdout, settings.event.timezone, narrowed=where.narrowed)
    return EXIT_OK


def _log_xlsx(settings: Settings, entries: Iterable[dict[str, Any]], out: str) -> int:
    from intake.desk.export import log_xlsx

    try:
        with Path(out).open("wb") as fh:
            log_xlsx(entries, fh, settings.event.timezone, f"{settings.event.acronym} intake log")
    except OSError as exc:
        return refused(Refused(f"cannot write to {out}: {exc.strerror}"))
    print(f"the intake log written to {out}", file=sys.stderr)
    return EXIT_OK


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.show import details, find_message, original_text, write_text
    from intake.store import BlobStore

    with database(settings) as sessions, sessions() as session:
        try:
            found = details(session, settings.event, args.ref)
            original = (
                original_text(BlobStore(settings.data_dir), find_message(session, settings.event, args.ref))
                if args.original
                else None
            )
        except Refused as exc:
            return refused(exc)
    if args.format == "json":
        if original is not None:
            found["original_text"] = original
        json.dump(found, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        write_text(found, sys.stdout)
        if original is not None:
            sys.stdout.write("\nOriginal message (plain text):\n" + original)
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("log", help="the intake log, filtered")
    p.add_argument("--format", choices=("table", "json", "csv", "xlsx"), default="table")
    p.add_argument("--out", metavar="FILE", help="write the .xlsx workbook to FILE (--format xlsx)")
    p.add_argument(
        "--bom", action="store_true", help="CSV after a UTF-8 byte order mark, for Excel (--format csv)"
    )
    p.add_argument("--status", help="only messages with this status (accepted, late, held, ...)")
    p.add_argument(
        "--since",
        metavar="WHEN",
        type=when_argument,
        help="received at or after (2026-04-30 or 2026-04-30T18:00, local)",
    )
    p.add_argument(
        "--until",
        metavar="WHEN",
        type=when_argument,
        help="received before (a date: up to the end of that day)",
    )
    p.add_argument("--sender", help="part of the sender's address or name")
    p.add_argument(
        "--search",
        help="words (any case) in the subject, the sender's address or name, or a document's "
        "title, source, file name or number (typed loosely: jca-mv-i-4)",
    )
    p.add_argument(
        "--sort",
        choices=("id", "received", "status", "sender", "subject"),
        help="the order (default: the table by when the mail server received each message; "
        "json and csv by message number, the order of recording)",
    )
    p.add_argument("--desc", action="store_true", help="newest or last first")
    p.add_argument("--limit", type=int)
    p.add_argument(
        "--all-events",
        action="store_true",
        help="every event in the database (default: the event acted on, see --event)",
    )
    p.set_defaults(func=cmd_log, needs=NO_SERVER)

    p = sub.add_parser("show", help="everything about one message: by ID or by document NUMBER")
    p.add_argument("ref", metavar="ID|NUMBER")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--original", action="store_true", help="also print the original message as plain text")
    p.set_defaults(func=cmd_show, needs=NO_SERVER)

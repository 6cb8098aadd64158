"""The documents list and files: `intake export` and `intake documents`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from intake.cli.context import EXIT_OK, NO_SERVER, database, refused
from intake.config import Settings
from intake.desk import Refused


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    import io

    from intake.desk.export import document_rows, write_csv, write_xlsx

    with database(settings) as sessions, sessions() as session:
        rows = document_rows(session, settings.event)
    zone = settings.event.timezone.key
    if args.format == "csv":
        text = io.StringIO()
        write_csv(rows, text, zone, bom=not args.no_bom)
        data = text.getvalue().encode("utf-8")
    else:
        buffer = io.BytesIO()
        write_xlsx(rows, buffer, zone, f"{settings.event.acronym} documents")
        data = buffer.getvalue()
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"{len(rows)} document(s) written to {args.out}", file=sys.stderr)
    elif args.format == "xlsx" and sys.stdout.isatty():
        return refused(Refused("an .xlsx file is not for a terminal: give --out FILE"))
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


def cmd_documents(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.export import write_documents
    from intake.store import BlobStore

    if bool(args.number) == bool(args.all):
        return refused(Refused("name one document NUMBER, or --all"))
    with database(settings) as sessions, sessions() as session:
        try:
            written = write_documents(
                session, BlobStore(settings.data_dir), settings.event, Path(args.out), args.number
            )
        except Refused as exc:
            return refused(exc)
        except OSError as exc:
            return refused(Refused(f"cannot write to {args.out}: {exc.strerror}"))
    for path in written:
        print(path)
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="the documents list: number, title, source, contacts, received, status, files"
    )
    p.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    p.add_argument(
        "--no-bom",
        action="store_true",
        help="CSV without the UTF-8 byte order mark that makes Excel read the names right",
    )
    p.set_defaults(func=cmd_export, needs=NO_SERVER)

    p = sub.add_parser("documents", help="write documents' files under names built from their numbers")
    p.add_argument("number", nargs="?", metavar="NUMBER")
    p.add_argument("--all", action="store_true", help="every accepted document")
    p.add_argument("--out", metavar="DIR", required=True)
    p.set_defaults(func=cmd_documents, needs=NO_SERVER)

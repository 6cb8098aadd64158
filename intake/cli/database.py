"""`intake db upgrade`: apply the migrations."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from intake import db
from intake.cli.context import EXIT_OK, NO_SERVER, safe_url
from intake.config import Settings


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    db.upgrade(settings.database_url, args.revision)
    engine = db.make_engine(settings.database_url)
    try:
        print(
            f"database {safe_url(settings.database_url)} is at {db.current_revision(engine)}",
            file=sys.stderr,
        )
    finally:
        engine.dispose()
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("db", help="database migrations")
    dbsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply the migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade, needs=NO_SERVER)

"""`intake check FILE...`: judge local files as the service would, and print the findings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from intake.cli.context import NO_SERVER
from intake.config import Settings


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    """0 when all pass, 1 when any is refused."""
    from intake.judge.check_cli import run_check

    return run_check([Path(p) for p in args.files], settings.event, sys.stdout)


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="judge local files as the service would, and print the findings")
    p.add_argument("files", nargs="+", metavar="FILE", help="files or folders")
    p.set_defaults(func=cmd_check, needs=NO_SERVER)

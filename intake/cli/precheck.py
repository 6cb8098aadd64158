"""`intake precheck`: the public page where contributors check a document before sending it."""

from __future__ import annotations

import argparse
from typing import Any

from intake.cli.context import NO_SERVER, refused
from intake.config import Settings
from intake.desk import Refused


def cmd_precheck(settings: Settings, args: argparse.Namespace) -> int:
    """Never opens the database: the event's settings and template are all it reads."""
    from intake.precheck.app import PrecheckOptions
    from intake.precheck.judging import Bounds
    from intake.precheck.serve import serve

    options = PrecheckOptions(
        host=args.host,
        port=args.port,
        per_minute=args.per_minute,
        trusted_proxies=tuple(args.trusted_proxy or ()),
        threads=args.threads,
    )
    bounds = Bounds(workers=args.workers)
    try:
        return serve(settings, options, bounds)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        return refused(Refused(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"))


def register(sub: Any) -> None:
    p = sub.add_parser(
        "precheck", help="serve the public page where contributors check a document before sending it"
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="the port (default 8090)")
    p.add_argument(
        "--per-minute",
        type=int,
        default=20,
        metavar="N",
        help="uploads a minute from one address (default 20)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDR",
        help="a reverse proxy whose X-Forwarded-For names the uploader (repeatable; default: none)",
    )
    p.add_argument("--workers", type=int, default=2, help="files judged at once, each in its own process")
    p.add_argument("--threads", type=int, default=4, help="the web server's threads")
    p.set_defaults(func=cmd_precheck, needs=NO_SERVER)  # it judges; it reads no mailbox

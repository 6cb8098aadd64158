"""Dashboard accounts and the dashboard itself: `intake user add|list`, `intake web`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from intake.cli.context import EXIT_OK, NO_SERVER, actor_option, database, refused
from intake.config import Settings, load_deployment
from intake.desk import Refused


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.accounts import add_user, list_users

    with database(settings) as sessions:
        if args.user_command == "list":
            for user in list_users(sessions):
                state = " (disabled)" if user.disabled else ""
                print(f"{user.name}\t{user.role}{state}")
            return EXIT_OK
        try:
            password = None if args.no_password else _read_password(args.password_stdin)
            print(add_user(sessions, args.name, password, args.role, args.actor, update=args.update))
        except Refused as exc:
            return refused(exc)
    return EXIT_OK


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise Refused("no terminal to ask for the password: give it on stdin with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise Refused("the two passwords differ")
    return first


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from intake.web.options import WebOptions
    from intake.web.serve import serve

    with database(settings):
        pass  # the schema check: refuse to serve an old database
    options = WebOptions(
        host=args.host,
        port=args.port,
        session_hours=args.session_hours,
        idle_minutes=args.idle_minutes,
        proxy_user_header=args.trust_proxy_header,
        trusted_proxies=tuple(args.trusted_proxy or ("127.0.0.1", "::1")),
        client_address_header=args.client_address_header,
        secure_cookies=args.secure_cookies,
        threads=args.threads,
    )
    # With several [[events]], the dashboard switches between those sharing this database.
    events = load_deployment(args.config, needs=NO_SERVER)
    try:
        return serve(settings, options, events)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        return refused(Refused(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"))


def register(sub: Any) -> None:
    actor = actor_option()
    p = sub.add_parser("user", help="dashboard accounts")
    users = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = users.add_parser("add", parents=[actor], help="add an account (the password is asked for)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", choices=("admin", "viewer"), default="viewer")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    add.add_argument(
        "--no-password", action="store_true", help="sign in only through the trusted proxy header"
    )
    add.add_argument("--update", action="store_true", help="change an existing account's password and role")
    add.set_defaults(func=cmd_user, needs=NO_SERVER)
    listing = users.add_parser("list", help="the accounts and their roles")
    listing.set_defaults(func=cmd_user, needs=NO_SERVER)

    p = sub.add_parser("web", help="serve the secretariat's dashboard")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--session-hours", type=float, default=8.0, help="a sign-in lasts at most this long (default 8)"
    )
    p.add_argument(
        "--idle-minutes", type=float, default=60.0, help="and ends after this long unused (default 60)"
    )
    p.add_argument(
        "--trust-proxy-header",
        metavar="HEADER",
        help="sign in the account named in this request header, set by your reverse proxy "
        "(e.g. X-Remote-User); off by default: turn it on only when the dashboard is reachable "
        "through that proxy alone",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDRESS",
        help="the proxy's address: the headers are believed from it alone (default 127.0.0.1 and ::1)",
    )
    p.add_argument(
        "--client-address-header",
        metavar="HEADER",
        help="take the client's address for the sign-in throttle from this header (e.g. "
        "X-Forwarded-For, its last entry) when the request comes from a trusted proxy; "
        "off by default: the connection's address",
    )
    p.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (behind HTTPS)")
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=cmd_web, needs=NO_SERVER)

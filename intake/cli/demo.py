"""`intake demo`: the whole service against a local mailbox it starts itself.

The servers (a pymap IMAP server, an aiosmtpd sink writing .eml files) come
from intake.demo; the steps are the real commands, run in this process."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from intake.cli.context import setup_logging, validate_event
from intake.cli.database import cmd_db_upgrade
from intake.cli.reading import cmd_log
from intake.cli.service import cmd_poll
from intake.config import Settings, load_settings, shipped_config_dir
from intake.demo import DEMO_PASSWORD, DEMO_USER, ReplyFolder, free_port, start_pymap, stop


def _serve_dashboard(directory: Path, port: int) -> int:
    """Keep the servers up and serve the dashboard, with a sign-in made for the demo."""
    import secrets

    from intake import db
    from intake.desk.accounts import add_user
    from intake.web.options import WebOptions
    from intake.web.serve import serve

    settings = load_settings()
    password = secrets.token_urlsafe(12)
    engine = db.make_engine(settings.database_url)
    try:
        add_user(db.make_sessionmaker(engine), "secretariat", password, "admin", "demo")
    finally:
        engine.dispose()
    print(
        f"\nThe dashboard: http://127.0.0.1:{port}/  sign in as  secretariat / {password}\n"
        "The local IMAP and SMTP servers stay up, so actions there (admit, reject, ...) send real "
        f"replies to {directory / 'replies'}. Ctrl-C stops everything.",
        file=sys.stderr,
    )
    try:
        return serve(settings, WebOptions(host="127.0.0.1", port=port))
    except KeyboardInterrupt:
        return 0


def _fill_inbox(settings: Settings, imap_port: int) -> None:
    from imapclient import IMAPClient

    from intake.samples import demo_mailbox

    samples = demo_mailbox(settings.event)
    client = IMAPClient("127.0.0.1", port=imap_port, ssl=False, timeout=10)
    client.login(DEMO_USER, DEMO_PASSWORD)
    for _what, raw, received in samples:
        client.append("INBOX", raw, msg_time=received)
    client.logout()
    print(f"intake demo: the inbox now holds {len(samples)} new messages:", file=sys.stderr)
    for what, _, received in samples:
        print(
            f"  - {what} (received {received.astimezone(settings.event.timezone):%d %b %H:%M} Geneva)",
            file=sys.stderr,
        )


def _run_commands(settings: Settings) -> int:
    log_args = argparse.Namespace(
        all_events=False,
        status=None,
        since=None,
        until=None,
        sender=None,
        search=None,
        sort="id",
        desc=False,
        limit=None,
        format="table",
    )
    steps = (
        ("db upgrade", cmd_db_upgrade, argparse.Namespace(revision="head")),
        ("poll --once", cmd_poll, argparse.Namespace(once=True)),
        ("log", cmd_log, log_args),
    )
    for name, command, args in steps:
        print(f"\n$ intake {name}", file=sys.stderr)
        sys.stderr.flush()
        code = command(settings, args)
        sys.stdout.flush()
        if code != 0:
            return code
    return 0


def run_demo(directory: Path, dashboard_port: int | None = None) -> int:
    directory = directory.resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    imap_port, smtp_port = free_port(), free_port()
    os.environ.update(
        {
            "INTAKE_CONFIG": str(shipped_config_dir() / "demo.toml"),
            "INTAKE_IMAP_PORT": str(imap_port),
            "INTAKE_SMTP_PORT": str(smtp_port),
            "INTAKE_DATA_DIR": str(directory),
            "INTAKE_DATABASE_URL": f"sqlite:///{directory / 'intake.db'}",
        }
    )
    settings = load_settings()
    validate_event(settings)
    setup_logging(settings.log_level)
    print(
        f"intake demo: a local IMAP server on 127.0.0.1:{imap_port}, an SMTP server on "
        f"127.0.0.1:{smtp_port}, data in {directory}",
        file=sys.stderr,
    )
    from aiosmtpd.controller import Controller

    replies = ReplyFolder(directory / "replies")
    replies.directory.mkdir()
    smtp = Controller(replies, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    server = start_pymap(imap_port, directory / "imap-server.log")
    try:
        _fill_inbox(settings, imap_port)
        code = _run_commands(settings)
        if code != 0:
            return code
        print(
            f"\nThe local SMTP server received {len(replies.received)} replies, "
            f"written to {replies.directory}:",
            file=sys.stderr,
        )
        for recipient, subject in replies.received:
            print(f"  - to {recipient}: {subject}", file=sys.stderr)
        if dashboard_port is not None:
            return _serve_dashboard(directory, dashboard_port)
        print(
            f"\nThe raw messages and files are in {directory / 'blobs'}; the database is "
            f"{directory / 'intake.db'}. Try: INTAKE_CONFIG={settings.config_path} "
            f"INTAKE_DATABASE_URL=sqlite:///{directory / 'intake.db'} intake log --format json",
            file=sys.stderr,
        )
        return 0
    finally:
        stop(server)
        smtp.stop()


def run(args: argparse.Namespace) -> int:
    return run_demo(Path(args.dir), args.port if args.dashboard else None)


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the service against a local mailbox it starts itself")
    p.add_argument("--dir", default="var/demo", help="where the demo keeps its data (default var/demo)")
    p.add_argument(
        "--dashboard", action="store_true", help="then leave the dashboard running, with a printed sign-in"
    )
    p.add_argument("--port", type=int, default=8080, help="the dashboard's port (default 8080)")
    p.set_defaults(func=None, run=run)

"""`intake demo`: the whole service against a local mailbox it starts itself.

The servers (a pymap IMAP server, an aiosmtpd sink writing .eml files) come
from intake.demo; the steps are the real commands, run in this process."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from intake.cli.context import setup_logging, validate_event
from intake.cli.database import cmd_db_upgrade
from intake.cli.service import cmd_poll
from intake.config import Settings, load_settings, shipped_config_dir
from intake.demo import DEMO_PASSWORD, DEMO_USER, ReplyFolder, free_port, start_pymap, stop
from intake.domain import ReplyStatus
from intake.models import InboundMessage, Reply


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


def _fill_inbox(settings: Settings, imap_port: int) -> list[tuple[str, datetime]]:
    """Deliver the sample morning; returns what each message is and when it arrived."""
    from imapclient import IMAPClient

    from intake.samples import demo_mailbox

    samples = demo_mailbox(settings.event)
    client = IMAPClient("127.0.0.1", port=imap_port, ssl=False, timeout=10)
    client.login(DEMO_USER, DEMO_PASSWORD)
    for _what, raw, received in samples:
        client.append("INBOX", raw, msg_time=received)
    client.logout()
    return [(what, received) for what, _, received in samples]


def _run_commands(settings: Settings) -> None:
    """`intake db upgrade` and `intake poll --once`, as an operator would run them, quietly:
    the demo tells their outcome itself, message by message."""
    cmd_db_upgrade(settings, argparse.Namespace(revision="head"))
    cmd_poll(settings, argparse.Namespace(once=True))


def _outcomes(settings: Settings) -> list[tuple[InboundMessage, list[Reply]]]:
    from sqlalchemy import select

    from intake import db

    engine = db.make_engine(settings.database_url)
    try:
        with db.make_sessionmaker(engine)() as session:
            messages = list(session.scalars(select(InboundMessage).order_by(InboundMessage.uid)))
            replies = list(session.scalars(select(Reply).order_by(Reply.id)))
            for message in messages:
                _ = message.documents  # loaded while the session is open
            return [(m, [r for r in replies if r.message_id == m.id]) for m in messages]
    finally:
        engine.dispose()


def _report(settings: Settings, samples: list[tuple[str, datetime]], directory: Path) -> None:
    """One line per message: what it was, when it arrived, what intake made of it, the answer."""
    zone = settings.event.timezone
    outcomes = _outcomes(settings)
    print(
        f"\nThe deadline is {settings.event.deadline:%d %b %H:%M} Geneva time. "
        "What came in, and what intake did:"
    )
    numbered = {d.id: d.number for message, _ in outcomes for d in message.documents if d.number}
    for (what, received), (message, replies) in zip(samples, outcomes, strict=False):
        # A resend shows the number its document already has (issue 11).
        own = [d.number or numbered.get(d.copy_of_id or 0) for d in message.documents]
        numbers = ", ".join(n for n in own if n) or "-"
        answer = ", ".join(r.kind.replace("_", " ") for r in replies) or "not answered"
        print(
            f"  #{message.id:<3} {message.status:<16} {numbers:<13} {what} "
            f"(received {received.astimezone(zone):%d %b %H:%M}); answer: {answer}"
        )
    kinds = Counter(r.kind.replace("_", " ") for _, replies in outcomes for r in replies)
    sent = sum(1 for _, replies in outcomes for r in replies if r.status == ReplyStatus.SENT)
    summary = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(kinds.items()))
    print(
        f"\n{sent} replies sent to the local SMTP server ({summary}), "
        f"saved as .eml files in {directory / 'replies'}."
    )


def _command(directory: Path, *args: str) -> str:
    """A command that runs as printed in a new shell: absolute paths, the settings it needs."""
    found = shutil.which("intake", path=str(Path(sys.executable).parent))
    program = shlex.quote(found) if found else f"{shlex.quote(sys.executable)} -m intake"
    database = shlex.quote(f"sqlite:///{directory / 'intake.db'}")
    where = f"INTAKE_DATABASE_URL={database} INTAKE_DATA_DIR={shlex.quote(str(directory))}"
    return " ".join((where, program, *args))


PRECHECK_PORT = 8090  # `intake precheck`'s default


def _elsewhere(directory: Path) -> None:
    """Where the pre-check page would run, and the secretariat's digest of the demo's morning."""
    print(
        f"\nThe pre-check page for contributors would run at http://127.0.0.1:{PRECHECK_PORT}/ "
        "(upload a .docx there to read what intake would answer), started by:\n"
        f"  {_command(directory, 'precheck')}\n"
        "The secretariat's daily digest of this morning (new messages, what needs a person, "
        "failed replies, the time left), printed by:\n"
        f"  {_command(directory, 'digest')}"
    )


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
    # For a person: what happened, not how. The servers' protocol chatter and the poller's
    # per-message log lines stay out; a warning or an error still shows.
    setup_logging("warning")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    print(
        f"intake demo: a local IMAP server (127.0.0.1:{imap_port}) and SMTP server "
        f"(127.0.0.1:{smtp_port}); data in {directory}"
    )
    from aiosmtpd.controller import Controller

    replies = ReplyFolder(directory / "replies")
    replies.directory.mkdir()
    smtp = Controller(replies, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    server = start_pymap(imap_port, directory / "imap-server.log")
    try:
        samples = _fill_inbox(settings, imap_port)
        print(
            f"intake demo: {len(samples)} messages delivered; "
            "running `intake db upgrade` and `intake poll --once`"
        )
        _run_commands(settings)
        _report(settings, samples, directory)
        _elsewhere(directory)
        if dashboard_port is not None:
            return _serve_dashboard(directory, dashboard_port)
        print(f"\nTry, in a new shell:\n  {_command(directory, 'show', '1')}")
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

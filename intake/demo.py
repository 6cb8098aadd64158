"""`intake demo`: the whole service on this machine alone, with no outside server.

Starts a local IMAP server (pymap, in-memory, as a subprocess on a free
loopback port), fills its inbox with realistic submissions, and runs the real
commands against it — `db upgrade`, `poll --once`, `log` — on SQLite under the
demo directory. Nothing here is a special path: it is the shipped config
(config/demo.toml) with the ports it was given.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from intake.config import load_settings, shipped_config_dir

DEMO_USER, DEMO_PASSWORD = "demouser", "demopass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f} s")


def start_pymap(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    pymap = shutil.which("pymap", path=str(Path(sys.executable).parent)) or shutil.which("pymap")
    if pymap is None:
        raise RuntimeError("pymap is not installed: pip install 'intake[demo]'")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                pymap,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-tls",
                "dict",
                "--demo-user",
                DEMO_USER,
                "--demo-password",
                DEMO_PASSWORD,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_port(port, process=process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve_dashboard(settings: Any, directory: Path, port: int) -> int:
    """Keep the servers up and serve the dashboard, with a sign-in made for the demo."""
    import secrets

    from intake import db
    from intake.config import load_settings as reload
    from intake.desk.accounts import add_user
    from intake.web.serve import WebOptions, serve

    settings = reload()
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


class _ReplyFolder:
    """An SMTP sink (aiosmtpd) that writes each reply it receives to a numbered .eml file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.received: list[tuple[str, str]] = []  # (recipient, subject)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        import email
        import email.policy

        data = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        number = len(self.received) + 1
        (self.directory / f"{number:03d}.eml").write_bytes(data)
        message = email.message_from_bytes(data, policy=email.policy.default)
        self.received.append((", ".join(envelope.rcpt_tos), str(message.get("Subject", ""))))
        return "250 OK"


def run_demo(directory: Path, dashboard_port: int | None = None) -> int:
    from imapclient import IMAPClient

    from intake.cli import main as intake

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
    print(
        f"intake demo: a local IMAP server on 127.0.0.1:{imap_port}, an SMTP server on "
        f"127.0.0.1:{smtp_port}, data in {directory}",
        file=sys.stderr,
    )
    from aiosmtpd.controller import Controller

    replies = _ReplyFolder(directory / "replies")
    replies.directory.mkdir()
    smtp = Controller(replies, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    server = start_pymap(imap_port, directory / "imap-server.log")
    try:
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
        for argv in (["db", "upgrade"], ["poll", "--once"], ["log"]):
            print(f"\n$ intake {' '.join(argv)}", file=sys.stderr)
            sys.stderr.flush()
            code = intake(argv)
            sys.stdout.flush()
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
            return _serve_dashboard(settings, directory, dashboard_port)
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

"""`intake demo`: the whole service on this machine alone, with no outside server.

Starts a local IMAP server (pymap, in-memory, as a subprocess on a free
loopback port), fills its inbox with realistic submissions, and runs the real
commands against it (intake.cli.demo) — `db upgrade`, `poll --once`, `log` — on
SQLite under the demo directory. Nothing here is a special path: it is the
shipped config (config/demo.toml) with the ports it was given.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


class ReplyFolder:
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

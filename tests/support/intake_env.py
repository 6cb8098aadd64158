"""Running intake in tests the way an operator does: a config file and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from intake.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]

EVENT = """
[event]
id = "jca-mv-2"
name = "2nd meeting of the JCA on Metaverse Standardization"
group = "Joint Coordination Activity on Metaverse Standardization"
acronym = "JCA-MV"
address = "tsbjcamv@itu.int"
address_name = "ITU-T JCA-MV secretariat"
meeting_place = "Geneva"
meeting_date = 2026-05-13
preregistration_deadline = 2026-05-04
deadline = "2026-04-30T23:59:59"
timezone = "Europe/Zurich"
numbering_prefix = "JCA-MV-I-"
numbering_width = 3
"""


@dataclass
class IntakeEnv:
    """A config file pointing at a test IMAP server and database, and the CLI to run on it."""

    config_path: Path
    data_dir: Path
    database_url: str

    def settings(self) -> Settings:
        return load_settings(self.config_path, env={})

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "intake", "--config", str(self.config_path), *args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        return env

    def run(self, *args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=REPO
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"intake {' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\n"
                f"stderr:\n{result.stderr}"
            )
        return result

    def popen(self, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
        """Start intake in the background. A long-running one must log to a file
        (`log`): an unread pipe fills up and blocks the process."""
        if log is None:
            out: int | object = subprocess.PIPE
            err: int | object = subprocess.PIPE
        else:
            out = subprocess.DEVNULL
            err = log.open("w", encoding="utf-8")
        return subprocess.Popen(
            self.command(*args),
            stdout=out,
            stderr=err,
            text=True,
            env=self.env(),
            cwd=REPO,  # type: ignore[arg-type]
        )

    def log_json(self) -> list[dict[str, Any]]:
        result = self.run("log", "--format", "json", check=True)
        return json.loads(result.stdout)


def write_config(
    directory: Path,
    imap_host: str,
    imap_port: int,
    imap_user: str,
    imap_password: str,
    database_url: str,
    smtp_port: int = 1,
    extra: str = "",
    imap_extra: str = "",
    service: str = "",
) -> IntakeEnv:
    """A config file in `directory` for this IMAP server and database. `service` and `imap_extra`:
    more lines of the [service] and [imap] tables; `extra`: tables after [event]."""
    directory.mkdir(parents=True, exist_ok=True)
    data_dir = directory / "data"
    config_path = directory / "intake.toml"
    config_path.write_text(
        f"""
[service]
data_dir = "{data_dir}"
database_url = "{database_url}"
{service}

[imap]
host = "{imap_host}"
port = {imap_port}
user = "{imap_user}"
password = "{imap_password}"
tls = "none"
connect_timeout = 5
read_timeout = 20
{imap_extra}

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout = 5
{EVENT}
{extra}
""",
        encoding="utf-8",
    )
    return IntakeEnv(config_path, data_dir, database_url)


class MailServer(Protocol):
    """A test IMAP server's account (tests.support.dovecot.Dovecot is one)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str: ...


def config_on(server: MailServer, directory: Path, database_url: str, **more: Any) -> IntakeEnv:
    """write_config for this test IMAP server's account; `more` as write_config's keywords."""
    return write_config(
        directory, server.host, server.port, server.user, server.password, database_url, **more
    )

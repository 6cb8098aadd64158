"""The pre-check page as an operator runs it: `intake precheck` in its own process, on a config
whose database and data directory must stay untouched."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.intake_env import REPO, IntakeEnv, write_config
from tests.support.smtp import free_port

TEMPLATE = REPO / "config" / "jca-mv-template.docx"


@dataclass
class Page:
    env: IntakeEnv
    process: subprocess.Popen[str]
    port: int
    tmpdir: Path  # the server's TMPDIR: must stay empty
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(
        self, path: str, name: str, data: bytes, field: str = "document", timeout: float = 120
    ) -> tuple[int, dict[str, str], bytes]:
        """A multipart upload, as a script would send it; (status, headers, body)."""
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body = head + data + f"\r\n--{boundary}--\r\n".encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(
                "POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            )
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def check(self, name: str, data: bytes) -> tuple[int, dict[str, Any]]:
        status, _, body = self.post("/api/check", name, data)
        return status, json.loads(body)

    def pids(self) -> list[int]:
        """The server and its judging workers."""
        children = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            children += [int(p) for p in (task / "children").read_text().split()]
        return [self.process.pid, *children]


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def address_space_limit(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            soft = line.split()[3]
            return None if soft == "unlimited" else int(soft)
    return None


def start_page(tmp: Path, *args: str) -> Page:
    # No database or mailbox exists behind these settings: the page must not need them.
    env = write_config(
        tmp,
        "imap.invalid",
        993,
        "tsbjcamv@itu.int",
        "unused",
        f"sqlite:///{tmp / 'intake.db'}",
        extra=f'template = "{TEMPLATE}"\nmax_attachment_mb = 25\n',
    )
    tmpdir = tmp / "tmp"
    tmpdir.mkdir()
    port = free_port()
    log = tmp / "precheck.log"
    command = env.command("precheck", "--port", str(port), *args)
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w", encoding="utf-8"),
        text=True,
        env={**env.env(), "TMPDIR": str(tmpdir)},
        cwd=tmp,  # a relative path written by mistake would land here
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"intake precheck exited {process.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Page(env, process, port, tmpdir, log)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"intake precheck did not listen on {port} within 90 s: {log.read_text()}")


def stop_page(page: Page) -> None:
    page.process.terminate()
    try:
        page.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        page.process.kill()
        page.process.wait(timeout=15)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    started = start_page(tmp_path_factory.mktemp("precheck"), "--per-minute", "1000")
    try:
        yield started
    finally:
        stop_page(started)

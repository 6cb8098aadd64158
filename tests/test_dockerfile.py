"""The Dockerfile, checked and its steps run here (no Docker engine runs on these machines)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.dovecot import Dovecot
from tests.support.intake_env import REPO
from tests.support.smtp import SmtpSink

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_follows_the_rules() -> None:
    steps = instructions()
    kinds = [k for k, _ in steps]
    base = dict(steps)["FROM"]
    assert re.fullmatch(r"python:3\.1[1-9][\w.-]*-slim[\w.-]*", base), base  # pinned, slim, no :latest
    assert "USER" in kinds and dict(steps)["USER"] not in ("root", "0")
    assert kinds.index("USER") > kinds.index("RUN")  # installs as root, runs as the user
    assert "HEALTHCHECK" in kinds and "VOLUME" in kinds and "CMD" in kinds
    for kind, arg in steps:
        if kind == "RUN" and "apt-get install" in arg:
            assert "--no-install-recommends" in arg and "rm -rf /var/lib/apt/lists" in arg
            assert "libmagic1" in arg
        if kind == "COPY":
            for source in arg.split()[:-1]:
                assert (REPO / source).exists(), source
    json.loads(dict(steps)["CMD"])  # exec form, so SIGTERM reaches the process


def env_from_dockerfile() -> dict[str, str]:
    env: dict[str, str] = {}
    for kind, arg in instructions():
        if kind == "ENV":
            for pair in shlex.split(arg):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@pytest.mark.dovecot
def test_the_images_steps_work_outside_docker(dovecot: Dovecot, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    from intake.demo import free_port

    data = tmp_path / "data"
    data.mkdir()
    env = {k: v.replace("/data", str(data)) for k, v in env_from_dockerfile().items()}
    env["INTAKE_METRICS_HOST"] = "127.0.0.1"
    env["INTAKE_METRICS_PORT"] = str(free_port())
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "INTAKE_IMAP_HOST": dovecot.host,
            "INTAKE_IMAP_PORT": str(dovecot.port),
            "INTAKE_IMAP_USER": dovecot.user,
            "INTAKE_IMAP_PASSWORD": dovecot.password,
            "INTAKE_IMAP_TLS": "none",
            "INTAKE_SMTP_HOST": "127.0.0.1",
            "INTAKE_SMTP_PORT": str(smtp_sink.port),
            "INTAKE_SMTP_TLS": "none",
            "INTAKE_POLL_INTERVAL": "2",
        }
    )
    steps = dict(instructions())
    command = json.loads(steps["CMD"])
    health = json.loads(steps["HEALTHCHECK"].split("CMD", 1)[1].strip())
    log = (tmp_path / "service.log").open("w")
    service = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        healthy = None
        while time.monotonic() < deadline:
            healthy = subprocess.run(health, env=env, capture_output=True, timeout=20)
            if healthy.returncode == 0:
                break
            time.sleep(1)
        assert healthy is not None and healthy.returncode == 0, (tmp_path / "service.log").read_text()[-2000:]
        assert (data / "intake.db").exists()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
    assert service.returncode == 0, (tmp_path / "service.log").read_text()[-2000:]
    assert os.path.exists(data / "intake.db")

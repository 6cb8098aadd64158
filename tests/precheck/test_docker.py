"""docker-compose.yml's second service, `precheck`, run from the image's steps outside Docker
(no Docker engine here): its command serves the page with the environment it is given (no
mailbox or database secret), and its health check passes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.support.intake_env import REPO
from tests.support.smtp import free_port
from tests.test_dockerfile import env_from_dockerfile

COMPOSE = (REPO / "docker-compose.yml").read_text(encoding="utf-8")


def _service(name: str) -> str:
    match = re.search(rf"^  {name}:\n((?:    .*\n|\n)+)", COMPOSE, re.M)
    assert match, f"docker-compose.yml has no service {name}"
    return match.group(1)


def _environment(block: str) -> dict[str, str]:
    match = re.search(r"^    environment:\n((?:      .*\n)+)", block, re.M)
    assert match
    pairs = [line.strip().split(": ", 1) for line in match.group(1).splitlines()]
    return {key: value for key, value in pairs if not key.startswith("#")}


def test_the_precheck_service_runs_and_is_healthy(tmp_path: Path) -> None:
    block = _service("precheck")
    command = json.loads(re.search(r"^    command: (\[.*\])$", block, re.M).group(1))  # type: ignore[union-attr]
    health = json.loads(re.search(r"test: (\[.*\])$", block, re.M).group(1))[1:]  # type: ignore[union-attr]
    assert command[:2] == ["intake", "precheck"] and "read_only: true" in block
    environment = _environment(block)
    assert not any("SECRET" in k or "PASSWORD_FILE" in k or "DATABASE" in k for k in environment)
    port = free_port()
    command = [c.replace("8090", str(port)) for c in command]
    health = [c.replace("8090", str(port)) for c in health]
    env = {
        **env_from_dockerfile(),
        **environment,
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "INTAKE_DATA_DIR": str(tmp_path / "data"),
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'intake.db'}",
        "TMPDIR": str(tmp_path),
    }
    log = tmp_path / "precheck.log"
    with log.open("w") as out:
        service = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        healthy = None
        while time.monotonic() < deadline and service.poll() is None:
            healthy = subprocess.run(health, env=env, capture_output=True, timeout=20)
            if healthy.returncode == 0:
                break
            time.sleep(1)
        assert healthy is not None and healthy.returncode == 0, log.read_text()[-2000:]
    finally:
        service.terminate()
        service.wait(timeout=30)
    assert not (tmp_path / "data").exists()  # it opened neither the database nor the data directory

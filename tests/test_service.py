"""`intake run`: polls on a schedule, survives the server going away, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.corpus import mixed
from tests.support.dovecot import Dovecot
from tests.support.intake_env import write_config

pytestmark = pytest.mark.dovecot


def wait_until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_run_polls_on_schedule_and_survives_the_server_dying(
    dovecot: Dovecot, migrated_url: str, tmp_path: Path
) -> None:
    env = write_config(
        tmp_path,
        dovecot.host,
        dovecot.port,
        dovecot.user,
        dovecot.password,
        migrated_url,
        extra="",
        imap_extra="",
    )
    text = env.config_path.read_text().replace("[service]", "[service]\npoll_interval = 5")
    env.config_path.write_text(text)
    dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in mixed(10, with_faults=False)])
    process = env.popen("run")
    try:
        wait_until(lambda: len(env.log_json()) == 10)
        dovecot.kill()
        time.sleep(6)  # at least one poll fails while the server is down
        assert process.poll() is None, "the service must not exit when IMAP is down"
        dovecot.start()
        dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in mixed(5, start=100, with_faults=False)])
        wait_until(lambda: len(env.log_json()) == 15)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "poll failed: IMAP server" in stderr
    assert "Traceback" not in stderr
    assert "intake stopped" in stderr

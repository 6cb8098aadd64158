"""Fixtures of the fault suite: a service wired to real Dovecot, an aiosmtpd sink and a
database (SQLite and PostgreSQL), the ledger that checks the invariant, and the
scale of the run (short by default, full with INTAKE_FULL=1; see README.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.ledger import Ledger
from tests.faults.proxy import CuttingProxy
from tests.support.dovecot import Dovecot
from tests.support.intake_env import REPO, IntakeEnv, write_config
from tests.support.smtp import SmtpSink
from tests.support.waiting import poll_until

FULL = os.environ.get("INTAKE_FULL", "") not in ("", "0")


def number(name: str, short: int, full: int) -> int:
    return int(os.environ.get(name, str(full if FULL else short)))


@dataclass(frozen=True)
class Scale:
    kill_iterations: int  # kill -9 rounds per command and database
    messages_per_round: int
    seed: int
    cuts: int  # connections cut in the middle of a FETCH
    outages: int  # rounds of each server or database outage
    recoveries: int  # Dovecot killed under `intake run` during filing, then back

    def outage_rounds(self, landed: Callable[[], int]) -> Iterator[int]:
        """Round numbers for an outage test: `outages` of them, then more (five at most) until
        `landed()` counts a fault. A round whose fault comes after the command ended tests
        nothing, and on a quiet machine a short poll can end first."""
        n = 0
        while n < self.outages or (landed() == 0 and n < self.outages + 5):
            yield n
            n += 1


SCALE = Scale(
    kill_iterations=number("INTAKE_KILL_ITERATIONS", 2, 100),
    messages_per_round=number("INTAKE_KILL_MESSAGES", 16, 24),
    seed=number("INTAKE_KILL_SEED", 20260430, 20260430),
    cuts=number("INTAKE_CUT_COUNT", 3, 30),
    outages=number("INTAKE_OUTAGE_ROUNDS", 1, 5),
    recoveries=number("INTAKE_RECOVERY_ROUNDS", 3, 20),
)


@pytest.fixture
def scale() -> Scale:
    return SCALE


def service_config(
    tmp_path: Path,
    dovecot: Dovecot,
    url: str,
    sink: SmtpSink,
    imap_port: int | None = None,
    data_dir: Path | None = None,
) -> IntakeEnv:
    """The config the fault tests run: small batches, a poll and an outbox run every second."""
    env = write_config(
        tmp_path,
        dovecot.host,
        imap_port or dovecot.port,
        dovecot.user,
        dovecot.password,
        url,
        smtp_port=sink.port,
        imap_extra="batch_messages = 10",
    )
    text = env.config_path.read_text().replace(
        "[service]", "[service]\npoll_interval = 1\noutbox_interval = 1"
    )
    if data_dir is not None:
        text = text.replace(f'data_dir = "{env.data_dir}"', f'data_dir = "{data_dir}"')
        env = IntakeEnv(env.config_path, data_dir, env.database_url)
    env.config_path.write_text(text)
    return env


@dataclass
class Running:
    """An intake process whose output goes to files (a pipe nobody reads would block it)."""

    process: subprocess.Popen[bytes]
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> bool:
        """SIGKILL by PID; False if it had already exited."""
        if self.process.poll() is not None:
            return False
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        return True

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the clean exit (SIGKILL and fail if it does not come)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"intake did not stop within {timeout} s of SIGTERM") from None

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout)


_STARTED: list[Running] = []


def start(env: IntakeEnv, *args: str, log_dir: Path) -> Running:
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"intake-{time.monotonic_ns()}.stderr"
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            env.command(*args), stdout=subprocess.DEVNULL, stderr=err, env=env.env(), cwd=REPO
        )
    running = Running(process, stderr_path)
    _STARTED.append(running)
    return running


@pytest.fixture(autouse=True)
def no_service_left_behind() -> Iterator[None]:
    """A test that fails half-way must not leave an intake process running (by PID)."""
    yield
    while _STARTED:
        _STARTED.pop().kill()


def reached(
    count: Callable[[], int], target: int, process: Running | None = None, timeout: float = 120
) -> bool:
    """Wait until `count()` reaches `target` (or `process` exits); False on timeout."""
    return poll_until(
        lambda: count() >= target or (process is not None and not process.alive()), timeout, every=0.003
    )


def one_line_error(stderr: str) -> list[str]:
    """The lines the CLI printed as its own error (`intake: ...`)."""
    return [line for line in stderr.splitlines() if line.startswith("intake: ")]


@pytest.fixture
def ledger(dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Ledger]:
    env = service_config(tmp_path, dovecot, migrated_url, smtp_sink)
    book = Ledger(dovecot, env, smtp_sink)
    try:
        yield book
    finally:
        book.close()


# --- the numbers of the run, printed at its end -------------------------------------------
REPORT: list[str] = []


def report(test: str, line: str) -> None:
    REPORT.append(f"{test}: {line}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section(f"fault suite ({'full' if FULL else 'short'} run)")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def proxied(
    dovecot: Dovecot, migrated_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> Iterator[tuple[Ledger, CuttingProxy]]:
    """The ledger of a service that reaches Dovecot through a cutting proxy (proxy.py)."""
    with CuttingProxy((dovecot.host, dovecot.port)) as proxy:
        env = service_config(tmp_path, dovecot, migrated_url, smtp_sink, imap_port=proxy.port)
        book = Ledger(dovecot, env, smtp_sink)
        try:
            yield book, proxy
        finally:
            book.close()

"""kill -9 of `intake poll --once` and of `intake run` at random moments, round after round.

Each round appends new mail, starts the service, and kills it when it has
recorded a random number of the new messages, or delivered a random number of
the new replies, or just after it delivered the last one (plus a few random
milliseconds, so kills land between any two steps). Then a clean run completes
the work, and the whole invariant (tests/faults/ledger.py) must hold.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import Scale, report, start
from tests.faults.corpus import mail
from tests.faults.ledger import Ledger
from tests.support.waiting import poll_until

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

COMMANDS = {"poll": ("poll", "--once"), "run": ("run",)}
PHASES = {"record": 45, "deliver": 45, "after": 10}  # where kills aim, and how often


def kill_round(ledger: Ledger, command: str, rng: random.Random, first: int, size: int, logs: Path) -> str:
    """One round: new mail, the service started, killed at a random moment, then completed."""
    batch = mail(size, start=first)
    ledger.append(batch)
    recorded, delivered = ledger.recorded(), ledger.delivered()
    owed = sum(m.owes_reply for m in batch)
    phase = rng.choices(list(PHASES), weights=list(PHASES.values()))[0]
    reached: Callable[[], bool]
    if phase == "record":
        target = recorded + rng.randrange(len(batch))
        reached = lambda: ledger.recorded() >= target  # noqa: E731
    elif phase == "deliver":
        target = delivered + rng.randrange(owed)
        reached = lambda: ledger.delivered() >= target  # noqa: E731
    else:
        reached = lambda: ledger.delivered() >= delivered + owed  # noqa: E731

    service = start(ledger.env, *COMMANDS[command], log_dir=logs)
    try:
        assert poll_until(lambda: reached() or not service.alive(), timeout=120, every=0.002), phase
        time.sleep(rng.random() * 0.02)
    finally:
        killed = service.kill()  # also when the wait failed: never leave a service behind
    if killed:
        ledger.note_fault()
    else:
        ledger.tally.missed += 1
        assert service.process.returncode == 0, service.stderr()
    assert "Traceback" not in service.stderr(), service.stderr()

    ledger.wait_for_sessions_to_end()
    ledger.let_time_pass()
    recovery = ledger.env.run("poll", "--once", check=True)
    assert "Traceback" not in recovery.stderr
    ledger.check()
    return phase


@pytest.mark.parametrize("command", list(COMMANDS))
def test_kill_9_at_random_moments(
    command: str, ledger: Ledger, scale: Scale, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(f"{scale.seed}/{request.node.name}")
    size = scale.messages_per_round
    phases = [
        kill_round(ledger, command, rng, n * size, size, tmp_path / "logs")
        for n in range(scale.kill_iterations)
    ]
    report(request.node.name, f"{len(phases)} rounds ({', '.join(phases)}): {ledger.tally.line()}")
    # Most kills must land while the service works, or the test proves little.
    assert ledger.tally.faults >= 0.75 * scale.kill_iterations, ledger.tally.line()

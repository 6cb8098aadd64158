"""The service's retry schedule and what /healthz says while the outside world fails.

The promise in docs/operators.md ("After an outage"): after a failure, attempts
are never more than `service.max_backoff` seconds apart (or the job's own
interval, when that is longer), and /healthz answers 503 from the first failed poll or
delivery run until the next one succeeds.
"""

from __future__ import annotations

import random
from pathlib import Path

from intake import db
from intake.metrics import ServiceState, health
from intake.service import Backoff


def test_the_backoff_doubles_up_to_max_backoff_and_never_beyond() -> None:
    backoff = Backoff(10, 300, rng=random.Random(12))
    delays = [backoff.failed("IMAP server down") for _ in range(40)]
    assert all(d <= 300 for d in delays), delays
    assert 8 <= delays[0] <= 12  # the interval, give or take the jitter of 20 %
    assert delays[1] > delays[0] and delays[2] > delays[1]  # doubling, whatever the jitter
    assert delays[-1] == 300  # long outages settle on the ceiling
    backoff.succeeded()
    assert backoff.failed("again") <= 12  # a new outage starts from the interval again


def test_a_job_slower_than_max_backoff_keeps_its_own_interval() -> None:
    backoff = Backoff(600, 300, rng=random.Random(1))
    delays = [backoff.failed("down") for _ in range(5)]
    assert all(480 <= d <= 600 for d in delays), delays


def test_healthz_is_unhealthy_from_the_first_failure_until_the_next_success(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    db.upgrade(url)
    sessions = db.make_sessionmaker(db.make_engine(url))
    state = ServiceState(poll_interval=60)
    events = [("jca-mv-2", state)]
    state.poll_succeeded(0.1)
    assert health(sessions, events)[0]

    state.poll_failed("jca-mv-2: poll failed: IMAP server 127.0.0.1:143: connecting failed: refused")
    ok, report = health(sessions, events)
    assert not ok and "connecting failed" in report["jca-mv-2"]["poll"], report
    state.poll_succeeded(0.1)
    assert health(sessions, events)[0]

    state.delivery_failed("the SMTP server is unreachable: connection refused")
    ok, report = health(sessions, events)
    assert not ok and report["jca-mv-2"]["delivery"].startswith("the SMTP server is unreachable"), report
    state.delivery_succeeded()
    ok, report = health(sessions, events)
    assert ok and report["status"] == "ok", report

"""PostgreSQL going away under the service, for real, without touching the machine's cluster.

The test's own database is made unreachable from an admin connection to another
database: its sessions are ended (`pg_terminate_backend`), new ones refused
(`ALTER DATABASE ... ALLOW_CONNECTIONS false`, which binds superusers too, unlike
CONNECTION LIMIT), or every new transaction made read-only
(`default_transaction_read_only`): a database that rejects writes.

`intake poll --once` must fail in one clear line and leave nothing half done;
`intake run` must keep going and finish once the database is back. After each,
the whole invariant (tests/faults/ledger.py) holds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intake import db
from tests.faults.conftest import Scale, one_line_error, reached, report, service_config, start
from tests.faults.corpus import mail
from tests.faults.ledger import LEDGER_APP, Ledger
from tests.support.databases import _pg_admin, create_pg_database, drop_pg_database
from tests.support.dovecot import Dovecot
from tests.support.smtp import SmtpSink
from tests.support.waiting import poll_until

pytestmark = [pytest.mark.dovecot, pytest.mark.postgres]


class Postgres:
    """Switches for the test's own database, thrown from an admin session elsewhere."""

    def __init__(self, url: str) -> None:
        self.name = url.rsplit("/", 1)[1]

    def _admin(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with _pg_admin() as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []

    def terminate(self) -> int:
        """End every session on the database but the test's own; how many were ended."""
        rows = self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %(db)s AND application_name <> %(me)s AND pid <> pg_backend_pid()",
            db=self.name,
            me=LEDGER_APP,
        )
        return sum(1 for (ended,) in rows if ended)

    def allow_connections(self, allowed: bool) -> None:
        self._admin(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')

    def read_only(self, on: bool) -> None:
        if on:
            self._admin(f'ALTER DATABASE "{self.name}" SET default_transaction_read_only = on')
        else:
            self._admin(f'ALTER DATABASE "{self.name}" RESET default_transaction_read_only')


@pytest.fixture
def pg(tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink) -> Iterator[tuple[Ledger, Postgres]]:
    url = create_pg_database()
    db.upgrade(url)
    switches = Postgres(url)
    book = Ledger(dovecot, service_config(tmp_path, dovecot, url, smtp_sink), smtp_sink)
    try:
        yield book, switches
    finally:
        book.close()
        switches.allow_connections(True)
        drop_pg_database(url)


def test_sessions_terminated_mid_poll(
    pg: tuple[Ledger, Postgres], scale: Scale, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger, postgres = pg
    rng = random.Random(f"{scale.seed}/{request.node.name}")
    # A termination that finds every session idle in the pool misses (the pool replaces it unseen).
    for n in scale.outage_rounds(lambda: ledger.tally.faults):
        ledger.append(mail(30, start=n * 30))
        target = ledger.recorded() + rng.randrange(1, 20)
        poll = start(ledger.env, "poll", "--once", log_dir=tmp_path / "logs")
        assert reached(ledger.recorded, target, poll)
        while poll.alive():  # end its sessions until one of them was in use
            postgres.terminate()
            time.sleep(rng.random() * 0.2)
        stderr = poll.stderr()
        assert "Traceback" not in stderr, stderr
        if poll.wait() == 0:
            ledger.tally.missed += 1
        else:
            ledger.note_fault()
            assert poll.wait() == 1
            [error] = one_line_error(stderr)
            assert error.startswith("intake: database error: "), error
        ledger.check(complete=False)
        ledger.wait_for_sessions_to_end()
        ledger.let_time_pass()
        ledger.env.run("poll", "--once", check=True)
        ledger.check()
    report(request.node.name, ledger.tally.line())
    assert ledger.tally.faults >= 1


def test_sessions_terminated_under_the_service(
    pg: tuple[Ledger, Postgres], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger, postgres = pg
    ledger.append(mail(45))
    service = start(ledger.env, "run", log_dir=tmp_path / "logs")
    try:
        for target in (5, 15, 25):
            assert reached(ledger.recorded, target), service.stderr()
            if postgres.terminate():
                ledger.tally.faults += 1
            time.sleep(0.2)
        assert poll_until(ledger.settle, timeout=120), service.stderr()
    finally:
        code = service.stop()
    assert code == 0 and "Traceback" not in service.stderr(), service.stderr()
    ledger.check()
    report(request.node.name, ledger.tally.line())


def test_database_refusing_connections_then_back(
    pg: tuple[Ledger, Postgres], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger, postgres = pg
    ledger.append(mail(40))
    service = start(ledger.env, "run", log_dir=tmp_path / "logs")
    try:
        assert reached(ledger.recorded, 10), service.stderr()
        postgres.allow_connections(False)
        postgres.terminate()
        ledger.tally.faults += 1
        assert poll_until(lambda: "database error" in service.stderr(), timeout=30), service.stderr()
        assert service.alive()
        # A one-off run while it is down: one clear line, exit 1.
        down = ledger.env.run("poll", "--once")
        assert down.returncode == 1 and "Traceback" not in down.stderr, down.stderr
        [error] = one_line_error(down.stderr)
        assert "database" in error and "not currently accepting connections" in error, error
        postgres.allow_connections(True)
        ledger.append(mail(10, start=40))
        assert poll_until(ledger.settle, timeout=180), service.stderr()
    finally:
        postgres.allow_connections(True)
        code = service.stop()
    assert code == 0 and "Traceback" not in service.stderr(), service.stderr()
    ledger.check()
    report(request.node.name, ledger.tally.line())


def test_database_rejecting_writes_mid_poll(
    pg: tuple[Ledger, Postgres], scale: Scale, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger, postgres = pg
    rng = random.Random(f"{scale.seed}/{request.node.name}")
    for n in range(scale.outages):
        ledger.append(mail(40, start=n * 40))
        target = ledger.recorded() + rng.randrange(1, 30)
        poll = start(ledger.env, "poll", "--once", log_dir=tmp_path / "logs")
        assert reached(ledger.recorded, target, poll)
        postgres.read_only(True)
        postgres.terminate()  # its new sessions are read-only
        code = poll.wait()
        if code == 0:
            ledger.tally.missed += 1
        else:
            ledger.note_fault()
            assert code == 1 and "Traceback" not in poll.stderr(), poll.stderr()
            [error] = one_line_error(poll.stderr())
            assert error.startswith("intake: database error: "), error

        # While writes are refused, a run records nothing and files nothing.
        before = ledger.recorded()
        inbox = len(ledger.dovecot.uids("INBOX"))
        refused = ledger.env.run("poll", "--once")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        [error] = one_line_error(refused.stderr)
        assert "read-only transaction" in error, error
        assert ledger.recorded() == before and len(ledger.dovecot.uids("INBOX")) == inbox

        postgres.read_only(False)
        ledger.check(complete=False)
        ledger.wait_for_sessions_to_end()
        ledger.let_time_pass()
        ledger.env.run("poll", "--once", check=True)
        ledger.check()
    report(request.node.name, ledger.tally.line())

"""The catalogue's mailbox: every case appended to a Dovecot of its own and polled once
by the real CLI, on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from intake import db
from tests.mail.cases import MailCase, all_cases, write_all
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.dovecot import Dovecot
from tests.support.fixtures import _require_dovecot
from tests.support.intake_env import IntakeEnv, write_config


@dataclass(frozen=True)
class Polled:
    """The catalogue after one `intake poll --once`: each case and its log entry."""

    env: IntakeEnv
    cases: dict[str, MailCase]
    entries: dict[str, dict[str, Any]]  # case name -> its entry in `intake log --format json`
    stderr: str
    eml_dir: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def polled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polled]:
    _require_dovecot()
    tmp = tmp_path_factory.mktemp(f"catalogue-{request.param}")
    url = f"sqlite:///{tmp / 'intake.db'}" if request.param == "sqlite" else create_pg_database()
    server = Dovecot(Dovecot.make_workdir())
    try:
        db.upgrade(url)
        server.start()
        # The tests write the catalogue; the poller reads the files they wrote.
        eml_dir = tmp / "eml"
        paths = {p.stem: p for p in write_all(eml_dir)}
        cases = {case.name: case for case in all_cases()}
        uids = server.append_many(
            "INBOX", [(paths[name].read_bytes(), case.received_at) for name, case in cases.items()]
        )
        env = write_config(tmp, server.host, server.port, server.user, server.password, url)
        result = env.run("poll", "--once", check=True)
        by_uid = {entry["uid"]: entry for entry in env.log_json()}
        entries = {name: by_uid[uid] for name, uid in zip(cases, uids, strict=True)}
        yield Polled(env, cases, entries, result.stderr, eml_dir)
    finally:
        server.kill()
        shutil.rmtree(server.workdir, ignore_errors=True)
        if request.param == "postgresql":
            drop_pg_database(url)

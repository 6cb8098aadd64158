"""Models and migrations agree, on SQLite and on PostgreSQL; up and down both work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from intake import db
from intake.models import Base
from tests.support.intake_env import REPO

TABLES = {
    "mailbox_state",
    "inbound_message",
    "document",
    "finding",
    "reply",
    "audit_event",
    "document_counter",
    "desk_user",  # issue 5: the secretariat's desk
    "web_session",
    "signin_throttle",  # issue 13: sign-in throttle shared by restarts and replicas
    "digest_run",  # issue 14: the daily digest, one per day across replicas
}


def _diff(url: str) -> list[object]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_match_the_models(database_url: str) -> None:
    db.upgrade(database_url)
    assert _tables(database_url) == TABLES
    assert _diff(database_url) == []


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    db.upgrade(database_url)
    db.downgrade(database_url, "base")
    assert _tables(database_url) == set()
    db.upgrade(database_url)
    assert _tables(database_url) == TABLES
    assert _diff(database_url) == []


def _intake(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_intake_db_upgrade_on_an_empty_database(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {
        "PATH": "/usr/bin:/bin",
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_IMAP_HOST": "localhost",
        "INTAKE_IMAP_USER": "u",
        "INTAKE_IMAP_PASSWORD": "p",
        "INTAKE_SMTP_HOST": "localhost",
    }
    result = _intake(env, tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    engine = db.make_engine(database_url)
    try:
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()
    assert _tables(database_url) == TABLES
    # Running it again is harmless.
    again = _intake(env, tmp_path, "db", "upgrade")
    assert again.returncode == 0, again.stderr


def test_alembic_ini_points_at_the_migrations() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(REPO / "alembic.ini")))
    assert script.get_current_head() == db.head_revision()


def test_a_database_behind_the_newest_migration_is_refused_at_start(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`intake poll` checks the schema before anything else: none, or an older migration, and it
    stops with one line naming where the database stands and what to run; once upgraded, it
    gets past the check (here to the IMAP server, which is not there)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_IMAP_HOST": "127.0.0.1",
        "INTAKE_IMAP_PORT": "9",
        "INTAKE_IMAP_USER": "u",
        "INTAKE_IMAP_PASSWORD": "p",
        "INTAKE_SMTP_HOST": "127.0.0.1",
        "INTAKE_SMTP_PORT": "9",
        "INTAKE_DATA_DIR": str(tmp_path / "data"),
    }

    engine = db.make_engine(database_url)
    try:
        assert db.current_revision(engine) is None
        db.upgrade(database_url, "0004_digest_run")
        assert db.current_revision(engine) == "0004_digest_run"
    finally:
        engine.dispose()
    behind = _intake(env, tmp_path, "poll", "--once")
    assert behind.returncode != 0
    expected = f"is at migration 0004_digest_run, not {db.head_revision()}: run `intake db upgrade` first"
    assert expected in behind.stderr, behind.stderr
    assert "Traceback" not in behind.stderr and len(behind.stderr.strip().splitlines()) == 1, behind.stderr
    db.upgrade(database_url)
    current = _intake(env, tmp_path, "poll", "--once")
    assert "migration" not in current.stderr and "Traceback" not in current.stderr, current.stderr
    assert "127.0.0.1:9" in current.stderr or "refused" in current.stderr, current.stderr

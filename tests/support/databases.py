"""Database fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is the one on 127.0.0.1:5432 (user postgres, trust auth): each test
gets a database of its own, created from `test` and dropped afterwards. Where
PostgreSQL is unreachable the PostgreSQL half is skipped, except under CI=true,
where that fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("INTAKE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True, connect_timeout=5
    )


def _require_postgres() -> None:
    try:
        with _pg_admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def create_pg_database() -> str:
    _require_postgres()
    name = "intake_" + uuid.uuid4().hex[:12]
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'intake.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A database with every migration applied."""
    from intake import db

    db.upgrade(database_url)
    return database_url

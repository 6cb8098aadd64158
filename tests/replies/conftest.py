"""Fixtures for the reply tests: the event, real databases, a real SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from intake.config import EventSettings, Settings, load_settings
from intake.db import make_engine, make_sessionmaker
from intake.models import Base
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.smtp import SmtpSink

BASE_ENV = {
    "INTAKE_IMAP_HOST": "127.0.0.1",
    "INTAKE_IMAP_USER": "tsbjcamv@itu.int",
    "INTAKE_IMAP_PASSWORD": "unused",
    "INTAKE_SMTP_HOST": "127.0.0.1",
    "INTAKE_SMTP_TLS": "none",
}


def settings_for(sink: SmtpSink | None = None, **env: str) -> Settings:
    """Settings from the shipped event file, pointed at the sink, like a deployment."""
    values = dict(BASE_ENV)
    if sink is not None:
        values["INTAKE_SMTP_PORT"] = str(sink.port)
    values.update(env)
    return load_settings(env=values)


@pytest.fixture(scope="session")
def event() -> EventSettings:
    return settings_for().event


class Clock:
    """The one clock of a test: `now_fn` for the outbox, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 4, 20, 9, 0, tzinfo=UTC))


@dataclass
class Database:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A uniquely named PostgreSQL database for this module, dropped afterwards.

    Skipped when PostgreSQL is unreachable, failed instead under CI=true
    (tests.support.databases decides both).
    """
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty schema on SQLite (a file) and on PostgreSQL: every test runs on both.

    Engines and sessions come from intake.db, as in the service (SQLite in WAL
    mode with a busy timeout; sessions that do not expire on commit).
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'intake.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    try:
        yield Database(url, engine, make_sessionmaker(engine))
    finally:
        if request.param == "postgresql":  # the database is shared by the module
            Base.metadata.drop_all(engine)
        engine.dispose()

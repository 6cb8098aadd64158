"""Database engines and sessions, and applying the Alembic migrations.

SQLite is the embedded default (one process; WAL so readers don't block the
poller); PostgreSQL is the production database (through psycopg 3).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Engine,
    Executable,
    LargeBinary,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

V = TypeVar("V", str, int)
IN_LIST = 500  # values per IN (...) list: well under SQLite's limit on bound parameters


def in_lists(values: Iterable[V]) -> Iterator[list[V]]:
    """The distinct values, sorted, in lists of at most IN_LIST: one indexed query each."""
    wanted = sorted(set(values))
    for start in range(0, len(wanted), IN_LIST):
        yield wanted[start : start + IN_LIST]


def insert_rows(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], returning: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """Insert `rows` (dicts with the same keys, every column that has no server-side value)
    into `table` in one statement; the `returning` columns of each new row, in no set order.

    On PostgreSQL one short statement takes a column of values per parameter: `INSERT ...
    SELECT * FROM unnest(%(p0)s::type[], ...)`. The statement SQLAlchemy would write instead
    (one VALUES group per row, 100 rows of a message: 72 KB) is too long for psycopg's cache
    of converted queries (4 KB), so every batch paid a regular expression over its whole text
    (7 ms) before it was sent. Rows with a bytes column (a reply's composed message) are sent
    one after the other instead (psycopg's pipelined executemany of a one-row statement), so
    a batch of rejections, each with the blank template attached, is not gathered into one
    parameter. Elsewhere, SQLAlchemy's executemany (with RETURNING: its multi-VALUES form)."""
    if not rows:
        return []
    columns = tuple(rows[0])
    if session.get_bind().dialect.name == "postgresql" and not _binary(table, columns):
        arrays = {f"p{i}": [row[c] for row in rows] for i, c in enumerate(columns)}
        result = session.execute(_unnest_insert(table, columns, tuple(returning)), arrays)
    elif returning:
        result = session.execute(insert(table).returning(*(table.c[c] for c in returning)), list(rows))
    else:
        session.execute(insert(table), list(rows))
        return []
    return [tuple(row) for row in result] if returning else []


def _binary(table: Table, columns: Sequence[str]) -> bool:
    return any(isinstance(table.c[c].type, LargeBinary) for c in columns)


@lru_cache(maxsize=64)
def _unnest_insert(table: Table, columns: tuple[str, ...], returning: tuple[str, ...]) -> Executable:
    dialect = postgresql.dialect()
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"CAST(:p{i} AS {table.c[c].type.compile(dialect=dialect)}[])" for i, c in enumerate(columns)
    )
    names = ", ".join(quote(c) for c in columns)
    target = dialect.identifier_preparer.format_table(table)
    sql = f"INSERT INTO {target} ({names}) SELECT * FROM unnest({arrays})"
    if returning:
        sql += " RETURNING " + ", ".join(quote(c) for c in returning)
    statement = text(sql).bindparams(
        *(bindparam(f"p{i}", type_=postgresql.ARRAY(table.c[c].type)) for i, c in enumerate(columns))
    )
    return statement.columns(*(table.c[c] for c in returning)) if returning else statement


def normalise_url(url: str) -> str:
    """Let operators write postgresql://; we always talk to it through psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file this URL names, if it does not exist yet (opening it would create it)."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # application_name shows which intake process holds a lock (pg_stat_activity).
    connect_args = {"application_name": f"intake:{os.getpid()}", "connect_timeout": 10}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash
    # can lose the last commits, and those messages are still in the mailbox.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLite's own lower() folds only ASCII: searches fold through Python's casefold (see
    # intake.listing.folded), so "ВКЛАД" finds "Вклад" and "łukasz" finds "Łukasz".
    dbapi_connection.create_function(FOLD_FUNCTION, 1, _fold, deterministic=True)


FOLD_FUNCTION = "intake_fold"


def _fold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_shipped" / "migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the migrations directory is missing from this installation")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["database_url"] = normalise_url(url)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


# The newest migration in migrations/versions. Every command checks the database against it
# before it starts; reading it from alembic's script directory cost 0.2 s of every start
# (alembic imported, every migration file loaded). tests/test_migrations.py fails when a
# migration is added and this is not moved on.
SCHEMA_HEAD = "0006_reply_due"


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, read from alembic's version table (None: no schema)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return ", ".join(sorted(versions)) or None


def head_revision() -> str:
    return SCHEMA_HEAD

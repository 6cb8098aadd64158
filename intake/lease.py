"""One poller per mailbox folder at a time, across processes and replicas.

On PostgreSQL: a session-level advisory lock, held on a connection of its own
for as long as the poll runs. When its holder dies, PostgreSQL ends the
session and frees the lock, so another replica takes over at its next poll.
On SQLite (one machine): an exclusive lock on a file beside the database.
Either way, a poller that cannot take the lock skips its turn: the other one
is doing the work.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url


def lock_key(mailbox: str, folder: str) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock."""
    digest = hashlib.sha256(f"intake-poller\0{mailbox}\0{folder}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PollerLock:
    """Try to become the one poller of a mailbox folder; `held` says whether we did."""

    def __init__(self, engine: Engine, mailbox: str, folder: str) -> None:
        self.engine = engine
        self.key = lock_key(mailbox, folder)
        self.held = False
        self._connection: Connection | None = None
        self._file: int | None = None
        self._path = _lock_path(engine, mailbox, folder)

    def acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            self._connection = self.engine.connect()
            got = self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar_one()
            self._connection.commit()
            if not got:
                self._connection.close()
                self._connection = None
            self.held = bool(got)
            return self.held
        if self._path is None:  # an in-memory SQLite database: one process by definition
            self.held = True
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._file = fd
        self.held = True
        return True

    def holder(self) -> str:
        """Who holds the lock, as far as we can tell (for the operator's message)."""
        if self._path is not None and self._path.exists():
            pid = self._path.read_text(encoding="ascii", errors="replace").strip()
            return f"process {pid}" if pid else "another process"
        return "another process"

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self._connection.commit()
            except Exception:  # noqa: BLE001 - a dead connection has released it already
                pass
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            os.close(self._file)  # closing the descriptor releases the flock
            self._file = None
        self.held = False

    def __enter__(self) -> PollerLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _lock_path(engine: Engine, mailbox: str, folder: str) -> Path | None:
    if engine.dialect.name != "sqlite":
        return None
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        return None
    key = hashlib.sha256(f"{mailbox}\0{folder}".encode()).hexdigest()[:12]
    return Path(f"{database}.poller-{key}.lock")

"""The data directory's disk full in the middle of a run, and a database on a read-only disk.

The data directory (and, for SQLite, the database file) lives on a small
tmpfs mounted for the test (as root; skipped where mounting is not allowed).
The mail does not fit: writing a blob, or SQLite writing its pages, fails with
ENOSPC part-way through. The service must fail cleanly, leave no half-written
file behind, record nothing without its bytes, and finish once there is room.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intake import db
from tests.faults.conftest import one_line_error, report, service_config, start
from tests.faults.corpus import mail
from tests.faults.ledger import Ledger
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.dovecot import Dovecot
from tests.support.smtp import SmtpSink
from tests.support.waiting import poll_until

pytestmark = pytest.mark.dovecot

SMALL = "1m"  # less than the mail appended below needs
ROOMY = "256m"


@dataclass
class Disk:
    """A tmpfs mounted on `path`, resizable and switchable to read-only."""

    path: Path

    def mount(self, size: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")

    def remount(self, options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(self.path)], check=True, capture_output=True)

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    def usage(self) -> str:
        return subprocess.run(["df", "-k", str(self.path)], capture_output=True, text=True).stdout

    def leftovers(self) -> list[Path]:
        """Temporary files a failed write left behind."""
        return [p for p in self.path.rglob(".tmp-*")]


@pytest.fixture(params=["sqlite", "postgresql"])
def on_small_disk(
    request: pytest.FixtureRequest, tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink
) -> Iterator[tuple[Ledger, Disk]]:
    disk = Disk(tmp_path / "disk")
    disk.mount(ROOMY)
    url = f"sqlite:///{disk.path / 'intake.db'}" if request.param == "sqlite" else create_pg_database()
    book: Ledger | None = None
    try:
        db.upgrade(url)
        env = service_config(tmp_path, dovecot, url, smtp_sink, data_dir=disk.path / "data")
        book = Ledger(dovecot, env, smtp_sink)
        disk.remount(f"size={SMALL}")
        yield book, disk
    finally:
        if book is not None:
            book.close()
        disk.unmount()
        if request.param == "postgresql":
            with contextlib.suppress(Exception):
                drop_pg_database(url)


def test_disk_full_mid_poll(on_small_disk: tuple[Ledger, Disk], request: pytest.FixtureRequest) -> None:
    ledger, disk = on_small_disk
    ledger.append(mail(40))
    full = ledger.env.run("poll", "--once")
    assert full.returncode == 1, full.stderr
    ledger.note_fault()
    assert disk.leftovers() == []
    ledger.check(complete=False)
    assert 0 < ledger.recorded() < 40, (disk.usage(), full.stderr)

    disk.remount(f"size={ROOMY}")
    ledger.let_time_pass()
    ledger.env.run("poll", "--once", check=True)
    ledger.check()
    report(request.node.name, ledger.tally.line())


@pytest.fixture
def blobs_on_small_disk(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink
) -> Iterator[tuple[Ledger, Disk]]:
    """Only the data directory on the small disk (SQLite elsewhere): the blob store hits ENOSPC."""
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    db.upgrade(url)
    disk = Disk(tmp_path / "disk")
    disk.mount(SMALL)
    book = Ledger(
        dovecot, service_config(tmp_path, dovecot, url, smtp_sink, data_dir=disk.path / "data"), smtp_sink
    )
    try:
        yield book, disk
    finally:
        book.close()
        disk.unmount()


def test_disk_full_is_reported_in_one_line(blobs_on_small_disk: tuple[Ledger, Disk]) -> None:
    ledger, _disk = blobs_on_small_disk
    ledger.append(mail(40))
    full = ledger.env.run("poll", "--once")
    assert full.returncode == 1
    assert "Traceback" not in full.stderr, full.stderr
    [error] = one_line_error(full.stderr)
    assert "No space left on device" in error, error


def test_disk_full_is_logged_once_by_the_service(
    blobs_on_small_disk: tuple[Ledger, Disk], tmp_path: Path
) -> None:
    ledger, disk = blobs_on_small_disk
    ledger.append(mail(40))
    service = start(ledger.env, "run", log_dir=tmp_path / "logs")
    try:
        assert poll_until(lambda: "No space left" in service.stderr(), 60), service.stderr()
        time.sleep(2.5)  # a few poll intervals
        disk.remount(f"size={ROOMY}")
        assert poll_until(ledger.settle, timeout=120), service.stderr()
    finally:
        service.stop()
    stderr = service.stderr()
    assert "Traceback" not in stderr, stderr
    assert stderr.count("No space left on device") == 1, stderr


def test_disk_full_under_the_service(
    on_small_disk: tuple[Ledger, Disk], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger, disk = on_small_disk
    ledger.append(mail(40))
    service = start(ledger.env, "run", log_dir=tmp_path / "logs")
    try:
        assert poll_until(lambda: "No space left" in service.stderr() or "full" in service.stderr(), 60), (
            service.stderr()
        )
        ledger.note_fault(smtp=False)
        assert service.alive(), service.stderr()
        disk.remount(f"size={ROOMY}")
        assert poll_until(ledger.settle, timeout=120), service.stderr()
    finally:
        code = service.stop()
    assert code == 0, service.stderr()
    assert disk.leftovers() == []
    ledger.check()
    report(request.node.name, ledger.tally.line())


def test_read_only_disk_under_sqlite(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink, request: pytest.FixtureRequest
) -> None:
    """A SQLite database that rejects writes: its file system remounted read-only between runs
    (a mounted file system cannot go read-only while a process writes to it)."""
    disk = Disk(tmp_path / "disk")
    disk.mount(ROOMY)
    url = f"sqlite:///{disk.path / 'intake.db'}"
    db.upgrade(url)
    ledger = Ledger(dovecot, service_config(tmp_path, dovecot, url, smtp_sink), smtp_sink)
    try:
        ledger.append(mail(20))
        ledger.env.run("poll", "--once", check=True)
        ledger.check()
        ledger.close()
        ledger.append(mail(20, start=20))
        disk.remount("ro")
        inbox = len(dovecot.uids("INBOX"))
        refused = ledger.env.run("poll", "--once")
        assert refused.returncode == 1, refused.stderr
        assert "Traceback" not in refused.stderr, refused.stderr
        [error] = one_line_error(refused.stderr)
        # SQLite's words: "unable to open database file" (WAL needs its -shm file) or "readonly".
        assert error.startswith("intake: database error: "), error
        # Nothing was filed that could not be recorded.
        assert len(dovecot.uids("INBOX")) == inbox == 20
        disk.remount("rw")
        ledger.env.run("poll", "--once", check=True)
        ledger.check()
    finally:
        ledger.close()
        with contextlib.suppress(subprocess.CalledProcessError):
            disk.remount("rw")
        disk.unmount()
    report(request.node.name, "read-only SQLite refused cleanly, then completed")

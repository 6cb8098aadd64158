"""The content-addressed store of raw bytes: every message and every attachment.

A blob is named by the SHA-256 of its bytes and lives under
`<data_dir>/blobs/ab/abcd…` (one level of 256 fan-out directories, as git
stores its loose objects). The sender's file name is never used as a path.
A blob is written (to a temporary file, renamed) and made durable before the
database commit that refers to it, and a blob already present is not
rewritten. One at a time (`put`), each file and its directory are fsynced; a
batch's blobs are written with `put(..., durable=False)` and then made durable
together by one `start_sync()` (syncfs of the data directory's file system, in a
thread; the poller waits for it just before its commit), which costs one flush
instead of two fsyncs per message.

Until 2026-12 blobs went one level deeper, `blobs/ab/cd/abcd…`: 65,536
directories, so nearly every blob of a store's first tens of thousands made two
new directories (about 1 ms of the poller's time per blob on the project
machine, more than writing the blob itself). Blobs written that way are still
found where they are; they are not moved.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path


class StoreError(Exception):
    """The data directory cannot be written (full, read-only, gone). One line for the operator."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "blobs"
        self._root = str(self.root)
        self._unsynced = False  # blobs written with durable=False since the last flush
        # Fan-out directories ("ab") seen to exist: not asked for or created again; forgotten
        # when one turns out to be gone (an operator's clean-up).
        self._dirs: set[str] = set()

    def path(self, digest: str) -> Path:
        """Where the blob named `digest` is (or goes): `blobs/ab/abcd…`, or where a store
        written before 2026-12 put it, `blobs/ab/cd/abcd…`, when it is there."""
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        here = self.root / digest[:2] / digest
        if here.exists():
            return here
        earlier = self.root / digest[:2] / digest[2:4] / digest
        return earlier if earlier.exists() else here

    def put(self, data: bytes, digest: str | None = None, durable: bool = True) -> str:
        """Store `data` (whose SHA-256 is `digest`, when the caller knows it). With
        `durable=False` the caller must wait for `start_sync()` before it commits a row naming it."""
        digest = digest or sha256_hex(data)
        fan = digest[:2]
        folder = f"{self._root}/{fan}"
        target = f"{folder}/{digest}"
        if os.path.exists(target) or os.path.exists(f"{folder}/{digest[2:4]}/{digest}"):
            return digest
        try:
            created, fd, tmp = self._temporary(folder, fan)
        except OSError as exc:
            raise StoreError(f"the data directory {self.root} cannot be written: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
            if not durable:
                self._unsynced = True
                return digest
            # The rename (and a new fan-out directory) must survive a power cut too:
            # the database row committed next points at this file.
            _fsync_directory(folder)
            if created:
                _fsync_directory(self._root)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StoreError(f"the data directory {self.root} cannot be written: {exc.strerror}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def _temporary(self, folder: str, fan: str) -> tuple[bool, int, str]:
        """A new temporary file in the blob's fan-out directory; whether that directory was new."""
        created = False
        if fan not in self._dirs:
            created = _make_directory(folder)
            self._dirs.add(fan)
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except FileNotFoundError:  # removed since it was seen (an operator's clean-up)
            created = _make_directory(folder)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        return created, fd, tmp

    def written_elsewhere(self) -> None:
        """Another process (a worker) wrote blobs here with durable=False: the next `start_sync()` flushes."""
        self._unsynced = True

    def start_sync(self) -> Callable[[], None]:
        """Make every blob written with durable=False durable (files, renames, directories),
        in a thread, so that the caller does its database work while the disk
        flushes (a batch's 25 MB: 15-40 ms on the project machine, all of it waiting). Call
        what this returns before the commit that names the blobs: it returns once they are
        durable, or raises StoreError, each time it is called. Nothing may be `put` between."""
        if not self._unsynced:
            return lambda: None
        failed: list[StoreError] = []

        def flush() -> None:
            try:
                self._flush()
            except StoreError as exc:
                failed.append(exc)

        thread = threading.Thread(target=flush, name="intake-blob-sync", daemon=True)
        thread.start()

        def wait() -> None:
            thread.join()
            if failed:
                raise failed[0]
            self._unsynced = False

        return wait

    def _flush(self) -> None:
        try:
            _syncfs(self.root)  # ctypes lets go of the GIL for the call
        except OSError as exc:
            raise StoreError(f"the data directory {self.root} cannot be written: {exc.strerror}") from exc

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()


def _make_directory(path: str) -> bool:
    """Make `path` (and the store's root, the first time); whether it was new."""
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)
    return True


def _fsync_directory(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_LIBC = ctypes.CDLL(None, use_errno=True)  # this process's own symbols, libc among them


def _syncfs(path: Path) -> None:
    """syncfs(2): flush the whole file system holding `path` (Linux); os.sync() elsewhere."""
    syncfs = getattr(_LIBC, "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
    finally:
        os.close(fd)

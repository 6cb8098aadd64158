"""The content-addressed store of raw bytes: every message and every attachment.

A blob is named by the SHA-256 of its bytes and lives under
`<data_dir>/blobs/ab/cd/abcd…`. The sender's file name is never used as a path.
A blob is written (to a temporary file, renamed) and made durable before the
database commit that refers to it, and a blob already present is not
rewritten. One at a time (`put`), each file and its directory are fsynced; a
batch's blobs are written with `put(..., durable=False)` and then made durable
together by one `sync()` (syncfs of the data directory's file system), which
costs one flush instead of two fsyncs per message.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from pathlib import Path


class StoreError(Exception):
    """The data directory cannot be written (full, read-only, gone). One line for the operator."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_KNOWN_DIRS = 8192  # about 0.7 MB of remembered directory names at most


class BlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "blobs"
        self._unsynced = False  # blobs written with durable=False since the last sync()
        # Fan-out directories ("abcd") seen to exist: not asked for or created again (a stat
        # and one or two failing mkdir calls per blob). Forgotten past _KNOWN_DIRS, and when
        # one turns out to be gone.
        self._dirs: set[str] = set()

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes, digest: str | None = None, durable: bool = True) -> str:
        """Store `data` (whose SHA-256 is `digest`, when the caller knows it). With
        `durable=False` the caller must call `sync()` before it commits a row naming it."""
        digest = digest or sha256_hex(data)
        target = self.path(digest)
        if target.exists():
            return digest
        try:
            created, fd, tmp = self._temporary(target.parent, digest[:4])
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
            _fsync_directory(target.parent)
            if created:  # blobs/ab/cd: cd, and maybe ab, are new
                _fsync_directory(target.parent.parent)
                _fsync_directory(self.root)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StoreError(f"the data directory {self.root} cannot be written: {exc.strerror}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def _temporary(self, folder: Path, fan: str) -> tuple[bool, int, str]:
        """A new temporary file in the blob's fan-out directory; whether that directory was new."""
        created = False
        if fan not in self._dirs:
            created = not folder.is_dir()
            folder.mkdir(parents=True, exist_ok=True)
            if len(self._dirs) >= _KNOWN_DIRS:
                self._dirs.clear()
            self._dirs.add(fan)
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except FileNotFoundError:  # removed since it was seen (an operator's clean-up)
            self._dirs.discard(fan)
            created = True
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        return created, fd, tmp

    def sync(self) -> None:
        """Make every blob written with durable=False durable (files, renames, directories)."""
        if not self._unsynced:
            return
        try:
            _syncfs(self.root)
        except OSError as exc:
            raise StoreError(f"the data directory {self.root} cannot be written: {exc.strerror}") from exc
        self._unsynced = False

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()


def _fsync_directory(path: Path) -> None:
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

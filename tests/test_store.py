"""The blob store: content-addressed, written durably before the database refers to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intake.store import BlobStore, sha256_hex


def test_a_blob_is_fsynced_with_its_directory_before_put_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a power cut the database row may point at the blob: the file and the
    rename that named it (and a new fan-out directory) must be on disk."""
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store = BlobStore(tmp_path)
    digest = store.put(b"first")
    target = store.path(digest)
    assert Path(synced[0]).parent == target.parent  # the temporary file's contents
    assert synced[1:] == [str(target.parent), str(target.parent.parent), str(store.root)]
    assert store.get(digest) == b"first" and digest == sha256_hex(b"first")

    synced.clear()
    again = store.put(b"first")  # already there: nothing written, nothing synced
    assert again == digest and synced == []

    synced.clear()
    second = store.put(b"second")  # in another fan-out directory: its rename is synced too
    assert synced[1] == str(store.path(second).parent)

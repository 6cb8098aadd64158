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


def _same_fan(count: int) -> list[bytes]:
    """Contents whose blobs share one fan-out directory (the first four hex digits)."""
    found: list[bytes] = []
    first = ""
    n = 0
    while len(found) < count:
        data = f"blob {n}".encode()
        n += 1
        fan = sha256_hex(data)[:4]
        if not found or fan == first:
            first = first or fan
            found.append(data)
    return found


def test_a_known_fan_out_directory_is_not_asked_for_again_and_its_removal_is_survived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch writes hundreds of blobs: a directory seen to exist costs no stat and no mkdir
    the next time; if an operator removes it meanwhile, the next blob recreates it."""
    import shutil

    made: list[Path] = []
    real_mkdir = Path.mkdir

    def spy(self: Path, *args: object, **kwargs: object) -> None:
        made.append(self)
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", spy)
    one, two, three = _same_fan(3)
    store = BlobStore(tmp_path)
    first = store.put(one, durable=False)
    assert made, "the first blob creates its fan-out directory"
    made.clear()
    second = store.put(two, durable=False)
    assert made == [], f"the known directory was made again: {made}"
    shutil.rmtree(store.path(first).parent)
    third = store.put(three)
    assert store.get(third) == three and store.path(third).parent.is_dir()
    store.sync()
    assert not store.has(first) and not store.has(second)  # removed with the directory

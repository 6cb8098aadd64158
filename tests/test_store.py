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
    assert target == store.root / digest[:2] / digest  # one level of fan-out
    assert Path(synced[0]).parent == target.parent  # the temporary file's contents
    assert synced[1:] == [str(target.parent), str(store.root)]  # its rename, its new directory
    assert store.get(digest) == b"first" and digest == sha256_hex(b"first")

    synced.clear()
    again = store.put(b"first")  # already there: nothing written, nothing synced
    assert again == digest and synced == []

    synced.clear()
    second = store.put(b"second")  # in another fan-out directory: its rename is synced too
    assert synced[1] == str(store.path(second).parent)


def _same_fan(count: int) -> list[bytes]:
    """Contents whose blobs share one fan-out directory (the first two hex digits)."""
    found: list[bytes] = []
    first = ""
    n = 0
    while len(found) < count:
        data = f"blob {n}".encode()
        n += 1
        fan = sha256_hex(data)[:2]
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

    made: list[str] = []
    real_mkdir = os.mkdir

    def spy(path: str, *args: object, **kwargs: object) -> None:
        made.append(path)
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "mkdir", spy)
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
    store.start_sync()()
    assert not store.has(first) and not store.has(second)  # removed with the directory


def test_blobs_written_in_the_older_two_level_layout_are_found_and_not_written_again(
    tmp_path: Path,
) -> None:
    """Stores written before 2026-12 keep their blobs at blobs/ab/cd/abcd…: read there, and
    a message that arrives again is not stored a second time."""
    store = BlobStore(tmp_path)
    data = b"a submission recorded in 2026-11"
    digest = sha256_hex(data)
    older = store.root / digest[:2] / digest[2:4] / digest
    older.parent.mkdir(parents=True)
    older.write_bytes(data)
    assert store.has(digest) and store.get(digest) == data and store.path(digest) == older
    assert store.put(data, durable=False) == digest
    assert not (store.root / digest[:2] / digest).exists(), "written again in the new layout"
    fresh = store.put(b"a submission of 2026-12")
    assert store.path(fresh) == store.root / fresh[:2] / fresh

"""Outlook's TNEF `winmail.dat`: the files packed inside it, or why they cannot be had.

tnefparse does the decoding. It copies the rest of the data for every object it
reads, so a file of many tiny objects costs time in the square of its size: the
objects are counted first, and a file that would cost too much is refused, as
is anything tnefparse cannot read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from intake.judge.filetype import TNEF_SIGNATURE

_HEADER = 6  # signature (4) + key (2)
_OBJECT_OVERHEAD = 11  # level (1) + name (2) + type (2) + length (4) + checksum (2)
_MAX_COPY = 2**30  # bytes tnefparse may copy in all: objects x size


@dataclass(frozen=True)
class Unpacked:
    files: tuple[tuple[str | None, bytes], ...]  # (file name, bytes) of each attachment
    problem: str | None = None  # why nothing could be unpacked


def _count_objects(data: bytes) -> int | None:
    """How many objects the stream holds, or None if it is not well formed."""
    offset, count = _HEADER, 0
    while offset + 12 < len(data):
        try:
            (length,) = struct.unpack_from("<I", data, offset + 5)
        except struct.error:
            return None
        offset += _OBJECT_OVERHEAD + length
        count += 1
    return count


def unpack(data: bytes) -> Unpacked:
    if not data.startswith(TNEF_SIGNATURE):
        return Unpacked((), "it is not a TNEF file")
    count = _count_objects(data)
    if count is None:
        return Unpacked((), "it is damaged")
    if count * len(data) > _MAX_COPY:
        return Unpacked((), f"it holds too many parts ({count})")
    try:
        import tnefparse  # imported here: an install without it still judges everything else
    except ImportError:
        return Unpacked((), "this service cannot read winmail.dat files (tnefparse is missing)")
    try:
        parsed = tnefparse.TNEF(data, do_checksum=False)
        files: list[tuple[str | None, bytes]] = []
        for attachment in parsed.attachments:
            payload = attachment.data
            if not isinstance(payload, bytes) or not payload:
                continue
            name = attachment.long_filename()
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            name = str(name).strip("\x00").strip()[:255] or None
            files.append((name, payload))
    except Exception as exc:  # a third-party parser on hostile bytes
        return Unpacked((), f"it could not be decoded ({type(exc).__name__})")
    if not files:
        return Unpacked((), "it contains no attached files")
    return Unpacked(tuple(files))

"""Opening a zip-based file without letting it hurt the service.

Owns: the archive's metadata checks (part count, declared sizes, compression
ratio, encrypted parts, unsafe or duplicate names); bounded reading, 64 KiB at a
time against a byte budget per part and in total, so a header that lies about
sizes cannot make us inflate more than the budget (`ZipFile.read()` would inflate
a whole chunk first); XML through expat with entity declarations, external
references and outside DTDs refused (what defusedxml does, OWASP's XXE
Prevention Cheat Sheet; done here on expat itself so that each element costs
one Python call, not defusedxml's pure-Python ElementTree layer, which was a
third of reading a document); and the package's relationships (nothing may be
fetched from outside the file). A refusal is a `Refusal` carrying its finding;
nothing here raises anything else, whatever the bytes.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from xml.parsers import expat

from zlib_ng import zlib_ng

from intake.config.checks import Limits, MiB
from intake.findings import Found, found

CHUNK = 64 * 1024
WHOLE_BYTES = 8 * 2**20  # a part up to this size may be read in one piece (`Archive._whole`)
# A zip local file header up to the name: signature, version, flags, method, time, date, CRC,
# sizes, then the lengths of the name and the extra field (APPNOTE 4.3.7).
_LOCAL_HEADER = struct.Struct("<4s2xH18xHH")
_UNREADABLE = 0x1 | 0x20 | 0x40  # encrypted, patched data, strong encryption: left to zipfile
_RATIO_FLOOR = MiB  # parts smaller than this cannot amount to a bomb; real styles.xml reach ratio 30


class Refusal(Exception):
    """The file cannot be opened safely; `finding` says why, for the contributor."""

    def __init__(self, finding: Found) -> None:
        super().__init__(finding.code)
        self.finding = finding


class XmlTarget(Protocol):
    """What `Archive.parse` feeds. Names are expat's: "namespace}local", or "local" outside
    any namespace; attributes' names the same."""

    def start(self, tag: str, attrib: dict[str, str]) -> None: ...
    def end(self, tag: str) -> None: ...
    def data(self, text: str) -> None: ...


class _Enough(Exception):
    """Raised by a target that has read all it needs."""


class _External(Exception):
    """A DOCTYPE naming an outside DTD, or a reference to an external entity."""

    def __init__(self, where: str) -> None:
        self.where = where


class _Entities(Exception):
    """An entity declaration: the way to a billion laughs, or to a file on our disk."""

    def __init__(self, where: str | None) -> None:
        self.where = where


def _doctype(name: str, sysid: str | None, pubid: str | None, internal: int) -> None:
    if sysid or pubid:
        raise _External(sysid or pubid or "")


def _entity(
    name: str,
    is_pe: int,
    value: str | None,
    base: str | None,
    sysid: str | None,
    pubid: str | None,
    notation: str | None,
) -> None:
    raise _Entities(sysid or pubid)


def _unparsed_entity(name: str, base: str | None, sysid: str, pubid: str | None, notation: str) -> None:
    raise _Entities(sysid or pubid)


def _external_reference(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    raise _External(sysid or pubid or "")


class _TooManyElements(Exception):
    pass


class ElementBudget:
    """Counts XML elements across a whole package; a flood of tiny elements costs time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self) -> None:
        self.used += 1
        if self.used > self.limit:
            raise _TooManyElements


class PrologOnly:
    """A target that stops at the root element: a DTD can only come before it."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise _Enough

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass


def _is_unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return ".." in re.split(r"[/\\]", name)


class Archive:
    """A zip file opened for bounded reading. Call `check()` before reading any part."""

    def __init__(self, data: bytes, limits: Limits) -> None:
        self.limits = limits
        self.read_total = 0
        self.elements = ElementBudget(limits.max_xml_elements)
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            self._infos = self._zip.infolist()
        except Exception as exc:  # zipfile raises many types on a broken directory
            raise Refusal(found("safety.damaged", detail=f"zip directory: {exc}")) from None
        self._data = data  # the file's bytes, shared with the ZipFile's buffer: parts are read from it
        self._by_name = {info.filename.lower(): info for info in self._infos}
        self.names: tuple[str, ...] = tuple(info.filename for info in self._infos)
        self.parsed: set[str] = set()  # parts read through `parse` (lower case): read whole
        self._rels: dict[str, list[Relationship]] = {}

    def check(self) -> None:
        """The directory's own claims: part count, names, encryption, sizes and ratios."""
        limits = self.limits
        if len(self._infos) > limits.max_parts:
            raise Refusal(found("safety.too_many_parts", count=len(self._infos), limit=limits.max_parts))
        seen: set[str] = set()
        declared = 0
        for info in self._infos:
            name = info.filename
            if _is_unsafe_name(name):
                raise Refusal(found("safety.unsafe_path", detail=name, member=name))
            if name.lower() in seen:
                raise Refusal(found("safety.duplicate_part", detail=name, member=name))
            seen.add(name.lower())
            if info.flag_bits & 0x1:
                raise Refusal(found("safety.encrypted_part", detail=name, member=name))
            declared += info.file_size
            if info.file_size > limits.max_part_bytes or declared > limits.max_total_bytes:
                raise Refusal(_bomb(name, f"declares {_size(info.file_size)}"))
            if info.file_size >= _RATIO_FLOOR and info.file_size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                ratio = info.file_size // max(info.compress_size, 1)
                raise Refusal(_bomb(name, f"is compressed {ratio} to 1"))

    def has(self, name: str) -> bool:
        # Part names in an Office package are case-insensitive (ECMA-376 part 2, 9.1.1.1).
        return name.lower() in self._by_name

    def chunks(self, name: str) -> Iterator[bytes]:
        """The part's bytes, counted against the budgets: a small, sound part in one piece
        (`_whole`), anything else 64 KiB at a time through `zipfile`, which also says what is
        wrong with a damaged one."""
        info = self._by_name.get(name.lower())
        if info is None:
            return
        whole = self._whole(info)
        if whole is not None:
            self.read_total += len(whole)
            yield whole
            return
        used = 0
        try:
            with self._zip.open(info) as stream:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    used += len(chunk)
                    self.read_total += len(chunk)
                    if used > self.limits.max_part_bytes:
                        raise Refusal(_bomb(info.filename, f"unpacks to over {_size(used)}"))
                    if self.read_total > self.limits.max_total_bytes:
                        raise Refusal(_bomb(info.filename, f"unpacks to over {_size(used)}"))
                    yield chunk
        except Refusal:
            raise
        except Exception as exc:  # CRC errors, truncated data, unknown compression
            raise Refusal(found("safety.damaged", detail=f"{info.filename}: {exc}")) from None

    def _whole(self, info: zipfile.ZipInfo) -> bytes | None:
        """The part's bytes read straight from the file and inflated in one call, when that is
        exactly what the 64 KiB loop would give: a stored or deflated part of at most
        `WHOLE_BYTES` that fits both budgets, whose local header names it, and whose bytes have
        the size and CRC the directory declares. None in every other case, then the loop reads
        it (and refuses it, or names the damage, as before). Most parts of a document are a few
        KB: the loop's per-chunk Python (`ZipExtFile`) cost more than inflating them. Inflated
        and checked with zlib-ng, twice as fast as zlib at inflating, ten times at the CRC: a
        document's parts are most of a megabyte of XML (styles alone, in Word's own files)."""
        size = info.file_size
        room = min(self.limits.max_part_bytes, self.limits.max_total_bytes - self.read_total)
        if (
            size > WHOLE_BYTES
            or size > room
            or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
            or info.flag_bits & _UNREADABLE
        ):
            return None
        data, at = self._data, info.header_offset
        header = data[at : at + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size:
            return None
        signature, flags, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        if signature != b"PK\x03\x04" or flags & _UNREADABLE:
            return None
        start = at + _LOCAL_HEADER.size
        encoding = "utf-8" if flags & 0x800 else "cp437"
        try:
            if data[start : start + name_length].decode(encoding) != info.orig_filename:
                return None
        except UnicodeDecodeError:
            return None
        start += name_length + extra_length
        packed = data[start : start + info.compress_size]
        if len(packed) != info.compress_size:
            return None
        if info.compress_type == zipfile.ZIP_STORED:
            out = packed
        else:
            inflater = zlib_ng.decompressobj(-15)
            try:
                out = inflater.decompress(packed, size + 1)
            except Exception:  # zlib_ng.error (typed as an instance in its stub): the loop says what
                return None
            if not inflater.eof:
                return None
        if len(out) != size or zlib_ng.crc32(out) != info.CRC:
            return None
        return out

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def drain(self, name: str) -> None:
        """Read a part we do not need, so that a bomb or a bad CRC in it is still caught."""
        for _ in self.chunks(name):
            pass

    def parse(self, name: str, target: XmlTarget) -> None:
        """Feed the part through expat into `target`, defused; a target may stop early
        (raise _Enough); the rest of the part is still read through the budgets."""
        parser = expat.ParserCreate(None, "}")
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = _doctype
        parser.EntityDeclHandler = _entity
        parser.UnparsedEntityDeclHandler = _unparsed_entity
        parser.ExternalEntityRefHandler = _external_reference
        budget, inner = self.elements, target.start

        def start(tag: str, attrib: dict[str, str]) -> None:
            budget.used += 1
            if budget.used > budget.limit:
                raise _TooManyElements
            inner(tag, attrib)

        parser.StartElementHandler = start
        parser.EndElementHandler = target.end
        parser.CharacterDataHandler = target.data
        self.parsed.add(name.lower())
        stopped = False
        try:
            for chunk in self.chunks(name):
                if not stopped:
                    try:
                        parser.Parse(chunk, False)
                    except _Enough:
                        stopped = True
            if not stopped:
                parser.Parse(b"", True)
        except Refusal:
            raise
        except _Entities as exc:
            if exc.where:
                raise Refusal(
                    found("safety.xml_external", detail=f"{name}: {exc.where}", member=name)
                ) from None
            raise Refusal(found("safety.xml_entities", detail=name, member=name)) from None
        except _External as exc:
            raise Refusal(found("safety.xml_external", detail=f"{name}: {exc.where}", member=name)) from None
        except _TooManyElements:
            raise Refusal(
                found(
                    "safety.too_complex",
                    detail=f"{name}: over {self.limits.max_xml_elements} XML elements",
                    reason=f"more than {self.limits.max_xml_elements:,} elements",
                )
            ) from None
        except (expat.ExpatError, ValueError, LookupError) as exc:
            # Not well-formed XML, or an encoding expat does not know.
            raise Refusal(found("safety.damaged", detail=f"{name}: {exc}")) from None

    def relationships(self, name: str) -> list[Relationship]:
        """The relationships a .rels part lists, read once per archive."""
        key = name.lower()
        if key not in self._rels:
            reader = RelsReader()
            if self.has(name):
                self.parse(name, reader)
            self._rels[key] = reader.items
        return self._rels[key]


def _size(count: int) -> str:
    if count >= 2**30:
        return f"{count / 2**30:.1f} GB"
    return f"{count / MiB:.0f} MB"


def _bomb(member: str, how: str) -> Found:
    return found("safety.zip_bomb", detail=f"{member} {how}", amount=f"{member} {how}")


# --- relationships ------------------------------------------------------------

PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


@dataclass(frozen=True)
class Relationship:
    id: str
    type: str  # the last segment of the type URI: "header", "attachedTemplate", ...
    target: str
    external: bool


class RelsReader:
    """Target that collects the <Relationship> elements of a .rels part."""

    def __init__(self) -> None:
        self.items: list[Relationship] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag.rsplit("}", 1)[-1] == "Relationship":
            self.items.append(
                Relationship(
                    id=attrib.get("Id", ""),
                    type=attrib.get("Type", "").rstrip("/").rsplit("/", 1)[-1],
                    target=attrib.get("Target", ""),
                    external=attrib.get("TargetMode", "").lower() == "external",
                )
            )

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass


def rels_name(part: str) -> str:
    """word/document.xml -> word/_rels/document.xml.rels; "" (the package) -> _rels/.rels."""
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels")


def resolve(source_part: str, target: str) -> str:
    """The part name a relationship target points at, relative to its source part."""
    target = target.replace("\\", "/")
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(source_part), target))


def _is_remote(target: str) -> bool:
    """A target Word would fetch over a network: a URL or a UNC path, not a local file."""
    t = target.strip().lower().replace("\\", "/")
    if t.startswith("file:///"):
        return t[len("file:///") :].startswith("/")  # file:///\\server\share
    if t.startswith("file://"):
        return True  # file://server/share
    if t.startswith("//"):
        return True  # \\server\share
    if re.match(r"^[a-z]:/", t):
        return False  # C:\Users\...\Normal.dotm: Word writes these for local templates
    return bool(re.match(r"^[a-z][a-z0-9+.-]+:", t))


def check_relationships(where: str, rels: list[Relationship]) -> None:
    """Refuse a relationship that makes Word fetch something from outside the file.

    External hyperlinks are ordinary. A template attached from the local disk is
    what Word writes for documents made from a .dotx; one on a server is the
    remote-template trick.
    """
    for rel in rels:
        if not rel.external or rel.type.lower() == "hyperlink":
            continue
        if rel.type == "attachedTemplate":
            if _is_remote(rel.target):
                raise Refusal(
                    found(
                        "safety.remote_template",
                        detail=f"{where}: {rel.target}",
                        target=rel.target[:200],
                    )
                )
            continue
        raise Refusal(
            found(
                "safety.external_content",
                detail=f"{where}: {rel.type} -> {rel.target}",
                what=_EXTERNAL_WHAT.get(rel.type, f"content ({rel.type})"),
                target=rel.target[:200],
            )
        )


_EXTERNAL_WHAT = {
    "oleObject": "an embedded object",
    "subDocument": "a sub-document",
    "frame": "a frame",
    "image": "a picture",
    "package": "an embedded file",
    "aFChunk": "a piece of text",
}

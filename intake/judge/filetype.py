"""What a file really is, decided by its content, never by its name.

python-magic on the whole bytes is the first gate (2 KB is not enough for OOXML
or Word 97 files, ../shared/notes/packages.md §5), then the file's own
structure decides: an Office package's `[Content_Types].xml` and main part, a
compound file's streams (olefile), a PDF's header. The name is only compared
with the result afterwards (`name_mismatch`).
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass, field

import magic
import olefile

from intake.config.checks import Limits
from intake.findings import Found, found
from intake.judge.safety import Archive, Refusal, resolve

CFB_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
_ZIP_MIMES = {
    "application/zip",
    "application/x-zip-compressed",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_SIGNATURE_TYPES = {
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pkcs7-mime",
    "application/x-pkcs7-mime",
}
_VCARD_TYPES = {"text/vcard", "text/x-vcard", "text/directory"}

# In words, for the contributor.
WHAT = {
    "docx": "a Word document (.docx)",
    "docm": "a Word document with macros (.docm)",
    "encrypted_office": "a password-protected Office file",
    "doc": "a Word 97-2003 document (.doc)",
    "pdf": "a PDF",
    "zip": "a zip archive",
    "tnef": "an Outlook winmail.dat file",
    "image": "a picture",
    "vcard": "a contact card (vCard)",
    "signature": "an e-mail signature (.p7s)",
    "empty": "an empty file",
    "damaged": "a damaged file",
}
# What a file's name ending claims it is.
_CLAIMS = {
    ".docx": "word",
    ".docm": "word",
    ".doc": "word",
    ".dotx": "word",
    ".dotm": "word",
    ".pdf": "pdf",
    ".zip": "zip",
}
_FAMILY = {"docx": "word", "docm": "word", "doc": "word", "encrypted_office": "word"}
_CLAIM_WHAT = {"word": "a Word document", "pdf": "a PDF", "zip": "a zip archive"}


@dataclass
class FileType:
    kind: str  # a key of WHAT, or "other"
    what: str  # in words
    mime: str  # libmagic's answer on the whole bytes
    main_part: str | None = None  # a Word package's main document part
    archive: Archive | None = field(default=None, repr=False)  # opened once, read on by wordml
    refusal: Found | None = None  # the file could not be opened safely


def sniff(data: bytes) -> str:
    """libmagic's MIME type for the whole bytes; never raises."""
    try:
        return str(magic.from_buffer(data, mime=True))
    except Exception:  # libmagic can fail on odd input; the structure checks still decide
        return "application/octet-stream"


def detect(data: bytes, filename: str | None, declared: str | None, limits: Limits) -> FileType:
    if not data:
        return FileType("empty", WHAT["empty"], "application/x-empty")
    mime = sniff(data)
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")) or mime in _ZIP_MIMES:
        return _zip_kind(data, mime, limits)
    if data.startswith(CFB_SIGNATURE):
        return _compound_kind(data, mime)
    if b"%PDF-" in data[:1024]:
        return FileType("pdf", WHAT["pdf"], mime)
    if data.startswith(TNEF_SIGNATURE):
        return FileType("tnef", WHAT["tnef"], mime)
    if mime.startswith("image/"):
        return FileType("image", WHAT["image"], mime)
    if data.lstrip()[:11].upper() == b"BEGIN:VCARD" or mime in _VCARD_TYPES:
        return FileType("vcard", WHAT["vcard"], mime)
    ext = posixpath.splitext((filename or "").lower())[1]
    if mime in _SIGNATURE_TYPES or (declared or "").lower() in _SIGNATURE_TYPES or ext == ".p7s":
        return FileType("signature", WHAT["signature"], mime)
    if data.startswith(b"{\\rtf"):
        return FileType("other", "an RTF file", mime)
    return FileType("other", _describe(mime), mime)


def name_mismatch(filename: str | None, kind: FileType) -> Found | None:
    """A warning when the name's ending claims another kind of file than the content is."""
    if not filename or kind.kind in ("empty", "damaged"):
        return None
    claimed = _CLAIMS.get(posixpath.splitext(filename.lower())[1])
    if claimed is None or _FAMILY.get(kind.kind, kind.kind) == claimed:
        return None
    return found(
        "type.name_mismatch",
        detail=f"{filename}: {kind.mime}",
        name=filename,
        claimed=_CLAIM_WHAT[claimed],
        actual=kind.what,
    )


def _describe(mime: str) -> str:
    if mime.startswith("text/plain"):
        return "a plain text file"
    if mime.startswith("text/html"):
        return "a web page (HTML)"
    if mime.startswith("text/"):
        return f"a text file ({mime})"
    if mime.startswith(("audio/", "video/")):
        return "a sound or video file"
    return f"a file of type {mime}"


class _ContentTypes:
    """Target that collects [Content_Types].xml: defaults by extension, overrides by part."""

    def __init__(self) -> None:
        self.defaults: dict[str, str] = {}
        self.overrides: dict[str, str] = {}

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        local = tag.rsplit("}", 1)[-1]
        if local == "Default":
            self.defaults[attrib.get("Extension", "").lower()] = attrib.get("ContentType", "")
        elif local == "Override":
            name = attrib.get("PartName", "").lstrip("/").lower()
            self.overrides[name] = attrib.get("ContentType", "")

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass

    def of(self, part: str) -> str:
        ext = posixpath.splitext(part)[1].lstrip(".").lower()
        return self.overrides.get(part.lower(), self.defaults.get(ext, ""))


def _zip_kind(data: bytes, mime: str, limits: Limits) -> FileType:
    try:
        archive = Archive(data, limits)
    except Refusal as refusal:
        return FileType("damaged", WHAT["damaged"], mime, refusal=refusal.finding)
    names_lower = {name.lower() for name in archive.names}
    # What the part names suggest, so that an unsafe file is still reported as what it claims.
    if "word/document.xml" in names_lower:
        provisional = "docm" if "word/vbaproject.bin" in names_lower else "docx"
    else:
        provisional = "zip"
    try:
        archive.check()
    except Refusal as refusal:
        return FileType(provisional, WHAT[provisional], mime, refusal=refusal.finding)
    if "[content_types].xml" not in names_lower:
        if "mimetype" in names_lower:
            return _opendocument(archive, mime)
        return FileType("zip", WHAT["zip"], mime, archive=archive)
    try:
        types = _ContentTypes()
        archive.parse("[Content_Types].xml", types)
        package = archive.relationships("_rels/.rels")
    except Refusal as refusal:
        return FileType(provisional, WHAT[provisional], mime, refusal=refusal.finding)
    main = next(
        (resolve("", r.target) for r in package if r.type == "officeDocument"),
        "word/document.xml",
    )
    content_type = types.of(main).lower()
    macros = any(posixpath.basename(n) == "vbaproject.bin" for n in names_lower) or any(
        "vbaproject" in t.lower() for t in (*types.overrides.values(), *types.defaults.values())
    )
    if "wordprocessingml" in content_type or "ms-word" in content_type:
        if macros or "macroenabled" in content_type:
            return FileType("docm", WHAT["docm"], mime, main_part=main)
        return FileType("docx", WHAT["docx"], mime, main_part=main, archive=archive)
    if "spreadsheetml" in content_type or "ms-excel" in content_type:
        return FileType("other", "an Excel workbook", mime)
    if "presentationml" in content_type or "ms-powerpoint" in content_type:
        return FileType("other", "a PowerPoint presentation", mime)
    return FileType("zip", WHAT["zip"], mime, archive=archive)


def _opendocument(archive: Archive, mime: str) -> FileType:
    try:
        declared = archive.read("mimetype")[:100].decode("ascii", "replace")
    except Refusal as refusal:
        return FileType("zip", WHAT["zip"], mime, refusal=refusal.finding)
    if declared.endswith(".text"):
        return FileType("other", "an OpenDocument text (.odt)", mime)
    return FileType("other", "an OpenDocument file", mime)


def _compound_kind(data: bytes, mime: str) -> FileType:
    """An OLE compound file: what its streams say it is."""
    try:
        # A BytesIO, never bytes: olefile takes short bytes for a file name.
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            streams = {"/".join(path).lower() for path in ole.listdir(streams=True, storages=False)}
    except Exception as exc:  # olefile raises assorted errors on broken compound files
        return FileType(
            "damaged",
            WHAT["damaged"],
            mime,
            refusal=found("safety.damaged", detail=f"compound file: {exc}"),
        )
    if {"encryptioninfo", "encryptedpackage"} <= streams:
        return FileType("encrypted_office", WHAT["encrypted_office"], mime)
    if "worddocument" in streams:
        return FileType("doc", WHAT["doc"], mime)
    if "workbook" in streams or "book" in streams:
        return FileType("other", "an Excel 97-2003 workbook (.xls)", mime)
    if "powerpoint document" in streams:
        return FileType("other", "a PowerPoint 97-2003 presentation (.ppt)", mime)
    if any(name.startswith("__substg1.0_") for name in streams):
        return FileType("other", "an Outlook message (.msg)", mime)
    return FileType("other", "an Office file of an old or unknown kind", mime)

"""What each file is for in a submission, and what the message's status is.

With the defaults (the `companions` check): a Word .docx is the document; a PDF
or a zip sent with a .docx is kept as a companion and refused on its own; a
.doc, a .docm, a password-protected file or anything else is refused, each
with its own finding; signatures, vCards and small inline pictures (the logo
in a mail signature) are recorded but are not documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from intake.config.checks import Checks
from intake.domain import DocumentStatus, MessageStatus
from intake.findings import Found, found
from intake.judge.filetype import FileType
from intake.judge.template import HeaderResult
from intake.verdict import DocumentVerdict

DOCUMENT = "document"
COMPANION = "companion"
NOT_A_DOCUMENT = "not_a_document"

# Refusals that follow from the kind of file alone.
_KIND_REFUSAL = {
    "doc": "type.legacy_doc",
    "docm": "type.macro_enabled",
    "encrypted_office": "type.encrypted",
    "empty": "type.empty",
    "pdf": "type.pdf_without_word",
    "zip": "type.zip_without_word",
}


@dataclass
class Examined:
    """One file, examined on its own; roles are decided once all files are known."""

    part_index: int
    filename: str | None
    declared_type: str | None
    disposition: str | None
    content_id: str | None
    data: bytes
    from_container: bool  # unpacked from a winmail.dat: the bytes are not the part's
    filetype: FileType
    findings: list[Found] = field(default_factory=list)
    header: HeaderResult | None = None


def _is_signature_picture(item: Examined, checks: Checks) -> bool:
    inline = item.disposition != "attachment" or item.content_id is not None
    return inline and len(item.data) <= checks.signature_image_max_bytes


def decide(items: list[Examined], checks: Checks) -> list[DocumentVerdict]:
    has_word = any(item.filetype.kind == "docx" for item in items)
    return [_verdict(item, checks, has_word) for item in items]


def _verdict(item: Examined, checks: Checks, has_word: bool) -> DocumentVerdict:
    kind = item.filetype.kind
    findings = list(item.findings)
    if kind in ("signature", "vcard") or (kind == "image" and _is_signature_picture(item, checks)):
        role = NOT_A_DOCUMENT
    elif kind == "tnef" and not item.from_container and not findings:
        role = NOT_A_DOCUMENT  # the files unpacked from it are judged in its place
    elif kind == "docx":
        role = DOCUMENT
    elif kind in checks.companions and has_word:
        role = COMPANION
    else:
        role = DOCUMENT
        if kind != "damaged" and (kind != "tnef" or item.from_container):
            # A damaged file or an unreadable winmail.dat already carries its own finding.
            code = _KIND_REFUSAL.get(kind, "type.unsupported")
            findings.insert(0, found(code, kind=item.filetype.what))
    blocked = any(f.blocks for f in findings)
    if role == NOT_A_DOCUMENT:
        status = DocumentStatus.NOT_A_DOCUMENT
    elif role == COMPANION:
        status = DocumentStatus.REJECTED if blocked else DocumentStatus.COMPANION
    else:
        status = DocumentStatus.REJECTED if blocked else DocumentStatus.ACCEPTED
    header = item.header
    return DocumentVerdict(
        part_index=item.part_index,
        filename=item.filename,
        declared_type=item.declared_type,
        detected_type=kind,
        size=len(item.data),
        sha256=hashlib.sha256(item.data).hexdigest(),
        role=role,
        status=status,
        findings=tuple(findings),
        title=header.title if header else None,
        source=header.source if header else None,
        contacts=tuple(header.contacts) if header else (),
        abstract=header.abstract if header else None,
        payload=item.data if item.from_container else None,
    )


def message_status(
    documents: list[DocumentVerdict], late: bool, late_policy: str
) -> tuple[MessageStatus, list[DocumentVerdict]]:
    """The message's status from its documents, and the documents with lateness applied.

    Accepted when every document is; partial when some are and something sent is
    refused; rejected when none is; correspondence when there is no document at all
    (a question, thanks: not a submission, whenever it comes). Late
    under the "hold" policy: the documents that are otherwise fine become `late`
    (no number; the secretariat may admit them) and refused ones keep their
    findings; under "reject" they are refused.
    """
    own = [d for d in documents if d.role == DOCUMENT]
    if not own:
        return MessageStatus.CORRESPONDENCE, documents
    if late:
        held = DocumentStatus.LATE if late_policy == "hold" else DocumentStatus.REJECTED
        documents = [
            replace(d, status=held) if d.role == DOCUMENT and d.status is DocumentStatus.ACCEPTED else d
            for d in documents
        ]
        if any(d.status is DocumentStatus.LATE for d in documents):
            return MessageStatus.LATE, documents
        return MessageStatus.REJECTED, documents
    if not any(d.status is DocumentStatus.ACCEPTED for d in own):
        return MessageStatus.REJECTED, documents
    refused = [d for d in documents if d.role != NOT_A_DOCUMENT and d.status is DocumentStatus.REJECTED]
    return (MessageStatus.PARTIAL if refused else MessageStatus.ACCEPTED), documents

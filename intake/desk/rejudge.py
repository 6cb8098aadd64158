"""Judging a recorded message again from its stored bytes, and writing the new verdict over it.

Used by `release` (a held message judged normally, without the screening that
held it) and `reprocess` (everything judged again after a template or config
change). Reading is pure (`intake.decide`, `intake.judge`), then a file already
numbered in another message is marked as sent again (`resends`, as on arrival:
`intake.resends`); writing keeps the
document rows (and so their numbers and history) where the files are the
same, and numbers what is newly accepted (`intake.revisions.assign_number`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from intake.config import EventSettings
from intake.correspondence import answering, by_subject
from intake.decide import decide
from intake.desk import Refused
from intake.desk.recorded import stored_inbound
from intake.domain import DocumentRole, DocumentStatus
from intake.examine import put_files
from intake.judge import judge_message
from intake.models import Document, Finding, InboundMessage
from intake.parse import Inbound
from intake.resends import candidates, mark_resends, registered
from intake.revisions import RevisionLink, assign_number
from intake.store import BlobStore
from intake.verdict import DocumentVerdict, MessageVerdict


@dataclass(frozen=True)
class Rejudged:
    inbound: Inbound
    verdict: MessageVerdict


@dataclass(frozen=True)
class Written:
    numbers: dict[int, str]  # by part_index, for the reply
    numbered: list[tuple[int, str]]  # (document id, number) numbered now


def rejudge(
    session: Session, store: BlobStore, row: InboundMessage, event: EventSettings, *, screen: bool
) -> Rejudged:
    """The verdict the message gets today. `screen=False` skips the screening (a release).
    Correspondence citing one of our replies answers our mail, as on arrival."""
    if row.headers_only:
        raise Refused(f"message #{row.id} was too large: only its headers were kept, nothing to judge")
    inbound = stored_inbound(store, row)
    if screen:
        verdict = decide(inbound, event, row.received_at)
    else:
        verdict = by_subject(event, inbound, judge_message(inbound, event, row.received_at))
    [verdict] = answering(session, event, [(inbound, verdict)])
    # The files a verdict names must be in the store before the commit that refers to them.
    put_files(store, inbound, verdict, durable=True)
    return Rejudged(inbound, verdict)


def resends(
    session: Session, event: EventSettings, row: InboundMessage, verdict: MessageVerdict
) -> MessageVerdict:
    """The verdict with the files numbered in another message of the event marked as sent again.

    Only an earlier number counts: of two numbered copies (recorded at once by two replicas),
    the first is not a copy of the second."""
    known = registered(session, event.id, candidates(verdict), besides_message=row.id)
    own = {d.sha256: d.id for d in row.documents if d.number}
    earlier = {
        sha: first for sha, first in known.items() if own.get(sha, first.document_id) >= first.document_id
    }
    return mark_resends(verdict, earlier)


def same_files(row: InboundMessage, verdict: MessageVerdict) -> bool:
    """The verdict names the same files, in the same order, as the rows."""
    return [d.sha256 for d in row.documents] == [d.sha256 for d in verdict.documents]


def _findings(session: Session, row: InboundMessage, document: Document | None, doc: DocumentVerdict) -> None:
    for item in doc.findings:
        session.add(
            Finding(
                message_id=row.id,
                document_id=document.id if document else None,
                code=item.code,
                severity=str(item.severity),
                message=item.message,
                detail=item.detail,
            )
        )


def write_verdict(
    session: Session,
    row: InboundMessage,
    verdict: MessageVerdict,
    event: EventSettings,
    links: Mapping[int, RevisionLink],
) -> Written:
    """Write `verdict` over the message's rows; says which numbers it holds and which are new.

    A document that already has a number keeps it (numbers are never taken
    back); the caller refuses verdicts that would refuse a numbered document.
    """
    row.status = str(verdict.status)
    row.reason = verdict.reason
    session.execute(delete(Finding).where(Finding.message_id == row.id, Finding.document_id.is_(None)))
    for item in verdict.findings:
        session.add(
            Finding(
                message_id=row.id,
                code=item.code,
                severity=str(item.severity),
                message=item.message,
                detail=item.detail,
            )
        )
    if same_files(row, verdict):
        documents = list(row.documents)
    else:
        if any(d.number for d in row.documents):
            raise Refused(f"message #{row.id}: its files read differently now, and some are numbered")
        for old in list(row.documents):
            session.delete(old)
        session.flush()
        documents = []
        for position, doc in enumerate(verdict.documents):
            document = Document(
                message_id=row.id, position=position, size=doc.size, sha256=doc.sha256, status=str(doc.status)
            )
            session.add(document)
            documents.append(document)
        session.flush()
    numbers: dict[int, str] = {}
    numbered: list[tuple[int, str]] = []
    for position, (document, doc) in enumerate(zip(documents, verdict.documents, strict=True)):
        session.execute(delete(Finding).where(Finding.document_id == document.id))
        document.filename = doc.filename
        document.declared_type = doc.declared_type
        document.detected_type = doc.detected_type
        document.role = doc.role
        document.title = doc.title
        document.source = doc.source
        document.contacts = {"items": list(doc.contacts)} if doc.contacts else None
        document.abstract = doc.abstract
        if document.number is None:
            document.status = str(doc.status)
            document.copy_of_id = doc.registered.document_id if doc.registered else None
            if doc.status == DocumentStatus.ACCEPTED and doc.role == DocumentRole.DOCUMENT:
                assign_number(session, event, document, links.get(position))
                numbered.append((document.id, str(document.number)))
        if document.number:
            numbers[doc.part_index] = document.number
        session.flush()
        _findings(session, row, document, doc)
    session.flush()
    session.expire(row, ["documents", "findings"])
    return Written(numbers, numbered)

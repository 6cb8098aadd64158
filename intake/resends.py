"""Resends: a file already numbered in the event is not numbered again (issue 11).

A contributor who saw no acknowledgement sends the same file again: a new message,
a new Message-ID and Date, perhaps from a co-author's address. A document whose
bytes (SHA-256) are those of a document already numbered in the event (and not
withdrawn) is marked `already_numbered` and linked to that document
(`Document.copy_of_id`). A message whose documents are all such copies is
`already_numbered` itself, answered with the number its document has (reply kind
`already_registered`); beside a new document, the message is judged as usual and
its acknowledgement names the known one as already registered.

A changed file is not a resend, whatever its title: other bytes are judged as
new, and may be a revision (`intake.revisions`, which runs after this).

`mark_resends` is pure; `registered` is the one look-up, for a whole batch
(`intake.record`) or for one message judged again (`intake.desk`).

Limit: two copies recorded at the same moment by two processes (replicas polling
different folders of one event) are both numbered, since neither transaction sees
the other's uncommitted document. `intake reprocess` then reports the later number
as one for a person (numbers are never taken back automatically); `withdraw` it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.db import in_lists
from intake.domain import DocumentRole, DocumentStatus, MessageStatus
from intake.findings import found
from intake.models import Document, InboundMessage
from intake.verdict import DocumentVerdict, MessageVerdict, Registration

# A message in one of these statuses may carry a resend; a document in one of these,
# once its bytes are found numbered, is one (a late copy of a numbered file too).
_MESSAGES = (MessageStatus.ACCEPTED, MessageStatus.PARTIAL, MessageStatus.LATE)
_DOCUMENTS = (DocumentStatus.ACCEPTED, DocumentStatus.LATE)


def _candidate(doc: DocumentVerdict) -> bool:
    return doc.role == DocumentRole.DOCUMENT and doc.status in _DOCUMENTS


def candidates(verdict: MessageVerdict) -> list[str]:
    """The SHA-256 of each file of the message that would be a resend if already numbered."""
    if verdict.status not in _MESSAGES:
        return []
    return [d.sha256 for d in verdict.documents if _candidate(d)]


def registered(
    session: Session, event_id: str, digests: Iterable[str], *, besides_message: int | None = None
) -> dict[str, Registration]:
    """The first numbered (accepted) document of the event for each of these digests.

    One indexed query per 500 digests; `besides_message`: leave that message's own
    documents out (a message judged again is not a resend of itself)."""
    found: dict[str, Registration] = {}
    for chunk in in_lists(digests):
        query = (
            select(Document.id, Document.sha256, Document.number, InboundMessage.received_at)
            .join(InboundMessage, Document.message_id == InboundMessage.id)
            .where(
                InboundMessage.event == event_id,
                Document.sha256.in_(chunk),
                Document.number.is_not(None),
                Document.status == str(DocumentStatus.ACCEPTED),
            )
            .order_by(Document.id)
        )
        if besides_message is not None:
            query = query.where(Document.message_id != besides_message)
        for document_id, digest, number, received_at in session.execute(query):
            found.setdefault(digest, Registration(document_id, str(number), received_at))
    return found


def _copy(doc: DocumentVerdict, first: Registration) -> DocumentVerdict:
    day = first.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return replace(
        doc,
        status=DocumentStatus.ALREADY_NUMBERED,
        registered=first,
        findings=(*doc.findings, found("document.already_registered", number=first.number, day=day)),
    )


def mark_resends(verdict: MessageVerdict, known: Mapping[str, Registration]) -> MessageVerdict:
    """The verdict with each copy of a numbered document marked, and the message's status
    `already_numbered` when nothing else in it is to be numbered or refused."""
    if verdict.status not in _MESSAGES or not known:
        return verdict
    documents = tuple(
        _copy(d, known[d.sha256]) if _candidate(d) and d.sha256 in known else d for d in verdict.documents
    )
    if documents == verdict.documents:
        return verdict
    still_judged = any(_candidate(d) for d in documents)
    if still_judged or verdict.status == MessageStatus.PARTIAL:
        # A new document beside it (numbered, or late), or a refused one to explain: the
        # message keeps its status, and its reply names the known one as already registered.
        return replace(verdict, documents=documents)
    numbers = ", ".join(sorted({d.registered.number for d in documents if d.registered}))
    return replace(
        verdict,
        status=MessageStatus.ALREADY_NUMBERED,
        documents=documents,
        reason=f"sent again: already registered as {numbers}",
    )

"""Revisions: a message that names an assigned number as revised is linked to that document.

"JCA-MV-I-012 Rev.1", "JCA-MV-I-012R1.docx" or "revision of JCA-MV-I-012", in
the subject, a file name or a document's title, from the sender of JCA-MV-I-012
(or a colleague at the same organisation's domain, or one of its contacts),
makes the accepted document a revision: it keeps the original's number with
"Rev.n" (JCA-MV-I-012 Rev.1), `Document.revision = n` and `revision_of_id`
pointing at the original, so the whole history stays in the log. A bare
mention of a number (a reply to our acknowledgement) is not a claim.

Anything ambiguous is held for the secretariat, never guessed: a number never
assigned, withdrawn or rejected, several numbers, a sender unrelated to the original,
a stated Rev.n that is not the next one, or one claim in the subject of a
message carrying several documents. Held documents stay `pending`; the
secretariat decides with `intake release ID --revision-of NUMBER` or `--new`.

`find_claims` and `decide` are pure; `resolve_revisions` and `assign_number`
are the hooks the recording path (`intake.record`) and the desk call in
their own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from intake.config import EventSettings
from intake.domain import DocumentRole, DocumentStatus, MessageStatus
from intake.parse import Inbound
from intake.verdict import MessageVerdict

if TYPE_CHECKING:  # the database side is imported where it runs: the examine stage, which
    # reads numbers in subjects (intake.correspondence), never loads SQLAlchemy (24 MB, 1 s)
    from sqlalchemy.orm import Session

    from intake.models import Document

# A shared mailbox domain says nothing about the organisation: there, only the same
# address (or a contact named in the original) counts.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "naver.com",
        "daum.net",
    }
)


@dataclass(frozen=True)
class Claim:
    """One place where the message calls itself a revision of `base`."""

    base: str  # the number as the event formats it: JCA-MV-I-012
    stated: int | None  # the n of "Rev.n", when given
    where: str  # "subject", "file name" or "title"
    document: int | None  # index into the verdict's documents; None for the subject


@dataclass(frozen=True)
class Original:
    """What the database knows about a number a message claims to revise."""

    document_id: int
    number: str
    status: str
    sender: str | None
    contact_emails: tuple[str, ...]
    latest_revision: int  # 0 when there is no revision yet


@dataclass(frozen=True)
class RevisionLink:
    """Make a document revision `revision` of `original_id`, numbered `number`."""

    original_id: int
    base: str
    revision: int

    @property
    def number(self) -> str:
        return revision_number(self.base, self.revision)


@dataclass(frozen=True)
class Decision:
    links: Mapping[int, RevisionLink]  # verdict document index -> link
    hold: str | None = None  # why the message must wait for the secretariat


def revision_number(base: str, revision: int) -> str:
    return f"{base} Rev.{revision}"


def _prefix(event: EventSettings) -> str:
    """The prefix as configured, tolerant of the spaces and dashes people type around it."""
    return r"[\s_-]*".join(re.escape(part) for part in re.split(r"[\s_-]+", event.numbering_prefix) if part)


def _patterns(event: EventSettings) -> tuple[re.Pattern[str], re.Pattern[str]]:
    prefix = _prefix(event)
    number = rf"(?<![A-Za-z0-9])(?P<prefix>{prefix})[\s_-]*(?P<value>\d{{1,9}})(?!\d)"
    after = re.compile(
        number
        + r"(?:[\s_.-]*(?:rev(?:ision)?\.?)[\s_-]*(?P<rev>\d{1,3})|[_-]?r(?P<r>\d{1,3}))"
        + r"(?![A-Za-z0-9])",
        re.IGNORECASE,
    )
    before = re.compile(
        r"(?<![A-Za-z0-9])(?:rev(?:ision)?\.?[\s_-]*(?P<rev>\d{1,3})[\s_-]+(?:of|to)"
        r"|revision[\s_-]+(?:of|to)|revised[\s_-]+(?:version[\s_-]+of[\s_-]+)?)[\s_:-]*" + number,
        re.IGNORECASE,
    )
    return after, before


def _format(event: EventSettings, value: str) -> str:
    return f"{event.numbering_prefix}{int(value):0{event.numbering_width}d}"


def claims_in(event: EventSettings, text: str | None, where: str, document: int | None) -> list[Claim]:
    """Every revision claim in one piece of text."""
    if not text:
        return []
    found: list[Claim] = []
    for pattern in _patterns(event):
        for match in pattern.finditer(text):
            stated = match.group("rev") or (match.groupdict().get("r"))
            found.append(
                Claim(
                    base=_format(event, match.group("value")),
                    stated=int(stated) if stated else None,
                    where=where,
                    document=document,
                )
            )
    return found


def numbers_in(event: EventSettings, text: str | None) -> list[str]:
    """The event's document numbers named in a text, as stored ("JCA-MV-I-001"), in order."""
    if not text:
        return []
    prefix = _prefix(event)
    pattern = rf"(?<![A-Za-z0-9])(?:{prefix})[\s_-]*(\d{{1,9}})(?!\d)"
    return [_format(event, value) for value in re.findall(pattern, text, re.IGNORECASE)]


def find_claims(
    event: EventSettings, subject: str | None, documents: Sequence[tuple[str | None, str | None]]
) -> list[Claim]:
    """Claims in the subject and in each document's (file name, title)."""
    claims = claims_in(event, subject, "subject", None)
    for index, (filename, title) in enumerate(documents):
        claims += claims_in(event, filename, "file name", index)
        claims += claims_in(event, title, "title", index)
    return claims


def _domain(address: str | None) -> str:
    return (address or "").rpartition("@")[2].lower()


def related(sender: str | None, original: Original) -> bool:
    """The same person, a contact named in the original, or the same organisation's domain."""
    if not sender:
        return False
    sender = sender.lower()
    known = {a.lower() for a in (original.sender, *original.contact_emails) if a}
    if sender in known:
        return True
    domain = _domain(sender)
    if not domain or domain in PUBLIC_MAIL_DOMAINS:
        return False
    return any(_domain(a) == domain for a in known)


def decide(
    claims: Sequence[Claim],
    sender: str | None,
    candidates: Sequence[int],
    originals: Mapping[str, Original | None],
    *,
    check_sender: bool = True,
) -> Decision:
    """Which of the `candidates` (indexes of documents about to be numbered) are revisions.

    `originals` maps each claimed base number to what the database holds, or None.
    `check_sender` is False when the secretariat named the original themselves.
    """
    if not claims:
        return Decision({})
    bases = sorted({c.base for c in claims})
    if len(bases) > 1:
        return Decision({}, f"revision: it names several numbers as revised ({', '.join(bases)})")
    base = bases[0]
    original = originals.get(base)
    if original is None:
        return Decision({}, f"revision: it names {base} as revised, but no document has that number")
    if original.status in (DocumentStatus.WITHDRAWN, DocumentStatus.REJECTED):
        return Decision({}, f"revision: it names {base} as revised, but {base} was {original.status}")
    if check_sender and not related(sender, original):
        return Decision(
            {},
            f"revision: {base} was sent by {original.sender or 'an unknown sender'}, and this message "
            f"comes from {sender or 'an unknown sender'}, neither the same person nor the same organisation",
        )
    in_documents = {c.document for c in claims if c.document is not None}
    targets = sorted(in_documents & set(candidates)) if in_documents else list(candidates)
    if not targets:
        return Decision({})  # the revised file was refused or is late: nothing to number now
    if len(targets) > 1:
        return Decision(
            {},
            f"revision: it names {base} as revised but carries {len(targets)} documents; "
            "which one is the revision?",
        )
    expected = original.latest_revision + 1
    stated = {c.stated for c in claims if c.stated is not None}
    if stated and stated != {expected}:
        said = ", ".join(f"Rev.{n}" for n in sorted(stated))
        return Decision(
            {},
            f"revision: it says {said} of {base}, but the next revision of {base} is Rev.{expected}",
        )
    return Decision({targets[0]: RevisionLink(original.document_id, base, expected)})


# --- the database side ----------------------------------------------------------------------


def load_original(session: Session, base: str) -> Original | None:
    """The document numbered `base` (the original, not a revision), with its latest revision."""
    from sqlalchemy import func, select

    from intake.models import Document, InboundMessage

    document = session.scalars(select(Document).where(Document.number == base)).first()
    if document is None:
        return None
    message = session.get(InboundMessage, document.message_id)
    latest = session.execute(
        select(func.max(Document.revision)).where(Document.revision_of_id == document.id)
    ).scalar_one()
    emails = tuple(
        str(item["email"])
        for item in (document.contacts or {}).get("items", [])
        if isinstance(item, dict) and item.get("email")
    )
    return Original(
        document_id=document.id,
        number=base,
        status=document.status,
        sender=message.sender if message else None,
        contact_emails=emails,
        latest_revision=int(latest or 0),
    )


def _candidates(verdict: MessageVerdict) -> list[int]:
    return [
        i
        for i, d in enumerate(verdict.documents)
        if d.role == DocumentRole.DOCUMENT and d.status == DocumentStatus.ACCEPTED
    ]


def claims_revision(event: EventSettings, inbound: Inbound, verdict: MessageVerdict) -> bool:
    """Whether `resolve_revisions` will look the message's claims up in the database."""
    if verdict.status not in (MessageStatus.ACCEPTED, MessageStatus.PARTIAL):
        return False
    return bool(find_claims(event, inbound.subject, [(d.filename, d.title) for d in verdict.documents]))


def resolve_revisions(
    session: Session, event: EventSettings, inbound: Inbound, verdict: MessageVerdict
) -> tuple[MessageVerdict, dict[int, RevisionLink]]:
    """The recording path's hook: link revisions, or hold the message with the reason.

    Returns the verdict (held, its accepted documents `pending`, when ambiguous)
    and the links by index into `verdict.documents`, for `assign_number`.
    """
    if verdict.status not in (MessageStatus.ACCEPTED, MessageStatus.PARTIAL):
        return verdict, {}
    claims = find_claims(event, inbound.subject, [(d.filename, d.title) for d in verdict.documents])
    if not claims:
        return verdict, {}
    originals = {c.base: load_original(session, c.base) for c in claims}
    decision = decide(claims, inbound.sender, _candidates(verdict), originals)
    if decision.hold is None:
        return verdict, dict(decision.links)
    return hold(verdict, decision.hold), {}


def hold(verdict: MessageVerdict, reason: str) -> MessageVerdict:
    """The verdict held for the secretariat: nothing is numbered, nobody is answered yet."""
    documents = tuple(
        replace(d, status=DocumentStatus.PENDING) if d.status == DocumentStatus.ACCEPTED else d
        for d in verdict.documents
    )
    return replace(verdict, status=MessageStatus.HELD, documents=documents, reason=reason)


def assign_number(
    session: Session,
    event: EventSettings,
    document: Document,
    link: RevisionLink | None,
    number: str | None = None,
) -> str:
    """Number an accepted document: its original's number and Rev.n, or the series' next
    (`number`, when the caller took the batch's numbers together)."""
    from intake.numbering import take_number

    if link is None:
        document.number = number or take_number(session, event)
        return document.number
    document.number = link.number
    document.revision = link.revision
    document.revision_of_id = link.original_id
    return document.number


def normalise_number(event: EventSettings, text: str) -> str:
    """A number as people type it ("jca-mv-i-1 rev 2") in the form it is stored ("JCA-MV-I-001 Rev.2")."""
    text = " ".join(text.split())
    after, _ = _patterns(event)
    match = after.fullmatch(text)
    if match is not None:
        revision = match.group("rev") or match.group("r")
        return revision_number(_format(event, match.group("value")), int(revision))
    prefix = _prefix(event)
    bare = re.fullmatch(rf"(?:{prefix})[\s_-]*(\d{{1,9}})", text, re.IGNORECASE)
    return _format(event, bare.group(1)) if bare else text

"""The intake's vocabulary: every status, reply kind, desk action, audit action and role.

This is the one place these words are spelled and the one place that says what a
message's status implies (`MEANING`): its plain words for the secretariat, the reply
it gets, the mailbox folder it is filed in, the desk actions that apply to it, and
whether a person has to look at it. Everything else asks here; no other module
compares a status or reply-kind string (tests/test_domain.py scans for that).

The enums are `StrEnum`s whose values are what the database stores, so a status
read from a row compares equal to its member and nothing needs a data migration.
The database schema (`intake.models`) stores them as plain strings.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class MessageStatus(enum.StrEnum):
    RECEIVED = "received"  # recorded, not yet judged
    ACCEPTED = "accepted"
    PARTIAL = "partial"
    REJECTED = "rejected"
    LATE = "late"
    IGNORED = "ignored"
    HELD = "held"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"
    # Every document it carries is, byte for byte, one already numbered (a resend): not
    # numbered again; answered with the number it has (issue 11). Fits the 16-character column.
    ALREADY_NUMBERED = "already_numbered"
    # Mail that is not a submission: no document at all (a question, thanks, a request).
    CORRESPONDENCE = "correspondence"
    ANSWERED = "answered"  # correspondence the secretariat has marked as answered


class DocumentStatus(enum.StrEnum):
    PENDING = "pending"  # recorded, not yet judged
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    LATE = "late"
    COMPANION = "companion"  # a PDF or zip kept beside an accepted .docx
    NOT_A_DOCUMENT = "not_a_document"  # signature, vCard, signature image
    WITHDRAWN = "withdrawn"
    # The same bytes as a document already numbered in the event (`Document.copy_of_id`).
    ALREADY_NUMBERED = "already_numbered"


# A document's status in plain words (the dashboard, `intake check`).
DOCUMENT_WORDS: Mapping[DocumentStatus, str] = {
    DocumentStatus.PENDING: "not yet judged",
    DocumentStatus.ACCEPTED: "accepted",
    DocumentStatus.REJECTED: "refused",
    DocumentStatus.LATE: "late",
    DocumentStatus.COMPANION: "companion",
    DocumentStatus.NOT_A_DOCUMENT: "not a document",
    DocumentStatus.WITHDRAWN: "withdrawn",
    DocumentStatus.ALREADY_NUMBERED: "already numbered (the same file was registered before)",
}


class DocumentRole(enum.StrEnum):
    """What a file carried by a message is for (`intake.judge.policy` decides)."""

    DOCUMENT = "document"  # a contribution: judged, numbered when accepted
    COMPANION = "companion"  # a PDF or zip beside a contribution
    NOT_A_DOCUMENT = "not_a_document"  # signature image, vCard, ...


class ReplyKind(enum.StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    REJECTION = "rejection"
    LATE_NOTICE = "late_notice"
    # The secretariat overrules an acceptance or a hold (intake.desk), with a reason.
    SECRETARIAT_REJECTION = "secretariat_rejection"
    # A resend: the document is already registered, under this number, since that day.
    ALREADY_REGISTERED = "already_registered"
    # To a person whose message carried no document: it reached the secretariat, and how to
    # submit one. Not to a message that answers our mail, nor when the event turned it off.
    CORRESPONDENCE_NOTICE = "correspondence_notice"


class ReplyStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # recorded but not sent (rate limit, policy)


class DigestStatus(enum.StrEnum):
    """A daily digest's row (intake.digest): claimed by one sender, then sent or failed."""

    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class DeskAction(enum.StrEnum):
    """What the secretariat can do (intake.desk.actions, `intake <action>`, the dashboard)."""

    ADMIT = "admit"  # a late message: accept and number it
    REJECT = "reject"  # overrule: reject with a reason, sent to the contributor
    RELEASE = "release"  # a held message: judge it as if it had not been held
    REPROCESS = "reprocess"  # judge again with today's rules
    WITHDRAW = "withdraw"  # a numbered document (not a message status)
    RESEND = "resend"  # a reply (not a message status)
    MARK_ANSWERED = "mark_answered"  # correspondence: a person has answered it


# The actions on a message as a whole (withdraw acts on a document, resend on a reply).
MESSAGE_ACTIONS = (
    DeskAction.ADMIT,
    DeskAction.REJECT,
    DeskAction.RELEASE,
    DeskAction.MARK_ANSWERED,
    DeskAction.REPROCESS,
)


class AuditAction(enum.StrEnum):
    """What an `AuditEvent` records."""

    RECORDED = "recorded"
    REKEYED = "rekeyed"
    NUMBERED = "numbered"
    REPLY = "reply"
    ADMITTED = "admitted"
    REJECTED = "rejected"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"
    RESENT = "resent"
    REPROCESSED = "reprocessed"
    MARKED_ANSWERED = "marked_answered"
    SIGNED_IN = "signed_in"
    SIGNED_OUT = "signed_out"
    USER_ADDED = "user_added"
    USER_UPDATED = "user_updated"


class SubjectType(enum.StrEnum):
    """What an `AuditEvent` is about."""

    MESSAGE = "message"
    DOCUMENT = "document"
    REPLY = "reply"
    USER = "user"


class DeskRole(enum.StrEnum):
    ADMIN = "admin"  # reads and acts
    VIEWER = "viewer"  # reads only


@dataclass(frozen=True)
class StatusMeaning:
    """What a message's status implies, everywhere it matters."""

    words: str  # for the secretariat: what happened
    reply: ReplyKind | None  # what the contributor is sent; None: nothing
    actions: frozenset[DeskAction]  # the desk actions that apply to a message in this status
    needs_person: bool  # the secretariat has to look at it

    def allows(self, action: DeskAction | str) -> bool:
        return action in self.actions


_REJECT = DeskAction.REJECT
_REPROCESS = DeskAction.REPROCESS

MEANING: Mapping[MessageStatus, StatusMeaning] = {
    MessageStatus.RECEIVED: StatusMeaning(
        "recorded, not yet judged", None, frozenset({_REJECT, _REPROCESS}), False
    ),
    MessageStatus.ACCEPTED: StatusMeaning(
        "every document accepted and numbered",
        ReplyKind.ACKNOWLEDGEMENT,
        frozenset({_REJECT, _REPROCESS}),
        False,
    ),
    MessageStatus.PARTIAL: StatusMeaning(
        "some documents accepted, some refused",
        ReplyKind.ACKNOWLEDGEMENT,
        frozenset({_REJECT, _REPROCESS}),
        False,
    ),
    MessageStatus.REJECTED: StatusMeaning(
        "nothing acceptable (or too large)",
        ReplyKind.REJECTION,
        frozenset({_REPROCESS}),
        False,
    ),
    MessageStatus.LATE: StatusMeaning(
        "received after the deadline; kept for the secretariat to admit",
        ReplyKind.LATE_NOTICE,
        frozenset({DeskAction.ADMIT, _REJECT, _REPROCESS}),
        True,
    ),
    MessageStatus.IGNORED: StatusMeaning(
        "auto-reply, bounce, mailing list, our own mail", None, frozenset({_REPROCESS}), False
    ),
    MessageStatus.HELD: StatusMeaning(
        "marked as spam, or DMARC failed; the secretariat decides",
        None,
        frozenset({DeskAction.RELEASE, _REJECT, _REPROCESS}),
        True,
    ),
    MessageStatus.QUARANTINED: StatusMeaning(
        "not readable as e-mail, or no sender", None, frozenset({_REPROCESS}), True
    ),
    # A duplicate is judged with its original: nothing applies to it on its own.
    MessageStatus.DUPLICATE: StatusMeaning(
        "a second copy of a message already recorded", None, frozenset(), False
    ),
    # A resend (a new message, the same file): linked to the numbered document, answered
    # with its number; judging it again is all the desk can do (the bytes decide).
    MessageStatus.ALREADY_NUMBERED: StatusMeaning(
        "the same file as a document already numbered; not numbered again",
        ReplyKind.ALREADY_REGISTERED,
        frozenset({_REPROCESS}),
        False,
    ),
    # Its reply is the notice, unless the message answers our mail (`MessageVerdict.answers`)
    # or the event turned the notice off (`[event.replies] correspondence_notice`).
    MessageStatus.CORRESPONDENCE: StatusMeaning(
        "no document: a question, thanks or a request for the secretariat to answer",
        ReplyKind.CORRESPONDENCE_NOTICE,
        frozenset({DeskAction.MARK_ANSWERED, _REPROCESS}),
        True,
    ),
    MessageStatus.ANSWERED: StatusMeaning(
        "correspondence the secretariat has answered", None, frozenset({_REPROCESS}), False
    ),
}


# The audit entry each desk action writes on its subject.
RECORDED_AS: Mapping[DeskAction, AuditAction] = {
    DeskAction.ADMIT: AuditAction.ADMITTED,
    DeskAction.REJECT: AuditAction.REJECTED,
    DeskAction.RELEASE: AuditAction.RELEASED,
    DeskAction.REPROCESS: AuditAction.REPROCESSED,
    DeskAction.WITHDRAW: AuditAction.WITHDRAWN,
    DeskAction.RESEND: AuditAction.RESENT,
    DeskAction.MARK_ANSWERED: AuditAction.MARKED_ANSWERED,
}


def meaning(status: MessageStatus | str) -> StatusMeaning:
    """What this status implies; raises ValueError for a word that is not a status."""
    return MEANING[MessageStatus(status)]


def statuses_allowing(action: DeskAction) -> tuple[MessageStatus, ...]:
    """The message statuses a desk action applies to, in the enum's order."""
    return tuple(status for status in MessageStatus if action in MEANING[status].actions)


def reply_kind(status: MessageStatus | str) -> ReplyKind | None:
    """The reply a message in this status gets from the poller; None: it is never answered."""
    return meaning(status).reply


def folder_for(filing_root: str, status: MessageStatus | str) -> tuple[str, ...]:
    """The mailbox folder a message in this status is filed in: `<root>/<Status>`."""
    return (filing_root, MessageStatus(status).value.capitalize())

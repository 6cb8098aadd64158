"""The database schema: every table of the intake domain.

The database is the source of truth; the mailbox is only an inbox. Rows are
written in one place (`intake.record`), one transaction per inbound message.
Status values are plain strings; their vocabulary (`MessageStatus` and friends) and
what each implies live in `intake.domain`, so a new status never needs a schema migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite stores no zone, so values are normalised to UTC on the way in and
    marked UTC on the way out; a naive value is a programming error.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class MailboxState(Base):
    """Where the poller stands in one folder of one mailbox."""

    __tablename__ = "mailbox_state"
    __table_args__ = (UniqueConstraint("mailbox", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(320))  # "user@host:port"
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_poll_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InboundMessage(Base):
    """One message as it was found in the mailbox, with its outcome."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("mailbox", "folder", "uidvalidity", "uid"),
        Index("ix_inbound_message_dedupe", "event", "message_id"),
        Index("ix_inbound_message_sha256", "event", "sha256"),
        Index("ix_inbound_message_status", "status"),
        Index("ix_inbound_message_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str] = mapped_column(String(320))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(998))
    sender: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str | None] = mapped_column(String(998))
    reply_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    date_header: Mapped[datetime | None]
    received_at: Mapped[datetime]  # the server's INTERNALDATE
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))  # of the raw bytes (the blob's name)
    # Of the body alone: two deliveries of one message differ only in trace headers.
    body_sha256: Mapped[str] = mapped_column(String(64))
    headers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # why ignored/held/quarantined
    error: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
    filed_folder: Mapped[str | None] = mapped_column(String(255))
    filed_at: Mapped[datetime | None]
    # Enough of the headers to screen and reply without re-reading the blob.
    headers: Mapped[dict[str, Any] | None]

    documents: Mapped[list[Document]] = relationship(
        back_populates="message", order_by="Document.position", cascade="all, delete-orphan"
    )
    # Findings about the message as a whole (not about one of its documents).
    findings: Mapped[list[Finding]] = relationship(
        primaryjoin="and_(Finding.message_id == InboundMessage.id, Finding.document_id.is_(None))",
        viewonly=True,
        order_by="Finding.id",
    )
    replies: Mapped[list[Reply]] = relationship(back_populates="message", order_by="Reply.id")


class Document(Base):
    """One file carried by an inbound message (attachment or named inline part)."""

    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("number"), Index("ix_document_sha256", "sha256"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("inbound_message.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(Text)  # as sent; never used as a path
    declared_type: Mapped[str | None] = mapped_column(String(255))
    detected_type: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))  # document, companion, not_a_document
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    contacts: Mapped[dict[str, Any] | None]
    abstract: Mapped[str | None] = mapped_column(Text)
    number: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    revision_of_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    # Issue 11: status already_numbered, the same bytes as this numbered document (a resend).
    # A plain integer, not a foreign key: SQLite adds one only by rebuilding the table, and
    # dropping the old table with foreign keys on would cascade to every finding.
    copy_of_id: Mapped[int | None] = mapped_column(Integer)

    message: Mapped[InboundMessage] = relationship(back_populates="documents")
    findings: Mapped[list[Finding]] = relationship(back_populates="document", order_by="Finding.id")


class Finding(Base):
    """One result of a check, on a message (document_id NULL) or on one document."""

    __tablename__ = "finding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("inbound_message.id", ondelete="CASCADE"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))  # error | warning | info
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)

    message_row: Mapped[InboundMessage] = relationship(foreign_keys=[message_id])
    document: Mapped[Document | None] = relationship(back_populates="findings")


class Reply(Base):
    """An outgoing reply: the outbox. Written in the same transaction as the decision."""

    __tablename__ = "reply"
    __table_args__ = (
        UniqueConstraint("rfc_message_id"),
        Index("ix_reply_status", "status"),
        Index("ix_reply_recipient", "recipient", "created_at"),
        # The outbox's claim at a run's start: an event's oldest pending reply, read from the
        # front of this index (within a run the claim looks past the id it sent last).
        Index("ix_reply_due", "event", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_message.id"))
    event: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # acknowledgement, rejection, late_notice, ...
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    rfc_message_id: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # the composed MIME message
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # why suppressed
    # What the reply is about, for the rate limit: the sorted codes of its errors.
    signature: Mapped[str | None] = mapped_column(String(512))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    sent_copy_at: Mapped[datetime | None]  # when a copy went to the mailbox's Sent folder
    # Issue 5 (intake.desk): the reply's kind and a digest of the decision it announced, so that
    # `intake reprocess` never sends the same news twice. NULL on rows written before it is known.
    outcome: Mapped[str | None] = mapped_column(String(128))

    message: Mapped[InboundMessage | None] = relationship(back_populates="replies")


class AuditEvent(Base):
    """The history of every record: who did what, when, and why."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))  # "system" or a user name
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))  # message, document, reply
    subject_id: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class DocumentCounter(Base):
    """The last number handed out in an event's document series; never goes back."""

    __tablename__ = "document_counter"

    event: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


# --- the secretariat's desk (issue 5: intake.desk, intake.web) ----------------------------------


class DeskUser(Base):
    """A local account for the dashboard; the password is stored as an Argon2id hash only."""

    __tablename__ = "desk_user"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # NULL: sign-in by proxy header only
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored here."""

    __tablename__ = "web_session"
    __table_args__ = (UniqueConstraint("token_hash"), Index("ix_web_session_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("desk_user.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    user: Mapped[DeskUser] = relationship()


class SignInThrottle(Base):
    """Failed sign-ins counted per client address, per account name and per trusted browser
    (intake.desk.throttle). Kept here, not in memory, so restarts and replicas share it."""

    __tablename__ = "signin_throttle"
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        Index("ix_signin_throttle_last_failure_at", "last_failure_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # address, account, device
    key: Mapped[str] = mapped_column(String(64))  # an address (IPv6: its /64), a name, a token's SHA-256
    account: Mapped[str | None] = mapped_column(String(64))  # device: the account it has signed in to
    failures: Mapped[int] = mapped_column(Integer, default=0)
    spread: Mapped[int] = mapped_column(Integer, default=0)  # account: failures from a changed address
    last_address: Mapped[str | None] = mapped_column(String(64))
    last_failure_at: Mapped[datetime | None]
    blocked_until: Mapped[datetime | None]
    refused: Mapped[int] = mapped_column(Integer, default=0)  # attempts refused in the current wait
    audit_id: Mapped[int | None] = mapped_column(Integer)  # the audit row counting them
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the secretariat's daily digest (issue 14: intake.digest) -------------------------------------


class DigestRun(Base):
    """One daily digest: the span it covered, to whom, and whether it went out.

    The digest `intake run` sends at `[event] digest_at` carries its day (`slot`, the event's
    local date): the unique (event, slot) is how replicas agree that only one of them sends it.
    A digest sent by hand (`intake digest --send`) has no slot. The latest sent one's
    `period_end` is where the next digest's "since the last digest" begins."""

    __tablename__ = "digest_run"
    __table_args__ = (
        UniqueConstraint("event", "slot"),
        Index("ix_digest_run_event_sent_at", "event", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str | None] = mapped_column(String(10))  # "2026-05-01": the scheduled day; NULL: by hand
    status: Mapped[str] = mapped_column(String(16))  # intake.domain.DigestStatus
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated
    rfc_message_id: Mapped[str | None] = mapped_column(String(998))
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

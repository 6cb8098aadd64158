"""Compose replies: turn a decision about one inbound message into a MIME message.

This module owns what a contributor reads and the headers around it. It does
no I/O besides reading the secretariat's templates and the blank document
template, and never sends anything (that is `intake.replies.outbox`). Every
reply's MIME is built here, in `compose_reply`, once.

- The wording lives in Jinja2 templates, `<kind>.txt.j2` and `<kind>.html.j2`
  for each kind in `intake.replies.kinds.KINDS`, in `[event.replies] templates_dir` (default: the
  shipped `config/replies/`). HTML is autoescaped, undefined names are errors
  (`StrictUndefined`), and the templates run in Jinja's sandbox because they
  are edited outside the code base. `check_templates` renders them all with
  sample data so a broken template is caught by `intake check-config`.
- Every header value that comes from the contributor (subject, name, ids) is
  cut to one line without control characters before it reaches the header
  code, so no input can add a header. Messages are written as the stdlib's
  `EmailMessage` with `policy.SMTP` writes them (CRLF, 7-bit: RFC 2047 headers,
  RFC 2231 file names, quoted-printable bodies), byte for byte, but assembled
  here rather than through `email.message` (see "composing" below); the blank
  template's part is encoded once per version of the file. Three header
  classes of our own (`_policy`):
  `In-Reply-To` / `References` are folded between message ids and never
  encoded (the stdlib would RFC 2047-encode a long id and break threading);
  a non-ASCII `Subject` or display name in `From` / `To` is encoded by the
  legacy `email.header` encoder, because the new folder can drop a space
  between two encoded words.

The names a template can use are listed in `template_namespace`.
"""

from __future__ import annotations

import email.header
import email.policy
import email.utils
import functools
import logging
import mimetypes
import random
import re
import secrets
import sys
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from email import quoprimime
from email.headerregistry import (
    Address,
    BaseHeader,
    HeaderRegistry,
    UniqueAddressHeader,
    UniqueUnstructuredHeader,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.policy import EmailPolicy, Policy
from pathlib import Path
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from intake.addresses import deliverable_address
from intake.config import EventSettings, RepliesConfig
from intake.domain import DocumentStatus
from intake.findings import Found, Severity
from intake.parse import Inbound
from intake.replies.kinds import KINDS, spec
from intake.screen import OWN_MESSAGE_ID_PREFIX
from intake.text import REPLY_PREFIX
from intake.verdict import MessageVerdict

log = logging.getLogger(__name__)

MAX_TEMPLATE_ATTACHMENT = 20 * 2**20  # a blank template is ~100 KB; refuse to mail anything huge
_SUBJECT_CHARS = 200
_NAME_CHARS = 100
_TEXT_CHARS = 300  # titles, sources, file names shown in a reply
_MAX_REFERENCES = 10
# Not left to mimetypes alone: its table depends on the host's /etc/mime.types.
_OFFICE_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    ".doc": "application/msword",
    ".pdf": "application/pdf",
}


class RecipientError(ValueError):
    """The reply address is not safe to put in a header or an SMTP command."""


# --- what the caller hands over -------------------------------------------------------


class FindingLine(NamedTuple):
    """One finding as a reply shows it: (code, severity, message, fix)."""

    code: str
    severity: str  # error | warning | info
    message: str
    fix: str

    @classmethod
    def of(cls, found: Found) -> FindingLine:
        return cls(found.code, str(found.severity), found.message, found.fix)


@dataclass(frozen=True)
class DocumentLine:
    """One file of the inbound message, as a reply shows it."""

    filename: str | None
    status: str  # a DocumentStatus value
    number: str | None = None  # set once accepted; for a resend, the number it already has
    title: str | None = None
    source: str | None = None
    findings: tuple[FindingLine, ...] = ()
    registered_at: datetime | None = None  # a resend: when the numbered copy was received
    registered_on: Moment | None = None  # the same, as a reply shows it (set by template_namespace)

    @property
    def errors(self) -> tuple[FindingLine, ...]:
        return tuple(f for f in self.findings if f.severity == Severity.ERROR)

    @property
    def warnings(self) -> tuple[FindingLine, ...]:
        return tuple(f for f in self.findings if f.severity == Severity.WARNING)

    @property
    def name(self) -> str:
        """What to call the file in a sentence."""
        return self.filename or "(a file without a name)"


@dataclass(frozen=True)
class ReplyContext:
    """Everything about one inbound message that a reply needs.

    `recipient` is decided by the caller (see `intake.screen.reply_address`);
    `recipient_name` is shown only as the To display name and the greeting.
    `received_at` is the server's receipt time (aware).
    """

    recipient: str
    received_at: datetime
    subject: str | None = None
    message_id: str | None = None
    references: tuple[str, ...] = ()
    recipient_name: str | None = None
    documents: tuple[DocumentLine, ...] = ()
    findings: tuple[FindingLine, ...] = ()  # about the message as a whole
    note: str | None = None  # the secretariat's own words (intake.desk), e.g. why they rejected it

    @classmethod
    def from_verdict(
        cls,
        inbound: Inbound,
        verdict: MessageVerdict,
        *,
        recipient: str,
        received_at: datetime,
        numbers: Mapping[int, str] | None = None,
    ) -> ReplyContext:
        """Build the context from the parse and the judgement.

        `numbers` maps a document's part_index to the number it was given.
        Findings of severity info are only recorded, never shown.
        """
        numbers = numbers or {}

        def shown(items: Sequence[Found]) -> tuple[FindingLine, ...]:
            return tuple(FindingLine.of(f) for f in items if f.severity != Severity.INFO)

        documents = tuple(
            DocumentLine(
                filename=d.filename,
                status=str(d.status),
                number=numbers.get(d.part_index) or (d.registered.number if d.registered else None),
                title=d.title,
                source=d.source,
                findings=shown(d.findings),
                registered_at=d.registered.received_at if d.registered else None,
            )
            for d in verdict.documents
        )
        references = tuple(_MSG_ID_IN.findall(inbound.header("References") or ""))
        if not references:
            references = tuple(_MSG_ID_IN.findall(inbound.header("In-Reply-To") or ""))[:1]
        same_person = recipient.lower() == (inbound.sender or "").lower()
        return cls(
            recipient=recipient,
            received_at=received_at,
            subject=inbound.subject,
            message_id=inbound.message_id,
            references=references,
            recipient_name=inbound.sender_name if same_person else None,
            documents=documents,
            findings=shown(verdict.findings),
        )


@dataclass(frozen=True)
class ComposedReply:
    """A reply ready for the outbox: the columns of a `Reply` row and its bytes."""

    recipient: str
    subject: str
    body_text: str
    body_html: str | None
    rfc_message_id: str
    raw: bytes = field(repr=False)


# --- header safety ----------------------------------------------------------------------

_MSG_ID = re.compile(r"^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$")  # printable ASCII, no < >
_MSG_ID_IN = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
# Directional embeddings/overrides can make a header display as something else.
_BIDI_OVERRIDES = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def one_line(value: str | None, limit: int) -> str:
    """Text safe for one header or one line of a reply: no control, line or
    paragraph separators, no bidi overrides; whitespace collapsed; bounded."""
    if not value:
        return ""
    # Every character replaced below is "nonprintable" to `str.isprintable` (Cc, Zl, Zp; the
    # overrides are Cf), so a printable value, nearly every one, skips the per-character loop.
    spaced = value if value.isprintable() else _without_controls(value)
    text = " ".join(spaced.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _without_controls(value: str) -> str:
    """`value` with each control, line or paragraph separator and bidi override made a space."""
    kept = []
    for ch in value:
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp") or ch in _BIDI_OVERRIDES:
            kept.append(" ")
        else:
            kept.append(ch)
    return "".join(kept)


def reply_subject(original: str | None, numbers: Sequence[str] = ()) -> str:
    """`Re: <original>` with the numbers given, never `Re: Re:`."""
    core = REPLY_PREFIX.sub("", one_line(original, _SUBJECT_CHARS)) or "(no subject)"
    missing = [n for n in numbers if n not in core]
    return f"Re: {core}" + (f" [{', '.join(missing)}]" if missing else "")


def _message_id(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if _MSG_ID.match(value) else None


def new_message_id(event: EventSettings) -> str:
    """Our Message-ID; `intake.screen` recognises the prefix when a reply comes back."""
    domain = event.address.rpartition("@")[2]
    return f"<{OWN_MESSAGE_ID_PREFIX}{secrets.token_hex(16)}@{domain}>"


class _MessageIdList(UnstructuredHeader):
    """In-Reply-To / References: folded between ids, never RFC 2047-encoded."""

    name: str  # provided by BaseHeader, which the registry mixes in

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: " + (policy.linesep + " ").join(str(self).split()) + policy.linesep


@functools.lru_cache(maxsize=1024)
def _encoded_words(text: str, header_name: str, policy: Policy) -> str:
    # The stdlib's legacy encoder keeps every space inside an encoded word.
    # policy.SMTP's own folder (3.11) may fold at a space between two encoded
    # words, and RFC 2047 readers drop such a space: "двойники ¡" came back as
    # "двойники¡". Found by the hypothesis test in tests/replies/test_compose.py.
    encoded = email.header.Header(text, "utf-8", header_name=header_name)
    return encoded.encode(linesep=policy.linesep)


class _Subject(UniqueUnstructuredHeader):
    """Subject: non-ASCII text encoded without losing a space."""

    name: str

    def fold(self, *, policy: Policy) -> str:
        text = str(self)
        if text.isascii():
            return cast(str, super().fold(policy=policy))  # type: ignore[misc]
        return f"{self.name}: {_encoded_words(text, self.name, policy)}{policy.linesep}"


class _Mailbox(UniqueAddressHeader):
    """From / To (one mailbox): a non-ASCII display name encoded without losing a space."""

    name: str

    def fold(self, *, policy: Policy) -> str:
        addresses = self.addresses
        display_name = addresses[0].display_name if len(addresses) == 1 else ""
        if not display_name or display_name.isascii():
            return cast(str, super().fold(policy=policy))  # type: ignore[misc]
        encoded = _encoded_words(display_name, self.name, policy)
        return f"{self.name}: {encoded} <{addresses[0].addr_spec}>{policy.linesep}"


def _policy() -> EmailPolicy[EmailMessage]:
    # A registry of our own: HeaderRegistry instances are shared by the stdlib
    # policies, and mapping a type on the shared one would change every policy.
    # The registry mixes BaseHeader into each class, hence the casts.
    registry = HeaderRegistry()
    for name, header_class in (
        ("in-reply-to", _MessageIdList),
        ("references", _MessageIdList),
        ("subject", _Subject),
        ("from", _Mailbox),
        ("to", _Mailbox),
    ):
        registry.map_to_type(name, cast(type[BaseHeader], header_class))
    return email.policy.SMTP.clone(header_factory=registry)


_POLICY = _policy()


# --- times ------------------------------------------------------------------------------------

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Moment:
    """A point in time as a reply shows it, in the event's zone and in UTC."""

    local: str  # "Thursday 30 April 2026, 23:59 CEST" or "..., 23:59 Geneva time"
    utc: str  # "Thursday 30 April 2026, 21:59 UTC"
    both: str  # "Thursday 30 April 2026, 23:59 CEST (21:59 UTC)"; the UTC day when it differs
    iso: str  # "2026-04-30T21:59:59+00:00"


def _day(value: date) -> str:
    # Not strftime: its names follow the process locale.
    return f"{_DAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]} {value.year}"


def moment(value: datetime, event: EventSettings, zone_label: str = "", seconds: bool = False) -> Moment:
    """Format `value` for a reply; `seconds` for receipt times, where they can matter."""
    # `fold` makes the key exact: two datetimes of one zone compare equal by their wall time
    # alone, even in the hour that the change back from summer time repeats.
    return _moment(value, value.fold, event.timezone, zone_label, seconds)


@functools.lru_cache(maxsize=256)
def _moment(value: datetime, fold: int, zone: ZoneInfo, zone_label: str, seconds: bool) -> Moment:
    """`moment`, once per instant and way of showing it: every reply shows the same deadline.
    `fold` is there for the cache's key only."""
    local = value.astimezone(zone)
    utc = value.astimezone(UTC)
    label = zone_label or local.tzname() or str(zone)
    local_text = f"{_day(local)}, {_clock_time(local, seconds)} {label}"
    utc_clock = f"{_clock_time(utc, seconds)} UTC"
    utc_text = f"{_day(utc)}, {utc_clock}"
    same_day = local.date() == utc.date()
    return Moment(
        local=local_text,
        utc=utc_text,
        both=f"{local_text} ({utc_clock if same_day else utc_text})",
        iso=utc.isoformat(),
    )


def _clock_time(value: datetime, seconds: bool) -> str:
    """`value.strftime("%H:%M")` (or "%H:%M:%S"), in a third of its time."""
    hours_minutes = f"{value.hour:02d}:{value.minute:02d}"
    return f"{hours_minutes}:{value.second:02d}" if seconds else hours_minutes


def time_left(deadline: datetime, now: datetime) -> str | None:
    """ "2 days, 3 hours and 5 minutes" until the deadline; None once it has passed."""
    remaining = deadline - now
    if remaining <= timedelta(0):
        return None
    minutes = int(remaining.total_seconds() // 60)
    if minutes == 0:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- templates --------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _environment(directory: str) -> jinja2.Environment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",),
            disabled_extensions=("txt.j2",),
            default_for_string=False,
            default=False,
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,  # the secretariat edits templates while the service runs
    )


def _clean_document(doc: DocumentLine) -> DocumentLine:
    return DocumentLine(
        filename=one_line(doc.filename, _TEXT_CHARS) or None,
        status=doc.status,
        number=one_line(doc.number, 64) or None,
        title=one_line(doc.title, _TEXT_CHARS) or None,
        source=one_line(doc.source, _TEXT_CHARS) or None,
        findings=tuple(_clean_finding(f) for f in doc.findings),
        registered_at=doc.registered_at,
    )


def _clean_finding(found: FindingLine) -> FindingLine:
    return FindingLine(found.code, found.severity, found.message.strip(), found.fix.strip())


def template_namespace(
    kind: str,
    context: ReplyContext,
    event: EventSettings,
    now: datetime,
    config: RepliesConfig,
    attached: str | None,
) -> dict[str, Any]:
    """The names every reply template can use (this is the templates' contract).

    kind, recipient, recipient_name (None if unknown), subject (the original,
    one line), reply_subject, numbers (list of str; acknowledgements only),
    received and deadline (Moment: local, utc, both, iso), time_left (str, None once passed), deadline_passed,
    event (name, acronym, group, address, address_name, meeting_place,
    meeting_date, preregistration_deadline (None if unset), late_policy),
    documents / accepted / refused / late / companions / registered (DocumentLine
    lists: filename, name, status, number, title, source, findings, errors,
    warnings; a registered one, sent again, has the number it already has and
    registered_on, a Moment), findings (message-level FindingLines: code, severity, message,
    fix), message_errors, message_warnings, template_attached (file name or
    None), template_link (URL or None), precheck_url (the pre-check page, or
    None), note (the secretariat's words, several lines, or None).
    """
    documents = [
        replace(doc, registered_on=moment(doc.registered_at, event, config.zone_label))
        if doc.registered_at is not None
        else doc
        for doc in (_clean_document(d) for d in context.documents)
    ]
    accepted = [d for d in documents if d.status == DocumentStatus.ACCEPTED]
    # Numbers go in the subject of the kinds where they are news (the acknowledgement).
    numbers = [d.number for d in accepted if d.number] if spec(kind).lists_numbers else []
    findings = [_clean_finding(f) for f in context.findings]
    return {
        "kind": kind,
        "recipient": context.recipient,
        "recipient_name": one_line(context.recipient_name, _NAME_CHARS) or None,
        "subject": one_line(context.subject, _SUBJECT_CHARS) or "(no subject)",
        "reply_subject": reply_subject(context.subject, numbers),
        "numbers": numbers,
        "received": moment(context.received_at, event, config.zone_label, seconds=True),
        "deadline": moment(event.deadline, event, config.zone_label),
        "time_left": time_left(event.deadline, now),
        "deadline_passed": now >= event.deadline,
        "event": {
            "name": event.name,
            "acronym": event.acronym,
            "group": event.group,
            "address": event.address,
            "address_name": event.address_name,
            "meeting_place": event.meeting_place,
            "meeting_date": _day(event.meeting_date),
            "preregistration_deadline": (
                _day(event.preregistration_deadline) if event.preregistration_deadline else None
            ),
            "late_policy": event.late_policy,
        },
        "documents": documents,
        "accepted": accepted,
        "refused": [d for d in documents if d.status == DocumentStatus.REJECTED],
        "late": [d for d in documents if d.status == DocumentStatus.LATE],
        "companions": [d for d in documents if d.status == DocumentStatus.COMPANION],
        "registered": [d for d in documents if d.status == DocumentStatus.ALREADY_NUMBERED],
        "findings": findings,
        "message_errors": [f for f in findings if f.severity == Severity.ERROR],
        "message_warnings": [f for f in findings if f.severity == Severity.WARNING],
        "template_attached": attached,
        "template_link": config.template_link,
        "precheck_url": event.precheck_url or None,
        "note": _clean_note(context.note),
    }


def _clean_note(note: str | None) -> str | None:
    """The secretariat's text: lines kept, control characters and bidi overrides dropped, bounded."""
    if not note:
        return None
    lines = [one_line(line, 1000) for line in note.replace("\r\n", "\n").split("\n")]
    text = "\n".join(lines).strip()[:4000]
    return text or None


def _render(config: RepliesConfig, name: str, namespace: dict[str, Any]) -> str:
    return _template(str(config.templates_dir), name).render(namespace)


_RECHECK_SECONDS = 1.0
_monotonic = time.monotonic  # a module attribute, so that a test can move the clock
_checked: dict[tuple[str, str], tuple[jinja2.Template, float]] = {}


def _template(directory: str, name: str) -> jinja2.Template:
    """The template, Jinja asked for it at most once a second per file.

    Jinja's `auto_reload` compares the file's modification time with the loaded one's on
    every `get_template`: a stat and its cache's lock, twice per reply, which a loaded
    poller measured at a third of composing. Asked again after a second, Jinja still
    reloads a template the secretariat edited: a saved file is in use within a second,
    without a restart. `check_templates` asks Jinja every time (`_first_problem`)."""
    now = _monotonic()
    checked = _checked.get((directory, name))
    if checked is not None and now - checked[1] < _RECHECK_SECONDS:
        return checked[0]
    template = _environment(directory).get_template(name)
    _checked[(directory, name)] = (template, now)
    return template


def _template_file(kind: str, event: EventSettings, config: RepliesConfig) -> tuple[str, bytes] | None:
    """The blank template to attach to a reply of this kind, as its file name and its MIME part
    (encoded once per version of the file), or None (then the link is shown)."""
    row = spec(kind)
    wanted = row.attaches_template or (row.attaches_without_link and not config.template_link)
    if not wanted or not config.attach_template or event.template is None:
        return None
    try:
        stat = event.template.stat()
        if stat.st_size > MAX_TEMPLATE_ATTACHMENT:
            log.warning("event.template %s is too large to attach", event.template)
            return None
        return event.template.name, _attachment_part(str(event.template), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        # A reply without the attachment beats no reply; check-config reports it.
        log.warning("event.template %s cannot be read: %s", event.template, exc.strerror)
        return None


@functools.lru_cache(maxsize=4)
def _attachment_part(path: str, mtime_ns: int, size: int) -> bytes:
    """The file as one MIME part (headers, base64 body), as the stdlib writes an attachment.
    Keyed by the file's identity: an edited template is read and encoded again."""
    filename = Path(path).name
    content_type = (
        _OFFICE_TYPES.get(Path(filename).suffix.lower())
        or mimetypes.guess_type(filename)[0]
        or "application/octet-stream"
    )
    maintype, _, subtype = content_type.partition("/")
    part = EmailMessage(policy=_POLICY)
    part.set_content(Path(path).read_bytes(), maintype=maintype, subtype=subtype, filename=filename)
    return part.as_bytes()


# --- composing ----------------------------------------------------------------------------
#
# The MIME is written here directly, the same bytes `EmailMessage` with `_POLICY` writes for
# the same reply (tests/replies/test_compose.py compares the two): building it through
# `email.message` cost ~2.5 ms per reply, most of it parsing and refolding headers we had just
# set. Only the headers that can need encoding or folding (From, To, a non-ASCII Subject or a
# long one that is not plain words, ids with an encoded-word look) still go through the stdlib's
# header classes.

_CRLF = "\r\n"
_MAX_LINE = 78  # _POLICY.max_line_length
_ALTERNATIVE = 'Content-Type: multipart/alternative;\r\n boundary="{}"\r\n'  # 84 columns: folded
_MIXED = 'Content-Type: multipart/mixed; boundary="{}"\r\n'  # 78 columns: one line
_TEXT_PART = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'


def _folded(name: str, value: Any) -> str:
    """One header as the stdlib folds it with `_POLICY` (our header classes included)."""
    return cast(str, _POLICY.header_factory(name, value).fold(policy=_POLICY))


def _plain(name: str, value: str) -> str | None:
    """The header on one line when the stdlib would write it unchanged; None otherwise."""
    line = f"{name}: {value}"
    if len(line) > _MAX_LINE or not value.isascii() or "=?" in value or value != " ".join(value.split()):
        return None
    return line + _CRLF


_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=4096)
def _mailbox(name: str, display_name: str, addr_spec: str) -> str:
    """From / To with one mailbox. The common shapes directly (a plain address; a name of
    plain words; a non-ASCII name, encoded as `_Mailbox` does); anything else, and any line
    that would need folding, by the stdlib."""
    local, _, domain = addr_spec.rpartition("@")
    if _DOT_ATOM.fullmatch(local) and _DOT_ATOM.fullmatch(domain) and "=?" not in display_name:
        if not display_name.isascii():
            return f"{name}: {_encoded_words(display_name, name, _POLICY)} <{addr_spec}>{_CRLF}"
        if not display_name and len(name) + 2 + len(addr_spec) <= _MAX_LINE:
            return f"{name}: {addr_spec}{_CRLF}"
        line = f"{name}: {display_name} <{addr_spec}>"
        if _ATOMS.fullmatch(display_name) and len(line) <= _MAX_LINE:
            return line + _CRLF
    return _folded(name, Address(display_name=display_name, addr_spec=addr_spec))


def _folded_words(name: str, value: str) -> str | None:
    """An unstructured header of plain words folded as the stdlib folds it with `_POLICY`; None
    for any value whose folding is not this simple (then the stdlib folds it).

    The header factory and its folder cost ~60 µs (this, ~3), and most reply subjects ("Re: "
    and the numbers added) are too long for one line. For printable ASCII words separated by single
    spaces, none of them "=?" or too long for a line of its own, the stdlib's folder comes down
    to: a value that fits on a line by itself goes whole on the second line ("Subject:" alone on
    the first); a longer one is filled word by word, each line breaking before a space, the
    space starting the next line. tests/replies/test_compose.py holds this to `_folded`.
    """
    if not (value.isascii() and value.isprintable()) or "=?" in value:
        return None
    words = value.split(" ")
    if "" in words or max(map(len, words)) >= _MAX_LINE:  # runs of spaces; a word too long to move
        return None
    if len(name) + 2 + len(value) <= _MAX_LINE:
        return f"{name}: {value}{_CRLF}"
    if len(value) < _MAX_LINE:
        return f"{name}:{_CRLF} {value}{_CRLF}"
    lines = []
    line = f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > _MAX_LINE:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return _CRLF.join(lines) + _CRLF


def _subject(subject: str) -> str:
    return _plain("Subject", subject) or _folded_words("Subject", subject) or _folded("Subject", subject)


def _ids(name: str, ids: Sequence[str]) -> str:
    """In-Reply-To / References: one id per line (`_MessageIdList`); ids are checked by `_MSG_ID`."""
    value = " ".join(ids)
    if "=?" in value:
        return _folded(name, value)
    return f"{name}: " + (_CRLF + " ").join(ids) + _CRLF


def _text_part(subtype: str, text: str, mime_version: bool) -> str:
    """A text/* part in quoted-printable, as `EmailMessage.set_content(text, cte="quoted-printable")`
    writes it (the stdlib adds MIME-Version to the parts it adds after the first)."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded = quoprimime.body_encode(body.decode("latin-1"), _MAX_LINE)
    head = _TEXT_PART.format(subtype) + ("MIME-Version: 1.0\r\n" if mime_version else "")
    return head + _CRLF + encoded.replace("\n", _CRLF)


def _boundary(parts: Sequence[str | bytes]) -> str:
    """A boundary as the stdlib's generator makes one, found in none of the parts."""
    while True:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
        as_bytes = boundary.encode()
        if not any(boundary in p if isinstance(p, str) else as_bytes in p for p in parts):
            return boundary


def _multipart(boundary: str, parts: Sequence[str]) -> str:
    inner = (_CRLF + "--" + boundary + _CRLF).join(parts)
    return f"--{boundary}{_CRLF}{inner}{_CRLF}--{boundary}--{_CRLF}"


def _headers(
    event: EventSettings,
    recipient: str,
    recipient_name: str,
    subject: str,
    message_id: str,
    now: datetime,
    context: ReplyContext,
) -> str:
    date = email.utils.format_datetime(now.astimezone(event.timezone))
    lines = [
        _mailbox("From", one_line(event.address_name, _NAME_CHARS), event.address),
        _mailbox("To", recipient_name, recipient),
        _subject(subject),
        _plain("Date", date) or _folded("Date", date),
        _plain("Message-ID", message_id) or _folded("Message-ID", message_id),
    ]
    parent = _message_id(context.message_id)
    if parent:
        lines.append(_ids("In-Reply-To", [parent]))
    references = [r for r in (_message_id(r) for r in context.references) if r]
    if parent:
        references.append(parent)
    if len(references) > _MAX_REFERENCES:  # keep the thread's root and the latest ones
        references = references[:1] + references[-(_MAX_REFERENCES - 1) :]
    if references:
        lines.append(_ids("References", references))
    # RFC 3834: tells well-behaved responders not to answer us; Exchange honours
    # X-Auto-Response-Suppress. Together they keep two robots from ping-ponging.
    lines.append("Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\nMIME-Version: 1.0\r\n")
    return "".join(lines)


def compose_reply(kind: str, context: ReplyContext, event: EventSettings, now: datetime) -> ComposedReply:
    """Build the reply of this kind as a MIME message (text + HTML alternative, and the blank
    template when the kind attaches it), once.

    `now` (aware) dates the message and computes the time left. Raises
    RecipientError when `context.recipient` is not a safe address, ValueError
    for an unknown kind, OSError for an unreadable template directory, and
    jinja2.TemplateError for a broken template (which `check_templates`
    reports beforehand).
    """
    text_template, html_template = spec(kind).templates  # ValueError for an unknown kind
    if now.tzinfo is None or context.received_at.tzinfo is None:
        raise ValueError("now and context.received_at must be timezone-aware")
    recipient = deliverable_address(context.recipient)
    if recipient is None:
        raise RecipientError(f"not a safe reply address: {one_line(context.recipient, 80)!r}")
    config = event.replies
    attachment = _template_file(kind, event, config)
    namespace = template_namespace(kind, context, event, now, config, attachment[0] if attachment else None)
    body_text = _render(config, text_template, namespace)
    body_html = _render(config, html_template, namespace)
    subject: str = namespace["reply_subject"]
    message_id = new_message_id(event)
    head = _headers(event, recipient, namespace["recipient_name"] or "", subject, message_id, now, context)
    # Quoted-printable keeps the bytes 7-bit: no reliance on the server's 8BITMIME.
    texts = [_text_part("plain", body_text, False), _text_part("html", body_html, True)]
    inner = _boundary(texts)
    alternative = _ALTERNATIVE.format(inner) + _CRLF + _multipart(inner, texts)
    if attachment:
        part = attachment[1].decode("ascii")  # base64 and encoded headers: ASCII
        outer = _boundary([alternative, part])
        raw = head + _MIXED.format(outer) + _CRLF + _multipart(outer, [alternative, part])
    else:
        raw = head + alternative
    return ComposedReply(
        recipient=recipient,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        rfc_message_id=message_id,
        raw=raw.encode("ascii"),
    )


def _headed(event: EventSettings, to: Address | str) -> EmailMessage:
    """A message of ours with its From and To: the event's address and name, encoded safely."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = Address(display_name=one_line(event.address_name, _NAME_CHARS), addr_spec=event.address)
    msg["To"] = to
    return msg


def compose_notice(
    event: EventSettings,
    recipients: Sequence[str],
    subject: str,
    body_text: str,
    body_html: str,
    now: datetime,
) -> tuple[str, bytes]:
    """A message of ours that answers no one (the daily digest, `intake.digest`), built as the
    replies are: the same policy and header care, quoted-printable text and HTML parts, and
    `Auto-Submitted: auto-generated` (RFC 3834) so that no responder answers it.
    Returns (its Message-ID, its bytes). Raises RecipientError for an unsafe address."""
    addresses = [deliverable_address(r) for r in recipients]
    if not addresses or None in addresses:
        raise RecipientError(f"not safe addresses: {one_line(', '.join(recipients), 200)!r}")
    msg = _headed(event, ", ".join(a for a in addresses if a))
    msg["Subject"] = one_line(subject, _SUBJECT_CHARS)
    msg["Date"] = email.utils.format_datetime(now.astimezone(event.timezone))
    message_id = new_message_id(event)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(body_text, cte="quoted-printable")
    msg.add_alternative(body_html, subtype="html", cte="quoted-printable")
    return message_id, msg.as_bytes()


_HEADER_LINE = r"(?im)^{name}:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*"


def _replace_header(block: bytes, name: str, value: str) -> bytes:
    pattern = re.compile(_HEADER_LINE.format(name=re.escape(name)).encode())
    return pattern.sub(lambda _: f"{name}: {value}".encode("ascii"), block, count=1)


def redated(raw: bytes, event: EventSettings, now: datetime) -> tuple[str, bytes]:
    """A composed reply sent again: a new Message-ID and Date, every other byte the same.
    Returns (the new Message-ID, the message)."""
    message_id = new_message_id(event)
    head, separator, body = raw.partition(b"\r\n\r\n")
    head = _replace_header(head, "Message-ID", message_id)
    head = _replace_header(head, "Date", email.utils.format_datetime(now.astimezone(event.timezone)))
    return message_id, head + separator + body


# --- checking the templates ---------------------------------------------------------------


def sample_context(received_at: datetime) -> ReplyContext:
    """A context exercising every branch: accepted, refused, warnings, non-ASCII."""
    warning = FindingLine("sample.warning", "warning", "The abstract is longer than one page.", "Shorten it.")
    error = FindingLine(
        "sample.error", "error", "The document is not based on the template.", "Use the template."
    )
    return ReplyContext(
        recipient="contributor@example.org",
        received_at=received_at,
        subject="Contribution: 元宇宙 — метавселенная — الميتافيرس",
        message_id="<sample.1@example.org>",
        references=("<sample.0@example.org>",),
        recipient_name="Ана Петровић",
        documents=(
            DocumentLine("input.docx", DocumentStatus.ACCEPTED, "SAMPLE-001", "A title", "Org A", (warning,)),
            DocumentLine("second.docx", DocumentStatus.ACCEPTED, "SAMPLE-002", None, None),
            DocumentLine("bad.docx", DocumentStatus.REJECTED, None, None, None, (error, warning)),
            DocumentLine("input.pdf", DocumentStatus.COMPANION),
            DocumentLine("late.docx", DocumentStatus.LATE),
            DocumentLine(
                "again.docx",
                DocumentStatus.ALREADY_NUMBERED,
                "SAMPLE-000",
                "An earlier title",
                registered_at=received_at - timedelta(days=1),
            ),
        ),
        findings=(warning,),
        note="The document was sent on behalf of an organisation that is not a member.\nPlease ask.",
    )


def check_templates(event: EventSettings) -> list[str]:
    """Render every reply template with sample data; return the problems found.

    An empty list means every kind renders in both formats. Meant for
    `intake check-config`, so that a contributor never meets a broken template.
    """
    config = event.replies
    problems: list[str] = []
    if config.attach_template and event.template is not None:
        try:
            with event.template.open("rb"):
                pass
        except OSError as exc:
            problems.append(f"event.template: {event.template} cannot be read ({exc.strerror})")
    received = event.deadline - timedelta(days=2)
    samples = [
        (label, context, now)
        for label, context in (
            ("full", sample_context(received)),
            ("minimal", ReplyContext(recipient="x@example.org", received_at=received)),
        )
        for now in (received, event.deadline + timedelta(hours=1))  # before and after
    ]
    for kind in KINDS.values():
        for name in kind.templates:
            problem = _first_problem(config, event, kind.kind, name, samples)
            if problem:
                problems.append(problem)
    return problems


def _first_problem(
    config: RepliesConfig,
    event: EventSettings,
    kind: str,
    name: str,
    samples: list[tuple[str, ReplyContext, datetime]],
) -> str | None:
    where = config.templates_dir / name
    for label, context, now in samples:
        namespace = template_namespace(kind, context, event, now, config, None)
        try:
            text = _environment(str(config.templates_dir)).get_template(name).render(namespace)
        except jinja2.TemplateNotFound:
            return f"{where}: missing"
        except jinja2.TemplateSyntaxError as exc:
            return f"{where}:{exc.lineno}: {exc.message}"
        except Exception as exc:  # UndefinedError, SecurityError, a filter's error, ...
            return f"{where}: fails with the {label} sample: {type(exc).__name__}: {exc}"
        if not text.strip():
            return f"{where}: renders empty text"
    return None

"""Screening: which inbound messages must never get a reply, and why.

This module owns the question "is this mail from a person we should answer?".
It follows GNU Mailman's shape: each rule is a small class that only
inspects (`check` returns a bool; `reason` words the hit for the
secretariat) and never acts; one chain (`CHAIN`) says what a hit means
(`ignored` or `held`) and `screen` is the one place that decides.

Rules come from what established systems do (../shared/notes/ingestion.md §2),
minus their known mistakes: `X-Auto-Response-Suppress` is NOT a sign of
automatic mail, because Exchange puts it on ordinary human mail (Discourse
PR #21367); django-helpdesk and Zammad count it and misfire.

Order matters only for which reason is recorded: mail that is certainly
ours or certainly automatic is `ignored` first (no human wrote it, so there is
nobody to answer and nothing for the secretariat to review); spam and DMARC
failures are `held` last, because they look like a person's mail but cannot
be trusted, and replying would send backscatter to a possibly forged address.

The table `[event.screening]` is parsed with the configuration
(`intake.config.screening`) and applied here as `event.screening`.
`reply_address` decides which address, if any, a reply may go to
(`intake.addresses.deliverable_address`: which are safe at all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from intake.addresses import deliverable_address
from intake.config import EventSettings
from intake.config.screening import normalise_subject
from intake.domain import MessageStatus
from intake.parse import Inbound

# Our replies carry Message-IDs like <intake.{random}@{domain of event.address}>
# (intake.replies.compose); a message carrying one is our own reply come back.
OWN_MESSAGE_ID_PREFIX = "intake."

_NEGATIVE = {"no", "false", "0", "off", "none"}


# --- addresses ------------------------------------------------------------------

_ROBOT_LOCAL = re.compile(
    r"^(?:.*[-_.+])?"
    r"(?:mailer[-_]?daemon|post[-_]?master|no[-_.]?reply|do[-_.]?not[-_.]?reply)"
    r"(?:[-_.+].*)?$",
    re.IGNORECASE,
)


def is_robot_address(address: str) -> bool:
    """mailer-daemon, postmaster, no-reply and the like: nobody reads replies to them."""
    local = address.rpartition("@")[0] or address
    return bool(_ROBOT_LOCAL.match(local))


def own_addresses(event: EventSettings) -> frozenset[str]:
    return frozenset({event.address.lower()}) | event.screening.own_addresses


def reply_address(inbound: Inbound, event: EventSettings) -> str | None:
    """Where a reply to this message may go: Reply-To when present and sane, else From.

    Sane means deliverable (see `deliverable_address`), not one of our own
    addresses (a loop) and not a robot address. None when neither will do.
    """
    own = own_addresses(event)
    for candidate in (inbound.reply_to, inbound.sender):
        address = deliverable_address(candidate)
        if address and address.lower() not in own and not is_robot_address(address):
            return address
    return None


# --- helpers shared by the rules --------------------------------------------------


def _first_token(value: str) -> str:
    """`auto-replied; owner-email=...` -> `auto-replied`, lower-cased."""
    return value.split(";", 1)[0].strip().lower()


def _shown(value: str, limit: int = 80) -> str:
    """A header value as quoted in a reason: one line, bounded."""
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _address_in(value: str | None) -> str | None:
    if not value:
        return None
    match = re.search(r"<([^<>]*)>", value)
    return (match.group(1) if match else value).strip().lower() or None


# --- the rules ----------------------------------------------------------------------


class Rule:
    """One question about a message. Subclasses set `name`, `description`, `check`."""

    name: ClassVar[str]
    description: ClassVar[str]

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        raise NotImplementedError

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        """One plain sentence for the secretariat; called only after `check` said yes."""
        return self.description


class OwnAddress(Rule):
    name = "own-address"
    description = "The message comes from our own address; answering it would make a loop."

    def _hit(self, inbound: Inbound, event: EventSettings) -> str | None:
        own = own_addresses(event)
        for label, value in (
            ("From", inbound.sender),
            ("Reply-To", inbound.reply_to),
            ("Return-Path", _address_in(inbound.header("Return-Path"))),
        ):
            if value and value.lower() in own:
                return label
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._hit(inbound, event) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        return (
            f"The {self._hit(inbound, event)} address is our own ({event.address}); "
            "answering it would make a mail loop."
        )


class OwnMessageId(Rule):
    name = "own-message-id"
    description = "The message carries a Message-ID made by this service: it is our own reply."

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        message_id = (inbound.message_id or "").strip().lower()
        domain = event.address.rpartition("@")[2].lower()
        return message_id.startswith("<" + OWN_MESSAGE_ID_PREFIX) and message_id.endswith("@" + domain + ">")


class AutoSubmitted(Rule):
    name = "auto-submitted"
    description = "The Auto-Submitted header says a program, not a person, sent the message."

    def _values(self, inbound: Inbound) -> list[str]:
        # RFC 3834: any value other than "no" means automatic, including ones
        # we do not know (auto-notified, vacation extensions, ...).
        return [v for v in inbound.header_all("Auto-Submitted") if _first_token(v) != "no"]

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return bool(self._values(inbound))

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        value = self._values(inbound)[0]
        return f"Auto-Submitted is {_shown(value)!r}: a program, not a person, sent the message."


class BulkPrecedence(Rule):
    name = "precedence"
    description = "The Precedence header marks the message as bulk, list, junk or auto-reply mail."
    VALUES: ClassVar[frozenset[str]] = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})

    def _value(self, inbound: Inbound) -> str | None:
        for value in inbound.header_all("Precedence"):
            if _first_token(value) in self.VALUES:
                return value
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._value(inbound) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        return f"Precedence is {_shown(self._value(inbound) or '')!r}: mass or automatic mail."


class AutoReplyHeader(Rule):
    name = "auto-reply-header"
    description = "A header such as X-Autoreply or X-Autorespond marks an automatic reply."
    # Set by vacation programs and webmail responders (GitLab and RT check
    # X-Autoreply / X-FC-MachineGenerated). A value like "no" does not count.
    HEADERS: ClassVar[tuple[str, ...]] = (
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
        "X-FC-MachineGenerated",
    )

    def _hit(self, inbound: Inbound) -> tuple[str, str] | None:
        for header in self.HEADERS:
            for value in inbound.header_all(header):
                if _first_token(value) not in _NEGATIVE:
                    return header, value
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._hit(inbound) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        header, value = self._hit(inbound) or ("", "")
        return f"{header} is {_shown(value)!r}: the message is an automatic reply."


class XLoop(Rule):
    name = "x-loop"
    description = "An X-Loop header shows the message was sent on by a mail robot or list."

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return any(_first_token(v) not in _NEGATIVE for v in inbound.header_all("X-Loop"))

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        value = inbound.header("X-Loop") or ""
        return f"X-Loop is {_shown(value)!r}: a mail robot or list passed the message on."


class MailingList(Rule):
    name = "mailing-list"
    description = "List-Id or List-Unsubscribe shows the message came through a mailing list."

    def _header(self, inbound: Inbound) -> tuple[str, str] | None:
        for header in ("List-Id", "List-Unsubscribe"):
            value = inbound.header(header)
            if value is not None:
                return header, value
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._header(inbound) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        header, value = self._header(inbound) or ("", "")
        return (
            f"The message came through a mailing list ({header}: {_shown(value, 60)}); "
            "answering would write to the list."
        )


# Subject beginnings of out-of-office replies, normalised by normalise_subject.
# Most are what Outlook/Exchange, Gmail, Apple Mail, Thunderbird and Lotus Notes
# write in each language (Discourse's and Zammad's lists, extended).
OUT_OF_OFFICE_SUBJECTS: tuple[str, ...] = (
    # Marks of generated mail in any language: "[AUTO GENERATED]", "Auto-generated:"
    "auto generated",
    "autogenerated",
    "automatically generated",
    "automatic notification",
    "auto notification",
    # English
    "auto:",
    "automatic reply",
    "automatic response",
    "auto reply",
    "autoreply",
    "auto response",
    "autoresponse",
    "out of office",
    "out of the office",
    "away from the office",
    "vacation reply",
    "vacation auto reply",
    # German
    "automatische antwort",
    "abwesenheitsnotiz",
    "abwesenheitsmeldung",
    "abwesend",
    "nicht im büro",
    "außer haus",
    "ausser haus",
    # French
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "absent du bureau",
    "absente du bureau",
    "message automatique",
    "réponse automatique d'absence",
    "message d'absence",
    # Spanish
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "fuera de oficina",
    "mensaje automático",
    "mensaje automatico",
    # Italian
    "risposta automatica",
    "risposta non al computer",
    "fuori sede",
    "fuori ufficio",
    # Dutch
    "automatisch antwoord",
    "afwezig",
    "niet aanwezig",
    "afwezigheidsbericht",
    # Swedish, Danish, Norwegian
    "automatiskt svar",
    "automatisk svar",
    "autosvar",
    "frånvaro",
    "frånvarande",
    "fraværende",
    "fravær",
    # Portuguese
    "resposta automática",
    "resposta automatica",
    "ausente do escritório",
    "fora do escritório",
    # Polish, Czech, Finnish, Turkish, Greek
    "automatyczna odpowiedź",
    "poza biurem",
    "automatická odpověď",
    "automaattinen vastaus",
    "otomatik yanıt",
    "otomatik cevap",
    "ofis dışında",
    "αυτόματη απάντηση",
    # Russian
    "автоматическое уведомление",
    "автоматическое сообщение",
    "отсутствую в офисе",
    "я в отпуске",
    "автоматический ответ",
    "автоответ",
    "вне офиса",
    "нет в офисе",
    # Arabic
    "رد آلي",
    "رسالة تلقائية",
    "غائب عن المكتب",
    "رد تلقائي",
    "الرد التلقائي",
    "خارج المكتب",
    # Chinese (simplified, traditional)
    "自动回复",
    "自动答复",
    "自動回覆",
    "自動回復",
    "自動答覆",
    "不在办公室",
    "自动生成",
    "系统自动发送",
    "休假中",
    # Japanese
    "自動応答",
    "自動返信",
    "不在",
    # Korean
    "자동 회신",
    "자동 응답",
    "부재중",
)


def _spaced_script(ch: str) -> bool:
    """Scripts that separate words with spaces (CJK does not)."""
    return ord(ch) < 0x2E80


def _subject_starts_with(subject: str, prefix: str) -> bool:
    if not subject.startswith(prefix):
        return False
    rest = subject[len(prefix) :]
    if not rest:
        return True
    # "Abwesend" must not match "Abwesenheitsliste", nor "Auto" "Automotive".
    last, following = prefix[-1], rest[0]
    return not (last.isalnum() and following.isalnum() and _spaced_script(last))


class OutOfOfficeSubject(Rule):
    name = "out-of-office-subject"
    description = "The subject is that of an out-of-office or automatic reply."

    def _prefix(self, inbound: Inbound, event: EventSettings) -> str | None:
        subject = normalise_subject(inbound.subject or "")
        if not subject:
            return None
        extra = event.screening.out_of_office_subjects
        for prefix in (*OUT_OF_OFFICE_SUBJECTS, *extra):
            if _subject_starts_with(subject, prefix):
                return prefix
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._prefix(inbound, event) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        return (
            f"The subject {_shown(inbound.subject or '')!r} is that of an out-of-office or automatic reply."
        )


class DeliveryReport(Rule):
    name = "delivery-report"
    description = "The message is a delivery-status report (a bounce) or a read receipt."

    def _kind(self, inbound: Inbound) -> str | None:
        content_type = (inbound.header("Content-Type") or "").lower()
        main = content_type.split(";", 1)[0].strip()
        if main == "multipart/report":
            match = re.search(r"report-type\s*=\s*\"?([a-z0-9-]+)", content_type)
            report = match.group(1) if match else ""
            if report == "disposition-notification":
                return "a read receipt (multipart/report; disposition-notification)"
            if report == "feedback-report":
                return "an abuse feedback report (multipart/report; feedback-report)"
            return f"a delivery-status report, i.e. a bounce (multipart/report; {report or '?'})"
        if main in ("message/delivery-status", "message/global-delivery-status"):
            return f"a delivery-status report, i.e. a bounce ({main})"
        if inbound.header("X-Failed-Recipients") is not None:
            return "a bounce (X-Failed-Recipients is set)"
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._kind(inbound) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        return f"The message is {self._kind(inbound)}; bounces are never answered."


# Subjects only mail servers write on a non-delivery report, for the bounces that come
# without a report's MIME type (old Exchange, GroupWise, virus scanners, hand-rolled
# MTAs; the simple-match cases of GNU Mailman's bounce detector, flufl.bounce).
BOUNCE_SUBJECTS: tuple[str, ...] = (
    "undeliverable",
    "undelivered mail",
    "undeliverable mail",
    "returned mail",
    "mail delivery failed",
    "mail delivery failure",
    "mail delivery warning",
    "mail delivery subsystem",
    "mail could not be delivered",
    "message could not be delivered",
    "delivery failure",
    "delivery failed",
    "delivery status notification",
    "delivery notification",
    "delivery has failed",
    "delivery problem",
    "failure notice",
    "nondeliverable mail",
    "non delivery report",
    "warning: could not send message",
    "non remis",  # Exchange, French: "Non remis : ..."
    "unzustellbar",  # Exchange, German
    "onbestelbaar",  # Exchange, Dutch
    "no se puede entregar",  # Exchange, Spanish
)
# Markers that old gateways append to the subject of the message they return.
_BOUNCE_MARKERS = (": non remis", ": undeliverable", ": unzustellbar", "(delivery failed)")


class BounceSubject(Rule):
    name = "bounce-subject"
    description = "The subject is one that only mail servers write on a non-delivery report."

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        subject = normalise_subject(inbound.subject or "")
        if not subject:
            return False
        return any(marker in subject for marker in _BOUNCE_MARKERS) or any(
            _subject_starts_with(subject, prefix) for prefix in BOUNCE_SUBJECTS
        )

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        subject = _shown(inbound.subject or "")
        return f"The subject {subject!r} is that of a bounce; bounces are never answered."


class RobotSender(Rule):
    name = "robot-sender"
    description = "The sender is a mail system address (mailer-daemon, postmaster, no-reply)."

    def _sender(self, inbound: Inbound) -> str | None:
        # A bounce may name its sender without a domain ("From: MAILER-DAEMON"): the
        # From line is read even when it holds no usable address.
        for candidate in (inbound.sender, _address_in(inbound.header("From"))):
            if candidate and is_robot_address(candidate):
                return candidate
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._sender(inbound) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        return f"The sender {self._sender(inbound)} is a mail system or no-reply address."


class EmptyReturnPath(Rule):
    name = "empty-return-path"
    description = "The Return-Path is empty (<>), as on bounces and other automatic notices."

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        # The topmost Return-Path is the one our own server wrote at delivery.
        value = inbound.header("Return-Path")
        return value is not None and value.replace(" ", "") == "<>"


class SpamFlag(Rule):
    name = "spam-flag"
    description = "The receiving server marked the message as spam."
    # header -> what its value starts with when the filter says spam
    HEADERS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("X-Spam-Flag", "yes"),  # SpamAssassin
        ("X-Spam-Status", "yes"),  # SpamAssassin: "Yes, score=7.2 required=5.0 ..."
        ("X-Spam", "yes"),  # Rspamd
        ("X-SES-Spam-Verdict", "fail"),  # Amazon SES
    )

    def _hit(self, inbound: Inbound) -> tuple[str, str] | None:
        for header, marker in self.HEADERS:
            for value in inbound.header_all(header):
                if value.strip().lower().startswith(marker):
                    return header, value
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._hit(inbound) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        header, value = self._hit(inbound) or ("", "")
        return (
            f"The receiving server marked the message as spam ({header}: {_shown(value, 40)}); "
            "it is held for the secretariat and not answered."
        )


def _strip_comments(value: str) -> str:
    """Remove RFC 5322 comments "(...)", innermost first, so they cannot fake a result."""
    previous = None
    while previous != value:
        previous = value
        value = re.sub(r"\([^()]*\)", " ", value)
    return value


def authentication_results(value: str) -> tuple[str | None, dict[str, str]]:
    """Parse one Authentication-Results value into (authserv-id, {method: result}).

    The authserv-id is None when the header has none (Exchange Online's form
    starts directly with "spf=...").
    """
    parts = [p.strip() for p in _strip_comments(value).split(";")]
    if not parts:
        return None, {}
    authserv: str | None = None
    if "=" not in parts[0]:
        tokens = parts[0].split()
        authserv = tokens[0].lower() if tokens else None
        parts = parts[1:]
    results: dict[str, str] = {}
    for part in parts:
        match = re.match(r"\s*([a-z0-9_-]+)\s*=\s*([a-z0-9_-]+)", part, re.IGNORECASE)
        if match:
            results.setdefault(match.group(1).lower(), match.group(2).lower())
    return authserv, results


class DmarcFail(Rule):
    name = "dmarc-fail"
    description = "Our own mail server found that the message failed DMARC: the sender may be forged."

    def _failing(self, inbound: Inbound, event: EventSettings) -> str | None:
        config = event.screening
        for position, value in enumerate(inbound.header_all("Authentication-Results")):
            authserv, results = authentication_results(value)
            if authserv is None:
                trusted = config.trust_unnamed_authentication_results and position == 0
            else:
                trusted = authserv in config.trusted_authserv_ids
            if trusted and results.get("dmarc") == "fail":
                return authserv or "(unnamed)"
        return None

    def check(self, inbound: Inbound, event: EventSettings) -> bool:
        return self._failing(inbound, event) is not None

    def reason(self, inbound: Inbound, event: EventSettings) -> str:
        server = self._failing(inbound, event)
        return (
            f"Our mail server ({server}) found that the message failed DMARC, so the sender "
            f"{inbound.sender or '(none)'} may be forged; it is held and not answered."
        )


# --- the one place that decides ------------------------------------------------------


@dataclass(frozen=True)
class Screening:
    """Why a message gets no reply: its status, the rule that fired, one sentence."""

    status: MessageStatus  # IGNORED or HELD
    rule: str
    reason: str


CHAIN: tuple[tuple[Rule, MessageStatus], ...] = (
    (OwnAddress(), MessageStatus.IGNORED),
    (OwnMessageId(), MessageStatus.IGNORED),
    (DeliveryReport(), MessageStatus.IGNORED),
    (EmptyReturnPath(), MessageStatus.IGNORED),
    (RobotSender(), MessageStatus.IGNORED),
    (AutoSubmitted(), MessageStatus.IGNORED),
    (AutoReplyHeader(), MessageStatus.IGNORED),
    (XLoop(), MessageStatus.IGNORED),
    (BulkPrecedence(), MessageStatus.IGNORED),
    (MailingList(), MessageStatus.IGNORED),
    (OutOfOfficeSubject(), MessageStatus.IGNORED),
    (BounceSubject(), MessageStatus.IGNORED),
    (SpamFlag(), MessageStatus.HELD),
    (DmarcFail(), MessageStatus.HELD),
)


def rules() -> Iterable[Rule]:
    """Every rule, in the order the chain asks them (for docs and `check-config`)."""
    return (rule for rule, _ in CHAIN)


def screen(inbound: Inbound, event: EventSettings) -> Screening | None:
    """Decide whether this message must get no reply: None means answer it.

    The first rule that fires decides; the rules switched off in
    `[event.screening] disabled_rules` are not asked.
    """
    disabled = event.screening.disabled_rules
    for rule, status in CHAIN:
        if rule.name in disabled:
            continue
        if rule.check(inbound, event):
            return Screening(status=status, rule=rule.name, reason=rule.reason(inbound, event))
    return None

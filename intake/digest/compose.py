"""The digest as the secretariat reads it: plain text and HTML from templates/, and the MIME
message around them (`intake.replies.compose.compose_notice`: the replies' policy, header care
and quoted-printable parts).

Every text that came in with mail (names, subjects, titles, reasons, server answers) is cut to
one line without control characters or bidi overrides here (`one_line`), and the HTML
template escapes it (autoescape). The templates are the code's own, not the secretariat's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from intake.config import Settings
from intake.digest.contents import Digest, FailedReply, Group, Item
from intake.replies.compose import compose_notice, moment, one_line, time_left

_TEXT = 300


@dataclass(frozen=True)
class ComposedDigest:
    subject: str
    body_text: str
    body_html: str
    rfc_message_id: str
    raw: bytes


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _local(value: datetime, settings: Settings) -> str:
    return value.astimezone(settings.event.timezone).strftime("%Y-%m-%d %H:%M")


def _sender(item: Item) -> str:
    name, address = one_line(item.sender_name, 100), one_line(item.sender, 320)
    if name and address:
        return f"{name} <{address}>"
    return name or address or "(no sender)"


def _item(item: Item, settings: Settings) -> dict[str, Any]:
    return {
        "id": item.id,
        "received": _local(item.received_at, settings),
        "sender": _sender(item),
        "subject": one_line(item.subject, _TEXT) or "(no subject)",
        "numbers": [one_line(n, 64) for n in item.numbers],
        "titles": [one_line(t, _TEXT) for t in item.titles],
        "reason": one_line(item.reason, _TEXT) or None,
        "link": item.link,
    }


def _group(group: Group, settings: Settings) -> dict[str, Any]:
    return {
        "status": str(group.status),
        "words": group.words,
        "count": group.count,
        "more": group.more,
        "entries": [_item(i, settings) for i in group.items],
    }


def _failed(reply: FailedReply, settings: Settings) -> dict[str, Any]:
    return {
        "id": reply.id,
        "kind": reply.kind.replace("_", " "),
        "recipient": one_line(reply.recipient, 320),
        "error": one_line(reply.error, _TEXT) or "(no reason recorded)",
        "created": _local(reply.created_at, settings),
        "link": reply.link,
    }


def subject_of(digest: Digest, settings: Settings) -> str:
    day = digest.until.astimezone(settings.event.timezone).strftime("%Y-%m-%d")
    count = digest.failed_count
    failed = f", {count} failed {'reply' if count == 1 else 'replies'}" if count else ""
    return (
        f"{settings.event.acronym} daily digest {day}: {digest.new_count} new, "
        f"{digest.waiting_count} waiting for a person{failed}"
    )


def namespace(digest: Digest, settings: Settings) -> dict[str, Any]:
    """The names the two templates use."""
    event, label = settings.event, settings.event.replies.zone_label
    return {
        "subject": subject_of(digest, settings),
        "event": {"name": event.name, "acronym": event.acronym, "address": event.address},
        "since": moment(digest.since, event, label).local,
        "until": moment(digest.until, event, label).local,
        "since_last": digest.since_last,
        "deadline": moment(event.deadline, event, label).both,
        "time_left": time_left(event.deadline, digest.until),
        "new": [_group(g, settings) for g in digest.new],
        "new_count": digest.new_count,
        "waiting": [_group(g, settings) for g in digest.waiting],
        "waiting_count": digest.waiting_count,
        "failed": [_failed(r, settings) for r in digest.failed],
        "failed_count": digest.failed_count,
        "failed_more": digest.failed_count - len(digest.failed),
        "desk_url": settings.desk_url or None,
    }


def render_text(digest: Digest, settings: Settings) -> str:
    return _environment().get_template("digest.txt.j2").render(namespace(digest, settings))


def compose_digest(digest: Digest, settings: Settings, now: datetime) -> ComposedDigest:
    """The digest as a message to `settings.event.digest_to`."""
    names = namespace(digest, settings)
    body_text = _environment().get_template("digest.txt.j2").render(names)
    body_html = _environment().get_template("digest.html.j2").render(names)
    message_id, raw = compose_notice(
        settings.event, settings.event.digest_to, names["subject"], body_text, body_html, now
    )
    return ComposedDigest(names["subject"], body_text, body_html, message_id, raw)

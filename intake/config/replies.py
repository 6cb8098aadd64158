"""The `[event.replies]` table: where the reply templates are and how replies are sent.

Read once, when the configuration is loaded; `intake.replies` applies it. A wrong key
or value raises `ConfigError` naming `event.replies.<key>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intake.addresses import deliverable_address
from intake.config.base import ConfigError, shipped_config_dir


@dataclass(frozen=True)
class RepliesConfig:
    """The validated `[event.replies]` table.

    templates_dir: directory of the `<kind>.txt.j2` / `<kind>.html.j2`
        templates; an absolute path (a relative one in the file is relative to
        the file). Default: the shipped config/replies.
    template_link: where contributors can download the blank template
        (http or https). Shown when the template is not attached. Default none.
    attach_template: attach `event.template` to rejections (and to the correspondence
        notice when there is no template_link). Default true.
    zone_label: how the event's local time is named, e.g. "Geneva time".
        Default: the zone's abbreviation (CEST, CET).
    daily_cap: at most this many replies to one address in 24 hours; what is
        over the cap is recorded as suppressed, not sent. Default 10.
    copy_to: the secretariat's addresses, sent a copy of every reply.
    correspondence_notice: answer a message without a document (correspondence) with
        the notice saying how to submit one. Default true.
    """

    templates_dir: Path
    template_link: str | None = None
    attach_template: bool = True
    zone_label: str = ""
    daily_cap: int = 10
    copy_to: tuple[str, ...] = ()
    correspondence_notice: bool = True


_KEYS = (
    "templates_dir",
    "template_link",
    "attach_template",
    "zone_label",
    "daily_cap",
    "copy_to",
    "correspondence_notice",
)


def default_replies() -> RepliesConfig:
    """An empty `[event.replies]`: the shipped templates, every default."""
    return RepliesConfig(templates_dir=shipped_config_dir() / "replies")


def parse_replies(table: Mapping[str, Any], base_dir: Path | None = None) -> RepliesConfig:
    """Read `[event.replies]`; raises ConfigError naming the bad key.

    A relative `templates_dir` is taken relative to `base_dir` (the config file's
    directory); without one it must be absolute."""
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"event.replies.{key}", f"unknown setting; known: {', '.join(_KEYS)}")

    def text(key: str) -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise ConfigError(f"event.replies.{key}", "must be text")
        if any(ch in value for ch in "\r\n\x00"):
            raise ConfigError(f"event.replies.{key}", "must be a single line")
        return value.strip()

    directory_text = text("templates_dir")
    if directory_text:
        directory = Path(directory_text).expanduser()
        if not directory.is_absolute() and base_dir is not None:
            directory = base_dir / directory
        if not directory.is_absolute():
            raise ConfigError("event.replies.templates_dir", f"give an absolute path, got {directory_text!r}")
        if not directory.is_dir():
            raise ConfigError("event.replies.templates_dir", f"no such directory: {directory}")
    else:
        directory = shipped_config_dir() / "replies"
    link = text("template_link")
    if link and not re.match(r"^https?://[^\s<>\"]+$", link):
        raise ConfigError("event.replies.template_link", f"must be an http(s) URL, got {link!r}")
    attach, notice = (_switch(table, key) for key in ("attach_template", "correspondence_notice"))
    cap = table.get("daily_cap", 10)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 1000:
        raise ConfigError("event.replies.daily_cap", f"must be a whole number from 1 to 1000, got {cap!r}")
    copy_to = table.get("copy_to", [])
    if isinstance(copy_to, str):
        copy_to = [copy_to]
    if not isinstance(copy_to, list) or not all(isinstance(a, str) for a in copy_to):
        raise ConfigError("event.replies.copy_to", "must be an address or a list of addresses")
    for address in copy_to:
        if deliverable_address(address) is None:
            raise ConfigError("event.replies.copy_to", f"not a deliverable address: {address!r}")
    return RepliesConfig(
        copy_to=tuple(a.strip().lower() for a in copy_to),
        templates_dir=directory,
        template_link=link or None,
        attach_template=attach,
        zone_label=text("zone_label"),
        daily_cap=cap,
        correspondence_notice=notice,
    )


def _switch(table: Mapping[str, Any], key: str) -> bool:
    value = table.get(key, True)
    if not isinstance(value, bool):
        raise ConfigError(f"event.replies.{key}", "must be true or false")
    return value

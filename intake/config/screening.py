"""The `[event.screening]` table: which mail is never answered, as the operator tunes it.

Read once, when the configuration is loaded; `intake.screen` applies it. A wrong key
or value raises `ConfigError` naming `event.screening.<key>`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from intake.addresses import deliverable_address
from intake.config.base import ConfigError

# The screening rules by name, in the order `intake.screen.CHAIN` asks them (a test holds the two
# together): what `disabled_rules` may name.
RULE_NAMES = (
    "own-address",
    "own-message-id",
    "delivery-report",
    "empty-return-path",
    "robot-sender",
    "auto-submitted",
    "auto-reply-header",
    "x-loop",
    "precedence",
    "mailing-list",
    "out-of-office-subject",
    "bounce-subject",
    "spam-flag",
    "dmarc-fail",
)
# What stops a mail loop: never switched off.
ALWAYS_ON = frozenset({"own-address", "own-message-id"})


@dataclass(frozen=True)
class ScreeningConfig:
    """The validated `[event.screening]` table.

    trusted_authserv_ids: authserv-ids (RFC 8601) of our own receiving servers;
        only their `Authentication-Results` are believed. Default: none, so
        DMARC results are never used until the operator names the server.
    trust_unnamed_authentication_results: Exchange Online writes
        `Authentication-Results` without an authserv-id ("spf=pass ...;
        dmarc=fail ..."). When true, such a header is believed, but only the
        topmost one (added by the last hop, our own server). Default false.
    own_addresses: other addresses of our mailbox (aliases), besides
        event.address; mail from them is our own.
    out_of_office_subjects: extra subject beginnings that mark an
        out-of-office reply, on top of the built-in list.
    disabled_rules: rule names to switch off (not the two own-mail rules,
        which are what stops a mail loop).
    """

    trusted_authserv_ids: frozenset[str] = frozenset()
    trust_unnamed_authentication_results: bool = False
    own_addresses: frozenset[str] = frozenset()
    out_of_office_subjects: tuple[str, ...] = ()
    disabled_rules: frozenset[str] = frozenset()


_KEYS = (
    "trusted_authserv_ids",
    "trust_unnamed_authentication_results",
    "own_addresses",
    "out_of_office_subjects",
    "disabled_rules",
)


def normalise_subject(value: str) -> str:
    """Compare subjects case-, width- and punctuation-insensitively."""
    value = unicodedata.normalize("NFKC", value).casefold()
    value = re.sub(r"[-_\s]+", " ", value)
    return value.strip().lstrip("[(«\"' ").strip()


def parse_screening(table: Mapping[str, Any]) -> ScreeningConfig:
    """Read `[event.screening]`; raises ConfigError naming the bad key."""
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"event.screening.{key}", f"unknown setting; known: {', '.join(_KEYS)}")
    ids = _string_list(table, "trusted_authserv_ids")
    for value in ids:
        if any(ch.isspace() for ch in value) or ";" in value:
            raise ConfigError(
                "event.screening.trusted_authserv_ids",
                f"{value!r} is not an authserv-id (a host name such as mx.example.org)",
            )
    trust_unnamed = table.get("trust_unnamed_authentication_results", False)
    if not isinstance(trust_unnamed, bool):
        raise ConfigError("event.screening.trust_unnamed_authentication_results", "must be true or false")
    own = _string_list(table, "own_addresses")
    for value in own:
        if deliverable_address(value) is None:
            raise ConfigError("event.screening.own_addresses", f"not an e-mail address: {value!r}")
    subjects = _string_list(table, "out_of_office_subjects")
    for value in subjects:
        if not normalise_subject(value):
            raise ConfigError("event.screening.out_of_office_subjects", "an entry is empty")
    disabled = _string_list(table, "disabled_rules")
    for value in disabled:
        if value not in RULE_NAMES:
            raise ConfigError(
                "event.screening.disabled_rules",
                f"no rule named {value!r}; rules: {', '.join(sorted(RULE_NAMES))}",
            )
        if value in ALWAYS_ON:
            raise ConfigError(
                "event.screening.disabled_rules",
                f"{value!r} cannot be switched off: it is what prevents a mail loop",
            )
    return ScreeningConfig(
        trusted_authserv_ids=frozenset(v.lower() for v in ids),
        trust_unnamed_authentication_results=trust_unnamed,
        own_addresses=frozenset(v.strip().lower() for v in own),
        out_of_office_subjects=tuple(normalise_subject(v) for v in subjects),
        disabled_rules=frozenset(disabled),
    )


def _string_list(table: Mapping[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"event.screening.{key}", "must be a list of strings")
    for item in value:
        if any(ch in item for ch in "\r\n\x00"):
            raise ConfigError(f"event.screening.{key}", "entries must be single lines")
    return [v.strip() for v in value]

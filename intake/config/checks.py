"""The event's `[event.checks]` table, read into typed rules with explicit defaults.

Every key is optional; a missing key takes the default below (config/jca-mv-2.toml
repeats them, documented). A wrong key or value raises `ConfigError` naming the
setting as `event.checks.<key>`. Per-field rules are keyed by the header label
as the template spells it, compared as a reader would ("Question(s)" = "question").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from intake.config.base import ConfigError
from intake.text import label_key, same_label

MiB = 2**20


@dataclass(frozen=True)
class FieldRule:
    """What one header field must hold."""

    required: bool = False
    max_words: int = 0  # 0: no limit
    email: bool = False  # must hold at least one valid e-mail address


@dataclass(frozen=True)
class Limits:
    """Bounds on opening a file: what no real document comes near, and a hostile one exceeds."""

    max_parts: int = 2000
    max_part_bytes: int = 128 * MiB
    max_total_bytes: int = 256 * MiB
    max_ratio: int = 200  # uncompressed / compressed, for parts of 1 MiB or more
    max_xml_elements: int = 2_000_000
    max_text_chars: int = 5_000_000  # text kept for reading; beyond it the rest is skipped


DEFAULT_FIELDS: dict[str, FieldRule] = {
    "source": FieldRule(required=True),
    "title": FieldRule(required=True),
    "contact": FieldRule(required=True, email=True),
    "abstract": FieldRule(required=True, max_words=200),
}
# The ITU-T template's own sample texts, known even when the configured template differs.
DEFAULT_PLACEHOLDERS: tuple[str, ...] = (
    "[Insert",
    "Insert contact name",
    "Insert organization",
    "Insert country",
    "a@b.com",
    "+xx",
    "SG12-Cn",
    "[Place, dd-dd mmm yyyy]",
)
DEFAULT_BODY_PLACEHOLDERS: tuple[str, ...] = (
    "[Your text starts here",
    "Before submitting this document",
)
# ITU-T's template highlights "English" in "Original: English" as changeable, not as a blank.
DEFAULT_KEEP: tuple[str, ...] = ("English",)
COMPANION_KINDS = ("pdf", "zip")


@dataclass(frozen=True)
class Checks:
    fields: Mapping[str, FieldRule] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS
    body_placeholders: tuple[str, ...] = DEFAULT_BODY_PLACEHOLDERS
    keep: tuple[str, ...] = DEFAULT_KEEP
    study_period: str = "2025-2028"
    highlight: bool = True
    tracked_changes: bool = True
    companions: frozenset[str] = frozenset(COMPANION_KINDS)
    signature_image_max_bytes: int = 200 * 1024
    date_gap_hours: float = 24.0
    limits: Limits = field(default_factory=Limits)

    def rule(self, key: str) -> FieldRule:
        """The rule for a header field by its label key; fields not named are optional."""
        for name, rule in self.fields.items():
            if same_label(name, key):
                return rule
        return FieldRule()


_SCALARS = {
    "study_period",
    "highlight",
    "tracked_changes",
    "companions",
    "signature_image_max_kb",
    "date_gap_hours",
    "placeholders",
    "body_placeholders",
    "keep_as_is",
    "max_parts",
    "max_part_mb",
    "max_total_mb",
    "max_ratio",
    "max_xml_elements",
    "fields",
}
_FIELD_KEYS = {"required", "max_words", "email"}


def parse_checks(raw: Mapping[str, Any]) -> Checks:
    """The event's checks with defaults; raises ConfigError("event.checks.<key>", ...)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("event.checks", "must be a table ([event.checks])")
    unknown = sorted(set(raw) - _SCALARS)
    if unknown:
        raise ConfigError(
            f"event.checks.{unknown[0]}",
            f"unknown setting; known settings are: {', '.join(sorted(_SCALARS))}",
        )
    limits = Limits(
        max_parts=_integer(raw, "max_parts", Limits.max_parts, 1, 100_000),
        max_part_bytes=_integer(raw, "max_part_mb", Limits.max_part_bytes // MiB, 1, 4096) * MiB,
        max_total_bytes=_integer(raw, "max_total_mb", Limits.max_total_bytes // MiB, 1, 4096) * MiB,
        max_ratio=_integer(raw, "max_ratio", Limits.max_ratio, 2, 100_000),
        max_xml_elements=_integer(raw, "max_xml_elements", Limits.max_xml_elements, 1000, 100_000_000),
    )
    companions = _texts(raw, "companions", COMPANION_KINDS, allow_empty=True)
    for kind in companions:
        if kind not in COMPANION_KINDS:
            raise ConfigError(
                "event.checks.companions",
                f"unknown kind {kind!r}; use any of: {', '.join(COMPANION_KINDS)}",
            )
    period = raw.get("study_period", "2025-2028")
    if not isinstance(period, str) or not _is_period(period):
        raise ConfigError("event.checks.study_period", f"must look like 2025-2028, got {period!r}")
    gap = raw.get("date_gap_hours", 24)
    if isinstance(gap, bool) or not isinstance(gap, int | float) or not 0 < gap <= 24 * 365:
        raise ConfigError("event.checks.date_gap_hours", f"must be a number of hours, got {gap!r}")
    return Checks(
        fields=_fields(raw.get("fields")),
        placeholders=_texts(raw, "placeholders", DEFAULT_PLACEHOLDERS, allow_empty=True),
        body_placeholders=_texts(raw, "body_placeholders", DEFAULT_BODY_PLACEHOLDERS, allow_empty=True),
        keep=_texts(raw, "keep_as_is", DEFAULT_KEEP, allow_empty=True),
        study_period=period.strip(),
        highlight=_boolean(raw, "highlight", True),
        tracked_changes=_boolean(raw, "tracked_changes", True),
        companions=frozenset(companions),
        signature_image_max_bytes=_integer(raw, "signature_image_max_kb", 200, 0, 100_000) * 1024,
        date_gap_hours=float(gap),
        limits=limits,
    )


def _is_period(text: str) -> bool:
    parts = text.strip().split("-")
    return len(parts) == 2 and all(p.isdigit() and len(p) == 4 for p in parts)


def _integer(raw: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"event.checks.{key}", f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"event.checks.{key}", f"must be between {low} and {high}, got {value}")
    return value


def _boolean(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"event.checks.{key}", f"must be true or false, got {value!r}")
    return value


def _texts(raw: Mapping[str, Any], key: str, default: tuple[str, ...], allow_empty: bool) -> tuple[str, ...]:
    value = raw.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"event.checks.{key}", "must be a list of non-empty texts")
    if not value and not allow_empty:
        raise ConfigError(f"event.checks.{key}", "must not be empty")
    return tuple(v.strip() for v in value)


def _fields(raw: Any) -> dict[str, FieldRule]:
    fields = dict(DEFAULT_FIELDS)
    if raw is None:
        return fields
    if not isinstance(raw, Mapping):
        raise ConfigError("event.checks.fields", "must be a table of header fields")
    for name, spec in raw.items():
        where = f"event.checks.fields.{name}"
        key = label_key(str(name))
        if not key:
            raise ConfigError(where, "a field name must contain letters")
        if not isinstance(spec, Mapping):
            raise ConfigError(where, "must be a table such as { required = true }")
        unknown = sorted(set(spec) - _FIELD_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}",
                f"unknown rule; known rules are: {', '.join(sorted(_FIELD_KEYS))}",
            )
        base = next((rule for old, rule in fields.items() if same_label(old, key)), FieldRule())
        for old in [old for old in fields if same_label(old, key)]:
            del fields[old]
        required = spec.get("required", base.required)
        email = spec.get("email", base.email)
        max_words = spec.get("max_words", base.max_words)
        if not isinstance(required, bool):
            raise ConfigError(f"{where}.required", f"must be true or false, got {required!r}")
        if not isinstance(email, bool):
            raise ConfigError(f"{where}.email", f"must be true or false, got {email!r}")
        if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 0:
            raise ConfigError(
                f"{where}.max_words", f"must be a whole number (0: no limit), got {max_words!r}"
            )
        fields[key] = FieldRule(required=required, max_words=max_words, email=email)
    return fields

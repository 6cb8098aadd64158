"""The findings catalogue: every finding the service can report, defined once.

A finding has a stable code, a severity (an error blocks, a warning informs,
info is only recorded), the sentence the contributor reads, and how to fix it.
The reply, the CLI, the dashboard, `docs/findings.md` and the tests all read
this table. Sentences are `str.format` templates over the finding's params.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class FindingKind:
    code: str
    severity: Severity
    sentence: str  # what is wrong, for the contributor; may use {params}
    fix: str  # how to put it right; may use {params}


@dataclass(frozen=True)
class Found:
    """One finding about a message or a document, ready to record and to show."""

    code: str
    severity: Severity
    message: str
    fix: str
    detail: str | None = None
    params: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.ERROR


CATALOGUE: dict[str, FindingKind] = {}


def _kind(code: str, severity: Severity, sentence: str, fix: str) -> None:
    if code in CATALOGUE:
        raise ValueError(f"finding {code} defined twice")
    CATALOGUE[code] = FindingKind(code, severity, sentence, fix)


def found(code: str, detail: str | None = None, **params: object) -> Found:
    """Build a finding from the catalogue; an unknown code is a programming error."""
    kind = CATALOGUE[code]
    text = {k: str(v) for k, v in params.items()}
    return Found(
        code=code,
        severity=kind.severity,
        message=kind.sentence.format(**text),
        fix=kind.fix.format(**text),
        detail=detail,
        params=text,
    )


# --- the message as a whole -------------------------------------------------
_kind(
    "message.too_large",
    Severity.ERROR,
    "Your message is {size_mb} MB, larger than the {limit_mb} MB this mailbox accepts.",
    "Send the document again with smaller attachments: remove embedded videos or large "
    "images, or send a companion archive separately.",
)
_kind(
    "message.unparseable",
    Severity.ERROR,
    "Your message could not be read as an e-mail ({error}).",
    "Send it again from an ordinary mail program, with the document attached.",
)
_kind(
    "message.no_sender",
    Severity.ERROR,
    "The message has no usable sender address.",
    "Send it again from a mail account with a valid From address.",
)
_kind(
    "message.no_document",
    Severity.ERROR,
    "Your message carried no document.",
    "Attach your input document as a Word (.docx) file made with the ITU-T template.",
)
_kind(
    "message.defects",
    Severity.INFO,
    "The message's structure had defects that the reader worked around ({defects}).",
    "Nothing to do unless a document is reported missing.",
)

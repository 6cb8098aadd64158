"""The one table of reply kinds: what each kind is made of and how it is limited.

`KINDS` says, for every `ReplyKind`: its template files (in `[event.replies]
templates_dir`), whether the blank document template is attached (when
`[event.replies] attach_template` is on and the event has one; always, or only
when there is no `template_link` to give), whether the numbers
given are listed in the subject, its rate-limit key: what "the same reply" means
for the rule "at most one per address and key in 24 hours" (None: only the daily cap
applies), and the `[event.replies]` switch an event may turn it off with. Which status
gets which kind is `intake.domain.MEANING`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from intake.domain import ReplyKind
from intake.findings import Severity
from intake.verdict import MessageVerdict

FORMATS = ("txt", "html")


def error_codes(verdict: MessageVerdict) -> str:
    """What a rejection is about: the sorted codes of its errors."""
    codes = {f.code for f in verdict.findings if f.severity is Severity.ERROR}
    for doc in verdict.documents:
        codes.update(f.code for f in doc.findings if f.severity is Severity.ERROR)
    return ",".join(sorted(codes))[:512]


def registered_numbers(verdict: MessageVerdict) -> str:
    """What an already-registered reply is about: the numbers of the documents sent again."""
    return ",".join(sorted({d.registered.number for d in verdict.documents if d.registered}))[:512]


def one_a_day(verdict: MessageVerdict) -> str:
    """Every message of this kind is "the same reply": one a day per address, however many."""
    return "any"


@dataclass(frozen=True)
class KindSpec:
    kind: ReplyKind
    attaches_template: bool  # the blank document template goes with it
    lists_numbers: bool  # the numbers given are news: in the subject and the text
    rate_key: Callable[[MessageVerdict], str] | None  # one per address and key in 24 hours
    switch: str | None = None  # the `[event.replies]` setting that turns it off (a RepliesConfig field)
    # The blank template goes with it only when there is no `[event.replies] template_link` to give.
    attaches_without_link: bool = False

    @property
    def templates(self) -> tuple[str, ...]:
        """Its template files, one per format: `<kind>.txt.j2`, `<kind>.html.j2`."""
        return tuple(f"{self.kind}.{fmt}.j2" for fmt in FORMATS)


KINDS: Mapping[ReplyKind, KindSpec] = {
    ReplyKind.ACKNOWLEDGEMENT: KindSpec(
        ReplyKind.ACKNOWLEDGEMENT, attaches_template=False, lists_numbers=True, rate_key=None
    ),
    ReplyKind.REJECTION: KindSpec(
        ReplyKind.REJECTION, attaches_template=True, lists_numbers=False, rate_key=error_codes
    ),
    ReplyKind.LATE_NOTICE: KindSpec(
        ReplyKind.LATE_NOTICE, attaches_template=False, lists_numbers=False, rate_key=None
    ),
    # Sent by a person's decision (intake.desk), with their reason: never rate-limited anyway.
    ReplyKind.SECRETARIAT_REJECTION: KindSpec(
        ReplyKind.SECRETARIAT_REJECTION, attaches_template=False, lists_numbers=False, rate_key=None
    ),
    # A resend (issue 11): at most one per address and document a day, however often it comes.
    ReplyKind.ALREADY_REGISTERED: KindSpec(
        ReplyKind.ALREADY_REGISTERED,
        attaches_template=False,
        lists_numbers=False,
        rate_key=registered_numbers,
    ),
    # Correspondence (intake.correspondence): a person asked or wrote something without a
    # document. Not a refusal: the template is linked in its words; attached (and its words say
    # so) only when the event has no link to give.
    ReplyKind.CORRESPONDENCE_NOTICE: KindSpec(
        ReplyKind.CORRESPONDENCE_NOTICE,
        attaches_template=False,
        lists_numbers=False,
        rate_key=one_a_day,
        switch="correspondence_notice",
        attaches_without_link=True,
    ),
}


def spec(kind: ReplyKind | str) -> KindSpec:
    """The kind's row; raises ValueError for a word that is not a reply kind."""
    try:
        return KINDS[ReplyKind(kind)]
    except ValueError:
        raise ValueError(f"unknown reply kind {kind!r}; kinds: {', '.join(KINDS)}") from None

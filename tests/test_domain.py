"""The vocabulary (intake.domain): one table of what a status implies, and no status
or reply-kind string compared anywhere else in intake/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from intake.domain import (
    DOCUMENT_WORDS,
    MEANING,
    MESSAGE_ACTIONS,
    DeskAction,
    DocumentRole,
    DocumentStatus,
    MessageStatus,
    ReplyKind,
    ReplyStatus,
    folder_for,
    meaning,
    reply_kind,
    statuses_allowing,
)

PACKAGE = Path(__file__).resolve().parent.parent / "intake"
WORDS = frozenset(
    member.value
    for vocabulary in (MessageStatus, DocumentStatus, ReplyStatus, ReplyKind, DocumentRole)
    for member in vocabulary
)
_COMPARISONS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def compared_words(source: str, filename: str = "<source>") -> list[str]:
    """Each comparison (==, !=, in, not in) that names a status or reply kind as a string literal."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, _COMPARISONS) for op in node.ops):
            continue
        for side in (node.left, *node.comparators):
            items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
            if any(isinstance(i, ast.Constant) and i.value in WORDS for i in items):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
                break
    return found


def test_the_scan_finds_a_status_string_compared() -> None:
    planted = (
        "if row.status == 'held': pass\n"
        "ok = kind != 'rejection'\n"
        "late = status in ('late', 'x')\n"
        "fine = row.status == MessageStatus.HELD\n"
        "other = name == 'held_over'\n"
    )
    assert [line.split(": ", 1)[1] for line in compared_words(planted)] == [
        "row.status == 'held'",
        "kind != 'rejection'",
        "status in ('late', 'x')",
    ]


def test_no_status_or_reply_kind_string_is_compared_outside_the_domain_module() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "domain.py":
            continue
        offenders += compared_words(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert offenders == [], "compare with the enums of intake.domain instead:\n" + "\n".join(offenders)


def test_every_status_has_one_meaning() -> None:
    assert set(MEANING) == set(MessageStatus)
    assert all(m.words for m in MEANING.values())
    assert set(DOCUMENT_WORDS) == set(DocumentStatus)
    # The poller's answers: the three kinds of news, never an answer to robots or suspects.
    assert {s: reply_kind(s) for s in MessageStatus if reply_kind(s)} == {
        MessageStatus.ACCEPTED: ReplyKind.ACKNOWLEDGEMENT,
        MessageStatus.PARTIAL: ReplyKind.ACKNOWLEDGEMENT,
        MessageStatus.REJECTED: ReplyKind.REJECTION,
        MessageStatus.LATE: ReplyKind.LATE_NOTICE,
        MessageStatus.ALREADY_NUMBERED: ReplyKind.ALREADY_REGISTERED,  # issue 11: a resend
        # Mail without a document: the notice (none when it answers our mail; intake.correspondence).
        MessageStatus.CORRESPONDENCE: ReplyKind.CORRESPONDENCE_NOTICE,
    }
    assert [s for s in MessageStatus if meaning(s).needs_person] == [
        MessageStatus.LATE,
        MessageStatus.HELD,
        MessageStatus.QUARANTINED,
        MessageStatus.CORRESPONDENCE,
    ]


def test_desk_actions_by_status() -> None:
    assert statuses_allowing(DeskAction.ADMIT) == (MessageStatus.LATE,)
    assert statuses_allowing(DeskAction.RELEASE) == (MessageStatus.HELD,)
    # Correspondence is marked answered once a person has answered it; nothing else is.
    assert statuses_allowing(DeskAction.MARK_ANSWERED) == (MessageStatus.CORRESPONDENCE,)
    assert meaning(MessageStatus.ANSWERED).reply is None and not meaning(MessageStatus.ANSWERED).needs_person
    assert set(statuses_allowing(DeskAction.REJECT)) == {
        MessageStatus.RECEIVED,
        MessageStatus.ACCEPTED,
        MessageStatus.PARTIAL,
        MessageStatus.LATE,
        MessageStatus.HELD,
    }
    # A duplicate is judged with its original: nothing applies to it alone.
    assert set(statuses_allowing(DeskAction.REPROCESS)) == set(MessageStatus) - {MessageStatus.DUPLICATE}
    assert all(action not in MESSAGE_ACTIONS for action in (DeskAction.WITHDRAW, DeskAction.RESEND))
    # A row's plain string is understood as its status.
    assert meaning("late").allows("admit") and not meaning("accepted").allows("admit")


def test_folders_follow_the_status() -> None:
    assert folder_for("Intake", "accepted") == ("Intake", "Accepted")
    assert folder_for("Intake", MessageStatus.QUARANTINED) == ("Intake", "Quarantined")
    assert folder_for("Intake", MessageStatus.CORRESPONDENCE) == ("Intake", "Correspondence")


def test_the_stylesheet_colours_every_status() -> None:
    css = (PACKAGE / "web" / "static" / "desk.css").read_text(encoding="utf-8")
    classes = set(re.findall(r"\.st-([a-z_]+)", css))
    shown = {s.value for vocabulary in (MessageStatus, DocumentStatus, ReplyStatus) for s in vocabulary}
    assert shown - classes == set()

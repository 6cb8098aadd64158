"""Mail that is not a submission: a message from a person with no document at all.

Such a message is `correspondence` (`intake.judge.policy`): a question, thanks, a
request to withdraw. It is never rejected; it waits on the desk for a person. It gets
the correspondence notice (`intake.replies.kinds`: it reached the secretariat, and how
to submit a document), unless it answers mail we sent, which gets no automatic reply
at all. A message answers our mail when:
- its subject is a reply's (`Re:` and its forms) and names one of the event's
  document numbers: `answered_number`, pure, decided with the rest (`intake.decide`);
- its In-Reply-To or References name the Message-ID of one of our replies: that needs
  the database, so `intake.record` looks up the whole batch's ids in one query
  (`our_replies`) and marks the verdicts (`answering`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from intake.config import EventSettings
from intake.domain import MessageStatus
from intake.parse import Inbound
from intake.revisions import numbers_in
from intake.text import REPLY_PREFIX
from intake.verdict import MessageVerdict

if TYPE_CHECKING:  # the look-up's imports stay out of the examine stage (see intake.revisions)
    from sqlalchemy.orm import Session

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_MAX_CITED = 50  # a References header names the thread; the latest ids are enough


def cited_ids(inbound: Inbound) -> tuple[str, ...]:
    """The Message-IDs a message says it answers: In-Reply-To, then References (latest last)."""
    ids: list[str] = []
    for name in ("In-Reply-To", "References"):
        for value in inbound.header_all(name):
            ids += _MESSAGE_ID.findall(value)
    return tuple(dict.fromkeys(ids))[-_MAX_CITED:]


def answered_number(event: EventSettings, inbound: Inbound) -> str | None:
    """The event's document number named in a reply's subject (`Re: … [JCA-MV-I-001]`), if any."""
    subject = inbound.subject or ""
    if not REPLY_PREFIX.match(subject):
        return None
    numbers = numbers_in(event, subject)
    return numbers[0] if numbers else None


def awaits_look_up(verdict: MessageVerdict) -> bool:
    """Correspondence not yet known to answer our mail: its cited ids are worth a look-up."""
    return verdict.status is MessageStatus.CORRESPONDENCE and verdict.answers is None


def answer(verdict: MessageVerdict, what: str) -> MessageVerdict:
    """The verdict of correspondence that answers our mail: no automatic reply."""
    return replace(verdict, answers=what, reason=f"answers our mail ({what})")


def by_subject(event: EventSettings, inbound: Inbound, verdict: MessageVerdict) -> MessageVerdict:
    """Pure: correspondence whose `Re:` subject names one of our numbers answers our mail."""
    if not awaits_look_up(verdict):
        return verdict
    number = answered_number(event, inbound)
    return answer(verdict, f"our number {number} in its subject") if number else verdict


def our_replies(session: Session, event: EventSettings, ids: Iterable[str]) -> set[str]:
    """Which of these Message-IDs are our replies' (sent, resent or still queued): one query
    per 500 ids."""
    from sqlalchemy import select

    from intake.db import in_lists
    from intake.models import Reply

    found: set[str] = set()
    for chunk in in_lists(ids):
        found.update(
            session.scalars(
                select(Reply.rfc_message_id).where(Reply.event == event.id, Reply.rfc_message_id.in_(chunk))
            )
        )
    return found


def answering(
    session: Session, event: EventSettings, items: list[tuple[Inbound, MessageVerdict]]
) -> list[MessageVerdict]:
    """The verdicts, with correspondence that cites one of our replies marked as answering it.
    One look-up for all of them."""
    cited = {i: cited_ids(inbound) for i, (inbound, verdict) in enumerate(items) if awaits_look_up(verdict)}
    ours = our_replies(session, event, (mid for ids in cited.values() for mid in ids)) if cited else set()
    out = []
    for i, (_, verdict) in enumerate(items):
        hit = next((mid for mid in reversed(cited.get(i, ())) if mid in ours), None)
        out.append(answer(verdict, f"our reply {hit}") if hit else verdict)
    return out

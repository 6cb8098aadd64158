"""On time or late: the server's receipt time against the event's deadline and grace.

The receipt time is the mail server's (IMAP INTERNALDATE), passed in: no clock
is read here. The sender's `Date:` header is compared only to warn the
secretariat of a large gap; it never decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from intake.config import EventSettings
from intake.findings import Found, found

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
class Timing:
    late: bool
    findings: tuple[Found, ...]


def local_time(moment: datetime, event: EventSettings) -> str:
    """ "30 April 2026, 23:59:59 (Europe/Zurich, UTC+02:00)": unambiguous for any reader."""
    local = moment.astimezone(event.timezone)
    offset = local.strftime("%z")
    return (
        f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M:%S} "
        f"({event.timezone.key}, UTC{offset[:3]}:{offset[3:]})"
    )


def day_text(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _span(delta: timedelta) -> str:
    hours = abs(delta.total_seconds()) / 3600
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    return f"{hours:.0f} hours"


def judge_time(
    received_at: datetime, sent_at: datetime | None, event: EventSettings, gap_hours: float
) -> Timing:
    """Late or not, with the findings that say so; raises ValueError for a naive time."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware (the server's INTERNALDATE)")
    findings: list[Found] = []
    params = {
        "received": local_time(received_at, event),
        "deadline": local_time(event.deadline, event),
    }
    late = received_at > event.deadline + event.grace
    if late:
        code = "deadline.late_rejected" if event.late_policy == "reject" else "deadline.late"
        findings.append(found(code, address=event.address, **params))
    elif received_at > event.deadline:
        findings.append(found("deadline.grace", **params))
    if sent_at is not None and sent_at.tzinfo is not None:
        gap = received_at - sent_at
        if abs(gap) > timedelta(hours=gap_hours):
            findings.append(
                found(
                    "deadline.date_gap",
                    detail=f"Date: {sent_at.isoformat()}, received {received_at.isoformat()}",
                    sent=local_time(sent_at, event),
                    received=params["received"],
                    gap=_span(gap),
                )
            )
    return Timing(late=late, findings=tuple(findings))

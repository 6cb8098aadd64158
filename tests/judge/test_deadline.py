"""The deadline at its boundary (acceptance item 3): the server's receipt time decides.

The shipped event's deadline is 30 April 2026, 23:59:59 Geneva time (CEST, UTC+2).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from intake.config import EventSettings
from intake.judge.deadline import judge_time, local_time

GENEVA = ZoneInfo("Europe/Zurich")
LAST_SECOND = datetime(2026, 4, 30, 23, 59, 59, tzinfo=GENEVA)
FIRST_LATE = datetime(2026, 5, 1, 0, 0, 0, tzinfo=GENEVA)


def codes(received: datetime, event: EventSettings, sent: datetime | None = None) -> list[str]:
    return [f.code for f in judge_time(received, sent, event, 24).findings]


def test_the_shipped_deadline_is_geneva_midnight(event: EventSettings) -> None:
    assert event.deadline == LAST_SECOND
    assert event.deadline.astimezone(UTC) == datetime(2026, 4, 30, 21, 59, 59, tzinfo=UTC)


def test_received_at_2359_59_geneva_time_is_on_time(event: EventSettings) -> None:
    timing = judge_time(LAST_SECOND, None, event, 24)
    assert not timing.late and timing.findings == ()
    # The same instant given in UTC, as IMAP servers often report it.
    assert not judge_time(LAST_SECOND.astimezone(UTC), None, event, 24).late


def test_received_at_midnight_on_1_may_is_late(event: EventSettings) -> None:
    timing = judge_time(FIRST_LATE, None, event, 24)
    assert timing.late
    assert [f.code for f in timing.findings] == ["deadline.late"]
    assert "1 May 2026, 00:00:00 (Europe/Zurich, UTC+02:00)" in timing.findings[0].message
    assert "30 April 2026, 23:59:59 (Europe/Zurich, UTC+02:00)" in timing.findings[0].message


def test_a_date_header_before_the_deadline_does_not_save_a_late_receipt(
    event: EventSettings,
) -> None:
    sent = LAST_SECOND - timedelta(hours=1)
    timing = judge_time(FIRST_LATE + timedelta(minutes=5), sent, event, 24)
    assert timing.late
    assert [f.code for f in timing.findings] == ["deadline.late"]


def test_a_large_gap_between_date_header_and_receipt_is_a_warning(event: EventSettings) -> None:
    sent = LAST_SECOND - timedelta(days=3)
    timing = judge_time(LAST_SECOND, sent, event, 24)
    assert not timing.late
    assert [f.code for f in timing.findings] == ["deadline.date_gap"]
    assert "3 days apart" in timing.findings[0].message
    assert codes(LAST_SECOND, event, sent=LAST_SECOND - timedelta(hours=23)) == []


def test_the_grace_period_is_honoured(event: EventSettings) -> None:
    graced = replace(event, grace=timedelta(minutes=10))
    assert codes(FIRST_LATE, graced) == ["deadline.grace"]
    assert not judge_time(FIRST_LATE + timedelta(minutes=9, seconds=59), None, graced, 24).late
    assert judge_time(FIRST_LATE + timedelta(minutes=10), None, graced, 24).late
    assert codes(LAST_SECOND, graced) == []


def test_the_reject_policy_refuses_late_messages(event: EventSettings) -> None:
    strict = replace(event, late_policy="reject")
    timing = judge_time(FIRST_LATE, None, strict, 24)
    assert timing.late
    assert [(f.code, f.blocks) for f in timing.findings] == [("deadline.late_rejected", True)]
    assert "tsbjcamv@itu.int" in timing.findings[0].fix


def test_a_receipt_time_without_a_zone_is_a_programming_error(event: EventSettings) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        judge_time(datetime(2026, 4, 30, 12, 0), None, event, 24)


def test_times_are_shown_in_the_event_zone(event: EventSettings) -> None:
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert local_time(winter, event) == "15 January 2026, 13:00:00 (Europe/Zurich, UTC+01:00)"

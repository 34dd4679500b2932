"""Retrain schedules typed as text: each accepted text has one meaning, others are refused."""

from __future__ import annotations

import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.model import DAY_MS, HOUR_MS
from terminal.core.schedule import parse_schedule

# 2023-11-14 was a Tuesday.
TUESDAY_10_00 = 1_699_956_000_000


def test_off_never_runs() -> None:
    schedule = parse_schedule("  OFF ")
    assert not schedule.enabled
    assert schedule.next_run(TUESDAY_10_00) is None


def test_intervals_count_from_midnight_utc() -> None:
    schedule = parse_schedule("every 6h")
    assert schedule.next_run(TUESDAY_10_00) == TUESDAY_10_00 + 2 * HOUR_MS
    assert schedule.next_run(TUESDAY_10_00 + 2 * HOUR_MS) == TUESDAY_10_00 + 8 * HOUR_MS


def test_daily_and_weekly_times() -> None:
    assert parse_schedule("daily 03:00").next_run(TUESDAY_10_00) == (
        TUESDAY_10_00 - 7 * HOUR_MS + DAY_MS)
    assert parse_schedule("daily 11:30").next_run(TUESDAY_10_00) == (
        TUESDAY_10_00 + 90 * 60_000)
    monday_next = TUESDAY_10_00 - 10 * HOUR_MS + 6 * DAY_MS + 3 * HOUR_MS
    assert parse_schedule("weekly mon 03:00").next_run(TUESDAY_10_00) == monday_next
    assert parse_schedule("weekly tue 12:00").next_run(TUESDAY_10_00) == TUESDAY_10_00 + (
        2 * HOUR_MS)


@pytest.mark.parametrize(("text", "message"), [
    ("sometimes", "cannot read the schedule"),
    ("every 5", "cannot read the interval"),
    ("every 5m", "15m to 30d"),
    ("daily 25:00", "cannot read the time"),
    ("weekly someday 03:00", "unknown day"),
])
def test_unreadable_schedules_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_schedule(text)

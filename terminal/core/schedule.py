"""Schedules typed as text in the preferences: when to retrain models.

The grammar is small on purpose, so every text a user can type has one meaning:

* ``off`` — never on a schedule (training only when asked);
* ``every 6h`` / ``every 30m`` / ``every 2d`` — at fixed intervals from midnight UTC;
* ``daily 03:00`` — once a day at that time, UTC;
* ``weekly mon 03:00`` — once a week on that day at that time, UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from terminal.core.errors import InvalidArgument
from terminal.core.model import DAY_MS

_MINUTE_MS = 60_000
_UNIT_MS = {"m": _MINUTE_MS, "h": 60 * _MINUTE_MS, "d": DAY_MS}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: 1970-01-01 was a Thursday: days since the epoch, shifted so Monday is day 0.
_EPOCH_WEEKDAY = 3
_EXAMPLES = "'off', 'every 6h', 'daily 03:00' or 'weekly mon 03:00' (UTC)"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: runs at ``offset_ms`` past every ``period_ms`` (None: never)."""

    text: str
    period_ms: int | None
    offset_ms: int = 0

    @property
    def enabled(self) -> bool:
        return self.period_ms is not None

    def next_run(self, after_ms: int) -> int | None:
        """The first scheduled time strictly after ``after_ms`` (UTC epoch ms), None when off."""
        if self.period_ms is None:
            return None
        origin = -_EPOCH_WEEKDAY * DAY_MS if self.period_ms == 7 * DAY_MS else 0
        since = after_ms - origin - self.offset_ms
        return origin + self.offset_ms + (since // self.period_ms + 1) * self.period_ms


def parse_schedule(text: str) -> Schedule:
    """Read a schedule; an :class:`InvalidArgument` says what is accepted."""
    words = text.strip().lower().split()
    if words == ["off"]:
        return Schedule("off", None)
    if len(words) == 2 and words[0] == "every":
        match = re.fullmatch(r"(\d{1,4})([mhd])", words[1])
        if match is None:
            raise InvalidArgument(f"cannot read the interval {words[1]!r}; write e.g. 30m, 6h"
                                  f" or 2d")
        period = int(match.group(1)) * _UNIT_MS[match.group(2)]
        if not 15 * _MINUTE_MS <= period <= 30 * DAY_MS:
            raise InvalidArgument(f"a retrain interval is 15m to 30d, got {words[1]}")
        return Schedule(f"every {words[1]}", period)
    if len(words) == 2 and words[0] == "daily":
        return Schedule(f"daily {words[1]}", DAY_MS, _time_of_day(words[1]))
    if len(words) == 3 and words[0] == "weekly":
        if words[1] not in _DAYS:
            raise InvalidArgument(f"unknown day {words[1]!r}; one of {', '.join(_DAYS)}")
        offset = _DAYS.index(words[1]) * DAY_MS + _time_of_day(words[2])
        return Schedule(f"weekly {words[1]} {words[2]}", 7 * DAY_MS, offset)
    raise InvalidArgument(f"cannot read the schedule {text.strip()!r}; write {_EXAMPLES}")


def _time_of_day(text: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise InvalidArgument(f"cannot read the time {text!r}; write HH:MM from 00:00 to 23:59"
                              f" (UTC)")
    return (int(match.group(1)) * 60 + int(match.group(2))) * _MINUTE_MS

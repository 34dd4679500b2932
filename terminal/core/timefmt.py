"""Reading and writing times the way users type and read them: ISO-8601, always UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from terminal.core.errors import InvalidArgument


def format_ms(time_ms: int) -> str:
    """``2024-03-01T14:00:00Z`` for an epoch-millisecond time."""
    # time.gmtime is three times faster than a datetime, which counts in trade lists.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time_ms // 1000))


def parse_user_time(text: str) -> int:
    """Epoch milliseconds from ``2024-03-01``, ``2024-03-01 14:00`` or full ISO-8601.

    A time without a zone is taken as UTC, the zone every exchange uses for candles.
    """
    cleaned = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidArgument(
            f"cannot read the time {text!r}; use YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)

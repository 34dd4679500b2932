"""Time as a dependency, so that backtests, simulations and tests are deterministic."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current UTC time in epoch milliseconds."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to; for tests and replays."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, time_ms: int) -> None:
        self._now = time_ms

    def advance(self, delta_ms: int) -> None:
        self._now += delta_ms

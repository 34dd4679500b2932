"""Builders for test data shared across the suite."""

from __future__ import annotations

import numpy as np

from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries

START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000  # a UTC midnight


def make_series(count: int, timeframe: Timeframe = Timeframe.M1, *, start_ms: int = START_MS,
                seed: int = 7, price: float = 100.0) -> CandleSeries:
    """A random-walk series of valid candles on the timeframe's grid."""
    rng = np.random.default_rng(seed)
    times = timeframe.floor(start_ms) + np.arange(count, dtype=np.int64) * timeframe.ms
    close = price * np.exp(np.cumsum(rng.normal(0, 0.001, count)))
    open_ = np.r_[price, close[:-1]]
    spread = np.abs(rng.normal(0, 0.0005, count)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.gamma(2.0, 5.0, count)
    return CandleSeries(timeframe, times, open_, high, low, close, volume)

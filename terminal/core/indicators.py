"""Technical indicators over whole price arrays, causal by construction.

The value at bar ``i`` depends on ``values[: i + 1]`` only, and bars without enough history are
NaN. Rolling windows are summed window by window rather than as differences of one running
sum: a running sum over a long history carries rounding noise that makes two equal averages
(a flat market) compare unequal at random, which a crossover rule would trade on.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from terminal.core.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]


def sma(values: FloatArray, period: int) -> FloatArray:
    """Simple moving average over ``period`` bars."""
    return _window_sum(values, period) / period


def rolling_std(values: FloatArray, period: int) -> FloatArray:
    """Population standard deviation over ``period`` bars (as Bollinger bands use it)."""
    mean = sma(values, period)
    # Each window's sums are its own, so the cancellation error of E[x²] - mean² stays at
    # the rounding of one window; a flat window can still come out a hair below zero.
    squares = _window_sum(values * values, period) / period - mean * mean
    return np.sqrt(np.maximum(squares, 0.0))


def rsi(values: FloatArray, period: int) -> FloatArray:
    """Wilder's relative strength index (0..100), seeded with the mean of the first
    ``period`` changes as Wilder defined it; NaN for the first ``period`` bars."""
    _check_period(period)
    out = np.full(len(values), np.nan)
    if len(values) <= period:
        return out
    change = np.diff(values)
    gain = np.maximum(change, 0.0)
    loss = np.maximum(-change, 0.0)
    avg_gain = _wilder(gain, period)
    avg_loss = _wilder(loss, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    # No losses in the window: the index is 100 (50 when nothing moved at all).
    strength = np.where(avg_loss == 0, np.where(avg_gain == 0, 50.0, 100.0), strength)
    out[period:] = strength
    return out


def _wilder(changes: FloatArray, period: int) -> FloatArray:
    """Wilder smoothing of ``changes[period - 1:]`` seeded with their first ``period`` mean."""
    import pandas as pd

    seeded = changes[period - 1:].copy()
    seeded[0] = changes[:period].mean()
    smoothed = pd.Series(seeded).ewm(alpha=1.0 / period, adjust=False).mean()
    return np.asarray(smoothed.to_numpy(), dtype=np.float64)


def _window_sum(values: FloatArray, period: int) -> FloatArray:
    _check_period(period)
    out = np.full(len(values), np.nan)
    if len(values) >= period:
        out[period - 1:] = sliding_window_view(values, period).sum(axis=1)
    return out


def _check_period(period: int) -> None:
    if period < 1:
        raise InvalidArgument(f"an indicator period is at least 1 bar, got {period}")


def ema(values: FloatArray, period: int) -> FloatArray:
    """Exponential moving average with ``alpha = 2 / (period + 1)``, seeded with the SMA of the
    first ``period`` values (as charting platforms do); NaN before that.

    Leading NaN values (a series that starts later) are skipped: the average seeds at the first
    ``period`` finite values.
    """
    import pandas as pd

    _check_period(period)
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) < period:
        return out
    start = int(finite[0])
    seed_end = start + period
    seeded = np.array(values[seed_end - 1:], dtype=np.float64)
    seeded[0] = values[start:seed_end].mean()
    smoothed = pd.Series(seeded).ewm(alpha=2.0 / (period + 1), adjust=False).mean()
    out[seed_end - 1:] = smoothed.to_numpy()
    return out


def bollinger(values: FloatArray, period: int, width: float) -> tuple[FloatArray, FloatArray,
                                                                       FloatArray]:
    """Bollinger bands: (lower, middle, upper), ``width`` population deviations around the SMA."""
    if not width > 0:
        raise InvalidArgument(f"a Bollinger band width is above 0 deviations, got {width}")
    middle = sma(values, period)
    spread = rolling_std(values, period) * width
    return middle - spread, middle, middle + spread


def macd(values: FloatArray, fast: int = 12, slow: int = 26,
         signal: int = 9) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line (fast EMA minus slow EMA), its signal line (EMA of the line) and histogram."""
    if fast >= slow:
        raise InvalidArgument(f"the MACD's fast period ({fast}) must be below its slow period"
                              f" ({slow})")
    line = ema(values, fast) - ema(values, slow)
    signal_line = ema(line, signal)
    return line, signal_line, line - signal_line


def warmup_bars(kind: str, period: int) -> int:
    """Bars before a window whose values an indicator at the window's first bar depends on.

    Moving windows (``sma``, Bollinger) look back ``period - 1`` bars. Exponential (``ema``)
    and Wilder (``rsi``) smoothing forget their seed geometrically; after the bars returned
    here the seed's weight is below 1e-7, invisible on a chart. Computing an indicator over
    the visible range plus this warm-up therefore draws it as the full history would.
    """
    _check_period(period)
    if kind == "sma":
        return period - 1
    decay = 1.0 - (1.0 / period if kind == "rsi" else 2.0 / (period + 1))
    if decay <= 0.0:
        return period
    return period + math.ceil(math.log(1e-7) / math.log(decay))

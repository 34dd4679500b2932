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

from terminal.core.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]
#: Windows summed together: 256 KB of float64, which fits a core's L2 cache.
_BLOCK = 32_768


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
    return _smoothed(changes[:period].mean(), changes[period:], 1.0 / period)


def _smoothed(seed: float, values: FloatArray, alpha: float) -> FloatArray:
    """``seed``, then ``y = (1 - alpha) * y + alpha * value`` for each of ``values``."""
    drive = np.empty(len(values) + 1)
    drive[0] = seed
    drive[1:] = alpha * values
    return linear_recurrence(drive, 1.0 - alpha)


def linear_recurrence(drive: FloatArray, decay: float) -> FloatArray:
    """``y[t] = decay * y[t - 1] + drive[t]`` from ``y[-1] = 0``, for ``0 <= decay < 1``.

    Vectorised instead of a Python loop per value: within blocks short enough that
    ``decay ** -length`` stays below 1e8, the recurrence is a scaled cumulative sum (its
    rounding stays that of the plain loop); what each block carries into the next is the same
    recurrence over the block ends with ``decay ** length``, solved the same way.
    """
    count = len(drive)
    if count == 0:
        return np.empty(0)
    if decay < 1e-5:
        # Terms beyond the fourth are below 1e-20 of the first: invisible in float64.
        out = np.array(drive, dtype=np.float64)
        for lag in range(1, 4):
            out[lag:] += decay ** lag * drive[:-lag]
        return out
    length = max(2, min(count, int(8.0 / -math.log10(decay))))
    padded = np.zeros(-(-count // length) * length)
    padded[:count] = drive
    blocks = padded.reshape(-1, length)
    steps = np.arange(length)
    within = np.cumsum(blocks * decay ** -steps, axis=1) * decay ** steps
    if len(within) > 1:
        carried = linear_recurrence(within[:, -1], decay ** length)
        within[1:] += carried[:-1, None] * decay ** (steps + 1)
    result: FloatArray = within.reshape(-1)[:count]
    return result


def _window_sum(values: FloatArray, period: int) -> FloatArray:
    _check_period(period)
    out = np.full(len(values), np.nan)
    windows = len(values) - period + 1
    # Every window is summed left to right in the same order, one contiguous vector add per
    # position in the window (4x faster than reducing a strided sliding view), a block of
    # windows at a time so that the operands stay in the CPU cache on long histories.
    for first in range(0, max(windows, 0), _BLOCK):
        last = min(first + _BLOCK, windows)
        sums = out[period - 1 + first:period - 1 + last]
        sums[:] = values[first:last]
        for offset in range(1, period):
            sums += values[first + offset:last + offset]
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
    _check_period(period)
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) < period:
        return out
    start = int(finite[0])
    seed_end = start + period
    out[seed_end - 1:] = _smoothed(float(values[start:seed_end].mean()), values[seed_end:],
                                   2.0 / (period + 1))
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

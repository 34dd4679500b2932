"""EMA, MACD and Bollinger against plain-Python definitions; warm-up makes windows exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.indicators import (
    bollinger,
    ema,
    linear_recurrence,
    macd,
    rsi,
    sma,
    warmup_bars,
)


def _plain_ema(values: list[float], period: int) -> list[float]:
    alpha = 2 / (period + 1)
    out = [math.nan] * len(values)
    average = sum(values[:period]) / period
    out[period - 1] = average
    for i in range(period, len(values)):
        average = alpha * values[i] + (1 - alpha) * average
        out[i] = average
    return out


def _prices(count: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))


def test_ema_matches_its_definition() -> None:
    values = _prices(60)
    np.testing.assert_allclose(ema(values, 10), _plain_ema(values.tolist(), 10), equal_nan=True)
    assert np.isnan(ema(values, 10)[:9]).all()
    assert np.isnan(ema(values[:5], 10)).all()


def test_ema_skips_leading_gaps() -> None:
    values = np.concatenate([np.full(4, np.nan), _prices(30)])
    expected = [math.nan] * 4 + _plain_ema(values[4:].tolist(), 5)
    np.testing.assert_allclose(ema(values, 5), expected, equal_nan=True)


def test_macd_is_the_difference_of_two_emas_with_a_smoothed_signal() -> None:
    values = _prices(200)
    line, signal, histogram = macd(values, 12, 26, 9)
    np.testing.assert_allclose(line, ema(values, 12) - ema(values, 26), equal_nan=True)
    np.testing.assert_allclose(signal, ema(line, 9), equal_nan=True)
    np.testing.assert_allclose(histogram, line - signal, equal_nan=True)
    assert np.isfinite(signal[25 + 8:]).all() and np.isnan(signal[: 25 + 8]).all()
    with pytest.raises(InvalidArgument, match="fast period"):
        macd(values, 26, 12)


def test_bollinger_bands_sit_width_deviations_around_the_mean() -> None:
    values = _prices(50)
    lower, middle, upper = bollinger(values, 20, 2.0)
    window = values[10:30]
    assert middle[29] == pytest.approx(window.mean())
    assert upper[29] - middle[29] == pytest.approx(2.0 * window.std())
    assert middle[29] - lower[29] == pytest.approx(2.0 * window.std())
    with pytest.raises(InvalidArgument, match="width"):
        bollinger(values, 20, 0.0)


@pytest.mark.parametrize(("kind", "function"), [
    ("sma", lambda v: sma(v, 20)),
    ("ema", lambda v: ema(v, 20)),
    ("rsi", lambda v: rsi(v, 14)),
])
def test_a_window_with_its_warm_up_draws_like_the_full_history(kind, function) -> None:
    values = _prices(2000)
    period = 14 if kind == "rsi" else 20
    start = 1500
    sliced = function(values[start - warmup_bars(kind, period):])
    full = function(values)
    np.testing.assert_allclose(sliced[-500:], full[start:], rtol=1e-6)


@pytest.mark.parametrize("decay", [0.0, 1e-9, 0.3, 0.9, 0.96, 0.999])
def test_the_vectorised_recurrence_matches_the_loop(decay: float) -> None:
    drive = np.random.default_rng(5).normal(0, 1, 5_000)
    expected = []
    value = 0.0
    for x in drive.tolist():
        value = decay * value + x
        expected.append(value)
    np.testing.assert_allclose(linear_recurrence(drive, decay), expected, rtol=1e-9,
                               atol=1e-12)
    assert len(linear_recurrence(drive[:1], decay)) == 1
    assert len(linear_recurrence(drive[:0], decay)) == 0


def test_smoothing_matches_pandas() -> None:
    import pandas as pd

    values = _prices(3_000)
    seeded = values[9:].copy()
    seeded[0] = values[:10].mean()
    expected = pd.Series(seeded).ewm(alpha=2 / 11, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ema(values, 10)[9:], expected, rtol=1e-10)

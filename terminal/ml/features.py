"""Model inputs and targets computed from closed candles.

Every feature at bar ``i`` is a function of the candles up to and including bar ``i`` only:
appending later candles never changes it (a test checks this by truncation). Targets look
forward by construction and are NaN where the future is not known yet. Bars before
:data:`WARMUP_BARS` lack the history some features need and are NaN.

The feature set has a name and a version; a stored model remembers both and refuses to run on
a different set, because its weights mean nothing for other columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from terminal.core.errors import InvalidArgument
from terminal.core.indicators import rsi
from terminal.core.model import DAY_MS
from terminal.core.series import CandleSeries

FloatArray = npt.NDArray[np.float64]

FEATURE_SET = "ohlcv-basic"
FEATURE_VERSION = 1
DEFAULT_HORIZONS = (1, 4, 12, 24)
RETURN_LAGS = (1, 2, 4, 8, 12, 24)
VOLATILITY_WINDOWS = (12, 48)
VOLUME_WINDOWS = (24, 168)
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
#: The longest look-back of any feature; earlier bars are NaN.
WARMUP_BARS = max(*RETURN_LAGS, *VOLATILITY_WINDOWS, *VOLUME_WINDOWS, MACD_SLOW + MACD_SIGNAL)

FEATURE_NAMES: tuple[str, ...] = (
    *(f"log_return_{lag}" for lag in RETURN_LAGS),
    *(f"volatility_{window}" for window in VOLATILITY_WINDOWS),
    *(f"volume_z_{window}" for window in VOLUME_WINDOWS),
    "range",
    "rsi",
    "macd",
    "macd_histogram",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
)


def feature_set_id() -> str:
    """The name and version a stored model must match, e.g. ``ohlcv-basic/1``."""
    return f"{FEATURE_SET}/{FEATURE_VERSION}"


def compute_features(candles: CandleSeries) -> FloatArray:
    """One row per candle, one column per name in :data:`FEATURE_NAMES` (causal; see module)."""
    check_candles(candles)
    close = candles.close
    log_close = np.log(close)
    columns: list[FloatArray] = [_lagged_difference(log_close, lag) for lag in RETURN_LAGS]
    one_bar = _lagged_difference(log_close, 1)
    returns = pd.Series(one_bar)
    columns += [_column(returns.rolling(window).std(ddof=0)) for window in VOLATILITY_WINDOWS]
    log_volume = pd.Series(np.log1p(np.maximum(candles.volume, 0.0)))
    for window in VOLUME_WINDOWS:
        rolling = log_volume.rolling(window)
        std = _column(rolling.std(ddof=0))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (log_volume.to_numpy() - _column(rolling.mean())) / std
        # A window of identical volumes (zero spread) says "usual volume": z = 0.
        columns.append(np.where(std > 0, z, np.where(np.isfinite(std), 0.0, np.nan)))
    columns.append(np.log(candles.high / candles.low))
    columns.append(rsi(close, RSI_PERIOD) / 100.0 - 0.5)
    prices = pd.Series(close)
    macd = (_column(prices.ewm(span=MACD_FAST, adjust=False).mean())
            - _column(prices.ewm(span=MACD_SLOW, adjust=False).mean())) / close
    macd[: MACD_SLOW - 1] = np.nan
    signal = _column(pd.Series(macd).ewm(span=MACD_SIGNAL, adjust=False).mean())
    columns += [macd, macd - signal]
    # The candle's close time places it in the day and week; weekday 0 is Thursday 1970-01-01.
    close_time = (candles.open_time + candles.timeframe.ms).astype(np.float64)
    day_angle = 2 * np.pi * (close_time % DAY_MS) / DAY_MS
    week_angle = 2 * np.pi * (close_time % (7 * DAY_MS)) / (7 * DAY_MS)
    columns += [np.sin(day_angle), np.cos(day_angle), np.sin(week_angle), np.cos(week_angle)]
    features = np.column_stack(columns)
    features[:WARMUP_BARS] = np.nan
    if candles.timeframe.ms >= DAY_MS:
        # Daily and longer candles all close at the same time of day: the column is constant.
        features[:, FEATURE_NAMES.index("hour_sin")] = 0.0
        features[:, FEATURE_NAMES.index("hour_cos")] = 0.0
    return features


def future_returns(candles: CandleSeries, horizons: Sequence[int]) -> FloatArray:
    """``log(close[i + h] / close[i])`` per horizon ``h`` (columns); NaN past the last candle."""
    check_horizons(horizons)
    log_close = np.log(candles.close)
    out = np.full((len(candles), len(horizons)), np.nan)
    for column, horizon in enumerate(horizons):
        if horizon < len(candles):
            out[:-horizon, column] = log_close[horizon:] - log_close[:-horizon]
    return out


def check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    """``horizons`` as a tuple after checking they are distinct whole numbers of bars >= 1."""
    values = tuple(int(h) for h in horizons)
    if not values:
        raise InvalidArgument("give at least one forecast horizon (in bars)")
    if any(h < 1 for h in values) or len(set(values)) != len(values):
        raise InvalidArgument(f"forecast horizons are distinct whole numbers of bars >= 1,"
                              f" got {', '.join(map(str, values))}")
    return values


def check_candles(candles: CandleSeries) -> None:
    """Refuse prices a log return cannot be taken of, naming the first bad bar."""
    prices = np.column_stack([candles.open, candles.high, candles.low, candles.close])
    bad = ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1)
    bad |= ~np.isfinite(candles.volume)
    if bad.any():
        from terminal.core.timefmt import format_ms

        first = int(np.flatnonzero(bad)[0])
        raise InvalidArgument(f"candle {first} ({format_ms(int(candles.open_time[first]))}) has"
                              " a missing, infinite or non-positive price or volume; models"
                              " need clean candles")


def _lagged_difference(values: FloatArray, lag: int) -> FloatArray:
    out = np.full(len(values), np.nan)
    if lag < len(values):
        out[lag:] = values[lag:] - values[:-lag]
    return out


def _column(values: pd.Series) -> FloatArray:
    return np.asarray(values.to_numpy(), dtype=np.float64)


def lookahead_columns(compute: Callable[[CandleSeries], FloatArray], candles: CandleSeries,
                      cuts: Sequence[int]) -> list[int]:
    """Columns of ``compute(candles)`` that change at some bar when the history is cut right
    after it: a causal feature never does, one that peeks at later candles does."""
    full = compute(candles)
    changed: set[int] = set()
    for cut in cuts:
        part = compute(candles.take(0, cut))
        same = np.isclose(part, full[:cut], rtol=1e-9, atol=1e-12, equal_nan=True)
        changed.update(np.flatnonzero(~same.all(axis=0)).tolist())
    return sorted(changed)

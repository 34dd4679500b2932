"""Records of trained forecasting models, their predictions and their retraining schedules.

These are what the store keeps about models; the weights themselves live in files under the
data folder (see :mod:`terminal.ml.registry`). A model whose out-of-sample skill does not beat
persistence is kept and shown, but automated trading uses it only when the user has set
``trading_override`` on it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from terminal.core.errors import InvalidArgument
from terminal.core.model import Prediction
from terminal.core.series import SeriesKey

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A registered model. ``metrics`` is the walk-forward evaluation per horizon (JSON-safe);
    ``verdict`` its one-line skill summary; ``data_fingerprint`` identifies the candles it was
    trained on; ``train_start``/``train_end`` are the open times of its first and last
    training bars."""

    id: int
    key: SeriesKey
    architecture: str
    hyperparameters: dict[str, Any]
    feature_set: str
    horizons: tuple[int, ...]
    train_start: int
    train_end: int
    data_fingerprint: str
    metrics: dict[str, Any]
    verdict: str
    has_skill: bool
    weights_file: str
    created_at: int
    active: bool
    trading_override: bool

    @property
    def usable_for_trading(self) -> bool:
        """Skill shown out of sample, or the user's explicit override."""
        return self.has_skill or self.trading_override


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """A stored forecast and, once its horizon has passed, the realised log return."""

    prediction: Prediction
    realised_return: float | None

    @property
    def model_id(self) -> int:
        return int(self.prediction.model_id)

    @property
    def hit(self) -> bool | None:
        """Whether the predicted direction (up when ``prob_up >= 0.5``) came true."""
        if self.realised_return is None:
            return None
        return (self.prediction.prob_up >= 0.5) == (self.realised_return > 0)


@dataclass(frozen=True, slots=True)
class RetrainSchedule:
    """Retrain the active ``architecture`` model of ``key`` daily at ``daily_at`` (``HH:MM``
    UTC) or after every ``every_candles`` new closed candles; exactly one of the two is set.
    ``refresh_data`` also fetches new candles first."""

    id: int
    key: SeriesKey
    architecture: str
    daily_at: str | None
    every_candles: int | None
    refresh_data: bool
    enabled: bool
    last_run_at: int | None

    def __post_init__(self) -> None:
        check_schedule(self.daily_at, self.every_candles)


def check_schedule(daily_at: str | None, every_candles: int | None) -> None:
    """Refuse a schedule that is not exactly one of a clock time or a candle count."""
    if (daily_at is None) == (every_candles is None):
        raise InvalidArgument("a retrain schedule is either daily at HH:MM or every N candles")
    if daily_at is not None and not _CLOCK.match(daily_at):
        raise InvalidArgument(f"a daily time is HH:MM in UTC (00:00 to 23:59), got {daily_at!r}")
    if every_candles is not None and every_candles < 1:
        raise InvalidArgument(f"retrain after at least one new candle, got {every_candles}")


@dataclass(frozen=True, slots=True)
class PathPoint:
    """One point of a forecast path: ``bars_ahead`` of the last close, the expected price and
    the 10-90 % band of the price."""

    bars_ahead: int
    expected: float
    low: float
    high: float


def forecast_path(last_close: float, predictions: Sequence[Prediction]) -> list[PathPoint]:
    """The predicted prices at each horizon of ``predictions`` (one per horizon, made from the
    candle that closed at ``last_close``), nearest first, starting at the last close."""
    points = [PathPoint(0, last_close, last_close, last_close)]
    for p in sorted(predictions, key=lambda p: p.horizon_bars):
        points.append(PathPoint(p.horizon_bars, last_close * math.exp(p.expected_return),
                                last_close * math.exp(p.quantile_10),
                                last_close * math.exp(p.quantile_90)))
    return points


def running_hit_rate(records: Sequence[PredictionRecord]) -> list[float | None]:
    """For each of ``records`` (oldest first), the share of resolved forecasts up to and
    including it whose direction came true; None until one is resolved."""
    hits = resolved = 0
    rates: list[float | None] = []
    for record in records:
        if record.hit is not None:
            resolved += 1
            hits += record.hit
        rates.append(hits / resolved if resolved else None)
    return rates

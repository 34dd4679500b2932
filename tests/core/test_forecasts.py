from __future__ import annotations

import math

import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.forecasts import (
    PredictionRecord,
    RetrainSchedule,
    forecast_path,
    running_hit_rate,
)
from terminal.core.model import Prediction, Timeframe
from terminal.core.series import SeriesKey

KEY = SeriesKey("simulated", "BTC/USDT", Timeframe.H1)


def _prediction(horizon: int, expected: float) -> Prediction:
    return Prediction("simulated", "BTC/USDT", Timeframe.H1, 0, horizon, expected,
                      expected - 0.01, expected, expected + 0.01, 0.6, "1", 0)


def test_forecast_path_turns_returns_into_prices_nearest_first() -> None:
    path = forecast_path(100.0, [_prediction(4, 0.02), _prediction(1, -0.01)])
    assert [p.bars_ahead for p in path] == [0, 1, 4]
    assert path[0].expected == 100.0
    assert path[2].expected == pytest.approx(100 * math.exp(0.02))
    assert path[1].low < path[1].expected < path[1].high


def test_running_hit_rate_counts_resolved_forecasts_only() -> None:
    def record(prob_up: float, realised: float | None) -> PredictionRecord:
        prediction = Prediction("simulated", "BTC/USDT", Timeframe.H1, 0, 1, 0.0, -0.01, 0.0,
                                0.01, prob_up, "1", 0)
        return PredictionRecord(prediction, realised)

    rates = running_hit_rate([record(0.6, None), record(0.6, 0.01), record(0.6, -0.01),
                              record(0.4, -0.02)])
    assert rates == [None, 1.0, 0.5, pytest.approx(2 / 3)]


def test_schedules_are_either_daily_or_by_candle_count() -> None:
    RetrainSchedule(1, KEY, "lstm", "03:00", None, True, True, None)
    with pytest.raises(InvalidArgument, match="either"):
        RetrainSchedule(1, KEY, "lstm", None, None, True, True, None)

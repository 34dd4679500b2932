"""Forecasts from the latest closed candle, and the outcomes of earlier forecasts."""

from __future__ import annotations

import numpy as np

from terminal.core.errors import InvalidArgument
from terminal.core.forecasts import ModelRecord
from terminal.core.model import Prediction
from terminal.core.series import CandleSeries
from terminal.core.storage import Store
from terminal.ml.datasets import Dataset
from terminal.ml.features import WARMUP_BARS
from terminal.ml.forecasters import Forecaster

#: Candles an inference reads: the features' warm-up, a sequence window, and slack so that
#: exponential averages have forgotten where the history was cut.
INFERENCE_BARS = 600


def predict_latest(model: Forecaster, record: ModelRecord, candles: CandleSeries,
                   created_at: int) -> list[Prediction]:
    """One :class:`Prediction` per horizon, made from the last candle of ``candles`` (closed)."""
    needed = WARMUP_BARS + model.window
    if len(candles) < needed:
        raise InvalidArgument(f"{record.architecture} needs at least {needed} closed candles to"
                              f" forecast, got {len(candles)}")
    recent = candles.take(max(0, len(candles) - INFERENCE_BARS), len(candles))
    data = Dataset.from_candles(recent, record.horizons)
    row = np.array([len(recent) - 1], dtype=np.int64)
    if not np.isfinite(data.features[row]).all():
        raise InvalidArgument("the latest candles give incomplete features (gaps or bad"
                              " prices); no forecast was made")
    forecast = model.predict(data, row)
    key = record.key
    return [
        Prediction(venue=key.venue, symbol=key.symbol, timeframe=key.timeframe,
                   made_from=int(recent.open_time[-1]), horizon_bars=horizon,
                   expected_return=float(forecast.expected[0, k]),
                   quantile_10=float(forecast.quantile_10[0, k]),
                   quantile_50=float(forecast.quantile_50[0, k]),
                   quantile_90=float(forecast.quantile_90[0, k]),
                   prob_up=float(np.clip(forecast.prob_up[0, k], 0.0, 1.0)),
                   model_id=str(record.id), created_at=created_at)
        for k, horizon in enumerate(record.horizons)]


def resolve_outcomes(store: Store, record: ModelRecord, candles: CandleSeries) -> int:
    """Record the realised return of every stored forecast of ``record``'s series whose
    horizon has passed within ``candles``; returns how many were resolved."""
    pending = store.forecasts.unresolved_predictions(record.key)
    times, close = candles.open_time, candles.close
    outcomes = []
    for stored in pending:
        prediction = stored.prediction
        target = prediction.made_from + prediction.horizon_bars * record.key.timeframe.ms
        start, end = np.searchsorted(times, [prediction.made_from, target])
        if end < len(times) and times[start] == prediction.made_from and times[end] == target:
            outcomes.append((stored.model_id, prediction.made_from, prediction.horizon_bars,
                             float(np.log(close[end] / close[start]))))
    store.forecasts.set_outcomes(outcomes)
    return len(outcomes)


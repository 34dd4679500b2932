"""Train a model for a series, measure it walk-forward, register it.

The model that is registered is fit on the whole history. Its figures come from a walk-forward
evaluation of the same architecture and settings over the last part of that history, refit
every ``refit_every`` bars, so every figure is out of sample; the verdict follows from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from terminal.core.forecasts import ModelRecord
from terminal.core.series import CandleSeries, SeriesKey
from terminal.ml.catalog import check_trainable, model_factory
from terminal.ml.datasets import Dataset, check_enough_history
from terminal.ml.evaluate import DEFAULT_TEST_FRACTION, Evaluation, walk_forward
from terminal.ml.models import EpochCallback
from terminal.ml.registry import ModelRegistry

DEFAULT_TRAIN_REFIT_EVERY = 2_880
StageCallback = Callable[[str], None]


@dataclass(frozen=True)
class TrainingOutcome:
    record: ModelRecord
    evaluation: Evaluation


def train_and_register(registry: ModelRegistry, key: SeriesKey, candles: CandleSeries,
                       architecture: str, horizons: Sequence[int], *,
                       epochs: int | None = None, test_fraction: float = DEFAULT_TEST_FRACTION,
                       refit_every: int = DEFAULT_TRAIN_REFIT_EVERY, fee: float = 0.001,
                       activate: bool = False, on_epoch: EpochCallback | None = None,
                       on_stage: StageCallback | None = None) -> TrainingOutcome:
    """Evaluate, fit on all of ``candles``, register (and activate when asked)."""
    check_trainable(architecture)
    factory = model_factory(architecture, epochs=epochs, on_epoch=on_epoch)
    check_enough_history(candles, horizons, factory().window)
    evaluation = walk_forward(candles, {architecture: factory}, horizons=horizons,
                              test_fraction=test_fraction, refit_every=refit_every, fee=fee,
                              progress=on_stage)
    if on_stage is not None:
        on_stage("final fit on the whole history")
    data = Dataset.from_candles(candles, horizons)
    model = factory()
    model.fit(data, data.feature_rows())
    run = evaluation.run(architecture)
    metrics: dict[str, Any] = {str(m.horizon): m.to_json() for m in run.metrics}
    skilled = [m for m in run.metrics if m.has_skill]
    leaks = [m for m in run.metrics if m.suspected_leak]
    if leaks:
        verdict = f"{leaks[0].horizon} bars: {leaks[0].verdict}"
    elif skilled:
        verdict = "; ".join(f"{m.horizon} bars: {m.verdict}" for m in skilled)
    else:
        verdict = "no skill"
    trained = data.labelled_rows(data.feature_rows())
    record = registry.register(
        model, key, candles, train_start=int(candles.open_time[trained[0]]),
        train_end=int(candles.open_time[trained[-1]]), metrics=metrics, verdict=verdict,
        has_skill=bool(skilled) and not leaks, created_at=int(time.time() * 1000))
    if activate:
        record = registry.store.forecasts.activate(record.id, record.created_at)
    return TrainingOutcome(record, evaluation)

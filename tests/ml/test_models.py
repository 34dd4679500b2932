from __future__ import annotations

import numpy as np
import pytest
import torch

from terminal.core.errors import Cancelled, InvalidArgument
from terminal.core.series import CandleSeries
from terminal.ml.datasets import Dataset
from terminal.ml.models import (
    ARCHITECTURES,
    EpochProgress,
    NeuralForecaster,
    TrainingCancelled,
    TrainingSettings,
)

TINY = TrainingSettings(epochs=2, window=12, batch_size=128, max_samples=600)


@pytest.fixture(scope="module")
def data(hourly: CandleSeries) -> Dataset:
    torch.set_num_threads(1)
    return Dataset.from_candles(hourly.take(0, 1_200), [1, 4])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_trains_and_predicts_every_output(data: Dataset,
                                                             architecture: str) -> None:
    rows = data.feature_rows()
    model = NeuralForecaster(architecture, TINY)
    model.fit(data, rows[:800])
    forecast = model.predict(data, rows[-50:])
    assert forecast.expected.shape == (50, 2)
    assert np.isfinite(forecast.expected).all()
    assert (forecast.quantile_10 <= forecast.quantile_50).all()
    assert (forecast.quantile_50 <= forecast.quantile_90).all()
    assert ((forecast.prob_up > 0) & (forecast.prob_up < 1)).all()
    assert 1 <= len(model.history) <= TINY.epochs


def test_the_same_seed_gives_the_same_model(data: Dataset) -> None:
    rows = data.feature_rows()
    first, second = NeuralForecaster("gru", TINY), NeuralForecaster("gru", TINY)
    first.fit(data, rows[:800])
    second.fit(data, rows[:800])
    assert np.array_equal(first.predict(data, rows[-5:]).expected,
                          second.predict(data, rows[-5:]).expected)


def test_progress_reports_every_epoch_and_false_cancels(data: Dataset) -> None:
    seen: list[EpochProgress] = []

    def stop_after_first(progress: EpochProgress) -> bool:
        seen.append(progress)
        return False

    model = NeuralForecaster("lstm", TINY, on_epoch=stop_after_first)
    with pytest.raises(TrainingCancelled, match="cancelled at epoch 1 of 2"):
        model.fit(data, data.feature_rows()[:800])
    assert len(seen) == 1 and seen[0].epoch == 1 and seen[0].train_loss > 0
    assert seen[0].eta_seconds >= 0


def test_bad_settings_and_names_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="epoch"):
        TrainingSettings(epochs=0)
    with pytest.raises(InvalidArgument, match="unknown architecture"):
        NeuralForecaster("rnn")


def test_a_cancelled_training_is_a_cancelled_job() -> None:
    assert issubclass(TrainingCancelled, Cancelled)

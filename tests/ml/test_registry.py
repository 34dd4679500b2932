from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.ml.datasets import Dataset
from terminal.ml.forecasters import Ridge
from terminal.ml.inference import predict_latest, resolve_outcomes
from terminal.ml.models import NeuralForecaster, TrainingSettings
from terminal.ml.registry import ModelLoadError, ModelRegistry, data_fingerprint
from terminal.ml.training import train_and_register

KEY = SeriesKey("simulated", "BTC/USDT", Timeframe.H1)


@pytest.fixture
def registry(data_dir: Path) -> Iterator[ModelRegistry]:
    with Store.open(data_dir) as store:
        yield ModelRegistry(store, data_dir)


def _register(registry: ModelRegistry, candles: CandleSeries, *, skill: bool = False,
              model: Ridge | NeuralForecaster | None = None) -> tuple[int, Ridge |
                                                                     NeuralForecaster]:
    data = Dataset.from_candles(candles, [1, 4])
    model = model or Ridge()
    model.fit(data, data.feature_rows()[:1200])
    record = registry.register(model, KEY, candles, train_start=0, train_end=1,
                               metrics={"1": {"mse_skill": 0.001}}, verdict="no skill",
                               has_skill=skill, created_at=1)
    return record.id, model


def test_a_registered_model_loads_and_predicts_the_same(registry: ModelRegistry,
                                                        hourly: CandleSeries) -> None:
    model_id, model = _register(registry, hourly)
    record = registry.store.forecasts.get(model_id)
    assert record.architecture == "ridge" and record.horizons == (1, 4)
    assert record.data_fingerprint == data_fingerprint(hourly) and not record.active
    loaded = registry.load(record)
    data = Dataset.from_candles(hourly, [1, 4])
    rows = data.feature_rows()[-30:]
    assert np.allclose(loaded.predict(data, rows).prob_up, model.predict(data, rows).prob_up)


def test_a_neural_model_survives_the_round_trip(registry: ModelRegistry,
                                                hourly: CandleSeries) -> None:
    torch.set_num_threads(1)
    tiny = NeuralForecaster("gru", TrainingSettings(epochs=1, window=8, max_samples=400))
    model_id, model = _register(registry, hourly, model=tiny)
    loaded = registry.load(registry.store.forecasts.get(model_id))
    data = Dataset.from_candles(hourly, [1, 4])
    rows = data.feature_rows()[-10:]
    assert np.allclose(loaded.predict(data, rows).expected, model.predict(data, rows).expected,
                       atol=1e-7)


def test_one_active_model_per_series_and_rollback(registry: ModelRegistry,
                                                  hourly: CandleSeries) -> None:
    forecasts = registry.store.forecasts
    first, _ = _register(registry, hourly)
    second, _ = _register(registry, hourly)
    forecasts.activate(first, 10)
    forecasts.activate(second, 20)
    assert [m.id for m in forecasts.models(KEY) if m.active] == [second]
    assert forecasts.rollback(KEY).id == first
    assert forecasts.active(KEY) is not None and forecasts.active(KEY).id == first  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument, match="no earlier active model"):
        forecasts.rollback(KEY)


def test_no_skill_models_trade_only_with_an_override(registry: ModelRegistry,
                                                     hourly: CandleSeries) -> None:
    model_id, _ = _register(registry, hourly, skill=False)
    registry.store.forecasts.activate(model_id, 5)
    assert registry.trading_model(KEY) is None
    registry.store.forecasts.set_trading_override(model_id, True)
    record = registry.trading_model(KEY)
    assert record is not None and record.trading_override


@pytest.mark.parametrize("damage", ["missing", "corrupt", "other_file"])
def test_unusable_weights_give_a_clear_error_and_change_nothing(
        registry: ModelRegistry, hourly: CandleSeries, damage: str) -> None:
    model_id, _ = _register(registry, hourly)
    record = registry.store.forecasts.get(model_id)
    path = registry.folder / record.weights_file
    if damage == "missing":
        path.unlink()
        message = "is missing"
    elif damage == "corrupt":
        path.write_bytes(b"not a model at all")
        message = "damaged or not a model file"
    else:
        torch.save({"format": 1, "feature_set": "other/9", "architecture": "ridge",
                    "state": {}}, path)
        message = "belongs to feature set other/9"
    before = registry.store.forecasts.models()
    with pytest.raises(ModelLoadError, match=message):
        registry.load(record)
    assert registry.store.forecasts.models() == before


def test_a_model_of_an_older_feature_set_is_refused(registry: ModelRegistry,
                                                    hourly: CandleSeries,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model_id, _ = _register(registry, hourly)
    monkeypatch.setattr("terminal.ml.registry.feature_set_id", lambda: "ohlcv-basic/2")
    with pytest.raises(ModelLoadError, match=r"feature set ohlcv-basic/1.*retrain"):
        registry.load(registry.store.forecasts.get(model_id))


def test_predictions_are_stored_and_resolved_later(registry: ModelRegistry,
                                                   hourly: CandleSeries) -> None:
    model_id, model = _register(registry, hourly)
    record = registry.store.forecasts.get(model_id)
    known = hourly.take(0, 1_500)
    predictions = predict_latest(model, record, known, created_at=99)
    assert [p.horizon_bars for p in predictions] == [1, 4]
    assert predictions[0].made_from == known.open_time[-1]
    assert registry.store.forecasts.add_predictions(predictions) == 2
    assert registry.store.forecasts.add_predictions(predictions) == 0
    assert resolve_outcomes(registry.store, record, known) == 0
    assert resolve_outcomes(registry.store, record, hourly.take(0, 1_502)) == 1
    history = registry.store.forecasts.predictions(KEY)
    by_horizon = {p.prediction.horizon_bars: p for p in history}
    expected = np.log(hourly.close[1_500] / hourly.close[1_499])
    assert by_horizon[1].realised_return == pytest.approx(expected)
    assert by_horizon[4].realised_return is None and by_horizon[4].hit is None


def test_training_evaluates_registers_and_activates(registry: ModelRegistry,
                                                    hourly: CandleSeries) -> None:
    stages: list[str] = []
    outcome = train_and_register(registry, KEY, hourly, "ridge", [1, 4], refit_every=300,
                                 activate=True, on_stage=stages.append)
    record = outcome.record
    assert record.active and record.verdict
    assert set(record.metrics) == {"1", "4"} and "dm_pvalue" in record.metrics["1"]
    assert stages[-1] == "final fit on the whole history"
    assert registry.load(record).horizons == (1, 4)

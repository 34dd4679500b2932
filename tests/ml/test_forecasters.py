from __future__ import annotations

import numpy as np
import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from terminal.ml.datasets import Dataset
from terminal.ml.forecasters import AlwaysUp, Drift, Persistence, PlattCalibration, Ridge
from tests.factories import make_series


def _split(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    rows = data.feature_rows()
    cut = int(len(rows) * 0.7)
    return rows[:cut - max(data.horizons)], rows[cut:]


@pytest.mark.parametrize("model", [Persistence, Drift, AlwaysUp, Ridge])
def test_every_baseline_predicts_ordered_bands_and_probabilities(
        hourly: CandleSeries, model: type) -> None:
    data = Dataset.from_candles(hourly, [1, 4, 12, 24])
    train, test = _split(data)
    forecaster = model()
    forecaster.fit(data, train)
    forecast = forecaster.predict(data, test)
    assert forecast.expected.shape == (len(test), 4)
    assert (forecast.quantile_10 <= forecast.quantile_50).all()
    assert (forecast.quantile_50 <= forecast.quantile_90).all()
    assert ((forecast.prob_up >= 0) & (forecast.prob_up <= 1)).all()


def test_persistence_forecasts_zero_and_drift_the_training_mean(hourly: CandleSeries) -> None:
    data = Dataset.from_candles(hourly, [1, 4])
    train, test = _split(data)
    persistence, drift = Persistence(), Drift()
    persistence.fit(data, train)
    drift.fit(data, train)
    assert (persistence.predict(data, test).expected == 0).all()
    mean = data.targets[data.labelled_rows(train)].mean(axis=0)
    assert np.allclose(drift.predict(data, test).expected, mean)


def test_band_covers_about_eighty_percent_out_of_sample(hourly: CandleSeries) -> None:
    data = Dataset.from_candles(hourly, [1])
    train, test = _split(data)
    ridge = Ridge()
    ridge.fit(data, train)
    forecast = ridge.predict(data, test)
    truth = data.targets[test[:-1], 0]
    inside = (forecast.quantile_10[:-1, 0] <= truth) & (truth <= forecast.quantile_90[:-1, 0])
    assert 0.7 < inside.mean() < 0.9


def test_ridge_learns_a_real_linear_signal() -> None:
    # Returns that partly continue the previous bar's return (momentum): ridge must find it.
    rng = np.random.default_rng(3)
    count = 3_000
    noise = rng.normal(0, 0.01, count)
    returns = np.zeros(count)
    for i in range(1, count):
        returns[i] = 0.5 * returns[i - 1] + noise[i]
    base = make_series(count, Timeframe.H1)
    close = 100 * np.exp(np.cumsum(returns))
    candles = CandleSeries(Timeframe.H1, base.open_time, close, close * 1.001, close * 0.999,
                           close, base.volume)
    data = Dataset.from_candles(candles, [1])
    train, test = _split(data)
    ridge, persistence = Ridge(), Persistence()
    ridge.fit(data, train)
    persistence.fit(data, train)
    truth = data.targets[test[:-1], 0]
    ridge_mse = np.mean((ridge.predict(data, test).expected[:-1, 0] - truth) ** 2)
    assert ridge_mse < 0.85 * np.mean(truth ** 2)
    prob = ridge.predict(data, test).prob_up[:-1, 0]
    assert ((prob >= 0.5) == (truth > 0)).mean() > 0.6


def test_platt_calibration_recovers_a_logistic_link() -> None:
    rng = np.random.default_rng(5)
    scores = rng.normal(size=20_000)
    outcomes = (rng.random(20_000) < 1 / (1 + np.exp(-(2 * scores - 0.5)))).astype(float)
    fitted = PlattCalibration.fit(scores, outcomes)
    assert fitted.slope == pytest.approx(2.0, abs=0.15)
    assert fitted.intercept == pytest.approx(-0.5, abs=0.1)


def test_too_few_training_rows_and_untrained_models_are_refused(hourly: CandleSeries) -> None:
    data = Dataset.from_candles(hourly, [1])
    ridge = Ridge()
    with pytest.raises(InvalidArgument, match="has not been trained"):
        ridge.predict(data, data.feature_rows()[-5:])
    with pytest.raises(InvalidArgument, match="at least 200 training"):
        ridge.fit(data, data.feature_rows()[:150])


def test_fitting_reads_nothing_after_the_training_rows(hourly: CandleSeries) -> None:
    data = Dataset.from_candles(hourly, [1, 4])
    train, _ = _split(data)
    honest = Ridge()
    honest.fit(data, train)
    # Everything after the last training target is replaced by nonsense; the fit must not move.
    cut = int(train[-1]) + max(data.horizons) + 1
    features, targets = data.features.copy(), data.targets.copy()
    features[cut:] *= 1_000.0
    targets[cut:] = 5.0
    tampered = Dataset(data.candles, features, targets, data.horizons)
    again = Ridge()
    again.fit(tampered, train)
    assert again.coefficients is not None and honest.coefficients is not None
    assert np.array_equal(again.coefficients, honest.coefficients)
    assert again.scaler is not None and honest.scaler is not None
    assert np.array_equal(again.scaler.mean, honest.scaler.mean)

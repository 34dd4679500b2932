from __future__ import annotations

import json
import math

import numpy as np
import pytest

import terminal.ml.datasets as datasets
from terminal.core.errors import InvalidArgument
from terminal.core.series import CandleSeries
from terminal.ml.evaluate import (
    calibration_table,
    diebold_mariano,
    skill_verdict,
    walk_forward,
    wilson_interval,
)
from terminal.ml.features import compute_features
from terminal.ml.forecasters import AlwaysUp, Drift, Forecaster, Ridge

MODELS: dict[str, type[Forecaster]] = {"drift": Drift, "always_up": AlwaysUp, "ridge": Ridge}


def test_an_honest_model_on_a_random_walk_shows_no_skill(hourly: CandleSeries) -> None:
    evaluation = walk_forward(hourly, MODELS, horizons=[1, 4], test_fraction=0.3,
                              refit_every=200)
    assert evaluation.folds == math.ceil(len(evaluation.test_rows) / 200)
    for run in evaluation.runs:
        for metrics in run.metrics:
            assert not metrics.suspected_leak
            assert abs(metrics.mse_skill) < 0.05
    persistence = evaluation.run("persistence").metrics[0]
    assert persistence.mase == 1.0 and persistence.verdict == "baseline"
    # Price-level R² is near 1 for the naive forecast itself: why it is never shown alone.
    assert persistence.r2_price > 0.9
    payload = json.loads(json.dumps(evaluation.to_json()))
    ridge = payload["models"]["ridge"]["horizons"]["4"]
    for key in ("mase", "mse_skill", "dm_pvalue", "dir_acc", "dir_acc_ci", "brier_skill",
                "strategy_return", "strategy_exposure", "buy_and_hold_return", "verdict"):
        assert key in ridge


def test_a_planted_look_ahead_leak_is_flagged(hourly: CandleSeries,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def leaky(candles: CandleSeries) -> np.ndarray:
        # The next bar's return, known only in the future: the classic off-by-one leak.
        log_close = np.log(candles.close)
        future = np.r_[log_close[1:] - log_close[:-1], 0.0]
        return np.column_stack([compute_features(candles), future])

    monkeypatch.setattr(datasets, "compute_features", leaky)
    evaluation = walk_forward(hourly, {"ridge": Ridge}, horizons=[1, 4], refit_every=300)
    one_bar = evaluation.run("ridge").metrics[0]
    assert one_bar.suspected_leak and not one_bar.has_skill
    assert one_bar.mse_skill > 0.5
    assert one_bar.verdict.startswith("suspected leak")


def test_test_rows_are_never_trained_on(hourly: CandleSeries) -> None:
    seen: list[tuple[int, int]] = []

    class Spy(Drift):
        def fit(self, data: datasets.Dataset, rows: np.ndarray) -> None:
            super().fit(data, rows)
            self.last_train = int(rows[-1])

        def predict(self, data: datasets.Dataset, rows: np.ndarray):  # type: ignore[no-untyped-def]
            seen.append((self.last_train, int(rows[0])))
            return super().predict(data, rows)

    walk_forward(hourly, {"spy": Spy}, horizons=[1, 12], refit_every=150)
    assert len(seen) > 2
    # The last training row's 12-bar target ends at or before the first predicted bar.
    assert all(train + 12 <= first for train, first in seen)


def test_diebold_mariano_sees_a_clearly_better_forecast() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=2_000)
    good = truth - (truth + rng.normal(scale=0.5, size=2_000) * 0.5)
    statistic, p = diebold_mariano(good, truth, 1)
    assert statistic is not None and statistic < 0 and p is not None and p < 1e-6
    assert diebold_mariano(truth, truth, 4) == (None, None)
    _, p_same = diebold_mariano(truth + rng.normal(scale=1e-3, size=2_000), truth, 4)
    assert p_same is not None and p_same > 0.01


def test_wilson_interval_widens_with_overlapping_horizons() -> None:
    low_1, high_1 = wilson_interval(0.53, 10_000)
    low_24, high_24 = wilson_interval(0.53, 10_000 / 24)
    assert low_1 < 0.53 < high_1 and high_24 - low_24 > 4 * (high_1 - low_1)


def test_calibration_table_bins_predictions() -> None:
    prob = np.array([0.05, 0.07, 0.55, 0.95, 1.0])
    up = np.array([False, True, True, True, True])
    table = calibration_table(prob, up)
    assert [b.count for b in table] == [2, 1, 2]
    assert table[0].observed_up == 0.5 and table[-1].high == 1.0


def test_verdicts_say_what_they_mean() -> None:
    assert skill_verdict(0.006, 0.03) == "beats persistence by 0.6%, p=0.03"
    assert skill_verdict(0.006, 0.2) == "no skill"
    assert skill_verdict(-0.01, 0.001) == "no skill (worse than persistence by 1.0%, p=0.001)"
    assert skill_verdict(0.3, 0.0).startswith("suspected leak")


def test_bad_settings_are_refused(hourly: CandleSeries) -> None:
    with pytest.raises(InvalidArgument, match="test fraction"):
        walk_forward(hourly, MODELS, horizons=[1], test_fraction=1.5)
    with pytest.raises(InvalidArgument, match="refit"):
        walk_forward(hourly, MODELS, horizons=[1], refit_every=0)
    with pytest.raises(InvalidArgument, match="too few"):
        walk_forward(hourly.take(0, 400), MODELS, horizons=[1, 24])

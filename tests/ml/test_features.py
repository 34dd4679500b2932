from __future__ import annotations

import numpy as np
import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from terminal.ml.datasets import Dataset, Scaler, check_enough_history, time_split, windows
from terminal.ml.features import (
    FEATURE_NAMES,
    WARMUP_BARS,
    compute_features,
    future_returns,
    lookahead_columns,
)
from tests.factories import make_series


def test_features_are_finite_after_the_warm_up_and_nan_before(hourly: CandleSeries) -> None:
    features = compute_features(hourly)
    assert features.shape == (len(hourly), len(FEATURE_NAMES))
    assert np.isnan(features[:WARMUP_BARS]).all()
    assert np.isfinite(features[WARMUP_BARS:]).all()


def test_appending_future_candles_never_changes_a_feature(hourly: CandleSeries) -> None:
    assert lookahead_columns(compute_features, hourly, [300, 301, 777, 1500]) == []


def test_the_truncation_check_catches_a_feature_that_peeks() -> None:
    candles = make_series(600, Timeframe.H1)

    def peeking(series: CandleSeries) -> np.ndarray:
        # A centred moving average: bar i averages bars i-2..i+2.
        close = series.close
        centred = np.convolve(close, np.ones(5) / 5, mode="same")
        return np.column_stack([compute_features(series), centred])

    assert lookahead_columns(peeking, candles, [200, 400]) == [len(FEATURE_NAMES)]


def test_targets_are_future_log_returns_and_unknown_at_the_end() -> None:
    candles = make_series(50, Timeframe.H1)
    targets = future_returns(candles, [1, 4])
    assert targets[10, 1] == pytest.approx(np.log(candles.close[14] / candles.close[10]))
    assert np.isnan(targets[-4:, 1]).all() and np.isfinite(targets[:-4, 1]).all()
    assert np.isnan(targets[-1, 0]) and np.isfinite(targets[-2, 0])


def test_time_features_follow_the_candle_close_time() -> None:
    candles = make_series(200, Timeframe.H1)  # starts at a UTC midnight
    features = compute_features(candles)
    hour_sin = FEATURE_NAMES.index("hour_sin")
    # Bar 5 of each day opens 05:00 and closes 06:00: a quarter of the day.
    closes_at_six = [i for i in range(WARMUP_BARS, 200) if i % 24 == 5]
    assert np.allclose(features[closes_at_six, hour_sin], 1.0)


@pytest.mark.parametrize("field", ["close", "volume"])
def test_bad_prices_are_refused_naming_the_bar(field: str) -> None:
    candles = make_series(300, Timeframe.H1)
    getattr(candles, field)[123] = np.nan
    with pytest.raises(InvalidArgument, match="candle 123"):
        compute_features(candles)


@pytest.mark.parametrize("horizons", [[], [0], [4, 4], [-1]])
def test_bad_horizons_are_refused(horizons: list[int]) -> None:
    with pytest.raises(InvalidArgument, match="horizon"):
        future_returns(make_series(100, Timeframe.H1), horizons)


def test_too_short_a_history_is_refused_with_the_needed_length() -> None:
    with pytest.raises(InvalidArgument, match=r"too few.*at least"):
        check_enough_history(make_series(300, Timeframe.H1), [1, 24], window=60)


def test_scaler_uses_only_the_rows_it_was_fit_on() -> None:
    values = np.r_[np.zeros(50), np.full(50, 100.0)][:, None]
    scaler = Scaler.fit(values[:50] + np.arange(50)[:, None] % 2)
    assert scaler.mean[0] == pytest.approx(0.5)
    assert scaler.transform(values[-1:])[0, 0] == pytest.approx((100 - 0.5) / 0.5)


def test_windows_end_at_their_row() -> None:
    features = np.arange(20.0).reshape(10, 2)
    batch = windows(features, np.array([3, 9]), 4)
    assert batch.shape == (2, 4, 2)
    assert batch[0, -1].tolist() == [6.0, 7.0] and batch[0, 0].tolist() == [0.0, 1.0]
    with pytest.raises(InvalidArgument):
        windows(features, np.array([2]), 4)


def test_time_split_leaves_a_gap_of_the_horizon() -> None:
    earlier, later = time_split(np.arange(100), 0.2, 5)
    assert later[0] == 80 and earlier[-1] == 75


def test_dataset_rows_know_their_features_and_targets(hourly: CandleSeries) -> None:
    data = Dataset.from_candles(hourly, [1, 24])
    rows = data.feature_rows()
    assert rows[0] == WARMUP_BARS
    labelled = data.labelled_rows(rows)
    assert labelled[-1] == len(hourly) - 25

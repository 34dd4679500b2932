import numpy as np
import pytest

from terminal.core.errors import DataError
from terminal.core.model import Candle, Timeframe
from terminal.core.series import CandleSeries, concat
from tests.factories import START_MS, make_series


def test_round_trip_through_records_and_candles() -> None:
    series = make_series(50)
    assert CandleSeries.from_records(series.to_records(), Timeframe.M1) == series
    assert CandleSeries.from_candles(list(series), Timeframe.M1) == series


def test_times_must_increase() -> None:
    t = np.array([2, 1], dtype=np.int64)
    ones = np.ones(2)
    with pytest.raises(DataError, match="strictly increasing"):
        CandleSeries(Timeframe.M1, t, ones, ones, ones, ones, ones)


def test_between_is_half_open() -> None:
    series = make_series(10)
    part = series.between(START_MS + 2 * 60_000, START_MS + 5 * 60_000)
    assert list(part.open_time) == [START_MS + i * 60_000 for i in (2, 3, 4)]
    assert len(series.between(None, START_MS)) == 0


def test_with_candle_replaces_the_forming_bar_or_appends() -> None:
    series = make_series(3)
    last = series[2]
    replaced = series.with_candle(Candle(last.open_time, 1, 2, 0.5, 1.5, 9))
    assert len(replaced) == 3 and replaced[2].volume == 9
    appended = series.with_candle(Candle(last.open_time + 60_000, 1, 2, 0.5, 1.5, 9))
    assert len(appended) == 4
    with pytest.raises(DataError):
        series.with_candle(Candle(series[0].open_time, 1, 2, 0.5, 1.5, 9))


def test_concat_rejects_mixed_timeframes() -> None:
    with pytest.raises(DataError, match="different timeframes"):
        concat([make_series(2), make_series(2, Timeframe.H1)])

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.core.errors import InvalidArgument
from terminal.core.marketdata import Gap, find_gaps, resample
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from tests.factories import START_MS, make_series


def test_find_gaps_lists_each_hole() -> None:
    series = make_series(10, Timeframe.H1)
    keep = np.array([0, 1, 2, 4, 5, 8, 9])
    holed = CandleSeries.from_records(series.to_records()[keep], Timeframe.H1)
    hour = Timeframe.H1.ms
    assert find_gaps(holed) == [
        Gap(START_MS + 3 * hour, START_MS + 4 * hour, 1),
        Gap(START_MS + 6 * hour, START_MS + 8 * hour, 2),
    ]
    assert find_gaps(series) == []


def test_resample_aggregates_ohlcv() -> None:
    series = make_series(120)
    hourly = resample(series, Timeframe.H1)
    assert len(hourly) == 2
    first = series.take(0, 60)
    assert hourly[0].open == first.open[0]
    assert hourly[0].high == first.high.max()
    assert hourly[0].low == first.low.min()
    assert hourly[0].close == first.close[-1]
    assert hourly[0].volume == pytest.approx(first.volume.sum())


def test_partial_buckets() -> None:
    series = make_series(90, start_ms=START_MS + 15 * 60_000)  # 00:15 .. 01:44
    assert len(resample(series, Timeframe.H1)) == 2
    assert len(resample(series, Timeframe.H1, complete_only=True)) == 0
    full = make_series(150)  # 00:00 .. 02:29
    assert resample(full, Timeframe.H1, complete_only=True).open_time.tolist() == [
        START_MS, START_MS + Timeframe.H1.ms]
    # At 02:30 the third hour is still forming, so asking for closed candles leaves it out.
    assert len(resample(full, Timeframe.H1, now_ms=START_MS + 150 * 60_000)) == 2


def test_resample_refuses_uneven_timeframes() -> None:
    with pytest.raises(InvalidArgument, match="not a whole multiple"):
        resample(make_series(10, Timeframe.H4), Timeframe.H6)


def test_weekly_resample_starts_on_monday() -> None:
    weekly = resample(make_series(30, Timeframe.D1), Timeframe.W1)
    for t in weekly.open_time.tolist():
        assert Timeframe.W1.is_aligned(int(t))


@settings(max_examples=50, deadline=None)
@given(count=st.integers(1, 600), drop=st.lists(st.integers(0, 599), max_size=50),
       target=st.sampled_from([Timeframe.M5, Timeframe.M15, Timeframe.H1, Timeframe.H4]))
def test_resampling_matches_a_bucket_by_bucket_reference(count: int, drop: list[int],
                                                         target: Timeframe) -> None:
    series = make_series(count)
    keep = np.setdiff1d(np.arange(count), drop)
    series = CandleSeries.from_records(series.to_records()[keep], Timeframe.M1)
    result = resample(series, target)
    buckets: dict[int, list[int]] = {}
    for i, t in enumerate(series.open_time.tolist()):
        buckets.setdefault(target.floor(t), []).append(i)
    assert result.open_time.tolist() == sorted(buckets)
    for j, bucket in enumerate(sorted(buckets)):
        idx = buckets[bucket]
        assert result.open[j] == series.open[idx[0]]
        assert result.close[j] == series.close[idx[-1]]
        assert result.high[j] == series.high[idx].max()
        assert result.low[j] == series.low[idx].min()
        assert result.volume[j] == pytest.approx(series.volume[idx].sum())
    assert resample(series, target).volume.sum() == pytest.approx(series.volume.sum())

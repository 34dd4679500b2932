"""Operations on candle histories: finding gaps and resampling to coarser timeframes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing candles: none opened in ``[start_ms, end_ms)``; ``missing`` bars are absent."""

    start_ms: int
    end_ms: int
    missing: int

    def to_json(self) -> dict[str, int]:
        return {"start": self.start_ms, "end": self.end_ms, "missing": self.missing}


def find_gaps(series: CandleSeries) -> list[Gap]:
    """Every run of missing bars between the first and the last candle of ``series``."""
    step = series.timeframe.ms
    times = series.open_time
    if len(times) < 2:
        return []
    jumps = np.diff(times)
    where = np.flatnonzero(jumps > step)
    return [
        Gap(start_ms=int(times[i]) + step, end_ms=int(times[i + 1]),
            missing=int(jumps[i] // step) - 1)
        for i in where
    ]


def resample(series: CandleSeries, target: Timeframe, *, complete_only: bool = False,
             now_ms: int | None = None) -> CandleSeries:
    """Aggregate ``series`` into ``target`` candles (open first, high max, low min, close
    last, volume sum).

    A target bucket with missing source bars is still built from the bars it has, because
    exchanges leave real outages in their data. ``complete_only=True`` keeps only buckets whose
    every source bar is present. Independently, when ``now_ms`` is given, the bucket that is
    still forming at that instant is left out, so callers asking for closed candles get only
    closed ones.
    """
    source = series.timeframe
    if target is source:
        return series if now_ms is None else _drop_forming(series, now_ms)
    if not source.divides(target):
        raise InvalidArgument(
            f"cannot resample {source} candles to {target}: {target} is not a whole multiple"
            f" of {source}"
        )
    if not len(series):
        return CandleSeries.empty(target)
    times = series.open_time
    buckets = times - (times - target.origin_ms) % target.ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(times)]
    result = CandleSeries(
        timeframe=target,
        open_time=buckets[starts],
        open=series.open[starts],
        high=np.maximum.reduceat(series.high, starts),
        low=np.minimum.reduceat(series.low, starts),
        close=series.close[ends - 1],
        volume=np.add.reduceat(series.volume, starts),
    )
    if complete_only:
        per_bucket = target.ms // source.ms
        result = _select(result, (ends - starts) == per_bucket)
    if now_ms is not None:
        result = _drop_forming(result, now_ms)
    return result


def _drop_forming(series: CandleSeries, now_ms: int) -> CandleSeries:
    return _select(series, series.open_time + series.timeframe.ms <= now_ms)


def _select(series: CandleSeries, mask: np.ndarray) -> CandleSeries:
    return CandleSeries(
        timeframe=series.timeframe,
        open_time=series.open_time[mask],
        open=series.open[mask],
        high=series.high[mask],
        low=series.low[mask],
        close=series.close[mask],
        volume=series.volume[mask],
    )


@dataclass(frozen=True, slots=True)
class ResampledHistory:
    """Coarser candles built for storage, with what was incomplete about them.

    ``with_gaps`` lists open times of kept candles whose source had missing bars (exchange
    outages inside the period); ``dropped`` counts candles left out because they were
    incomplete at an edge of the source (it started or ended part-way through them) or,
    with ``complete_only``, anywhere.
    """

    series: CandleSeries
    with_gaps: list[int]
    dropped: int


def resample_for_storage(series: CandleSeries, target: Timeframe, *,
                         complete_only: bool = False) -> ResampledHistory:
    """Resample ``series`` to ``target`` keeping only candles that are fit to store.

    A candle cut short by the start or the end of the source would be stored with a wrong
    open or close for good, so edge buckets must be complete. Inside the history a bucket
    with missing source bars is what the exchange itself reports for an outage, so it is kept
    (and listed) unless ``complete_only`` is set.
    """
    every = resample(series, target)
    if not len(every):
        return ResampledHistory(every, [], 0)
    per_bucket = target.ms // series.timeframe.ms
    buckets = series.open_time - (series.open_time - target.origin_ms) % target.ms
    counts = np.unique(buckets, return_counts=True)[1]
    complete = counts == per_bucket
    keep = complete.copy()
    if not complete_only:
        keep[1:-1] = True
    kept = _select(every, keep)
    with_gaps = every.open_time[keep & ~complete].tolist()
    return ResampledHistory(kept, [int(t) for t in with_gaps], int((~keep).sum()))


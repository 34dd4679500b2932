"""Bulk candle history as numpy arrays.

A :class:`CandleSeries` is what the store loads, the importers produce, the chart draws and the
backtester and models consume. It holds one array per field rather than a list of objects, so
a million candles cost 48 MB and vectorised code can use the columns directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from terminal.core.errors import DataError
from terminal.core.model import Candle, Timeframe

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.int64]

#: The packed record layout used for storage blobs and bulk transfer.
CANDLE_DTYPE = np.dtype(
    [
        ("open_time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("volume", "<f8"),
    ]
)
PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Names one candle history: which venue, which pair, which timeframe."""

    venue: str
    symbol: str
    timeframe: Timeframe

    def __str__(self) -> str:
        return f"{self.venue}:{self.symbol}:{self.timeframe.code}"


@dataclass(frozen=True, eq=False)
class CandleSeries:
    """Candles of one timeframe, strictly ascending by open time, with no duplicate times.

    Gaps are allowed (exchanges have outages); :func:`terminal.core.marketdata.find_gaps`
    reports them.
    """

    timeframe: Timeframe
    open_time: TimeArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        n = len(self.open_time)
        for name in (*PRICE_FIELDS, "volume"):
            if len(getattr(self, name)) != n:
                raise DataError(f"candle column {name!r} has {len(getattr(self, name))} values, "
                                f"open_time has {n}")
        if n > 1 and not bool(np.all(np.diff(self.open_time) > 0)):
            raise DataError("candle open times must be strictly increasing")

    @classmethod
    def empty(cls, timeframe: Timeframe) -> CandleSeries:
        return cls.from_records(np.empty(0, dtype=CANDLE_DTYPE), timeframe)

    @classmethod
    def from_records(cls, records: npt.NDArray[np.void], timeframe: Timeframe) -> CandleSeries:
        """Build from a :data:`CANDLE_DTYPE` array (the columns are copied to be contiguous)."""
        return cls(
            timeframe=timeframe,
            open_time=np.ascontiguousarray(records["open_time"], dtype=np.int64),
            open=np.ascontiguousarray(records["open"], dtype=np.float64),
            high=np.ascontiguousarray(records["high"], dtype=np.float64),
            low=np.ascontiguousarray(records["low"], dtype=np.float64),
            close=np.ascontiguousarray(records["close"], dtype=np.float64),
            volume=np.ascontiguousarray(records["volume"], dtype=np.float64),
        )

    @classmethod
    def from_candles(cls, candles: Iterable[Candle], timeframe: Timeframe) -> CandleSeries:
        rows = [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles]
        return cls.from_records(np.array(rows, dtype=CANDLE_DTYPE), timeframe)

    def to_records(self) -> npt.NDArray[np.void]:
        records = np.empty(len(self), dtype=CANDLE_DTYPE)
        records["open_time"] = self.open_time
        for name in (*PRICE_FIELDS, "volume"):
            records[name] = getattr(self, name)
        return records

    def __len__(self) -> int:
        return len(self.open_time)

    def __iter__(self) -> Iterator[Candle]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> Candle:
        return Candle(
            open_time=int(self.open_time[index]),
            open=float(self.open[index]),
            high=float(self.high[index]),
            low=float(self.low[index]),
            close=float(self.close[index]),
            volume=float(self.volume[index]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CandleSeries):
            return NotImplemented
        return self.timeframe is other.timeframe and all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in ("open_time", *PRICE_FIELDS, "volume")
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def first_time(self) -> int | None:
        return int(self.open_time[0]) if len(self) else None

    @property
    def last_time(self) -> int | None:
        return int(self.open_time[-1]) if len(self) else None

    def take(self, start: int, stop: int) -> CandleSeries:
        """Positional slice ``[start:stop]`` (views, no copy)."""
        return CandleSeries(
            timeframe=self.timeframe,
            open_time=self.open_time[start:stop],
            open=self.open[start:stop],
            high=self.high[start:stop],
            low=self.low[start:stop],
            close=self.close[start:stop],
            volume=self.volume[start:stop],
        )

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> CandleSeries:
        """Candles with ``start_ms <= open_time < end_ms``; ``None`` leaves a side open."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_time, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.open_time, end_ms, "left"))
        return self.take(lo, max(lo, hi))

    def tail(self, count: int) -> CandleSeries:
        return self.take(max(0, len(self) - count), len(self))

    def with_candle(self, candle: Candle) -> CandleSeries:
        """This series with ``candle`` replacing the last bar (same open time) or appended."""
        if len(self) and candle.open_time == self.last_time:
            base = self.take(0, len(self) - 1)
        elif len(self) and candle.open_time < int(self.open_time[-1]):
            raise DataError("a candle older than the series' last bar cannot be appended")
        else:
            base = self
        extra = CandleSeries.from_candles([candle], self.timeframe)
        return concat([base, extra])


def concat(parts: Iterable[CandleSeries]) -> CandleSeries:
    """Join series of one timeframe that follow each other in time."""
    pieces = list(parts)
    if not pieces:
        raise DataError("nothing to concatenate")
    timeframe = pieces[0].timeframe
    if any(p.timeframe is not timeframe for p in pieces):
        raise DataError("cannot join candles of different timeframes")
    return CandleSeries(
        timeframe=timeframe,
        open_time=np.concatenate([p.open_time for p in pieces]),
        open=np.concatenate([p.open for p in pieces]),
        high=np.concatenate([p.high for p in pieces]),
        low=np.concatenate([p.low for p in pieces]),
        close=np.concatenate([p.close for p in pieces]),
        volume=np.concatenate([p.volume for p in pieces]),
    )

"""Candle feeds: history download into the store and the closed-candle bookkeeping of live data.

:func:`download_history` works through :meth:`MarketDataVenue.fetch_candles` only, so it fills
the store from any venue, a real exchange or the simulated market alike. It asks only for what
the store lacks in the requested range (the part after where the store ends, and holes inside
it), a page at a time, and stores each page in its own transaction: an interrupted download
keeps every page it finished, and the next run continues with the rest. Ranges the exchange
answers with no candles (its own outages) are reported, not asked for again in the same run.

:class:`LiveCandleTracker` turns the overlapping candle lists that polling and websockets
deliver into ticks where each closed candle appears exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from terminal.core.clock import Clock
from terminal.core.errors import InvalidArgument
from terminal.core.marketdata import Gap
from terminal.core.model import Candle, Timeframe
from terminal.core.ports import MarketDataVenue
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store

#: Candles asked for per page when the venue does not say how many it serves per request.
DEFAULT_PAGE_BARS = 1000
#: A candle is taken as closed by our clock only this long after its period ended: computer
#: and exchange clocks differ by seconds, and a candle stored or published as closed while
#: the exchange still adds trades to it would never be corrected.
CLOSE_GRACE_MS = 5_000


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """``done`` of ``total`` missing candle slots have been asked for; ``stored`` were new."""

    done: int
    total: int
    stored: int


@dataclass
class DownloadReport:
    """What a download did: what was missing, what came, and what the exchange lacks."""

    key: SeriesKey
    start_ms: int
    end_ms: int
    already_stored: int = 0
    missing_before: int = 0
    stored: int = 0
    pages: int = 0
    holes_found: int = 0
    holes_repaired: int = 0
    empty_at_venue: list[Gap] = field(default_factory=list)

    @property
    def unavailable(self) -> int:
        """Candle slots the venue had no candle for (its outages)."""
        return sum(gap.missing for gap in self.empty_at_venue)

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.key.venue, "symbol": self.key.symbol,
            "timeframe": self.key.timeframe.code, "start": self.start_ms, "end": self.end_ms,
            "already_stored": self.already_stored, "missing_before": self.missing_before,
            "stored": self.stored, "pages": self.pages, "holes_found": self.holes_found,
            "holes_repaired": self.holes_repaired,
            "unavailable": self.unavailable,
            "empty_at_venue": [gap.to_json() for gap in self.empty_at_venue],
        }


def missing_ranges(times: np.ndarray, timeframe: Timeframe, start_ms: int,
                   end_ms: int) -> list[Gap]:
    """The runs of candle slots in ``[start_ms, end_ms)`` that ``times`` does not cover.

    ``times`` are stored open times inside the range, ascending; ``start_ms`` is aligned.
    """
    step = timeframe.ms
    edges = np.concatenate(([start_ms - step], times.astype(np.int64), [end_ms]))
    jumps = np.diff(edges)
    where = np.flatnonzero(jumps > step)
    gaps = []
    for i in where:
        gap_start = int(edges[i]) + step
        gap_end = int(edges[i + 1])
        gaps.append(Gap(gap_start, gap_end, -(-(gap_end - gap_start) // step)))
    return gaps


async def download_history(store: Store, venue: MarketDataVenue, symbol: str,
                           timeframe: Timeframe, start_ms: int, end_ms: int | None, *,
                           clock: Clock, page_bars: int | None = None,
                           progress: Callable[[DownloadProgress], None] | None = None,
                           ) -> DownloadReport:
    """Fill the store's ``venue``/``symbol``/``timeframe`` history over ``[start_ms, end_ms)``.

    ``end_ms`` defaults to now; candles that have not closed yet are never stored. Raises
    :class:`InvalidArgument` for an unknown symbol or an empty range, and the venue's errors
    when it fails (after its own retries); pages stored before that stay stored.
    """
    instruments = await venue.load_instruments()
    known = {instrument.symbol for instrument in instruments}
    if symbol not in known:
        sample = ", ".join(sorted(known)[:8])
        raise InvalidArgument(f"{venue.display_name} does not list {symbol}"
                              f" (it lists {len(known)} pairs, e.g. {sample})")
    now = clock.now_ms()
    newest_closed_end = timeframe.floor(now - CLOSE_GRACE_MS)
    first = timeframe.floor(start_ms)
    last = newest_closed_end if end_ms is None else min(end_ms, newest_closed_end)
    if last <= first:
        raise InvalidArgument("nothing to download: the start is not before the end (or the"
                              " present)")
    key = SeriesKey(venue.id, symbol, timeframe)
    stored_times = store.candles.load(key, first, last).open_time
    gaps = missing_ranges(stored_times, timeframe, first, last)
    report = DownloadReport(key, first, last, already_stored=len(stored_times),
                            missing_before=sum(gap.missing for gap in gaps))
    inner = [gap for gap in gaps if len(stored_times) and gap.start_ms > int(stored_times[0])
             and gap.end_ms <= int(stored_times[-1])]
    report.holes_found = len(inner)
    bars = page_bars or int(getattr(venue, "candles_per_request", DEFAULT_PAGE_BARS))
    span = bars * timeframe.ms
    done = 0
    for gap in gaps:
        page_start = gap.start_ms
        while page_start < gap.end_ms:
            page_end = min(page_start + span, gap.end_ms)
            candles = await venue.fetch_candles(symbol, timeframe, page_start, page_end)
            report.pages += 1
            if len(candles):
                # One transaction per page: an interruption keeps every finished page.
                result = await asyncio.to_thread(store.candles.upsert, key, candles)
                report.stored += result.inserted
            _note_empty(report, missing_ranges(candles.open_time, timeframe, page_start,
                                               page_end))
            done += (page_end - page_start) // timeframe.ms
            if progress is not None:
                progress(DownloadProgress(done, report.missing_before, report.stored))
            page_start = page_end
    report.holes_repaired = sum(
        1 for hole in inner
        if not any(e.start_ms < hole.end_ms and e.end_ms > hole.start_ms
                   for e in report.empty_at_venue))
    return report


def _note_empty(report: DownloadReport, empty: list[Gap]) -> None:
    """Record ranges the venue returned nothing for, joining runs that span pages."""
    for gap in empty:
        previous = report.empty_at_venue[-1] if report.empty_at_venue else None
        if previous is not None and previous.end_ms == gap.start_ms:
            report.empty_at_venue[-1] = Gap(previous.start_ms, gap.end_ms,
                                            previous.missing + gap.missing)
        else:
            report.empty_at_venue.append(gap)


class LiveCandleTracker:
    """Decides which candles of one live series are new, forming or closed, once each.

    Feed it every candle list the exchange delivers (overlapping polls, websocket caches,
    a backfill after a reconnect); it returns each closed candle exactly once, in order, and
    the forming candle whenever it changed. A candle counts as closed when a newer candle
    already exists, or when its period ended more than :data:`CLOSE_GRACE_MS` ago.
    """

    def __init__(self, timeframe: Timeframe) -> None:
        self.timeframe = timeframe
        self.last_closed: int | None = None
        self._forming: Candle | None = None

    def resume_from(self, now_ms: int) -> int:
        """The open time to ask the exchange for next: after the last closed candle we gave
        out, or the previous period on a first start (its close is then reported once)."""
        if self.last_closed is not None:
            return self.last_closed + self.timeframe.ms
        return self.timeframe.floor(now_ms) - self.timeframe.ms

    def update(self, candles: Sequence[Candle], now_ms: int) -> list[tuple[Candle, bool]]:
        """``(candle, closed)`` pairs not reported before, oldest first."""
        ordered = sorted(candles, key=lambda c: c.open_time)
        if not ordered:
            return []
        newest = ordered[-1].open_time
        out: list[tuple[Candle, bool]] = []
        for candle in ordered:
            if self.last_closed is not None and candle.open_time <= self.last_closed:
                continue
            ended = candle.open_time + self.timeframe.ms + CLOSE_GRACE_MS <= now_ms
            closed = ended or candle.open_time < newest
            if closed:
                out.append((candle, True))
                self.last_closed = candle.open_time
                self._forming = None
            elif candle != self._forming:
                out.append((candle, False))
                self._forming = candle
        return out


def series_from_rows(rows: Sequence[Sequence[Any]], timeframe: Timeframe) -> CandleSeries:
    """Candles from ``[open_time, open, high, low, close, volume]`` rows, as exchanges send
    them: sorted, duplicates dropped (the last one wins), rows with a missing price dropped."""
    clean = [row[:6] for row in rows
             if len(row) >= 6 and all(value is not None for value in row[:5])]
    if not clean:
        return CandleSeries.empty(timeframe)
    table = np.array([[float(value) if value is not None else 0.0 for value in row]
                      for row in clean], dtype=np.float64)
    times = table[:, 0].astype(np.int64)
    order = np.argsort(times, kind="stable")
    times, table = times[order], table[order]
    keep = np.ones(len(times), dtype=bool)
    keep[:-1] = times[1:] != times[:-1]
    aligned = (times - timeframe.origin_ms) % timeframe.ms == 0
    keep &= aligned
    table, times = table[keep], times[keep]
    return CandleSeries(timeframe, times, table[:, 1].copy(), table[:, 2].copy(),
                        table[:, 3].copy(), table[:, 4].copy(), table[:, 5].copy())

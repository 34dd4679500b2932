"""Services: what the UI calls. They own the live state and publish events on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from terminal.core.bus import EventBus
from terminal.core.clock import Clock
from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.events import (
    CandleClosed,
    CandleUpdated,
    ConnectionChanged,
    ErrorRaised,
    HistoryProgress,
    InstrumentsLoaded,
    MarketDataReady,
)
from terminal.core.marketdata import resample
from terminal.core.model import DAY_MS, Candle, Instrument, Timeframe
from terminal.core.ports import CandleTick, MarketDataVenue
from terminal.core.series import CandleSeries, SeriesKey, concat
from terminal.core.storage import Store, UpsertResult

log = logging.getLogger(__name__)

#: The resolution the service stores and streams; every coarser timeframe is built from it.
BASE_TIMEFRAME = Timeframe.M1
#: How far back the first start fills the store when it holds nothing for a venue.
DEFAULT_HISTORY_DAYS = 90
#: Closed base candles kept in memory per symbol: enough to aggregate a forming weekly candle.
_MEMORY_BARS = Timeframe.W1.ms // BASE_TIMEFRAME.ms
_BACKFILL_CHUNK_MS = 7 * DAY_MS
_RECONNECT_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)


class MarketDataService:
    """Keeps the store's history of one venue current and streams its live candles.

    On :meth:`start` it fills the store from where it ends (or ``history_days`` back) up to
    the venue's present, then follows the live 1-minute stream: every closed candle is stored
    before :class:`CandleClosed` is published, and a candle missed while disconnected is fetched
    again, so the stored history has no holes of our making. Charts ask for any timeframe;
    coarser candles are aggregated from the 1-minute ones.

    ``pairs`` limits the service to those symbols, in that order (an exchange lists
    thousands, and each followed one costs a download and a live stream); None follows every
    instrument the venue lists. A pair the venue does not list is left out with a message.
    """

    def __init__(self, store: Store, venue: MarketDataVenue, bus: EventBus, clock: Clock, *,
                 history_days: int = DEFAULT_HISTORY_DAYS,
                 pairs: Sequence[str] | None = None) -> None:
        self.venue = venue
        self.instruments: list[Instrument] = []
        #: Every symbol the venue lists (known once started), followed or not.
        self.listed: frozenset[str] = frozenset()
        self._pairs = None if pairs is None else tuple(dict.fromkeys(pairs))
        self.ready = False
        self._store = store
        self._bus = bus
        self._clock = clock
        self._history_days = history_days
        self._closed: dict[str, CandleSeries] = {}
        self._forming: dict[str, Candle] = {}
        # Counted: the chart and automated trading may watch the same series.
        self._watched: Counter[tuple[str, Timeframe]] = Counter()
        self._stream_task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Future[UpsertResult]] = set()
        self._changing_pairs = asyncio.Lock()

    def key(self, symbol: str, timeframe: Timeframe) -> SeriesKey:
        return SeriesKey(self.venue.id, symbol, timeframe)

    @property
    def symbols(self) -> list[str]:
        return [instrument.symbol for instrument in self.instruments]

    @property
    def limited(self) -> bool:
        """Whether the service follows chosen pairs (see :meth:`follow_pairs`), not all."""
        return self._pairs is not None

    async def start(self) -> None:
        """Load the instruments, fill the store's history, then follow live candles.

        Publishes :class:`InstrumentsLoaded`, :class:`HistoryProgress` while filling, and
        :class:`MarketDataReady` once :meth:`history` covers the venue's present.
        """
        self.instruments = await self._chosen_instruments()
        self._bus.publish(InstrumentsLoaded(self.venue.id, tuple(self.instruments)))
        await self._backfill(self.symbols)
        self._load_recent(self.symbols)
        self.ready = True
        self._bus.publish(MarketDataReady(self.venue.id))
        self._stream_task = asyncio.create_task(self._follow_live(), name="market-data-stream")

    async def follow_pairs(self, pairs: Sequence[str]) -> None:
        """Follow exactly ``pairs`` from now on: new ones are downloaded, then streamed.

        Only for a started service limited to pairs (one following every instrument has
        them all). The pairs followed so far go on streaming during the download; when it
        fails, nothing changes and the error is raised. Publishes
        :class:`InstrumentsLoaded` and :class:`MarketDataReady` again once the new pairs'
        history is stored.
        """
        if self._pairs is None:
            raise InvalidArgument("this market's pairs are all followed already")
        if not self.ready:
            raise InvalidArgument("the market data is still loading; try again when it is")
        # One change at a time: two overlapping ones would each restart the stream.
        async with self._changing_pairs:
            await self._follow_pairs(tuple(dict.fromkeys(pairs)))

    async def _follow_pairs(self, pairs: tuple[str, ...]) -> None:
        if pairs == self._pairs:
            return  # saved preferences that change other things: the stream goes on
        previous, self._pairs = self._pairs, pairs
        try:
            chosen = await self._chosen_instruments()
            added = [i.symbol for i in chosen if i.symbol not in self.symbols]
            await self._backfill(added)
        except BaseException:
            self._pairs = previous
            raise
        self._load_recent(added)
        # A minute that closes while the stream is swapped is fetched by the new stream
        # (the gap before its first closed candle, see _missed_before).
        await self._stop_stream()
        self.instruments = chosen
        self._bus.publish(InstrumentsLoaded(self.venue.id, tuple(self.instruments)))
        self._stream_task = asyncio.create_task(self._follow_live(), name="market-data-stream")
        self._bus.publish(MarketDataReady(self.venue.id))

    async def stop(self) -> None:
        """Stop streaming and wait for store writes still running, so the store may close."""
        await self._stop_stream()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self.venue.close()

    async def _stop_stream(self) -> None:
        task, self._stream_task = self._stream_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _chosen_instruments(self) -> list[Instrument]:
        listed = list(await self.venue.load_instruments())
        self.listed = frozenset(instrument.symbol for instrument in listed)
        if self._pairs is None:
            return listed
        by_symbol = {instrument.symbol: instrument for instrument in listed}
        missing = [pair for pair in self._pairs if pair not in by_symbol]
        if len(missing) == len(self._pairs):
            raise InvalidArgument(f"none of the pairs ({', '.join(self._pairs)}) is listed on"
                                  f" {self.venue.display_name}")
        if missing:
            self._bus.publish(ErrorRaised(
                self.venue.display_name,
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not listed on"
                f" {self.venue.display_name} (spot); left out"))
        return [by_symbol[pair] for pair in self._pairs if pair in by_symbol]

    def _load_recent(self, symbols: Sequence[str]) -> None:
        since = self._clock.now_ms() - Timeframe.W1.ms - BASE_TIMEFRAME.ms
        for symbol in symbols:
            self._closed[symbol] = self._store.candles.load(self.key(symbol, BASE_TIMEFRAME),
                                                            since)

    def history(self, symbol: str, timeframe: Timeframe, bars: int | None = None) -> CandleSeries:
        """Closed candles of ``symbol`` at ``timeframe``, the newest ``bars`` of them.

        Candles stored at ``timeframe`` itself (an imported file of this venue, say Binance's
        hourly CSV) come first, continued by those aggregated from the stored minutes after
        them: years of imported hours lead up to the hours the live stream keeps adding.
        """
        self._check_symbol(symbol)
        minutes = self._store.candles.summary(self.key(symbol, BASE_TIMEFRAME))
        own = (None if timeframe is BASE_TIMEFRAME
               else self._store.candles.summary(self.key(symbol, timeframe)))
        ends = [timeframe.floor(s.last_time) for s in (minutes, own) if s is not None]
        if not ends:
            return CandleSeries.empty(timeframe)
        start = None if bars is None else max(ends) - bars * timeframe.ms
        parts = []
        minutes_from = start
        if own is not None:
            stored = self._store.candles.load(self.key(symbol, timeframe), start)
            parts.append(stored)
            after_own = own.last_time + timeframe.ms
            minutes_from = after_own if start is None else max(start, after_own)
        if minutes is not None and (minutes_from is None
                                    or minutes.last_time >= minutes_from):
            candles = self._store.candles.load(self.key(symbol, BASE_TIMEFRAME), minutes_from)
            if len(candles) and timeframe is not BASE_TIMEFRAME:
                last_close = int(candles.open_time[-1]) + BASE_TIMEFRAME.ms
                candles = resample(candles, timeframe, now_ms=last_close)
            if len(candles):
                parts.append(candles)
        joined = concat(parts) if parts else CandleSeries.empty(timeframe)
        return joined if bars is None else joined.tail(bars)

    def watch(self, symbol: str, timeframe: Timeframe) -> None:
        """Publish live :class:`CandleUpdated` / :class:`CandleClosed` for this pair from now on."""
        self._check_symbol(symbol)
        self._watched[(symbol, timeframe)] += 1

    def unwatch(self, symbol: str, timeframe: Timeframe) -> None:
        """Undo one :meth:`watch`; events stop when every watcher has unwatched."""
        watchers = self._watched[(symbol, timeframe)] - 1
        if watchers > 0:
            self._watched[(symbol, timeframe)] = watchers
        else:
            self._watched.pop((symbol, timeframe), None)

    def forming(self, symbol: str, timeframe: Timeframe) -> Candle | None:
        """The candle of ``timeframe`` that is forming now, from the live 1-minute stream."""
        current = self._forming.get(symbol)
        if current is None:
            return None
        bucket = timeframe.floor(current.open_time)
        closed = self._closed.get(symbol, CandleSeries.empty(BASE_TIMEFRAME))
        return _aggregate(closed.between(bucket, current.open_time), current, bucket)

    def _check_symbol(self, symbol: str) -> None:
        if self.instruments and symbol not in self.symbols:
            raise InvalidArgument(
                f"{symbol} is not traded on {self.venue.display_name}; "
                f"available: {', '.join(self.symbols)}"
            )

    async def _backfill(self, symbols: Sequence[str]) -> None:
        now = self._clock.now_ms()
        plans = []
        for symbol in symbols:
            summary = self._store.candles.summary(self.key(symbol, BASE_TIMEFRAME))
            start = (summary.last_time + BASE_TIMEFRAME.ms if summary
                     else BASE_TIMEFRAME.floor(now - self._history_days * DAY_MS))
            plans.append((symbol, start))
        total = sum(max(1, -(-(now - start) // _BACKFILL_CHUNK_MS)) for _, start in plans)
        done = 0
        for symbol, start in plans:
            chunk_start = start
            while True:
                chunk_end = min(chunk_start + _BACKFILL_CHUNK_MS, now)
                if chunk_end > chunk_start:
                    await self._fetch_and_store(symbol, chunk_start, chunk_end)
                done = min(done + 1, total)
                self._bus.publish(HistoryProgress(
                    self.venue.id, done, total, f"Loading {symbol} history"))
                chunk_start = chunk_end
                if chunk_start >= now:
                    break
        self._bus.publish(HistoryProgress(self.venue.id, total, total, "History up to date"))

    async def _fetch_and_store(self, symbol: str, start_ms: int, end_ms: int) -> None:
        candles = await self.venue.fetch_candles(symbol, BASE_TIMEFRAME, start_ms, end_ms)
        if len(candles):
            # The SQLite write runs off the loop so the window keeps painting meanwhile. A
            # thread cannot be cancelled: if start() is, stop() waits for the write to finish
            # before anyone closes the store under it.
            write = asyncio.ensure_future(asyncio.to_thread(
                self._store.candles.upsert, self.key(symbol, BASE_TIMEFRAME), candles))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
            await asyncio.shield(write)

    async def _follow_live(self) -> None:
        failures = 0
        while True:
            try:
                stream = self.venue.stream_candles(self.symbols, BASE_TIMEFRAME)
                self._bus.publish(ConnectionChanged(self.venue.id, True))
                # aclosing: a cancelled service must close the venue's stream at once, not
                # whenever the garbage collector finalises the generator.
                async with contextlib.aclosing(stream):
                    async for tick in stream:
                        failures = 0
                        await self._on_tick(tick)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                message = str(error) if isinstance(error, TerminalError) else repr(error)
                log.exception("live candles from %s failed", self.venue.id)
                self._bus.publish(ConnectionChanged(self.venue.id, False, message))
                self._bus.publish(ErrorRaised(self.venue.display_name,
                                              f"live data interrupted: {message}"))
                delay = _RECONNECT_DELAYS_S[min(failures, len(_RECONNECT_DELAYS_S) - 1)]
                failures += 1
                await asyncio.sleep(delay)

    async def _on_tick(self, tick: CandleTick) -> None:
        symbol, candle = tick.symbol, tick.candle
        if not tick.closed:
            self._forming[symbol] = candle
            self._bus.publish(CandleUpdated(self.key(symbol, BASE_TIMEFRAME), candle))
            self._publish_watched(symbol, closed_base=None)
            return
        missed = await self._missed_before(symbol, candle)
        closed = CandleSeries.from_candles([*missed, candle], BASE_TIMEFRAME)
        self._store.candles.upsert(self.key(symbol, BASE_TIMEFRAME), closed)
        self._forming.pop(symbol, None)
        for bar in closed:
            if self._remember_closed(symbol, bar):
                self._bus.publish(CandleClosed(self.key(symbol, BASE_TIMEFRAME), bar))
                self._publish_watched(symbol, closed_base=bar)

    async def _missed_before(self, symbol: str, candle: Candle) -> list[Candle]:
        """Closed candles between the last one we know and ``candle`` (after a disconnection,
        or a minute that closed between the backfill and the start of the stream)."""
        known = self._closed.get(symbol)
        if known is None or not len(known):
            return []
        expected = int(known.open_time[-1]) + BASE_TIMEFRAME.ms
        if candle.open_time <= expected:
            return []
        return list(await self.venue.fetch_candles(symbol, BASE_TIMEFRAME, expected,
                                                   candle.open_time))

    def _remember_closed(self, symbol: str, candle: Candle) -> bool:
        """Keep ``candle`` in memory; False when it is not newer than what we have."""
        known = self._closed.get(symbol, CandleSeries.empty(BASE_TIMEFRAME))
        if len(known) and candle.open_time <= int(known.open_time[-1]):
            return False
        updated = known.with_candle(candle)
        if len(updated) > 2 * _MEMORY_BARS:
            updated = updated.tail(_MEMORY_BARS)
        self._closed[symbol] = updated
        return True

    def _publish_watched(self, symbol: str, closed_base: Candle | None) -> None:
        for watched_symbol, timeframe in tuple(self._watched):
            if watched_symbol != symbol or timeframe is BASE_TIMEFRAME:
                continue
            key = self.key(symbol, timeframe)
            if closed_base is None:
                forming = self.forming(symbol, timeframe)
                if forming is not None:
                    self._bus.publish(CandleUpdated(key, forming))
                continue
            bucket = timeframe.floor(closed_base.open_time)
            closed = self._closed[symbol].between(bucket, closed_base.open_time + 1)
            aggregated = _aggregate(closed, None, bucket)
            if aggregated is None:
                continue
            if closed_base.open_time + BASE_TIMEFRAME.ms == bucket + timeframe.ms:
                self._bus.publish(CandleClosed(key, aggregated))
            else:
                self._bus.publish(CandleUpdated(key, aggregated))


def _aggregate(closed: CandleSeries, forming: Candle | None, bucket: int) -> Candle | None:
    """One candle opening at ``bucket`` from closed base candles plus the forming one."""
    if not len(closed):
        return None if forming is None else replace(forming, open_time=bucket)
    high, low = float(closed.high.max()), float(closed.low.min())
    volume, close = float(closed.volume.sum()), float(closed.close[-1])
    if forming is not None:
        high, low = max(high, forming.high), min(low, forming.low)
        volume, close = volume + forming.volume, forming.close
    return Candle(bucket, float(closed.open[0]), high, low, close, volume)

"""Live candles and tickers from the ccxt venue (polling path) and the closed-once tracker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import TypeVar

import ccxt
import pytest

from terminal.core.clock import ManualClock
from terminal.core.errors import VenueError
from terminal.core.model import MINUTE_MS, Candle, Ticker, Timeframe
from terminal.core.ports import CandleTick
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.exchange.feeds import LiveCandleTracker
from tests.exchange.conftest import VenueFactory, fast_retry
from tests.exchange.emulator import ExchangeEmulator
from tests.factories import START_MS, make_series

T = TypeVar("T")
M1 = Timeframe.M1


def candle(minute: int, close: float = 100.0) -> Candle:
    return Candle(START_MS + minute * MINUTE_MS, 100.0, max(101.0, close), 99.0, close, 1.0)


def minutes(ticks: list[CandleTick], *, closed: bool) -> list[int]:
    """Minutes after START_MS of the closed (or forming) candles, in the order reported."""
    return [(t.candle.open_time - START_MS) // MINUTE_MS for t in ticks if t.closed is closed]


def test_tracker_reports_each_closed_candle_once_across_overlaps() -> None:
    tracker = LiveCandleTracker(M1)
    now = START_MS + 2 * MINUTE_MS + 10_000
    first = tracker.update([candle(1), candle(2)], now)
    assert first == [(candle(1), True), (candle(2), False)]
    assert tracker.update([candle(1), candle(2)], now) == []  # nothing new
    assert tracker.update([candle(2, 100.5)], now) == [(candle(2, 100.5), False)]
    # A reconnect delivers an overlapping list with two minutes closed meanwhile.
    later = now + 2 * MINUTE_MS
    again = tracker.update([candle(1), candle(2, 101), candle(3), candle(4)], later)
    assert again == [(candle(2, 101), True), (candle(3), True), (candle(4), False)]
    assert tracker.resume_from(later) == candle(4).open_time
    # The newest candle closes by the clock only a few seconds after its end.
    end_of_4 = candle(4).open_time + MINUTE_MS
    assert tracker.update([candle(4)], end_of_4 + 4_999) == []
    assert tracker.update([candle(4)], end_of_4 + 5_000) == [(candle(4), True)]


async def _take(stream: AsyncGenerator[T, None], count: int, timeout: float = 10) -> list[T]:
    items: list[T] = []
    async with asyncio.timeout(timeout):
        async for item in stream:
            items.append(item)
            if len(items) == count:
                break
    return items


def test_polled_candles_close_exactly_once_even_across_an_outage(
        emulator: ExchangeEmulator, make_venue: VenueFactory) -> None:
    history = make_series(10)  # minutes 0..9 from START_MS
    clock = ManualClock(START_MS + 5 * MINUTE_MS + 30_000)  # minute 5 is forming
    emulator.set_candles("BTCUSDT", "1m", history.take(0, 6))
    venue = make_venue(clock=clock, poll_interval_s=0.01)

    async def scenario() -> list[CandleTick]:
        stream = venue.stream_candles(["BTC/USDT"], M1)
        ticks: list[CandleTick] = []
        async with contextlib.aclosing(stream):
            ticks += await _take(stream, 2)  # minute 4 closed, minute 5 forming
            # The exchange goes away for a while; three minutes close meanwhile.
            emulator.inject("unavailable", "GET /api/v3/klines", calls=(1, 2, 3))
            emulator.set_candles("BTCUSDT", "1m", history.take(0, 9))
            clock.set(START_MS + 8 * MINUTE_MS + 1_000)
            ticks += await _take(stream, 4)  # 5, 6, 7 closed, 8 forming
            clock.set(START_MS + 9 * MINUTE_MS + 1_000)
            emulator.set_candles("BTCUSDT", "1m", history.take(0, 10))
            ticks += await _take(stream, 2)  # 8 closed, 9 forming
        await venue.close()
        return ticks

    ticks = asyncio.run(scenario())
    closed, forming = minutes(ticks, closed=True), minutes(ticks, closed=False)
    assert closed == [4, 5, 6, 7, 8]
    assert forming == [5, 8, 9]
    assert all(t.candle == history[int((t.candle.open_time - START_MS) // MINUTE_MS)]
               for t in ticks)
    assert emulator.calls["GET /api/v3/klines"] >= 6


def test_polled_tickers_report_changes(emulator: ExchangeEmulator,
                                       make_venue: VenueFactory) -> None:
    emulator.set_candles("BTCUSDT", "1m", make_series(3))
    emulator.set_price("BTCUSDT", "30000")
    venue = make_venue(poll_interval_s=0.01)

    async def scenario() -> list[Ticker]:
        stream = venue.stream_tickers(["BTC/USDT"])
        async with contextlib.aclosing(stream):
            seen = await _take(stream, 1)
            emulator.set_price("BTCUSDT", "30100")
            seen += await _take(stream, 1)
        await venue.close()
        return seen

    tickers = asyncio.run(scenario())
    assert [t.last for t in tickers] == [Decimal(30000), Decimal(30100)]
    assert tickers[1].bid == Decimal("30099.99") and tickers[1].ask == Decimal("30100.01")


def test_a_non_retryable_failure_ends_the_stream_with_its_error(
        emulator: ExchangeEmulator, make_venue: VenueFactory) -> None:
    venue = make_venue(poll_interval_s=0.01)

    async def scenario() -> None:
        stream = venue.stream_candles(["NOPE/USDT"], M1)
        try:
            async with contextlib.aclosing(stream):
                await _take(stream, 1)
        finally:
            await venue.close()

    with pytest.raises(VenueError, match=r"does not list this market.*NOPE/USDT"):
        asyncio.run(scenario())


def test_websocket_candles_close_once_and_are_backfilled_after_a_reconnect(
        emulator: ExchangeEmulator) -> None:
    history = make_series(10)
    clock = ManualClock(START_MS + 5 * MINUTE_MS + 30_000)
    emulator.set_candles("BTCUSDT", "1m", history.take(0, 6))
    venue = CcxtVenue("binance", websocket=True, clock=clock, retry=fast_retry(),
                      rate_limit_ms=0, api_base_url=emulator.base_url)
    assert venue.has_websocket

    def rows(*minutes: int) -> list[list[float]]:
        return [[float(history.open_time[m]), history.open[m], history.high[m],
                 history.low[m], history.close[m], history.volume[m]] for m in minutes]

    pushes: asyncio.Queue[object] = asyncio.Queue()

    async def watch_ohlcv(symbol: str, timeframe: str) -> list[list[float]]:
        item = await pushes.get()
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, list)
        return item

    venue._exchange.watch_ohlcv = watch_ohlcv  # the websocket itself is ccxt's business

    async def scenario() -> list[CandleTick]:
        stream = venue.stream_candles(["BTC/USDT"], M1)
        ticks: list[CandleTick] = []
        async with contextlib.aclosing(stream):
            ticks += await _take(stream, 2)  # REST start: 4 closed, 5 forming
            await pushes.put(rows(4, 5))  # the socket repeats what we know: nothing new
            await pushes.put(rows(5, 6))  # minute 6 began: 5 closed, 6 forming
            ticks += await _take(stream, 2)
            # The socket drops; two minutes pass before it is back.
            emulator.set_candles("BTCUSDT", "1m", history.take(0, 9))
            clock.set(START_MS + 8 * MINUTE_MS + 1_000)
            await pushes.put(ccxt.NetworkError("connection reset"))
            ticks += await _take(stream, 3)  # backfilled over REST: 6, 7 closed, 8 forming
            await pushes.put(rows(7, 8, 9))
            ticks += await _take(stream, 2)  # 8 closed, 9 forming
        await venue.close()
        return ticks

    ticks = asyncio.run(scenario())
    closed, forming = minutes(ticks, closed=True), minutes(ticks, closed=False)
    assert closed == [4, 5, 6, 7, 8]
    assert forming == [5, 6, 8, 9]

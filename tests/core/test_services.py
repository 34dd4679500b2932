import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.core.bus import EventBus
from terminal.core.clock import ManualClock
from terminal.core.errors import InvalidArgument, VenueUnavailable
from terminal.core.events import (
    CandleClosed,
    CandleUpdated,
    ConnectionChanged,
    ErrorRaised,
    HistoryProgress,
    InstrumentsLoaded,
    MarketDataReady,
)
from terminal.core.model import DAY_MS, MINUTE_MS, Candle, Instrument, Timeframe, VenueKind
from terminal.core.ports import CandleTick
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.services import MarketDataService
from terminal.core.storage import Store
from tests.factories import START_MS, make_series

SYMBOLS = ("BTC/USDT", "ETH/USDT")
NOW = START_MS + 3 * DAY_MS + 30 * MINUTE_MS  # 00:30 on the fourth day


class ScriptedVenue:
    """A venue whose history is a fixed random walk and whose live feed the test drives."""

    id = "fake"
    display_name = "Fake venue"
    kind = VenueKind.SIMULATED

    def __init__(self) -> None:
        self.path = {s: make_series(5 * 1440, start_ms=START_MS, seed=i)
                     for i, s in enumerate(SYMBOLS)}
        self.feed: asyncio.Queue[CandleTick | Exception] = asyncio.Queue()
        self.streams_opened = 0
        self.streams_running = 0
        self.closed = False
        self.now = NOW

    async def load_instruments(self) -> Sequence[Instrument]:
        return [Instrument(self.id, s, *s.split("/"), Decimal("0.01"), Decimal("0.001"))
                for s in SYMBOLS]

    async def fetch_candles(self, symbol: str, timeframe: Timeframe, start_ms: int,
                            end_ms: int) -> CandleSeries:
        assert timeframe is Timeframe.M1
        return self.path[symbol].between(start_ms, min(end_ms, self.now))

    async def stream_candles(self, symbols: Sequence[str],
                             timeframe: Timeframe) -> AsyncGenerator[CandleTick, None]:
        self.streams_opened += 1
        self.streams_running += 1
        try:
            while True:
                item = await self.feed.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.streams_running -= 1

    async def close(self) -> None:
        self.closed = True

    def bar(self, symbol: str, open_time: int) -> Candle:
        return self.path[symbol][(open_time - START_MS) // MINUTE_MS]


class Recorder:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[object] = []
        for kind in (CandleClosed, CandleUpdated, ConnectionChanged, ErrorRaised,
                     HistoryProgress, InstrumentsLoaded, MarketDataReady):
            bus.subscribe(kind, self.events.append)

    def of(self, kind: type, key: SeriesKey | None = None) -> list:
        return [e for e in self.events
                if isinstance(e, kind) and (key is None or e.key == key)]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def store(data_dir: Path) -> Store:
    opened = Store.open(data_dir)
    yield opened
    opened.close()


async def started(store: Store, pairs: tuple[str, ...] | None = None
                  ) -> tuple[MarketDataService, ScriptedVenue, Recorder]:
    venue = ScriptedVenue()
    bus = EventBus()
    recorder = Recorder(bus)
    service = MarketDataService(store, venue, bus, ManualClock(NOW), history_days=2,
                                pairs=pairs)
    await service.start()
    await settle()
    return service, venue, recorder


def test_start_backfills_the_store_and_reports_progress(store: Store) -> None:
    async def scenario() -> None:
        service, venue, recorder = await started(store)
        key = service.key("BTC/USDT", Timeframe.M1)
        stored = store.candles.load(key)
        assert stored.first_time == NOW - 2 * DAY_MS
        assert stored.last_time == NOW - MINUTE_MS
        assert stored == venue.path["BTC/USDT"].between(NOW - 2 * DAY_MS, NOW)
        progress = recorder.of(HistoryProgress)
        assert progress[-1].done == progress[-1].total
        kinds = [type(e) for e in recorder.events if not isinstance(e, HistoryProgress)]
        assert kinds[:3] == [InstrumentsLoaded, MarketDataReady, ConnectionChanged]
        assert [i.symbol for i in recorder.of(InstrumentsLoaded)[0].instruments] == list(SYMBOLS)
        assert recorder.of(ConnectionChanged)[-1].connected
        hourly = service.history("BTC/USDT", Timeframe.H1, bars=5)
        assert len(hourly) == 5
        assert hourly.last_time == NOW - 30 * MINUTE_MS - Timeframe.H1.ms
        await service.stop()
        assert venue.closed

    asyncio.run(scenario())


def test_a_restart_resumes_where_the_store_ends(store: Store) -> None:
    async def scenario() -> None:
        service, _, _ = await started(store)
        await service.stop()
        again, _, recorder = await started(store)
        assert recorder.of(HistoryProgress)[-1].message == "History up to date"
        assert store.candles.summary(again.key("ETH/USDT", Timeframe.M1)).count == 2 * 1440
        await again.stop()

    asyncio.run(scenario())


def test_live_ticks_update_store_and_watchers(store: Store) -> None:
    async def scenario() -> None:
        service, venue, recorder = await started(store)
        service.watch("BTC/USDT", Timeframe.H1)
        hour_key = service.key("BTC/USDT", Timeframe.H1)
        minute_key = service.key("BTC/USDT", Timeframe.M1)
        bar = venue.bar("BTC/USDT", NOW)
        partial = Candle(bar.open_time, bar.open, bar.open, bar.open, bar.open, 0.5)
        await venue.feed.put(CandleTick("BTC/USDT", Timeframe.M1, partial, closed=False))
        await settle()
        forming_hour = recorder.of(CandleUpdated, hour_key)[-1].candle
        closed_so_far = venue.path["BTC/USDT"].between(NOW - 30 * MINUTE_MS, NOW)
        assert forming_hour.open_time == NOW - 30 * MINUTE_MS
        assert forming_hour.open == closed_so_far.open[0]
        assert forming_hour.volume == pytest.approx(closed_so_far.volume.sum() + 0.5)
        assert service.forming("BTC/USDT", Timeframe.H1) == forming_hour

        await venue.feed.put(CandleTick("BTC/USDT", Timeframe.M1, bar, closed=True))
        await settle()
        assert recorder.of(CandleClosed, minute_key)[-1].candle == bar
        assert store.candles.load(minute_key).last_time == NOW

        # Three minutes arrive late after a disconnection: they are fetched, not lost.
        late = venue.bar("BTC/USDT", NOW + 4 * MINUTE_MS)
        venue.now = NOW + 5 * MINUTE_MS
        await venue.feed.put(CandleTick("BTC/USDT", Timeframe.M1, late, closed=True))
        await settle()
        stored = store.candles.load(minute_key, NOW)
        assert stored == venue.path["BTC/USDT"].between(NOW, NOW + 5 * MINUTE_MS)
        announced = [e.candle for e in recorder.of(CandleClosed, minute_key)]
        assert announced == list(stored), "each closed candle is announced once, in order"

        # A closed candle delivered twice (a replay after reconnecting) is not announced again.
        await venue.feed.put(CandleTick("BTC/USDT", Timeframe.M1, late, closed=True))
        await settle()
        assert len(recorder.of(CandleClosed, minute_key)) == 5
        await service.stop()

    asyncio.run(scenario())


def test_a_watched_candle_closes_at_its_bucket_end(store: Store) -> None:
    async def scenario() -> None:
        service, venue, recorder = await started(store)
        service.watch("ETH/USDT", Timeframe.M15)
        key = service.key("ETH/USDT", Timeframe.M15)
        for minute in range(30, 45):
            bar = venue.bar("ETH/USDT", START_MS + 3 * DAY_MS + minute * MINUTE_MS)
            await venue.feed.put(CandleTick("ETH/USDT", Timeframe.M1, bar, closed=True))
        await settle()
        closed = recorder.of(CandleClosed, key)
        assert len(closed) == 1
        expected = service.history("ETH/USDT", Timeframe.M15, bars=1)[0]
        assert closed[0].candle == replace(expected, volume=pytest.approx(expected.volume))
        service.unwatch("ETH/USDT", Timeframe.M15)
        await service.stop()

    asyncio.run(scenario())


def test_a_series_watched_twice_is_published_until_both_watchers_leave(store: Store) -> None:
    async def scenario() -> list[int]:
        service, venue, recorder = await started(store)
        key = service.key("ETH/USDT", Timeframe.M15)
        service.watch("ETH/USDT", Timeframe.M15)  # the chart
        service.watch("ETH/USDT", Timeframe.M15)  # automated trading
        counts = []
        for watchers_leaving, start in ((1, 30), (1, 45)):
            for minute in range(start, start + 15):
                bar = venue.bar("ETH/USDT", START_MS + 3 * DAY_MS + minute * MINUTE_MS)
                await venue.feed.put(CandleTick("ETH/USDT", Timeframe.M1, bar, closed=True))
            await settle()
            counts.append(len(recorder.of(CandleClosed, key)))
            for _ in range(watchers_leaving):
                service.unwatch("ETH/USDT", Timeframe.M15)
        for minute in range(60, 75):
            bar = venue.bar("ETH/USDT", START_MS + 3 * DAY_MS + minute * MINUTE_MS)
            await venue.feed.put(CandleTick("ETH/USDT", Timeframe.M1, bar, closed=True))
        await settle()
        counts.append(len(recorder.of(CandleClosed, key)))
        await service.stop()
        return counts

    assert asyncio.run(scenario()) == [1, 2, 2]


def test_a_broken_stream_reconnects(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("terminal.core.services._RECONNECT_DELAYS_S", (0.0,))

    async def scenario() -> None:
        service, venue, recorder = await started(store)
        await venue.feed.put(ConnectionResetError("peer went away"))
        await settle()
        states = [e.connected for e in recorder.of(ConnectionChanged)]
        assert states == [True, False, True]
        assert venue.streams_opened == 2
        await service.stop()

    asyncio.run(scenario())


def test_unknown_symbols_are_refused(store: Store) -> None:
    async def scenario() -> None:
        service, _, _ = await started(store)
        with pytest.raises(InvalidArgument, match="available: BTC/USDT, ETH/USDT"):
            service.history("DOGE/USDT", Timeframe.M1)
        await service.stop()

    asyncio.run(scenario())


def test_stopping_during_the_backfill_waits_for_the_store_write(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    writing = threading.Event()
    release = threading.Event()
    finished: list[bool] = []
    real_upsert = store.candles.upsert

    def slow_upsert(*args: object) -> object:
        writing.set()
        release.wait(5)
        result = real_upsert(*args)
        finished.append(True)
        return result

    monkeypatch.setattr(store.candles, "upsert", slow_upsert)

    async def scenario() -> None:
        venue = ScriptedVenue()
        service = MarketDataService(store, venue, EventBus(), ManualClock(NOW), history_days=2)
        starting = asyncio.create_task(service.start())
        while not writing.is_set():
            await asyncio.sleep(0.01)
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        asyncio.get_running_loop().call_later(0.05, release.set)
        await service.stop()
        assert finished == [True], "stop() returned while a write was still running"

    asyncio.run(scenario())


def test_a_service_limited_to_pairs_follows_only_those_and_names_the_unlisted(
        store: Store) -> None:
    async def scenario() -> None:
        service, _venue, recorder = await started(store, pairs=("ETH/USDT", "DOGE/USDT"))
        assert service.symbols == ["ETH/USDT"]
        assert store.candles.summary(service.key("BTC/USDT", Timeframe.M1)) is None
        assert len(store.candles.load(service.key("ETH/USDT", Timeframe.M1))) == 2 * 1440
        assert [e.message for e in recorder.of(ErrorRaised)] == [
            "DOGE/USDT is not listed on Fake venue (spot); left out"]
        with pytest.raises(InvalidArgument, match="BTC/USDT is not traded on Fake venue"):
            service.history("BTC/USDT", Timeframe.M1)
        await service.stop()

    asyncio.run(scenario())


def test_followed_pairs_change_while_running_new_ones_are_downloaded_then_streamed(
        store: Store) -> None:
    async def scenario() -> None:
        service, venue, recorder = await started(store, pairs=("ETH/USDT",))
        await service.follow_pairs(("BTC/USDT", "ETH/USDT"))
        await settle()
        assert service.symbols == ["BTC/USDT", "ETH/USDT"]
        btc = service.key("BTC/USDT", Timeframe.M1)
        assert store.candles.load(btc) == venue.path["BTC/USDT"].between(NOW - 2 * DAY_MS, NOW)
        loaded = recorder.of(InstrumentsLoaded)
        assert [[i.symbol for i in e.instruments] for e in loaded] == [
            ["ETH/USDT"], ["BTC/USDT", "ETH/USDT"]]
        assert len(recorder.of(MarketDataReady)) == 2
        # The stream was reopened with the new pair, and its minutes reach the store.
        assert venue.streams_opened == 2
        venue.feed.put_nowait(CandleTick("BTC/USDT", Timeframe.M1, venue.bar("BTC/USDT", NOW),
                                          closed=True))
        await settle()
        assert store.candles.load(btc).last_time == NOW
        await service.follow_pairs(("BTC/USDT",))
        assert service.symbols == ["BTC/USDT"]
        await service.follow_pairs(("BTC/USDT",))  # the same pairs: nothing restarts
        await settle()
        assert venue.streams_opened == 3
        with pytest.raises(InvalidArgument, match="none of the pairs"):
            await service.follow_pairs(("XRP/USDT",))
        assert service.symbols == ["BTC/USDT"]
        await service.stop()

    asyncio.run(scenario())


def test_a_service_of_every_instrument_has_no_pairs_to_change(store: Store) -> None:
    async def scenario() -> None:
        service, _venue, _recorder = await started(store)
        with pytest.raises(InvalidArgument, match="all followed already"):
            await service.follow_pairs(("BTC/USDT",))
        await service.stop()

    asyncio.run(scenario())


def test_candles_stored_at_the_timeframe_lead_up_to_those_built_from_the_minutes(
        store: Store) -> None:
    """An imported hourly file of the venue, continued by the hours of the live minutes."""
    hours = make_series(48, Timeframe.H1, start_ms=NOW - 5 * DAY_MS, seed=3, price=90.0)
    store.candles.upsert(SeriesKey("fake", "BTC/USDT", Timeframe.H1), hours)

    async def scenario() -> None:
        service, venue, _recorder = await started(store)
        everything = service.history("BTC/USDT", Timeframe.H1)
        assert everything.first_time == hours.first_time
        imported = everything.between(None, hours.last_time + 1)
        assert imported == hours
        later = everything.between(hours.last_time + Timeframe.H1.ms, None)
        minutes = venue.path["BTC/USDT"].between(later.first_time, NOW - 30 * MINUTE_MS)
        # The hour in which the stored minutes begin (built from the minutes it has).
        assert later.first_time == Timeframe.H1.floor(NOW - 2 * DAY_MS)
        assert later.last_time == NOW - 30 * MINUTE_MS - Timeframe.H1.ms  # the last closed hour
        assert later.close[-1] == minutes.close[-1]
        assert len(everything) == len(hours) + len(later)
        newest = service.history("BTC/USDT", Timeframe.H1, bars=3)
        assert newest == everything.tail(3)
        # Minutes are read as they are, whatever is stored at other timeframes.
        assert service.history("BTC/USDT", Timeframe.M1, bars=2).last_time == NOW - MINUTE_MS
        await service.stop()

    asyncio.run(scenario())


def test_pair_changes_one_after_the_other_leave_one_stream_and_a_failed_download_none(
        store: Store) -> None:
    async def scenario() -> None:
        service, venue, recorder = await started(store, pairs=("ETH/USDT",))
        working = venue.fetch_candles

        async def unreachable(*_args: object) -> CandleSeries:
            raise VenueUnavailable("Fake venue cannot be reached")

        venue.fetch_candles = unreachable  # type: ignore[method-assign]
        with pytest.raises(VenueUnavailable):
            await service.follow_pairs(("ETH/USDT", "BTC/USDT"))
        await settle()
        # Nothing changed: ETH streamed on through the failed download, alone.
        assert service.symbols == ["ETH/USDT"]
        assert (venue.streams_opened, venue.streams_running) == (1, 1)
        assert len(recorder.of(MarketDataReady)) == 1
        venue.fetch_candles = working  # type: ignore[method-assign]
        await asyncio.gather(service.follow_pairs(("ETH/USDT", "BTC/USDT")),
                             service.follow_pairs(("BTC/USDT",)))
        await settle()
        assert service.symbols == ["BTC/USDT"]
        assert venue.streams_running == 1
        await service.stop()
        assert venue.streams_running == 0

    asyncio.run(scenario())

"""The simulated market: its statistics, determinism, clock and live stream.

Statistical thresholds are set well inside what the model produces over 60 days of the default
seed (and over other seeds checked while tuning), so they fail only if the model changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from decimal import Decimal

import numpy as np
import pytest

from terminal.core.clock import ManualClock, SystemClock
from terminal.core.errors import InvalidArgument
from terminal.core.marketdata import resample
from terminal.core.model import DAY_MS, HOUR_MS, MINUTE_MS, Timeframe, VenueKind
from terminal.core.ports import CandleTick, MarketDataVenue
from terminal.core.series import CandleSeries, concat
from terminal.exchange.simulated import (
    GENESIS_MS,
    STEP_MS,
    STEPS_PER_MINUTE,
    MarketGenerator,
    SimulatedMarket,
)

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT")
REFERENCE = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0, "SOL/USDT": 150.0,
             "BNB/USDT": 550.0, "XRP/USDT": 0.6}
TARGET_VOL = {"BTC/USDT": 0.60, "ETH/USDT": 0.75, "SOL/USDT": 1.00, "BNB/USDT": 0.60,
              "XRP/USDT": 0.85}
SAMPLE_START = GENESIS_MS + 1519 * DAY_MS  # Monday 2024-03-04
SAMPLE_DAYS = 60
# Wednesday 2024-05-15 10:17:31.5 UTC: deliberately not on a minute or a sub-step.
NOW = SAMPLE_START + 72 * DAY_MS + 10 * HOUR_MS + 17 * MINUTE_MS + 31_500


@pytest.fixture(scope="module")
def sample() -> dict[str, CandleSeries]:
    return MarketGenerator().history(SAMPLE_START, SAMPLE_START + SAMPLE_DAYS * DAY_MS)


def log_returns(series: CandleSeries) -> np.ndarray:
    return np.diff(np.log(series.close))


def autocorrelation(x: np.ndarray, lags: range) -> np.ndarray:
    centred = x - x.mean()
    variance = float(np.mean(centred * centred))
    return np.array([np.mean(centred[:-k] * centred[k:]) / variance for k in lags])


def excess_kurtosis(x: np.ndarray) -> float:
    centred = x - x.mean()
    return float(np.mean(centred**4) / np.mean(centred**2) ** 2 - 3.0)


# --- the statistics ---------------------------------------------------------------------------


def test_sample_covers_every_minute(sample: dict[str, CandleSeries]) -> None:
    for series in sample.values():
        assert len(series) == SAMPLE_DAYS * 1440
        assert np.all(np.diff(series.open_time) == MINUTE_MS)


def test_candles_are_valid_and_on_the_tick(sample: dict[str, CandleSeries]) -> None:
    instruments = {i.symbol: i for i in MarketGenerator().instruments()}
    for symbol, s in sample.items():
        assert np.all(s.low > 0)
        assert np.all(s.low <= np.minimum(s.open, s.close))
        assert np.all(s.high >= np.maximum(s.open, s.close))
        assert np.all(s.volume >= 0)
        per_tick = float(1 / instruments[symbol].tick_size)
        per_lot = float(1 / instruments[symbol].lot_size)
        for prices in (s.open, s.high, s.low, s.close):
            assert np.allclose(prices * per_tick, np.round(prices * per_tick), atol=1e-6, rtol=0)
        assert np.allclose(s.volume * per_lot, np.round(s.volume * per_lot), atol=1e-6, rtol=0)
        # Exact decimal values, as a ticket would show them.
        assert instruments[symbol].round_price(Decimal(str(s.close[-1]))) == Decimal(
            str(s.close[-1]))


def test_minute_ranges_are_realistic(sample: dict[str, CandleSeries]) -> None:
    for symbol, s in sample.items():
        flat = float(np.mean(s.high == s.low))
        # XRP's tick is a larger share of its price, so a quiet minute can stay on one tick.
        assert flat < (0.05 if symbol == "XRP/USDT" else 0.005), (symbol, flat)


def test_levels_and_volatility_are_realistic(sample: dict[str, CandleSeries]) -> None:
    for symbol, s in sample.items():
        assert 0.25 < s.close[-1] / REFERENCE[symbol] < 4.0
        # Any two months sit in some volatility regime, calm or turbulent.
        annual = float(np.std(log_returns(s)) * math.sqrt(365 * 1440))
        assert 0.4 < annual / TARGET_VOL[symbol] < 2.0, (symbol, annual)


def test_long_run_volatility_matches_the_targets() -> None:
    generator = MarketGenerator()
    days = [GENESIS_MS + k * 45 * DAY_MS for k in range(50)]  # six years, every regime
    for symbol in SYMBOLS:
        returns = np.concatenate([
            log_returns(generator.candles(symbol, Timeframe.M1, day, day + DAY_MS))
            for day in days])
        annual = float(np.std(returns) * math.sqrt(365 * 1440))
        assert 0.8 < annual / TARGET_VOL[symbol] < 1.25, (symbol, annual)


def test_returns_have_heavy_tails(sample: dict[str, CandleSeries]) -> None:
    for symbol, s in sample.items():
        assert excess_kurtosis(log_returns(s)) > 5.0, symbol


def test_volatility_clusters_while_returns_stay_unpredictable(
        sample: dict[str, CandleSeries]) -> None:
    lags = range(1, 61)
    for symbol, s in sample.items():
        r = log_returns(s)
        # 2/sqrt(n) is about 0.007 here: every lag is far above noise.
        assert autocorrelation(np.abs(r), lags).min() > 0.05, symbol
        assert np.abs(autocorrelation(r, lags)).max() < 0.04, symbol


def test_volume_follows_the_clock(sample: dict[str, CandleSeries]) -> None:
    for symbol, s in sample.items():
        hour = (s.open_time // HOUR_MS) % 24
        by_hour = np.array([s.volume[hour == h].mean() for h in range(24)])
        assert by_hour.max() / by_hour.min() > 1.5, symbol
        assert 12 <= int(by_hour.argmax()) <= 16, symbol  # US open, Europe still trading
        assert int(by_hour.argmin()) in {2, 3, 4, 5, 6, 7, 20, 21, 22, 23}, symbol
        weekday = ((s.open_time - GENESIS_MS) // DAY_MS) % 7
        assert s.volume[weekday >= 5].mean() < 0.85 * s.volume[weekday < 5].mean()


def test_volume_follows_the_size_of_moves(sample: dict[str, CandleSeries]) -> None:
    for symbol, s in sample.items():
        correlation = np.corrcoef(s.volume[1:], np.abs(log_returns(s)))[0, 1]
        assert correlation > 0.3, symbol


def test_pairs_move_together(sample: dict[str, CandleSeries]) -> None:
    matrix = np.corrcoef(np.array([log_returns(sample[s]) for s in SYMBOLS]))
    assert 0.7 < matrix[0, 1] < 0.85
    others = [matrix[i, j] for i in range(5) for j in range(i + 1, 5) if (i, j) != (0, 1)]
    assert all(0.4 < c < 0.8 for c in others), others


# --- determinism and random access -------------------------------------------------------


def test_same_seed_same_market_other_seed_other_market() -> None:
    start, end = NOW - 3 * DAY_MS, NOW
    first = MarketGenerator(7).candles("ETH/USDT", Timeframe.M1, start, end)
    again = MarketGenerator(7).candles("ETH/USDT", Timeframe.M1, start, end)
    other = MarketGenerator(8).candles("ETH/USDT", Timeframe.M1, start, end)
    assert first == again
    assert not np.array_equal(first.close, other.close)


def test_a_range_equals_its_pieces_generated_in_any_order() -> None:
    start = SAMPLE_START + 5 * DAY_MS + 7 * MINUTE_MS
    end = start + 3 * DAY_MS + 11 * MINUTE_MS
    whole = MarketGenerator(3).candles("SOL/USDT", Timeframe.M1, start, end)
    # A one-day cache forces every piece to be generated again, alone or in other batches.
    pieces = MarketGenerator(3, cache_days=1)
    cuts = [start, start + 1000 * MINUTE_MS, start + 2 * DAY_MS, start + 2 * DAY_MS + MINUTE_MS,
            end]
    parts = [pieces.candles("SOL/USDT", Timeframe.M1, a, b)
             for a, b in reversed(list(itertools.pairwise(cuts)))]
    assert concat(reversed(parts)) == whole


def test_days_join_without_a_jump(sample: dict[str, CandleSeries]) -> None:
    for s in sample.values():
        assert np.array_equal(s.open[1:], s.close[:-1])
        midnight = np.flatnonzero(s.open_time % DAY_MS == 0)[1:]
        assert len(midnight) == SAMPLE_DAYS - 1
        assert np.array_equal(s.open[midnight], s.close[midnight - 1])


def test_nothing_exists_before_genesis() -> None:
    generator = MarketGenerator()
    assert len(generator.candles("BTC/USDT", Timeframe.M1, 0, GENESIS_MS)) == 0
    first = generator.candles("BTC/USDT", Timeframe.W1, GENESIS_MS - DAY_MS, GENESIS_MS + DAY_MS)
    assert first.first_time == GENESIS_MS
    assert first.open[0] == REFERENCE["BTC/USDT"]


def test_forming_minute_converges_to_the_closed_one() -> None:
    generator = MarketGenerator()
    minute = Timeframe.M1.floor(NOW)
    closed = generator.candles("XRP/USDT", Timeframe.M1, minute, minute + MINUTE_MS)[0]
    steps = [generator.candle_at("XRP/USDT", Timeframe.M1, minute, minute + k * STEP_MS)
             for k in range(1, STEPS_PER_MINUTE + 1)]
    assert steps[-1] == closed
    assert all(c.open == closed.open for c in steps)
    assert all(a.high <= b.high and a.low >= b.low and a.volume <= b.volume
               for a, b in itertools.pairwise(steps))


# --- the venue ---------------------------------------------------------------------------


def make_market(clock: ManualClock, speed: float = 1.0) -> SimulatedMarket:
    """A market whose stream moves the fake wall clock forward instead of waiting."""

    async def sleep(seconds: float) -> None:
        clock.advance(math.ceil(seconds * 1000))
        await asyncio.sleep(0)

    return SimulatedMarket(clock=clock, speed=speed, start_ms=NOW, sleep=sleep)


def test_venue_identity_says_simulated() -> None:
    market = SimulatedMarket(clock=ManualClock(NOW))
    venue: MarketDataVenue = market
    assert venue.id == "simulated"
    assert venue.kind is VenueKind.SIMULATED
    assert "Simulated" in venue.display_name
    assert "60× speed" in SimulatedMarket(clock=ManualClock(NOW), speed=60).display_name
    instruments = asyncio.run(market.load_instruments())
    assert [i.symbol for i in instruments] == list(SYMBOLS)
    assert {i.venue for i in instruments} == {"simulated"}
    btc = instruments[0]
    assert (btc.tick_size, btc.lot_size, btc.min_notional) == (
        Decimal("0.01"), Decimal("0.00001"), Decimal(5))
    assert instruments[-1].tick_size == Decimal("0.0001")


def test_clock_runs_at_speed_from_the_start_time() -> None:
    wall = ManualClock(1_000_000)
    market = SimulatedMarket(clock=wall, speed=60, start_ms=NOW)
    assert market.now_ms() == NOW
    wall.advance(1500)
    assert market.now_ms() == NOW + 90_000
    default_start = SimulatedMarket(clock=ManualClock(NOW))
    assert default_start.now_ms() == NOW


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_speed_must_be_positive(bad: float) -> None:
    with pytest.raises(InvalidArgument, match="speed"):
        SimulatedMarket(clock=ManualClock(NOW), speed=bad)


def test_start_before_genesis_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="2020-01-06"):
        SimulatedMarket(clock=ManualClock(NOW), start_ms=GENESIS_MS - 1)


def test_fetch_returns_closed_candles_only() -> None:
    wall = ManualClock(0)
    market = make_market(wall, speed=60)

    async def scenario() -> None:
        start = NOW - 2 * HOUR_MS
        candles = await market.fetch_candles("BTC/USDT", Timeframe.M1, start, NOW + DAY_MS)
        assert candles.last_time == Timeframe.M1.floor(NOW) - MINUTE_MS
        assert candles == market.generator.candles("BTC/USDT", Timeframe.M1, start,
                                                   Timeframe.M1.floor(NOW))
        hourly = await market.fetch_candles("BTC/USDT", Timeframe.H1, start, NOW + DAY_MS)
        assert hourly.last_time == Timeframe.H1.floor(NOW) - HOUR_MS
        wall.advance(1000)  # a simulated minute later
        later = await market.fetch_candles("BTC/USDT", Timeframe.M1, start, NOW + DAY_MS)
        assert later.last_time == candles.last_time + MINUTE_MS
        assert later.take(0, len(candles)) == candles
        assert len(await market.fetch_candles("BTC/USDT", Timeframe.M1, NOW, NOW - 1)) == 0
        await market.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(("timeframe", "days"), [
    (Timeframe.M5, 1), (Timeframe.M15, 2), (Timeframe.H1, 3), (Timeframe.H4, 9),
    (Timeframe.D1, 40), (Timeframe.W1, 40),
])
def test_coarser_timeframes_are_the_1m_path_resampled(timeframe: Timeframe, days: int) -> None:
    market = SimulatedMarket(clock=ManualClock(NOW))
    start = NOW - days * DAY_MS

    async def scenario() -> tuple[CandleSeries, CandleSeries]:
        coarse = await market.fetch_candles("ETH/USDT", timeframe, start, NOW)
        first = timeframe.floor(start) + (0 if timeframe.is_aligned(start) else timeframe.ms)
        minutes = await market.fetch_candles("ETH/USDT", Timeframe.M1, first, NOW)
        return coarse, resample(minutes, timeframe, now_ms=NOW)

    coarse, expected = asyncio.run(scenario())
    assert len(coarse) >= 4
    assert coarse == expected


def test_unknown_symbol_lists_the_known_ones() -> None:
    market = SimulatedMarket(clock=ManualClock(NOW))
    with pytest.raises(InvalidArgument, match="BTC/USDT, ETH/USDT, SOL/USDT"):
        asyncio.run(market.fetch_candles("DOGE/USDT", Timeframe.M1, NOW - HOUR_MS, NOW))
    with pytest.raises(InvalidArgument, match="not traded on the simulated market"):
        market.stream_candles(["BTC/USDT", "DOGE/USDT"], Timeframe.M1)


async def collect(stream: AsyncGenerator[CandleTick, None], closed_wanted: int) -> list[CandleTick]:
    ticks: list[CandleTick] = []
    async with contextlib.aclosing(stream) as ticking:
        async for tick in ticking:
            ticks.append(tick)
            if sum(t.closed for t in ticks) >= closed_wanted:
                break
    return ticks


def check_stream(ticks: Sequence[CandleTick], market: SimulatedMarket, symbols: Sequence[str],
                 timeframe: Timeframe, *, coalesced: bool = False) -> None:
    """Every candle closes once, in order, equal to history and (unless the stream had to
    catch up) to its last forming update."""
    for symbol in symbols:
        mine = [t for t in ticks if t.symbol == symbol]
        assert all(t.timeframe is timeframe for t in mine)
        closed = [t.candle for t in mine if t.closed]
        times = [c.open_time for c in closed]
        assert times == sorted(set(times))
        assert np.all(np.diff(times) == timeframe.ms)
        history = market.generator.candles(symbol, timeframe, times[0], times[-1] + 1)
        assert list(history) == closed
        for index, tick in enumerate(mine):
            if tick.closed and not coalesced:
                assert not mine[index - 1].closed
                assert mine[index - 1].candle == tick.candle


def test_stream_reveals_each_minute_in_sub_steps_and_closes_it_once() -> None:
    wall = ManualClock(0)
    market = make_market(wall, speed=60)
    symbols = ["BTC/USDT", "XRP/USDT"]

    async def scenario() -> list[CandleTick]:
        ticks = await collect(market.stream_candles(symbols, Timeframe.M1), 2 * 3)
        await market.close()
        return ticks

    ticks = asyncio.run(scenario())
    check_stream(ticks, market, symbols, Timeframe.M1)
    first_closed = Timeframe.M1.floor(NOW)  # the minute that was forming at the start
    btc = [t for t in ticks if t.symbol == "BTC/USDT"]
    assert [t.candle.open_time for t in btc if t.closed] == [
        first_closed, first_closed + MINUTE_MS, first_closed + 2 * MINUTE_MS]
    # After the first (partial) minute, each minute gets one update per sub-step.
    second = [t for t in btc if t.candle.open_time == first_closed + MINUTE_MS]
    assert len(second) == STEPS_PER_MINUTE + 1
    forming = [t.candle for t in second if not t.closed]
    assert all(a.high <= b.high and a.low >= b.low and a.volume <= b.volume
               for a, b in itertools.pairwise(forming))
    # Speed 60: 148.5 simulated seconds passed in 2.475 s of the (fake) wall clock.
    assert abs(wall.now_ms() - (first_closed + 3 * MINUTE_MS - NOW) / 60) <= 2
    assert 0 <= market.now_ms() - (first_closed + 3 * MINUTE_MS) <= 120


def test_stream_of_a_coarser_timeframe_aggregates_the_minutes() -> None:
    wall = ManualClock(0)
    market = make_market(wall, speed=300)

    async def scenario() -> list[CandleTick]:
        ticks = await collect(market.stream_candles(["ETH/USDT"], Timeframe.M5), 2)
        await market.close()
        return ticks

    ticks = asyncio.run(scenario())
    check_stream(ticks, market, ["ETH/USDT"], Timeframe.M5)
    assert all(t.candle.open_time % Timeframe.M5.ms == 0 for t in ticks)


def test_stream_catches_up_after_a_stall_with_every_closed_candle() -> None:
    wall = ManualClock(0)

    async def stall(seconds: float) -> None:
        wall.advance(10 * 60_000)  # ten simulated minutes between wake-ups
        await asyncio.sleep(0)

    market = SimulatedMarket(clock=wall, speed=1, start_ms=NOW, sleep=stall)

    async def scenario() -> list[CandleTick]:
        ticks = await collect(market.stream_candles(list(SYMBOLS), Timeframe.M1), 5 * 25)
        await market.close()
        return ticks

    ticks = asyncio.run(scenario())
    check_stream(ticks, market, SYMBOLS, Timeframe.M1, coalesced=True)
    # Forming updates are coalesced: one per pair and wake-up, besides the closed candles.
    assert sum(not t.closed for t in ticks) <= 5 * 4
    closed_times = [t.candle.open_time for t in ticks if t.closed]
    assert closed_times == sorted(closed_times)  # time first, then pair


def test_speed_runs_the_market_fast_in_real_time() -> None:
    market = SimulatedMarket(clock=SystemClock(), speed=6000)  # a minute every 10 ms

    async def scenario() -> list[CandleTick]:
        started = time.monotonic()
        ticks = await asyncio.wait_for(
            collect(market.stream_candles(["BNB/USDT"], Timeframe.M1), 5), timeout=10)
        assert time.monotonic() - started < 5
        await market.close()
        return ticks

    ticks = asyncio.run(scenario())
    closed = [t.candle.open_time for t in ticks if t.closed]
    assert np.all(np.diff(closed) == MINUTE_MS)


def test_close_ends_a_waiting_stream_promptly_without_leftover_tasks() -> None:
    market = SimulatedMarket(clock=SystemClock(), speed=1)

    async def scenario() -> None:
        received: list[CandleTick] = []

        async def consume() -> None:
            async for tick in market.stream_candles(list(SYMBOLS), Timeframe.M1):
                received.append(tick)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await market.close()
        await asyncio.wait_for(consumer, timeout=2)
        assert time.monotonic() - started < 0.5
        assert asyncio.all_tasks() == {asyncio.current_task()}
        stream = market.stream_candles(["BTC/USDT"], Timeframe.M1)
        assert [tick async for tick in stream] == []  # a closed market streams nothing

    asyncio.run(scenario())


def test_close_waits_for_candles_still_generated_for_a_cancelled_fetch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    market = make_market(ManualClock(0))
    generating, release = threading.Event(), threading.Event()
    finished: list[bool] = []
    real_candles = market.generator.candles

    def slow_candles(*args: object) -> CandleSeries:
        generating.set()
        release.wait(5)
        result = real_candles(*args)  # type: ignore[arg-type]
        finished.append(True)
        return result

    monkeypatch.setattr(market.generator, "candles", slow_candles)

    async def scenario() -> None:
        fetch = asyncio.create_task(
            market.fetch_candles("BTC/USDT", Timeframe.M1, NOW - HOUR_MS, NOW))
        while not generating.is_set():
            await asyncio.sleep(0.01)
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetch
        asyncio.get_running_loop().call_later(0.05, release.set)
        await market.close()
        # The loop may close now: no worker thread is left to call back into it.
        assert finished == [True], "close() returned while a worker was still generating"

    asyncio.run(scenario())

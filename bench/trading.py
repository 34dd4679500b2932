"""Paper trading: an order's round trip, catching up after a pause, a strategy replay, the CLI.

Every figure goes through the real parts: the order manager (risk check, SQLite writes,
events), the paper venue (fill model, its own tables) and a store on disk.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

from bench.common import ROOT, Row, median_seconds
from terminal.core.bus import EventBus
from terminal.core.clock import ManualClock
from terminal.core.intents import OrderIntent
from terminal.core.model import Instrument, OrderSide, OrderType, Timeframe, VenueKind
from terminal.core.orders import OrderManager
from terminal.core.ports import OrderRequest
from terminal.core.risk import RiskLimits, RiskManager
from terminal.core.runner import StrategyRunner
from terminal.core.series import CandleSeries
from terminal.core.storage import Store
from terminal.core.storage.orders import TradingMode
from terminal.core.strategies import SmaCrossover
from terminal.exchange.paper import PaperVenue

SYMBOL = "BTC/USDT"
START = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000
ORDERS = 200
CATCH_UP_MINUTES = 7 * 1440
REPLAY_BARS = 2_000


class _Market:
    """A market-data venue over one prepared series (no generation cost in the figures)."""

    def __init__(self, candles: CandleSeries) -> None:
        self.candles = candles

    id = "bench"
    display_name = "Bench market"
    kind = VenueKind.SIMULATED

    async def load_instruments(self) -> tuple[Instrument, ...]:
        return (Instrument("bench", SYMBOL, "BTC", "USDT", Decimal("0.01"),
                           Decimal("0.00001")),)

    async def fetch_candles(self, symbol: str, timeframe: Timeframe, start_ms: int,
                            end_ms: int) -> CandleSeries:
        times = self.candles.open_time
        first = int(np.searchsorted(times, start_ms))
        last = int(np.searchsorted(times, end_ms - timeframe.ms, "right"))
        return self.candles.take(first, max(first, last))

    async def close(self) -> None:
        pass


def _series(count: int, timeframe: Timeframe) -> CandleSeries:
    rng = np.random.default_rng(3)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.002, count)))
    open_ = np.r_[30_000.0, close[:-1]]
    wick = np.abs(rng.normal(0, 0.001, count)) * close
    times = START + np.arange(count, dtype=np.int64) * timeframe.ms
    return CandleSeries(timeframe, times, open_, np.maximum(open_, close) + wick,
                        np.minimum(open_, close) - wick, close, rng.gamma(2.0, 3.0, count))


def _setup(folder: Path, candles: CandleSeries, clock: ManualClock
           ) -> tuple[Store, PaperVenue, OrderManager]:
    store = Store.open(folder)
    venue = PaperVenue(store, _Market(candles), clock=clock,  # type: ignore[arg-type]
                       starting_cash=Decimal(10_000_000))
    manager = OrderManager(venue, store, EventBus(), RiskManager(RiskLimits()),
                           mode=TradingMode.PAPER, clock=clock)
    return store, venue, manager


def bench_round_trip() -> float:
    """Seconds per market order placed and filled at a live price, events and writes
    included."""
    candles = _series(10, Timeframe.M1)
    clock = ManualClock(START + 30_000)

    def prepare(folder: Path) -> tuple[Store, PaperVenue, OrderManager]:
        store, venue, manager = _setup(folder, candles, clock)
        asyncio.run(venue.open())
        venue.observe(SYMBOL, candles[0], closed=False)
        asyncio.run(manager.start())
        return store, venue, manager

    def trade(_folder: Path, prepared: object) -> None:
        store, _venue, manager = prepared  # type: ignore[misc]

        async def orders() -> None:
            for n in range(ORDERS):
                side = OrderSide.BUY if n % 2 == 0 else OrderSide.SELL
                intent = OrderIntent(SYMBOL, side, clock.now_ms(), amount=0.01)
                submission = await manager.submit(intent, prices={SYMBOL: 30_000.0})
                assert submission.order is not None

        asyncio.run(orders())
        store.close()

    return median_seconds(3, prepare, trade) / ORDERS


def bench_catch_up() -> float:
    """Seconds to work a week of closed minutes with ten resting orders that never fill."""
    candles = _series(CATCH_UP_MINUTES + 1, Timeframe.M1)
    clock = ManualClock(START + 60_000)

    def prepare(folder: Path) -> tuple[Store, PaperVenue]:
        clock.set(START + 60_000)
        store, venue, _manager = _setup(folder, candles, clock)
        asyncio.run(venue.open())
        venue.observe(SYMBOL, candles[0], closed=True)
        for n in range(10):
            asyncio.run(venue.submit_order(OrderRequest(
                f"rest-{n}", SYMBOL, OrderSide.BUY, OrderType.LIMIT, Decimal("0.01"),
                price=Decimal(1 + n))))
        clock.set(START + (CATCH_UP_MINUTES + 1) * 60_000)
        return store, venue

    def catch_up(_folder: Path, prepared: object) -> None:
        store, venue = prepared  # type: ignore[misc]
        asyncio.run(venue.catch_up([SYMBOL]))
        assert venue.last_price(SYMBOL) is not None
        store.close()

    return median_seconds(3, prepare, catch_up)


def bench_replay() -> float:
    """Seconds for an SMA crossover driven bar by bar through the manager and paper venue."""
    candles = _series(REPLAY_BARS, Timeframe.H1)

    def replay(folder: Path, _: object) -> None:
        clock = ManualClock(START)
        store, venue, manager = _setup(folder, candles, clock)
        runner = StrategyRunner(manager, SmaCrossover({"fast": 10, "slow": 30}), SYMBOL)

        async def run() -> None:
            await manager.start()
            for bar in range(len(candles)):
                clock.set(int(candles.open_time[bar]) + Timeframe.H1.ms)
                venue.observe(SYMBOL, candles[bar], closed=True)
                await manager.sync()
                await runner.on_candle_closed(candles.take(0, bar + 1))

        asyncio.run(run())
        assert store.orders.fills()
        store.close()

    return median_seconds(3, lambda folder: None, replay)


def bench_cli() -> float:
    """Seconds for ``python -m terminal paper buy`` as a new process."""
    times = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "XDG_CONFIG_HOME": folder, "XDG_DATA_HOME": folder}
            command = [sys.executable, "-m", "terminal", "--data-dir", folder, "paper", "buy",
                       SYMBOL, "0.001", "--json"]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=env)
            times.append(time.perf_counter() - start)
    return sorted(times)[1]


def rows(_data: Path) -> list[Row]:
    round_trip = bench_round_trip()
    catch_up = bench_catch_up()
    replay = bench_replay()
    cli = bench_cli()
    return [
        ("paper market order through the order manager: risk, venue, store, events",
         f"{round_trip * 1000:.1f} ms", "-"),
        (f"paper catch-up on a week of 1m candles ({CATCH_UP_MINUTES:,}), 10 resting orders",
         f"{catch_up:.3f} s", "-"),
        (f"SMA crossover replayed bar by bar on paper ({REPLAY_BARS:,} 1h bars)",
         f"{replay:.2f} s", "-"),
        ("`paper buy` on the simulated market, new process included", f"{cli:.2f} s", "-"),
    ]

"""Paper trading and the backtester give identical fills on the same candles.

The paper venue is driven the way the live application drives it, candle by candle: each
closed candle is shown to the venue (which works the resting orders against it), the order
manager syncs, and the strategy runner decides at the close and submits through the risk
manager. The backtest engine runs the same strategy, risk limits and fill model over the same
candles. Both must produce the same fills: time, price, amount and fee, to the last bit.

Sizing: the risk manager sizes entries to a fixed quote amount (``max_position_quote``), so
the amount depends on the price alone, not on how each side rounds its running cash.
"""

from __future__ import annotations

import asyncio

import pytest

from terminal.core.backtest import run_backtest
from terminal.core.clock import ManualClock
from terminal.core.fills import FeeSchedule, FillModel, SimFill, Slippage
from terminal.core.model import Fill
from terminal.core.risk import RiskLimits, RiskManager
from terminal.core.runner import StrategyRunner
from terminal.core.series import CandleSeries
from terminal.core.storage import Store
from terminal.core.strategies import SmaCrossover
from terminal.core.strategy import Strategy
from tests.core.test_backtest import hourly, protected_limit_entries
from tests.exchange.paper_helpers import SYMBOL, paper_setup

LIMITS = RiskLimits(max_position_quote=1_000)


async def paper_run(store: Store, candles: CandleSeries, strategy: Strategy,
                    model: FillModel, limits: RiskLimits = LIMITS) -> list[Fill]:
    step = candles.timeframe.ms
    clock = ManualClock(int(candles.open_time[0]))
    venue, manager, _bus = paper_setup(store, fill_model=model, limits=limits,
                                       fee_rate=model.fees.taker, clock=clock)
    await manager.start()
    runner = StrategyRunner(manager, strategy, SYMBOL)
    for bar in range(len(candles) - 1):
        # The last candle closes with nothing after it to fill in; the backtest ignores
        # its signal too.
        clock.set(int(candles.open_time[bar]) + step)
        venue.observe(SYMBOL, candles[bar], closed=True)
        await manager.sync()
        await runner.on_candle_closed(candles.take(0, bar + 1))
    venue.observe(SYMBOL, candles[len(candles) - 1], closed=True)
    await manager.sync()
    return manager.store.orders.fills(venue=venue.id)


def as_tuples(fills: list[Fill]) -> list[tuple[int, str, float, float, float]]:
    return [(f.timestamp, f.side.value, float(f.price), float(f.amount), float(f.fee))
            for f in fills]


def sim_tuples(fills: tuple[SimFill, ...]) -> list[tuple[int, str, float, float, float]]:
    return [(f.time_ms, f.side.value, f.price, f.amount, f.fee) for f in fills]


@pytest.mark.parametrize(("strategy_factory", "slippage"), [
    (lambda candles: SmaCrossover({"fast": 4, "slow": 9}), Slippage()),
    (lambda candles: SmaCrossover({"fast": 5, "slow": 15, "stop_loss_pct": 1,
                                   "take_profit_pct": 2, "trailing_stop_pct": 1.5}),
     Slippage(fixed_bps=2, volume_bps=30)),
    (lambda candles: protected_limit_entries(len(candles)),
     Slippage(fixed_bps=2, volume_bps=30)),
], ids=["sma-plain", "sma-protected", "every-order-type"])
def test_paper_and_backtest_fill_identically(store: Store, strategy_factory, slippage) -> None:
    candles = hourly(400, seed=4)
    strategy = strategy_factory(candles)
    model = FillModel(FeeSchedule(maker=0.0002, taker=0.001), slippage)
    result = run_backtest(candles, strategy, symbol=SYMBOL, cash=10_000.0, fill_model=model,
                          risk=RiskManager(LIMITS, fee_rate=0.001), lookahead_cuts=0)
    paper = asyncio.run(paper_run(store, candles, strategy, model))
    assert len(result.fills) > 20
    assert as_tuples(paper) == sim_tuples(result.fills)


def test_the_protected_run_exercises_every_exit(store: Store) -> None:
    candles = hourly(400, seed=4)
    strategy = protected_limit_entries(len(candles))
    model = FillModel(FeeSchedule(maker=0.0002, taker=0.001), Slippage(fixed_bps=2))
    paper = asyncio.run(paper_run(store, candles, strategy, model))
    suffixes = {f.client_order_id.rsplit("-", 1)[-1] for f in paper
                if f.client_order_id.count("-") == 2}
    assert suffixes == {"sl", "tp", "ts"}
    trades = store.orders.trades()
    assert len(trades) == sum(1 for f in paper if f.side.value == "sell")
    assert {t.strategy for t in trades} == {"scripted"}


def test_all_cash_sizing_agrees_to_the_float_rounding_of_the_cash(store: Store) -> None:
    """The anchor case's convention: every entry spends all the cash, fee on top, cut at the
    fill price to what the cash pays for. The backtester keeps its cash in floats and the
    paper account in exact decimals, so sizes may differ in the last few bits; when and at
    what price each fill happens may not differ at all."""
    candles = hourly(400, seed=4)
    strategy = SmaCrossover({"fast": 4, "slow": 9})
    model = FillModel(FeeSchedule(maker=0.001, taker=0.001))
    result = run_backtest(candles, strategy, symbol=SYMBOL, cash=10_000.0, fill_model=model,
                          risk=RiskManager(RiskLimits(), fee_rate=0.001), lookahead_cuts=0)
    paper = as_tuples(asyncio.run(paper_run(store, candles, strategy, model, RiskLimits())))
    expected = sim_tuples(result.fills)
    assert len(expected) > 20 and len(paper) == len(expected)
    assert [f[:3] for f in paper] == [f[:3] for f in expected]
    for ours, theirs in zip(paper, expected, strict=True):
        assert ours[3:] == pytest.approx(theirs[3:], rel=1e-12)

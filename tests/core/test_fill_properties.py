"""Property tests of the fill model and of the engine's accounting on top of it."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.core.backtest import run_backtest
from terminal.core.errors import InvalidArgument
from terminal.core.fills import (
    FeeSchedule,
    FillModel,
    IntrabarPolicy,
    SimOrder,
    Slippage,
)
from terminal.core.model import Candle, Liquidity, OrderSide, OrderType, Timeframe
from terminal.core.series import CandleSeries
from terminal.core.strategy import Signals
from tests.core.test_backtest import Scripted
from tests.core.test_fills import candle_lists, models, orders, protections

BUY, SELL = OrderSide.BUY, OrderSide.SELL
TOLERANCE = 1e-9


@settings(max_examples=300, deadline=None)
@given(bars=candle_lists(max_size=1), data=st.data(), fill_model=models)
def test_a_fill_conserves_value_net_of_its_fee(bars: list[Candle], data: st.DataObject,
                                               fill_model: FillModel) -> None:
    """Cash plus the position valued at the fill price loses exactly the fee."""
    order = data.draw(orders(bars[0].open))
    fill = fill_model.execute(order, bars[0]).fill
    if fill is None:
        return
    position_change = fill.amount if fill.side is BUY else -fill.amount
    value_change = fill.cash_change + position_change * fill.price
    assert value_change == pytest.approx(-fill.fee, rel=1e-9, abs=1e-9)
    assert fill.fee == pytest.approx(fill.notional * fill_model.fees.rate(fill.liquidity))


@settings(max_examples=300, deadline=None)
@given(bars=candle_lists(max_size=1), data=st.data(), fill_model=models)
def test_resting_orders_never_fill_better_than_their_price(bars: list[Candle],
                                                           data: st.DataObject,
                                                           fill_model: FillModel) -> None:
    """Inside the candle (not at its open) a limit fills exactly at its limit, as a maker,
    and a stop at its stop or worse: the candle proves the price got there, not beyond."""
    bar = bars[0]
    order = data.draw(orders(bar.open))
    fill = fill_model.execute(order, bar).fill
    if fill is None:
        return
    assert bar.low <= fill.price <= bar.high
    if fill.liquidity is Liquidity.MAKER:
        assert order.price is not None and not fill.at_open
        assert fill.price == order.price
        return
    if order.type is OrderType.STOP and not fill.at_open:
        assert order.stop_price is not None
        worse = fill.price >= order.stop_price if order.is_buy else (
            fill.price <= order.stop_price)
        assert worse
    if order.type is OrderType.MARKET:
        # Market orders start from the open; slippage only ever makes them worse.
        assert fill.price >= bar.open if order.is_buy else fill.price <= bar.open


@settings(max_examples=300, deadline=None)
@given(bars=candle_lists(max_size=1), data=st.data(), fees=st.floats(0, 0.01),
       fixed=st.floats(0, 50), extra=st.floats(0, 50))
def test_more_slippage_never_gives_a_better_price(bars: list[Candle], data: st.DataObject,
                                                  fees: float, fixed: float,
                                                  extra: float) -> None:
    order = data.draw(orders(bars[0].open))
    schedule = FeeSchedule(fees, fees)
    calm = FillModel(schedule, Slippage(fixed_bps=fixed)).execute(order, bars[0]).fill
    rough = FillModel(schedule, Slippage(fixed_bps=fixed + extra)).execute(order, bars[0]).fill
    assert (calm is None) == (rough is None)
    if calm is not None and rough is not None:
        assert rough.price >= calm.price if order.is_buy else rough.price <= calm.price


@settings(max_examples=300, deadline=None)
@given(bars=candle_lists(max_size=1), data=st.data(), fees=st.floats(0, 0.01),
       slippage=st.floats(0, 50), inside=st.booleans())
def test_the_pessimistic_policy_never_exits_better_than_the_optimistic(
        bars: list[Candle], data: st.DataObject, fees: float, slippage: float,
        inside: bool) -> None:
    guard = data.draw(protections(bars[0].open))
    costs = FeeSchedule(fees, fees), Slippage(fixed_bps=slippage)
    worst = FillModel(*costs).exit_fill(guard, 1.0, bars[0], entered_inside=inside)
    best = FillModel(*costs, IntrabarPolicy.OPTIMISTIC).exit_fill(guard, 1.0, bars[0],
                                                                  entered_inside=inside)
    assert (worst is None) == (best is None)
    if worst is not None and best is not None:
        assert worst.cash_change <= best.cash_change + TOLERANCE
        assert worst.price <= best.price + TOLERANCE


@st.composite
def scripted_runs(draw: st.DrawFn) -> tuple[CandleSeries, Scripted]:
    """Candles and scripted signals using every order type and protective exit."""
    bars = draw(candle_lists(min_size=3, max_size=60))
    candles = CandleSeries.from_candles(bars, Timeframe.M1)
    count = len(bars)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = candles.close

    def levels(low: float, high: float, share: float) -> np.ndarray:
        values = close * rng.uniform(low, high, count)
        return np.where(rng.random(count) < share, values, np.nan)

    signals = Signals(
        enter_long=rng.random(count) < 0.4, exit_long=rng.random(count) < 0.2,
        stop_loss=levels(0.9, 0.999, 0.5), take_profit=levels(1.001, 1.1, 0.5),
        trailing_stop_pct=np.where(rng.random(count) < 0.3, rng.uniform(0.5, 5, count),
                                   np.nan),
        entry_limit=levels(0.97, 1.01, 0.4), entry_stop=levels(0.99, 1.03, 0.3))
    return candles, Scripted(signals, warmup=draw(st.integers(0, 1)))


@settings(max_examples=150, deadline=None)
@given(run=scripted_runs(), fill_model=models, cash=st.floats(100, 1e6))
def test_the_engine_accounts_for_every_fill(run: tuple[CandleSeries, Scripted],
                                            fill_model: FillModel, cash: float) -> None:
    """Final equity is the cash plus every trade's profit, fees included; the account never
    goes below zero; fees reported are the fills' fees; trades alternate buy, sell."""
    candles, strategy = run
    result = run_backtest(candles, strategy, cash=cash, fill_model=fill_model,
                          lookahead_cuts=0)
    pnl = sum(t.pnl for t in result.trades)
    assert result.metrics.final_equity == pytest.approx(cash + pnl, rel=1e-9, abs=1e-6)
    assert result.equity[0] == cash and bool(np.all(result.equity >= -TOLERANCE))
    fees = sum(f.fee for f in result.fills)
    assert result.metrics.fees_paid == pytest.approx(fees, rel=1e-9, abs=1e-9)
    sides = [f.side for f in result.fills]
    assert sides == [BUY, SELL] * (len(sides) // 2) + [BUY] * (len(sides) % 2)
    for trade in result.trades:
        assert trade.entry_bar <= trade.exit_bar
        entry = candles[trade.entry_bar]
        assert entry.low <= trade.entry_price <= entry.high
        if trade.exit_reason != "end_of_test":
            leave = candles[trade.exit_bar]
            assert leave.low <= trade.exit_price <= leave.high
    balance = cash
    for fill in result.fills:
        balance += fill.cash_change
        assert balance >= -TOLERANCE * cash  # a buy never spends more than the cash

@pytest.mark.parametrize("bad", [math.inf, math.nan, -1.0, 0.0])
def test_amounts_and_quotes_must_be_finite_and_positive(bad: float) -> None:
    with pytest.raises(InvalidArgument, match="positive"):
        SimOrder(BUY, amount=bad)
    with pytest.raises(InvalidArgument, match="positive"):
        SimOrder(BUY, max_quote=bad)

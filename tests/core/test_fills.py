import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.core.errors import InvalidArgument
from terminal.core.fills import (
    ExitReason,
    FeeSchedule,
    FillModel,
    IntrabarPolicy,
    Protection,
    SimFill,
    SimOrder,
    Slippage,
)
from terminal.core.model import Candle, Liquidity, OrderSide, OrderType, Timeframe
from terminal.core.series import CandleSeries

BUY, SELL = OrderSide.BUY, OrderSide.SELL
FEES = FeeSchedule(maker=0.0005, taker=0.001)


def candle(open_: float, high: float, low: float, close: float, volume: float = 10.0,
           time: int = 0) -> Candle:
    return Candle(time, open_, high, low, close, volume)


def series(bars: list[Candle]) -> CandleSeries:
    return CandleSeries.from_candles(
        [Candle(i * 60_000, c.open, c.high, c.low, c.close, c.volume) for i, c in enumerate(bars)],
        Timeframe.M1)


def model(**kwargs: object) -> FillModel:
    return FillModel(FEES, **kwargs)  # type: ignore[arg-type]


BAR = candle(100, 110, 90, 105)


# --- orders ---------------------------------------------------------------------------------

def test_market_order_fills_at_the_open_as_taker() -> None:
    fill = model().execute(SimOrder(BUY, amount=2.0), BAR).fill
    assert fill == SimFill(0, BUY, 100.0, 2.0, 2.0 * 100 * 0.001, Liquidity.TAKER, True)


def test_quote_sized_buy_spends_the_quote_fee_included() -> None:
    fill = model().execute(SimOrder(BUY, max_quote=1_000.0), BAR).fill
    assert fill is not None
    assert fill.amount == 1_000.0 / (100.0 * 1.001)
    assert -fill.cash_change == pytest.approx(1_000.0, rel=1e-12)
    capped = model().execute(SimOrder(BUY, amount=1.0, max_quote=1_000.0), BAR).fill
    assert capped is not None and capped.amount == 1.0


def test_fixed_slippage_moves_taker_fills_against_the_trader_within_the_candle() -> None:
    slipped = model(slippage=Slippage(fixed_bps=50))
    buy = slipped.execute(SimOrder(BUY, amount=1.0), BAR).fill
    sell = slipped.execute(SimOrder(SELL, amount=1.0), BAR).fill
    assert buy is not None and sell is not None
    assert (buy.price, sell.price) == (pytest.approx(100.5), pytest.approx(99.5))
    wild = model(slippage=Slippage(fixed_bps=5_000, max_bps=5_000))
    outside = wild.execute(SimOrder(BUY, amount=1.0), BAR).fill
    assert outside is not None and outside.price == 110.0  # never above the candle's high


def test_volume_slippage_follows_the_square_root_of_participation_up_to_the_cap() -> None:
    slip = Slippage(fixed_bps=1.0, volume_bps=100.0, max_bps=30.0)
    assert slip.bps(amount=0.0, volume=100.0) == 1.0
    assert slip.bps(amount=1.0, volume=100.0) == pytest.approx(1.0 + 100.0 * 0.1)
    assert slip.bps(amount=25.0, volume=100.0) == 30.0  # 1 + 50 capped
    assert slip.bps(amount=1.0, volume=0.0) == 30.0
    assert Slippage(fixed_bps=3.0).bps(amount=1e9, volume=0.0) == 3.0
    fill = FillModel(FEES, Slippage(volume_bps=100.0)).execute(
        SimOrder(BUY, amount=1.0), candle(100, 110, 90, 105, volume=100.0)).fill
    assert fill is not None and fill.price == pytest.approx(100.0 * 1.001)  # 10 bps


def test_limit_buy_inside_the_candle_is_a_maker_fill_at_the_limit() -> None:
    fill = model().execute(SimOrder(BUY, OrderType.LIMIT, amount=1.0, price=95.0), BAR).fill
    assert fill is not None
    assert (fill.price, fill.liquidity, fill.fee, fill.at_open) == (
        95.0, Liquidity.MAKER, 95.0 * 0.0005, False)


def test_limit_marketable_at_the_open_fills_at_the_open_as_taker() -> None:
    buy = model().execute(SimOrder(BUY, OrderType.LIMIT, amount=1.0, price=101.0), BAR).fill
    sell = model().execute(SimOrder(SELL, OrderType.LIMIT, amount=1.0, price=99.0), BAR).fill
    assert buy is not None and sell is not None
    assert (buy.price, buy.liquidity) == (100.0, Liquidity.TAKER)
    assert (sell.price, sell.liquidity) == (100.0, Liquidity.TAKER)
    slipped = model(slippage=Slippage(fixed_bps=500)).execute(
        SimOrder(BUY, OrderType.LIMIT, amount=1.0, price=101.0), BAR).fill
    assert slipped is not None and slipped.price == 101.0  # slips, but never past the limit


def test_limit_not_reached_keeps_working() -> None:
    order = SimOrder(SELL, OrderType.LIMIT, amount=1.0, price=111.0)
    outcome = model().execute(order, BAR)
    assert (outcome.fill, outcome.order) == (None, order)


def test_stop_inside_the_candle_fills_at_the_stop_and_a_gap_at_the_open() -> None:
    inside = model().execute(SimOrder(SELL, OrderType.STOP, amount=1.0, stop_price=95.0), BAR)
    assert inside.fill is not None
    assert (inside.fill.price, inside.fill.liquidity, inside.fill.at_open) == (
        95.0, Liquidity.TAKER, False)
    gap = model().execute(SimOrder(SELL, OrderType.STOP, amount=1.0, stop_price=102.0), BAR)
    assert gap.fill is not None and (gap.fill.price, gap.fill.at_open) == (100.0, True)
    buy_gap = model().execute(SimOrder(BUY, OrderType.STOP, amount=1.0, stop_price=98.0), BAR)
    assert buy_gap.fill is not None and buy_gap.fill.price == 100.0
    missed = model().execute(SimOrder(BUY, OrderType.STOP, amount=1.0, stop_price=111.0), BAR)
    assert missed.fill is None and missed.order is not None and not missed.order.triggered


def test_stop_limit_fills_when_marketable_at_the_trigger() -> None:
    order = SimOrder(BUY, OrderType.STOP_LIMIT, amount=1.0, stop_price=105.0, price=106.0)
    fill = model().execute(order, BAR).fill
    assert fill is not None and (fill.price, fill.liquidity) == (105.0, Liquidity.TAKER)


def test_stop_limit_beyond_its_limit_rests_as_a_limit_from_the_next_candle() -> None:
    order = SimOrder(BUY, OrderType.STOP_LIMIT, amount=1.0, stop_price=105.0, price=95.0)
    outcome = model().execute(order, BAR)
    assert outcome.fill is None and outcome.order is not None and outcome.order.triggered
    later = model().execute(outcome.order, candle(100, 101, 94, 96)).fill
    assert later is not None and (later.price, later.liquidity) == (95.0, Liquidity.MAKER)


def test_invalid_orders_and_settings_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="needs an amount"):
        SimOrder(BUY)
    with pytest.raises(InvalidArgument, match="only a buy"):
        SimOrder(SELL, max_quote=10.0)
    with pytest.raises(InvalidArgument, match="limit price"):
        SimOrder(BUY, OrderType.LIMIT, amount=1.0)
    with pytest.raises(InvalidArgument, match="stop price"):
        SimOrder(BUY, OrderType.STOP, amount=1.0)
    with pytest.raises(InvalidArgument, match="positive"):
        SimOrder(BUY, amount=-1.0)
    with pytest.raises(InvalidArgument, match="maker fee"):
        FeeSchedule(maker=-0.1)
    with pytest.raises(InvalidArgument, match="fixed_bps"):
        Slippage(fixed_bps=math.nan)


# --- protective exits -----------------------------------------------------------------------

def test_stop_loss_inside_the_candle_and_through_a_gap() -> None:
    guard = Protection(stop_loss=95.0, high_water=100.0)
    inside = model().exit_fill(guard, 2.0, BAR)
    assert inside is not None
    assert (inside.price, inside.reason, inside.side, inside.amount) == (
        95.0, "stop_loss", SELL, 2.0)
    gapped = model().exit_fill(Protection(stop_loss=101.0), 2.0, BAR)
    assert gapped is not None and (gapped.price, gapped.at_open) == (100.0, True)


def test_a_stop_above_everything_the_candle_traded_sells_within_the_candle() -> None:
    # Entered inside the candle below a stop set above its high: crossed from the start.
    crossed = model().exit_fill(Protection(stop_loss=111.0), 1.0, BAR, entered_inside=True)
    assert crossed is not None
    assert crossed.price == 110.0 and crossed.reason == "stop_loss"


def test_take_profit_is_a_maker_limit_and_a_gap_fills_at_the_open() -> None:
    inside = model().exit_fill(Protection(take_profit=108.0), 1.0, BAR)
    assert inside is not None
    assert (inside.price, inside.liquidity, inside.reason) == (108.0, Liquidity.MAKER,
                                                               "take_profit")
    gapped = model().exit_fill(Protection(take_profit=99.0), 1.0, BAR)
    assert gapped is not None
    assert (gapped.price, gapped.liquidity, gapped.at_open) == (100.0, Liquidity.TAKER, True)


def test_both_exits_in_one_candle_pessimistic_by_default() -> None:
    both = Protection(stop_loss=95.0, take_profit=108.0)
    assert model().intrabar is IntrabarPolicy.PESSIMISTIC
    worst = model().exit_fill(both, 1.0, BAR)
    best = model(intrabar=IntrabarPolicy.OPTIMISTIC).exit_fill(both, 1.0, BAR)
    assert worst is not None and best is not None
    assert (worst.reason, worst.price) == ("stop_loss", 95.0)
    assert (best.reason, best.price) == ("take_profit", 108.0)


def test_entry_candle_after_its_open_checks_only_the_stop_side() -> None:
    both = Protection(stop_loss=95.0, take_profit=108.0)
    target_only = Protection(take_profit=108.0)
    assert model().exit_fill(target_only, 1.0, BAR, entered_inside=True) is None
    fill = model(intrabar=IntrabarPolicy.OPTIMISTIC).exit_fill(both, 1.0, BAR,
                                                               entered_inside=True)
    assert fill is not None and fill.reason == "stop_loss"
    # No gap rule either: the position did not exist at the open.
    above_open = model().exit_fill(Protection(stop_loss=101.0), 1.0, BAR, entered_inside=True)
    assert above_open is not None and (above_open.price, above_open.at_open) == (101.0, False)


def test_trailing_stop_follows_closed_highs_and_the_higher_stop_wins() -> None:
    trail = Protection(stop_loss=80.0, trailing_pct=10.0, high_water=100.0)
    assert trail.stop_level() == (pytest.approx(90.0), ExitReason.TRAILING_STOP)
    assert Protection(stop_loss=95.0, trailing_pct=10.0, high_water=100.0).stop_level() == (
        95.0, ExitReason.STOP_LOSS)
    raised = trail.after_close(120.0)
    assert raised.high_water == 120.0 and trail.after_close(90.0) is trail
    fill = model().exit_fill(raised, 1.0, candle(115, 116, 107, 110))
    assert fill is not None and (fill.price, fill.reason) == (pytest.approx(108.0),
                                                              "trailing_stop")
    assert Protection(stop_loss=90.0).after_close(500.0).high_water == 0.0


# --- arrays and candles agree -----------------------------------------------------------------

@st.composite
def candle_lists(draw: st.DrawFn, min_size: int = 1, max_size: int = 30) -> list[Candle]:
    count = draw(st.integers(min_size, max_size))
    price = draw(st.floats(50, 150))
    bars = []
    for i in range(count):
        open_ = price * draw(st.floats(0.97, 1.03))
        close = open_ * draw(st.floats(0.95, 1.05))
        high = max(open_, close) * draw(st.floats(1.0, 1.04))
        low = min(open_, close) * draw(st.floats(0.96, 1.0))
        bars.append(Candle(i * 60_000, open_, high, low, close, draw(st.floats(0.0, 50.0))))
        price = close
    return bars


@st.composite
def orders(draw: st.DrawFn, reference: float = 100.0) -> SimOrder:
    """Any order type, its prices within 10 % of ``reference`` so that they matter."""
    kind = draw(st.sampled_from(OrderType))
    side = draw(st.sampled_from(OrderSide))
    price = reference * draw(st.floats(0.9, 1.1))
    stop = reference * draw(st.floats(0.9, 1.1))
    limit = price if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    trigger = stop if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    if side is BUY and draw(st.booleans()):
        return SimOrder(side, kind, max_quote=draw(st.floats(10, 10_000)), price=limit,
                        stop_price=trigger)
    return SimOrder(side, kind, amount=draw(st.floats(0.1, 5)), price=limit, stop_price=trigger)


@st.composite
def protections(draw: st.DrawFn, reference: float = 100.0) -> Protection:
    """Protective exits a few percent around ``reference``, each one present or not."""
    stop = draw(st.none() | st.floats(0.85, 1.0))
    target = draw(st.none() | st.floats(1.0, 1.15))
    return Protection(None if stop is None else reference * stop,
                      None if target is None else reference * target,
                      draw(st.none() | st.floats(0.5, 10)),
                      reference * draw(st.floats(0.95, 1.05)))


models = st.builds(
    FillModel,
    st.builds(FeeSchedule, st.floats(0, 0.01), st.floats(0, 0.01)),
    st.builds(Slippage, st.floats(0, 50), st.floats(0, 200), st.floats(0, 300)),
    st.sampled_from(IntrabarPolicy),
)


@settings(max_examples=200, deadline=None)
@given(bars=candle_lists(), data=st.data(), fill_model=models)
def test_first_fill_over_arrays_equals_candle_by_candle(bars: list[Candle], data: st.DataObject,
                                                        fill_model: FillModel) -> None:
    order = data.draw(orders(bars[0].open))
    expected: tuple[int | None, SimFill | None] = (None, None)
    working: SimOrder | None = order
    for index, bar in enumerate(bars):
        assert working is not None
        outcome = fill_model.execute(working, bar)
        working = outcome.order
        if outcome.fill is not None:
            expected = (index, outcome.fill)
            break
    found, outcome = fill_model.first_fill(order, series(bars), 0, len(bars))
    assert (found, outcome.fill) == expected
    if found is None:
        assert outcome.order == working


@settings(max_examples=200, deadline=None)
@given(bars=candle_lists(), data=st.data(), inside=st.booleans(), fill_model=models)
def test_first_exit_over_arrays_equals_candle_by_candle(bars: list[Candle], data: st.DataObject,
                                                        inside: bool,
                                                        fill_model: FillModel) -> None:
    guard = data.draw(protections(bars[0].open))
    expected = None
    state = guard
    for index, bar in enumerate(bars):
        fill = fill_model.exit_fill(state, 1.5, bar, entered_inside=inside and index == 0)
        if fill is not None:
            expected = (index, fill)
            break
        state = state.after_close(bar.high)
    assert fill_model.first_exit(guard, 1.5, series(bars), 0, len(bars),
                                 entered_inside=inside) == expected


@settings(max_examples=300, deadline=None)
@given(bars=candle_lists(max_size=1), data=st.data(), fill_model=models)
def test_fills_stay_inside_the_candle_and_fees_are_never_negative(
        bars: list[Candle], data: st.DataObject, fill_model: FillModel) -> None:
    bar = bars[0]
    order = data.draw(orders(bar.open))
    fill = fill_model.execute(order, bar).fill
    if fill is None:
        return
    assert fill.fee >= 0 and fill.amount > 0
    assert bar.low <= fill.price <= bar.high
    if order.price is not None and order.type is not OrderType.STOP:
        # A limit is never filled at a worse price than the limit.
        assert fill.price <= order.price if order.is_buy else fill.price >= order.price
    if order.max_quote is not None:
        assert -fill.cash_change <= order.max_quote * (1 + 1e-12)
    rate = fill_model.fees.rate(fill.liquidity)
    assert fill.fee == pytest.approx(fill.notional * rate)


@settings(max_examples=200, deadline=None)
@given(bars=candle_lists(max_size=1), data=st.data(), fill_model=models)
def test_protective_exits_sell_inside_the_candle(bars: list[Candle], data: st.DataObject,
                                                 fill_model: FillModel) -> None:
    guard = data.draw(protections(bars[0].open))
    fill = fill_model.exit_fill(guard, 1.0, bars[0])
    if fill is not None:
        assert fill.side is SELL and fill.fee >= 0
        assert bars[0].low <= fill.price <= bars[0].high
        assert fill.reason in {r.value for r in ExitReason}


def test_first_fill_respects_the_window() -> None:
    bars = series([candle(100, 101, 99, 100), candle(100, 101, 90, 95)])
    order = SimOrder(BUY, OrderType.LIMIT, amount=1.0, price=92.0)
    assert model().first_fill(order, bars, 0, 1)[0] is None
    found, outcome = model().first_fill(order, bars, 0, 2)
    assert found == 1 and outcome.fill is not None and outcome.fill.time_ms == 60_000
    assert np.isfinite(outcome.fill.price)

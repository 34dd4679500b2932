import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from terminal.core.bus import EventBus
from terminal.core.errors import InvalidArgument
from terminal.core.events import IntentRejected
from terminal.core.intents import AccountSnapshot, OrderIntent
from terminal.core.model import OrderSide, OrderType
from terminal.core.risk import RiskLimits, RiskManager

SYMBOL = "BTC/USDT"
FEE = 0.001


def account(**changes: Any) -> AccountSnapshot:
    values: dict[str, Any] = {
        "time_ms": 0, "equity": 10_000.0, "cash": 10_000.0, "peak_equity": 10_000.0,
        "day_start_equity": 10_000.0, "prices": {SYMBOL: 100.0},
    }
    values.update(changes)
    return AccountSnapshot(**values)


def buy(**changes: Any) -> OrderIntent:
    return OrderIntent(SYMBOL, OrderSide.BUY, 0, **changes)


def sell(**changes: Any) -> OrderIntent:
    return OrderIntent(SYMBOL, OrderSide.SELL, 0, **changes)


def manager(**limits: Any) -> RiskManager:
    return RiskManager(RiskLimits(**limits), fee_rate=FEE)


# --- sizing -------------------------------------------------------------------------------------


def test_default_limits_buy_with_all_the_cash_including_the_fee() -> None:
    decision = manager().check(buy(), account(cash=5_000.0))
    assert decision.approved
    assert decision.amount == pytest.approx(5_000 / (100 * (1 + FEE)))
    assert decision.amount * 100 * (1 + FEE) <= 5_000
    assert decision.adjustments == (
        "sized to 49.95005 BTC by the available cash of 5,000.00 USDT including the fee",)


def test_an_explicit_amount_within_the_limits_is_kept() -> None:
    decision = manager().check(buy(amount=3.0), account())
    assert (decision.approved, decision.amount, decision.adjustments) == (True, 3.0, ())


def test_an_explicit_amount_beyond_the_cash_is_reduced_with_a_note() -> None:
    decision = manager().check(buy(amount=500.0), account(cash=1_000.0))
    assert decision.approved
    assert decision.amount == pytest.approx(1_000 / 100.1)
    assert decision.adjustments[0].startswith("reduced from 500 to 9.99001 BTC")
    assert "available cash of 1,000.00 USDT" in decision.adjustments[0]


def test_risk_per_trade_sizes_from_the_stop_distance() -> None:
    decision = manager(risk_per_trade_pct=1).check(buy(stop_loss=95.0), account())
    # 1 % of 10,000 is 100 at risk over a 5.0 stop distance.
    assert decision.approved and decision.amount == pytest.approx(20.0)
    assert decision.adjustments == (
        "sized to 20 BTC to risk 1% of equity (100.00 USDT) with the stop loss at 95",)


def test_risk_per_trade_uses_the_default_stop_distance_without_a_stop_loss() -> None:
    decision = manager(risk_per_trade_pct=1, default_stop_pct=2).check(buy(), account())
    assert decision.approved and decision.amount == pytest.approx(50.0)
    assert "default stop distance of 2%" in decision.adjustments[0]


def test_risk_per_trade_without_any_stop_falls_back_to_the_position_limits() -> None:
    decision = manager(risk_per_trade_pct=1, max_position_pct=10).check(buy(), account())
    assert decision.approved and decision.amount == pytest.approx(10.0)
    assert decision.adjustments[0].startswith("no stop loss and no default stop distance")
    assert "maximum position size of 1,000.00 USDT" in decision.adjustments[1]


def test_a_risk_sized_order_larger_than_the_cash_is_reduced() -> None:
    decision = manager(risk_per_trade_pct=2).check(buy(stop_loss=99.9), account())
    assert decision.approved
    assert decision.amount == pytest.approx(10_000 / 100.1)
    assert decision.adjustments[1].startswith("reduced from 2000")


def test_a_stop_loss_above_the_entry_of_a_buy_is_refused() -> None:
    decision = manager(risk_per_trade_pct=1).check(buy(stop_loss=101.0), account())
    assert not decision.approved
    assert decision.reason == "stop loss 101 is not below the entry price 100 of a buy"


def test_limit_and_stop_orders_are_sized_at_their_own_price() -> None:
    limit = manager().check(buy(type=OrderType.LIMIT, price=50.0), account(cash=1_001.0))
    stop = manager().check(buy(type=OrderType.STOP, stop_price=200.0), account(cash=1_001.0))
    assert limit.amount == pytest.approx(20.0)
    assert stop.amount == pytest.approx(5.0)


def test_a_market_buy_without_a_known_price_is_refused() -> None:
    decision = manager().check(buy(), account(prices={}))
    assert (decision.approved, decision.reason) == (False, "no price known for BTC/USDT")


# --- position size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_position_quote": 2_000}, 20.0),
        ({"max_position_pct": 30}, 30.0),
        ({"max_position_quote": 2_000, "max_position_pct": 10}, 10.0),
    ],
)
def test_the_maximum_position_size_caps_an_entry(limits: dict[str, float],
                                                 expected: float) -> None:
    decision = manager(**limits).check(buy(amount=80.0), account())
    assert decision.approved and decision.amount == pytest.approx(expected)
    assert "maximum position size" in decision.adjustments[0]


def test_an_entry_below_the_minimum_position_size_is_refused() -> None:
    decision = manager(min_position_quote=50).check(buy(amount=0.4), account())
    assert not decision.approved
    assert decision.reason == ("a 40.00 USDT buy of BTC/USDT is below the minimum position size"
                               " of 50.00 USDT")


def test_an_entry_reduced_below_the_minimum_says_what_limited_it() -> None:
    decision = manager(min_position_pct=1).check(buy(), account(cash=60.0))
    assert not decision.approved
    assert decision.reason.startswith("a 59.94 USDT buy of BTC/USDT is below the minimum"
                                      " position size of 100.00 USDT (limited by the available"
                                      " cash of 60.00 USDT")


def test_an_entry_at_the_minimum_position_size_passes() -> None:
    assert manager(min_position_quote=40).check(buy(amount=0.4), account()).approved


# --- limits that refuse entries -----------------------------------------------------------------


def test_max_open_trades_refuses_a_new_symbol_but_not_adding_to_a_held_one() -> None:
    risk = manager(max_open_trades=2)
    full = account(open_trades=2, exposure={"ETH/USDT": 500.0, "SOL/USDT": 500.0})
    refused = risk.check(buy(), full)
    assert refused.reason == "max open trades reached: 2 open, limit 2"
    held = account(open_trades=2, exposure={SYMBOL: 500.0, "SOL/USDT": 500.0})
    assert risk.check(buy(amount=1.0), held).approved
    assert risk.check(buy(amount=1.0), account(open_trades=1)).approved


def test_the_daily_trade_limit_refuses_entries() -> None:
    risk = manager(max_trades_per_day=3)
    assert risk.check(buy(amount=1.0), account(trades_today=2)).approved
    refused = risk.check(buy(amount=1.0), account(trades_today=3))
    assert refused.reason == "daily trade limit reached: 3 trades today, limit 3"


def test_the_daily_loss_limit_compares_with_the_equity_at_the_start_of_the_day() -> None:
    risk = manager(daily_loss_limit_pct=5)
    assert risk.check(buy(amount=1.0), account(equity=9_600.0, cash=9_600.0)).approved
    refused = risk.check(buy(amount=1.0), account(equity=9_480.0, cash=9_480.0))
    assert refused.reason == "daily loss limit reached: -5.2% today, limit 5%"
    at_the_limit = risk.check(buy(amount=1.0), account(equity=9_500.0, cash=9_500.0))
    assert at_the_limit.reason == "daily loss limit reached: -5.0% today, limit 5%"
    next_day = account(equity=9_480.0, cash=9_480.0, day_start_equity=9_480.0)
    assert risk.check(buy(amount=1.0), next_day).approved


def test_the_drawdown_breaker_latches_until_reset() -> None:
    risk = manager(max_drawdown_pct=20)
    assert risk.check(buy(amount=1.0), account(equity=8_100.0, cash=8_100.0)).approved
    assert not risk.breaker_tripped
    refused = risk.check(buy(amount=1.0), account(equity=8_000.0, cash=8_000.0))
    assert refused.reason == (
        "max drawdown circuit breaker tripped: equity fell to 8,000.00, 20.0% below its peak of"
        " 10,000.00, limit 20%; only exits are allowed until it is reset")
    assert risk.breaker_tripped
    recovered = account(equity=9_900.0, cash=9_900.0)
    assert risk.check(buy(amount=1.0), recovered).reason == refused.reason
    risk.reset_breaker()
    assert risk.check(buy(amount=1.0), recovered).approved


def test_the_exposure_cap_limits_what_one_symbol_may_hold() -> None:
    risk = manager(max_symbol_exposure_pct=25)
    partly = risk.check(buy(amount=30.0), account(exposure={SYMBOL: 2_000.0}))
    assert partly.approved and partly.amount == pytest.approx(5.0)
    assert "BTC/USDT exposure cap of 25% of equity (2,000.00 USDT already held)" in (
        partly.adjustments[0])
    full = risk.check(buy(amount=1.0), account(exposure={SYMBOL: 2_600.0}))
    assert full.reason == ("BTC/USDT exposure cap reached: 2,600.00 USDT held is 26.0% of"
                           " equity, limit 25%")
    assert risk.check(buy(amount=1.0), account(exposure={"ETH/USDT": 9_000.0})).approved


def test_no_cash_no_entry() -> None:
    decision = manager().check(buy(amount=1.0), account(cash=0.0))
    assert decision.reason == "no cash available to buy BTC/USDT: 0.00 free"


def test_no_equity_no_entry() -> None:
    decision = manager().check(buy(amount=1.0), account(equity=-5.0, peak_equity=100.0))
    assert decision.reason == "no equity left (-5.00); only exits are allowed"


# --- exits --------------------------------------------------------------------------------------

EVERY_LIMIT = {
    "risk_per_trade_pct": 1, "min_position_quote": 1_000_000, "max_position_pct": 1,
    "max_open_trades": 1, "max_trades_per_day": 1, "daily_loss_limit_pct": 1,
    "max_drawdown_pct": 5, "max_symbol_exposure_pct": 1,
}
#: An account that breaks every limit above: deep in drawdown, no cash, everything used up.
BROKE = {
    "equity": 5_000.0, "cash": 0.0, "day_start_equity": 9_000.0, "open_trades": 3,
    "trades_today": 9, "exposure": {SYMBOL: 5_000.0},
}


@pytest.mark.parametrize(
    "intent",
    [
        sell(amount=7.0),
        sell(amount=7.0, reduce_only=True, type=OrderType.LIMIT, price=120.0),
        buy(amount=7.0, reduce_only=True),
    ],
)
def test_exits_pass_every_limit_and_the_tripped_breaker(intent: OrderIntent) -> None:
    risk = manager(**EVERY_LIMIT)
    assert not risk.check(buy(amount=1.0), account(**BROKE)).approved
    assert risk.breaker_tripped
    decision = risk.check(intent, account(**BROKE))
    assert (decision.approved, decision.amount) == (True, 7.0)


def test_an_exit_without_an_amount_closes_the_whole_position() -> None:
    decision = manager(**EVERY_LIMIT).check(sell(reduce_only=True), account(**BROKE))
    assert decision.approved and decision.amount == pytest.approx(50.0)
    assert decision.adjustments == ("sized to close the whole position: 50 BTC",)


def test_an_exit_without_an_amount_needs_a_position_and_a_price() -> None:
    risk = manager()
    assert risk.check(sell(), account()).reason == "nothing to close: no open BTC/USDT position"
    unpriced = account(prices={}, exposure={SYMBOL: 100.0})
    assert "no price known for BTC/USDT" in risk.check(sell(), unpriced).reason


# --- publishing, construction -------------------------------------------------------------------


def test_check_and_publish_announces_rejections_only() -> None:
    bus = EventBus()
    seen: list[IntentRejected] = []
    bus.subscribe(IntentRejected, seen.append)
    risk = manager(max_trades_per_day=1)
    risk.check_and_publish(buy(amount=1.0), account(), bus)
    refused_intent = buy(amount=2.0)
    decision = risk.check_and_publish(refused_intent, account(trades_today=1), bus)
    assert seen == [IntentRejected(refused_intent, decision.reason)]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"risk_per_trade_pct": 0}, "greater than 0"),
        ({"max_drawdown_pct": 150}, "less than or equal to 100"),
        ({"max_open_trades": 0}, "greater than or equal to 1"),
        ({"max_position_quote": math.inf}, "finite number"),
        ({"min_position_pct": 20, "max_position_pct": 10},
         "min_position_pct (20) is above max_position_pct (10)"),
        ({"leverage": 3}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_limits_are_refused(limits: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        RiskLimits(**limits)


@pytest.mark.parametrize("fee_rate", [-0.1, 1.0, math.nan])
def test_a_fee_rate_must_be_a_fraction(fee_rate: float) -> None:
    with pytest.raises(InvalidArgument, match="fee rate"):
        RiskManager(RiskLimits(), fee_rate=fee_rate)


def test_the_limits_are_immutable() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        RiskLimits().max_open_trades = 3


# --- properties ---------------------------------------------------------------------------------

maybe_pct = st.none() | st.floats(0.01, 100)
limits_strategy = st.builds(
    RiskLimits,
    risk_per_trade_pct=maybe_pct,
    default_stop_pct=st.none() | st.floats(0.01, 50),
    max_position_quote=st.none() | st.floats(1, 1e7),
    max_position_pct=maybe_pct,
    max_symbol_exposure_pct=maybe_pct,
)
money = st.floats(0, 1e7)
accounts = st.builds(
    lambda equity, cash, price, held, peak_gap: account(
        equity=equity, cash=cash, peak_equity=equity + peak_gap, day_start_equity=equity,
        prices={SYMBOL: price}, exposure={SYMBOL: held} if held else {}),
    equity=st.floats(1, 1e7), cash=money, price=st.floats(1e-4, 1e6), held=money,
    peak_gap=money,
)
fees = st.floats(0, 0.01)


@given(limits=limits_strategy, snapshot=accounts, amount=st.none() | st.floats(1e-6, 1e6),
       stop_fraction=st.none() | st.floats(0.001, 0.999), fee=fees)
def test_an_approved_buy_stays_within_cash_and_position_limits(
        limits: RiskLimits, snapshot: AccountSnapshot, amount: float | None,
        stop_fraction: float | None, fee: float) -> None:
    price = snapshot.prices[SYMBOL]
    stop = None if stop_fraction is None else price * stop_fraction
    decision = RiskManager(limits, fee_rate=fee).check(buy(amount=amount, stop_loss=stop),
                                                       snapshot)
    if not decision.approved:
        assert decision.reason
        return
    assert decision.amount > 0
    assert decision.amount * price * (1 + fee) <= snapshot.cash
    if limits.max_position_quote is not None:
        assert decision.amount * price <= limits.max_position_quote
    if limits.max_position_pct is not None:
        assert decision.amount * price <= snapshot.equity * limits.max_position_pct / 100
    if amount is not None:
        assert decision.amount <= amount


@given(limits=limits_strategy, snapshot=accounts, amount=st.floats(1e-6, 1e6),
       reduce_only=st.booleans())
def test_an_exit_with_an_amount_is_always_approved_unchanged(
        limits: RiskLimits, snapshot: AccountSnapshot, amount: float, reduce_only: bool) -> None:
    decision = RiskManager(limits).check(sell(amount=amount, reduce_only=reduce_only), snapshot)
    assert decision.approved and decision.amount == amount


@given(limits=limits_strategy, snapshot=accounts, amount=st.none() | st.floats(1e-6, 1e6),
       side=st.sampled_from(OrderSide))
def test_a_rejection_always_carries_a_reason(limits: RiskLimits, snapshot: AccountSnapshot,
                                             amount: float | None, side: OrderSide) -> None:
    decision = RiskManager(limits).check(OrderIntent(SYMBOL, side, 0, amount=amount), snapshot)
    assert decision.approved or (decision.reason and decision.amount == 0)

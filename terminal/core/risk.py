"""Pre-trade risk checks: the same rules in backtests, paper trading and live trading.

Every :class:`~terminal.core.intents.OrderIntent` passes :meth:`RiskManager.check` before it
becomes an order. The manager either approves it with the amount to trade or rejects it with a
sentence for the user; the caller publishes the rejection as an
:class:`~terminal.core.events.IntentRejected` event (:meth:`RiskManager.check_and_publish` does
both for paper and live trading).

**Exits are never blocked.** An intent is an exit when it is ``reduce_only`` or a sell (on a
spot account a sell can only part with what is held). Exits pass every limit, the circuit
breaker included, with the amount they ask for; one without an amount closes the whole
position (its marked exposure divided by the current price).

**Entry sizing.** An explicit amount is taken as the request. Without one the manager sizes it:

* with ``risk_per_trade_pct`` set, ``amount = equity × risk% / |entry − stop_loss|``; an intent
  without a stop loss uses ``default_stop_pct`` of the entry price as the stop distance, and
  when that is not set either, the entry is sized by the position limits alone (as if no
  per-trade risk were set), which the adjustment notes say;
* otherwise the request is "as much as the limits allow", which with the default limits is all
  the available cash: ``cash / (price × (1 + fee_rate))``.

The request is then capped, never rejected for being too large: by the maximum position size
(one order's notional), by the room left under the per-symbol exposure cap and by the
available cash including the fee. Each cap that bites adds a note to ``adjustments``. Only a
result below the minimum position size is rejected. The entry price is the limit price of
limit orders, the stop price of stop orders and ``account.prices[symbol]`` for market orders;
slippage beyond that price is the fill model's concern.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from terminal.core.bus import EventBus
from terminal.core.errors import InvalidArgument
from terminal.core.events import IntentRejected
from terminal.core.intents import AccountSnapshot, OrderIntent, RiskDecision
from terminal.core.model import OrderSide, OrderType


class RiskLimits(BaseModel):
    """The user's risk limits. Every limit is optional: ``None`` switches it off.

    The defaults switch everything off, so a plain backtest buys with all its cash.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    risk_per_trade_pct: float | None = Field(
        default=None, gt=0, le=100,
        description="percent of equity lost if a new position's stop loss is hit; entries"
                    " without an amount are sized from it")
    default_stop_pct: float | None = Field(
        default=None, gt=0, lt=100,
        description="stop distance, in percent of the entry price, assumed when sizing by risk"
                    " per trade an entry that has no stop loss")
    min_position_quote: float | None = Field(
        default=None, gt=0,
        description="smallest order worth placing, in quote currency; smaller entries are"
                    " refused")
    min_position_pct: float | None = Field(
        default=None, gt=0, le=100,
        description="smallest order worth placing, in percent of equity")
    max_position_quote: float | None = Field(
        default=None, gt=0,
        description="largest single entry order, in quote currency; larger ones are reduced")
    max_position_pct: float | None = Field(
        default=None, gt=0, le=100,
        description="largest single entry order, in percent of equity; larger ones are reduced")
    max_open_trades: int | None = Field(
        default=None, ge=1, le=1000,
        description="most positions open at once; adding to a held symbol does not count")
    max_trades_per_day: int | None = Field(
        default=None, ge=1, le=100_000,
        description="most entries per UTC day")
    daily_loss_limit_pct: float | None = Field(
        default=None, gt=0, le=100,
        description="no new entries for the rest of the UTC day once equity has fallen this"
                    " many percent below its value at 00:00 UTC")
    max_drawdown_pct: float | None = Field(
        default=None, gt=0, le=100,
        description="circuit breaker: once equity is this many percent below its peak, no new"
                    " entries until the breaker is reset; exits always pass")
    max_symbol_exposure_pct: float | None = Field(
        default=None, gt=0, le=100,
        description="most of the equity held in one symbol, in percent")

    @model_validator(mode="after")
    def _minimum_not_above_maximum(self) -> RiskLimits:
        pairs = (("min_position_quote", "max_position_quote"),
                 ("min_position_pct", "max_position_pct"))
        for low_name, high_name in pairs:
            low, high = getattr(self, low_name), getattr(self, high_name)
            if low is not None and high is not None and low > high:
                raise ValueError(f"{low_name} ({low:g}) is above {high_name} ({high:g})")
        return self


class RiskManager:
    """Judges order intents against :class:`RiskLimits` and an :class:`AccountSnapshot`.

    ``fee_rate`` is the taker fee as a fraction (0.001 is 0.1 %); a buy may spend at most the
    free cash including it. The drawdown circuit breaker latches: once tripped it refuses new
    entries until :meth:`reset_breaker`, even if equity recovers meanwhile.
    """

    def __init__(self, limits: RiskLimits, *, fee_rate: float = 0.001) -> None:
        if not (math.isfinite(fee_rate) and 0 <= fee_rate < 1):
            raise InvalidArgument(f"a fee rate is a fraction between 0 and 1, got {fee_rate}")
        self.limits = limits
        self.fee_rate = fee_rate
        self._breaker: str | None = None

    @property
    def breaker_tripped(self) -> bool:
        return self._breaker is not None

    def reset_breaker(self) -> None:
        """Allow entries again after the drawdown circuit breaker tripped."""
        self._breaker = None

    def check(self, intent: OrderIntent, account: AccountSnapshot) -> RiskDecision:
        """Approve ``intent`` with the amount to trade, or reject it with a reason."""
        self._watch_drawdown(account)
        if intent.reduce_only or intent.side is OrderSide.SELL:
            return self._check_exit(intent, account)
        return self._check_entry(intent, account)

    def check_and_publish(self, intent: OrderIntent, account: AccountSnapshot,
                          bus: EventBus) -> RiskDecision:
        """:meth:`check`, publishing :class:`IntentRejected` on ``bus`` when refused."""
        decision = self.check(intent, account)
        if not decision.approved:
            bus.publish(IntentRejected(intent, decision.reason))
        return decision

    def _watch_drawdown(self, account: AccountSnapshot) -> None:
        limit = self.limits.max_drawdown_pct
        if limit is None or self._breaker is not None:
            return
        peak = max(account.peak_equity, account.equity)
        if peak <= 0:
            return
        # Compared as a floor rather than as a ratio, so "20% below" trips a 20% limit exactly.
        if account.equity <= peak * (1 - limit / 100):
            drawdown = 1 - account.equity / peak
            self._breaker = (
                f"max drawdown circuit breaker tripped: equity fell to"
                f" {_money(account.equity)}, {drawdown * 100:.1f}% below its peak of"
                f" {_money(peak)}, limit {limit:g}%; only exits are allowed until it is reset")

    def _check_exit(self, intent: OrderIntent, account: AccountSnapshot) -> RiskDecision:
        if intent.amount is not None:
            return RiskDecision(True, intent.amount)
        held_value = abs(account.exposure.get(intent.symbol, 0.0))
        price = account.prices.get(intent.symbol)
        if held_value <= 0:
            return RiskDecision.reject(f"nothing to close: no open {intent.symbol} position")
        if price is None or not price > 0:
            return RiskDecision.reject(
                f"cannot size the exit: no price known for {intent.symbol}; give an amount")
        amount = held_value / price
        return RiskDecision(True, amount, adjustments=(
            f"sized to close the whole position: {_qty(amount)} {_base(intent.symbol)}",))

    def _check_entry(self, intent: OrderIntent, account: AccountSnapshot) -> RiskDecision:
        refusal = self._entry_refusal(intent, account)
        if refusal is not None:
            return RiskDecision.reject(refusal)
        price = _entry_price(intent, account)
        if price is None:
            return RiskDecision.reject(f"no price known for {intent.symbol}")
        if intent.stop_loss is not None and not intent.stop_loss < price:
            return RiskDecision.reject(
                f"stop loss {intent.stop_loss:g} is not below the entry price {price:g} of a buy")

        symbol, limits = intent.symbol, self.limits
        quote = _quote(symbol)
        held_value = abs(account.exposure.get(symbol, 0.0))
        amount, notes = self._requested_amount(intent, account, price)
        requested = amount
        # Each cap: the largest amount it allows and the words that explain it.
        caps: list[tuple[float, str]] = []
        max_quote = _smallest(limits.max_position_quote,
                              _pct_of(limits.max_position_pct, account.equity))
        if max_quote is not None:
            caps.append((_largest_amount(max_quote, price, 1.0),
                         f"the maximum position size of {_money(max_quote, quote)}"))
        if limits.max_symbol_exposure_pct is not None:
            room = account.equity * limits.max_symbol_exposure_pct / 100 - held_value
            caps.append((_largest_amount(room, price, 1.0),
                         f"the {symbol} exposure cap of {limits.max_symbol_exposure_pct:g}% of"
                         f" equity ({_money(held_value, quote)} already held)"))
        caps.append((_largest_amount(account.cash, price, 1 + self.fee_rate),
                     f"the available cash of {_money(account.cash, quote)} including the fee"))
        binding = ""
        for allowed, why in caps:
            if allowed < amount:
                amount, binding = allowed, why
        if binding:
            verb = "sized" if math.isinf(requested) else f"reduced from {_qty(requested)}"
            notes.append(f"{verb} to {_qty(amount)} {_base(symbol)} by {binding}")

        min_quote = _largest(limits.min_position_quote,
                             _pct_of(limits.min_position_pct, account.equity))
        notional = amount * price
        if not amount > 0 or (min_quote is not None and notional < min_quote):
            smallest = (f"the minimum position size of {_money(min_quote, quote)}"
                        if min_quote is not None else "anything worth trading")
            limited = f" (limited by {binding})" if binding else ""
            return RiskDecision.reject(
                f"a {_money(notional, quote)} buy of {symbol} is below {smallest}{limited}")
        return RiskDecision(True, amount, adjustments=tuple(notes))

    def _entry_refusal(self, intent: OrderIntent, account: AccountSnapshot) -> str | None:
        """Why no new entry may be made now, or None."""
        limits = self.limits
        if self._breaker is not None:
            return self._breaker
        if account.equity <= 0:
            return f"no equity left ({_money(account.equity)}); only exits are allowed"
        if not account.cash > 0:
            return f"no cash available to buy {intent.symbol}: {_money(account.cash)} free"
        if limits.daily_loss_limit_pct is not None and account.day_start_equity > 0:
            floor = account.day_start_equity * (1 - limits.daily_loss_limit_pct / 100)
            if account.equity <= floor:
                change = account.equity / account.day_start_equity - 1
                return (f"daily loss limit reached: {change * 100:.1f}% today,"
                        f" limit {limits.daily_loss_limit_pct:g}%")
        already_held = abs(account.exposure.get(intent.symbol, 0.0)) > 0
        if (limits.max_open_trades is not None and not already_held
                and account.open_trades >= limits.max_open_trades):
            return (f"max open trades reached: {account.open_trades} open,"
                    f" limit {limits.max_open_trades}")
        daily_trades = limits.max_trades_per_day
        if daily_trades is not None and account.trades_today >= daily_trades:
            return (f"daily trade limit reached: {account.trades_today} trades today,"
                    f" limit {daily_trades}")
        if limits.max_symbol_exposure_pct is not None:
            held_value = abs(account.exposure.get(intent.symbol, 0.0))
            cap = account.equity * limits.max_symbol_exposure_pct / 100
            if held_value >= cap:
                return (f"{intent.symbol} exposure cap reached:"
                        f" {_money(held_value, _quote(intent.symbol))} held is"
                        f" {held_value / account.equity * 100:.1f}% of equity,"
                        f" limit {limits.max_symbol_exposure_pct:g}%")
        return None

    def _requested_amount(self, intent: OrderIntent, account: AccountSnapshot,
                          price: float) -> tuple[float, list[str]]:
        """The amount asked for before caps (infinite: as much as the limits allow)."""
        if intent.amount is not None:
            return intent.amount, []
        risk_pct = self.limits.risk_per_trade_pct
        if risk_pct is None:
            return math.inf, []
        quote = _quote(intent.symbol)
        budget = account.equity * risk_pct / 100
        if intent.stop_loss is not None:
            distance = price - intent.stop_loss
            source = f"the stop loss at {intent.stop_loss:g}"
        elif self.limits.default_stop_pct is not None:
            distance = price * self.limits.default_stop_pct / 100
            source = f"the default stop distance of {self.limits.default_stop_pct:g}%"
        else:
            return math.inf, ["no stop loss and no default stop distance: sized by the position"
                              " limits instead of the risk per trade"]
        amount = budget / distance
        return amount, [f"sized to {_qty(amount)} {_base(intent.symbol)} to risk {risk_pct:g}%"
                        f" of equity ({_money(budget, quote)}) with {source}"]


def _entry_price(intent: OrderIntent, account: AccountSnapshot) -> float | None:
    if intent.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        price = intent.price
    elif intent.type is OrderType.STOP:
        price = intent.stop_price
    else:
        price = account.prices.get(intent.symbol)
    return price if price is not None and math.isfinite(price) and price > 0 else None


def _largest_amount(budget: float, price: float, multiplier: float) -> float:
    """The largest amount whose ``amount × price × multiplier`` stays within ``budget``.

    Division alone can round one ulp too high, which would let a buy spend a fraction of a cent
    more than the cash it has.
    """
    if budget <= 0:
        return 0.0
    amount = budget / (price * multiplier)
    while amount > 0 and amount * price * multiplier > budget:
        amount = math.nextafter(amount, 0.0)
    return amount


def _pct_of(pct: float | None, equity: float) -> float | None:
    return None if pct is None else equity * pct / 100


def _smallest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _largest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _base(symbol: str) -> str:
    return symbol.split("/")[0]


def _quote(symbol: str) -> str:
    return symbol.split("/")[1] if "/" in symbol else ""


def _money(value: float, currency: str = "") -> str:
    return f"{value:,.2f} {currency}".rstrip()


def _qty(amount: float) -> str:
    return f"{amount:.8g}"

"""The one fill model: when an order executes within a candle, at what price, for what fee.

The backtest engine, the paper venue and the simulated exchange all ask this module, so a
backtest and a paper run over the same candles produce the same fills. It works on one candle
at a time (:meth:`FillModel.execute`, :meth:`FillModel.exit_fill`: what a paper venue calls
when a candle closes) and on arrays (:meth:`FillModel.first_fill`, :meth:`FillModel.first_exit`:
a numpy search for the first candle that can act, then the same scalar rule on that candle).

Candles say where the price went, not in which order, so the rules assume a fill only when
the candle proves it, and settle the rest explicitly:

* An order placed after a candle closed is first eligible in the next candle.
* **Market** orders fill at the candle's open.
* **Stop** orders trigger when the candle reaches the stop price. A candle that opens beyond
  the stop (a gap) fills at the open, not at the stop price.
* **Limit** orders fill at the limit price when the candle reaches it (touching counts), as a
  maker. A limit that is already marketable at the open fills at the open, as a taker.
* **Stop-limit** orders become a limit order when their stop triggers, at the open (gap) or
  at the stop price. If the limit is marketable at that moment they fill there as a taker;
  otherwise the candle cannot prove the price came back to the limit after the trigger, so
  the order rests as a limit from the next candle on.
* **Protective exits** attached to a long position (stop loss, take profit, trailing stop)
  follow the same rules: the stop side fills like a stop order, the take profit like a limit
  order. A trailing stop sits ``trailing_pct`` below the highest price since the entry: the
  entry price, then each closed candle's high (it ratchets when a candle closes). When one
  candle reaches both the stop side and the take profit, the stop side wins
  (:attr:`IntrabarPolicy.PESSIMISTIC`, the default) unless the policy says otherwise. In the
  candle a position was opened in, after its open (a limit or stop entry), only the stop side
  is checked: the candle cannot prove its high came after the entry.

**Fees** are a fraction of the notional in the quote currency: the maker rate for limit
fills reached inside the candle, the taker rate for everything else. **Slippage** moves taker
fills against the trader by ``bps = min(fixed_bps + volume_bps * sqrt(amount / volume),
max_bps)`` basis points, where ``volume`` is the candle's base volume (square-root market
impact: slippage grows with the share of the candle's volume the order takes, ever more
slowly). A slipped price never leaves the candle's range nor passes a limit price; maker
fills do not slip. A buy may carry ``max_quote``, the most quote currency it may spend fee
included; its amount is then ``max_quote / (price * (1 + fee rate))`` at the fill price, or
less when the order also names a smaller amount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum, unique

import numpy as np

from terminal.core.errors import InvalidArgument
from terminal.core.model import Candle, Liquidity, OrderSide, OrderType
from terminal.core.series import CandleSeries


@unique
class IntrabarPolicy(Enum):
    """Which protective exit fills when one candle reaches both the stop side and the target."""

    PESSIMISTIC = "pessimistic"
    OPTIMISTIC = "optimistic"


@unique
class ExitReason(Enum):
    """Why a position was closed. The value is the code in trade lists and JSON."""

    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    END_OF_TEST = "end_of_test"


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fees as fractions of the notional (0.001 is 0.1 %)."""

    maker: float = 0.001
    taker: float = 0.001

    def __post_init__(self) -> None:
        for name, rate in (("maker", self.maker), ("taker", self.taker)):
            if not (math.isfinite(rate) and 0 <= rate < 1):
                raise InvalidArgument(f"the {name} fee is a fraction between 0 and 1, got {rate}")

    def rate(self, liquidity: Liquidity) -> float:
        return self.maker if liquidity is Liquidity.MAKER else self.taker


@dataclass(frozen=True, slots=True)
class Slippage:
    """Adverse price movement on taker fills, in basis points (see the module docstring).

    ``volume_bps`` is the slippage of an order as large as the candle's whole volume; a candle
    without volume gives ``max_bps`` whenever ``volume_bps`` is set.
    """

    fixed_bps: float = 0.0
    volume_bps: float = 0.0
    max_bps: float = 100.0

    def __post_init__(self) -> None:
        for name in ("fixed_bps", "volume_bps", "max_bps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 10_000):
                raise InvalidArgument(f"slippage {name} must be between 0 and 10000, got {value}")

    def bps(self, amount: float, volume: float) -> float:
        """The slippage of a taker order for ``amount`` in a candle that traded ``volume``."""
        if self.volume_bps == 0:
            return min(self.fixed_bps, self.max_bps)
        if not volume > 0:
            return self.max_bps
        return min(self.fixed_bps + self.volume_bps * math.sqrt(amount / volume), self.max_bps)


@dataclass(frozen=True, slots=True)
class SimOrder:
    """A working order as the fill model sees it: floats, one symbol, no venue bookkeeping.

    ``amount`` is in base units; a buy may instead (or also) give ``max_quote``, the most
    quote currency it may spend including the fee. ``triggered`` marks a stop-limit whose stop
    has been reached, which now works as a limit order.
    """

    side: OrderSide
    type: OrderType = OrderType.MARKET
    amount: float | None = None
    max_quote: float | None = None
    price: float | None = None
    stop_price: float | None = None
    triggered: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if self.amount is None and self.max_quote is None:
            raise InvalidArgument("an order needs an amount or, for a buy, the quote to spend")
        if self.amount is not None and not _positive(self.amount):
            raise InvalidArgument(f"an order amount must be positive, got {self.amount}")
        if self.max_quote is not None and (self.side is OrderSide.SELL
                                           or not _positive(self.max_quote)):
            raise InvalidArgument("only a buy spends quote currency, and a positive amount of it")
        if self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not _positive(self.price):
            raise InvalidArgument(f"a {self.type.value} order needs a positive limit price")
        if self.type in (OrderType.STOP, OrderType.STOP_LIMIT) and not _positive(self.stop_price):
            raise InvalidArgument(f"a {self.type.value} order needs a positive stop price")

    @property
    def is_buy(self) -> bool:
        return self.side is OrderSide.BUY

    @property
    def works_as_limit(self) -> bool:
        return self.type is OrderType.LIMIT or (self.type is OrderType.STOP_LIMIT
                                                 and self.triggered)


@dataclass(frozen=True, slots=True)
class SimFill:
    """One execution. ``time_ms`` is the open time of the candle it happened in; ``at_open``
    says it happened at that candle's open price (market orders, gaps)."""

    time_ms: int
    side: OrderSide
    price: float
    amount: float
    fee: float
    liquidity: Liquidity
    at_open: bool
    reason: str = ""

    @property
    def notional(self) -> float:
        return self.price * self.amount

    @property
    def cash_change(self) -> float:
        """Quote currency gained (a sell) or spent (a buy, negative), fee included."""
        if self.side is OrderSide.BUY:
            return -(self.notional + self.fee)
        return self.notional - self.fee


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What one candle did to a working order: a fill, and what is still working after it."""

    fill: SimFill | None
    order: SimOrder | None


@dataclass(frozen=True, slots=True)
class Protection:
    """Protective exits attached to a long position.

    ``high_water`` is the highest price the trailing stop has followed so far: the entry
    price, then the high of each candle that closed with the position open.
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_pct: float | None = None
    high_water: float = 0.0

    @property
    def active(self) -> bool:
        return (self.stop_loss is not None or self.take_profit is not None
                or self.trailing_pct is not None)

    def stop_level(self) -> tuple[float, ExitReason] | None:
        """The stop side in force now: the higher of the stop loss and the trailing stop."""
        trailing = (None if self.trailing_pct is None
                    else self.high_water * (1 - self.trailing_pct / 100))
        if trailing is not None and (self.stop_loss is None or trailing > self.stop_loss):
            return trailing, ExitReason.TRAILING_STOP
        if self.stop_loss is not None:
            return self.stop_loss, ExitReason.STOP_LOSS
        return None

    def after_close(self, high: float) -> Protection:
        """The protection once a candle with this ``high`` has closed."""
        if self.trailing_pct is None or high <= self.high_water:
            return self
        return replace(self, high_water=high)


class FillModel:
    """Decides fills, fees and slippage; see the module docstring for the rules."""

    def __init__(self, fees: FeeSchedule | None = None, slippage: Slippage | None = None,
                 intrabar: IntrabarPolicy = IntrabarPolicy.PESSIMISTIC) -> None:
        self.fees = fees or FeeSchedule()
        self.slippage = slippage or Slippage()
        self.intrabar = intrabar

    # --- orders -----------------------------------------------------------------------------

    def execute(self, order: SimOrder, candle: Candle) -> OrderOutcome:
        """What happens to ``order`` (placed before ``candle`` opened) during ``candle``."""
        if order.type is OrderType.MARKET:
            return self._done(self._taker(order, candle, candle.open, at_open=True))
        if not order.works_as_limit:
            stop = order.stop_price
            assert stop is not None
            if order.is_buy:
                gap, reached = candle.open >= stop, candle.high >= stop
            else:
                gap, reached = candle.open <= stop, candle.low <= stop
            if not reached:
                return OrderOutcome(None, order)
            trigger = candle.open if gap else stop
            if order.type is OrderType.STOP:
                return self._done(self._taker(order, candle, trigger, at_open=gap))
            order = replace(order, triggered=True)
            if _marketable(order, trigger):
                return self._done(self._taker(order, candle, trigger, at_open=gap))
            return OrderOutcome(None, order)
        limit = order.price
        assert limit is not None
        if _marketable(order, candle.open):
            return self._done(self._taker(order, candle, candle.open, at_open=True))
        if (candle.low <= limit) if order.is_buy else (candle.high >= limit):
            return self._done(self._fill(order, candle, limit, Liquidity.MAKER, at_open=False))
        return OrderOutcome(None, order)

    def first_fill(self, order: SimOrder, candles: CandleSeries, start: int,
                   stop: int) -> tuple[int | None, OrderOutcome]:
        """The first candle in ``candles[start:stop]`` that fills ``order``, and the outcome.

        Gives the same answer as calling :meth:`execute` candle by candle: a vectorised
        search finds the first candle where the order can act and :meth:`execute` decides
        there. Without a fill the outcome holds the order as it is still working at ``stop``.
        """
        while start < stop:
            bar = self._first_candidate(order, candles, start, stop)
            if bar is None:
                break
            outcome = self.execute(order, candles[bar])
            if outcome.fill is not None:
                return bar, outcome
            assert outcome.order is not None
            order, start = outcome.order, bar + 1
        return None, OrderOutcome(None, order)

    def _first_candidate(self, order: SimOrder, candles: CandleSeries, start: int,
                         stop: int) -> int | None:
        if order.type is OrderType.MARKET:
            return start
        if order.works_as_limit:
            level, buy_side = order.price, order.is_buy
        else:
            # A buy stop waits for the price to rise to it, a buy limit for it to fall.
            level, buy_side = order.stop_price, not order.is_buy
        assert level is not None
        hits = (candles.low[start:stop] <= level) if buy_side else (
            candles.high[start:stop] >= level)
        first = int(np.argmax(hits))
        return start + first if hits[first] else None

    # --- protective exits -------------------------------------------------------------------

    def exit_fill(self, protection: Protection, amount: float, candle: Candle, *,
                  entered_inside: bool = False) -> SimFill | None:
        """The protective exit that closes ``amount`` during ``candle``, if any.

        ``entered_inside`` says the position was opened inside this candle after its open;
        then the open cannot gap through anything and only the stop side is checked.
        """
        stop = protection.stop_level()
        target = None if entered_inside else protection.take_profit
        sell = SimOrder(OrderSide.SELL, OrderType.MARKET, amount=amount)
        if not entered_inside:
            if stop is not None and candle.open <= stop[0]:
                return self._taker(replace(sell, reason=stop[1].value), candle, candle.open,
                                   at_open=True)
            if target is not None and candle.open >= target:
                order = SimOrder(OrderSide.SELL, OrderType.LIMIT, amount=amount, price=target,
                                 reason=ExitReason.TAKE_PROFIT.value)
                return self._taker(order, candle, candle.open, at_open=True)
        stop_hit = stop is not None and candle.low <= stop[0]
        target_hit = target is not None and candle.high >= target
        if stop_hit and target_hit:
            stop_hit = self.intrabar is IntrabarPolicy.PESSIMISTIC
        if stop is not None and stop_hit:
            # A stop set above the price a position was opened at inside this candle is
            # crossed from the start; the sale cannot be dearer than the candle ever traded.
            return self._taker(replace(sell, reason=stop[1].value), candle,
                               min(stop[0], candle.high), at_open=False)
        if target is not None and target_hit:
            order = SimOrder(OrderSide.SELL, OrderType.LIMIT, amount=amount, price=target,
                             reason=ExitReason.TAKE_PROFIT.value)
            return self._fill(order, candle, target, Liquidity.MAKER, at_open=False)
        return None

    def first_exit(self, protection: Protection, amount: float, candles: CandleSeries,
                   start: int, stop: int, *, entered_inside: bool = False
                   ) -> tuple[int, SimFill] | None:
        """The first protective exit in ``candles[start:stop]``: its candle and its fill.

        ``protection`` is the state at the open of candle ``start``; ``entered_inside``
        applies to that candle. The same answer as :meth:`exit_fill` candle by candle, with
        :meth:`Protection.after_close` between candles.
        """
        if not protection.active or start >= stop:
            return None
        highs = candles.high[start:stop]
        hits = np.zeros(stop - start, dtype=bool)
        water = None
        if protection.trailing_pct is not None:
            # The level in force during each candle follows the highs of the candles before it.
            water = np.maximum.accumulate(np.r_[protection.high_water, highs[:-1]])
            level = water * (1 - protection.trailing_pct / 100)
            if protection.stop_loss is not None:
                level = np.maximum(level, protection.stop_loss)
            hits |= candles.low[start:stop] <= level
        elif protection.stop_loss is not None:
            hits |= candles.low[start:stop] <= protection.stop_loss
        if protection.take_profit is not None:
            reached = highs >= protection.take_profit
            if entered_inside:
                reached[0] = False
            hits |= reached
        first = int(np.argmax(hits))
        if not hits[first]:
            return None
        state = protection if water is None else replace(protection,
                                                         high_water=float(water[first]))
        fill = self.exit_fill(state, amount, candles[start + first],
                              entered_inside=entered_inside and first == 0)
        assert fill is not None, "the vectorised search and the candle rule disagree"
        return start + first, fill

    # --- pricing ----------------------------------------------------------------------------

    def _taker(self, order: SimOrder, candle: Candle, reference: float, *,
               at_open: bool) -> SimFill:
        estimate = order.amount if order.amount is not None else (
            (order.max_quote or 0.0) / reference)
        move = self.slippage.bps(estimate, candle.volume) / 10_000
        # Only marketable limits come here, so the limit lies beyond the reference price.
        if order.is_buy:
            price = min(reference * (1 + move), candle.high)
            if order.price is not None:
                price = min(price, order.price)
        else:
            price = max(reference * (1 - move), candle.low)
            if order.price is not None:
                price = max(price, order.price)
        return self._fill(order, candle, price, Liquidity.TAKER, at_open=at_open)

    def _fill(self, order: SimOrder, candle: Candle, price: float, liquidity: Liquidity, *,
              at_open: bool) -> SimFill:
        rate = self.fees.rate(liquidity)
        amount = order.amount
        if order.max_quote is not None:
            affordable = order.max_quote / (price * (1 + rate))
            amount = affordable if amount is None else min(amount, affordable)
        assert amount is not None
        return SimFill(candle.open_time, order.side, price, amount, amount * price * rate,
                       liquidity, at_open, order.reason)

    @staticmethod
    def _done(fill: SimFill) -> OrderOutcome:
        return OrderOutcome(fill, None)


def _marketable(order: SimOrder, price: float) -> bool:
    limit = order.price
    assert limit is not None
    return price <= limit if order.is_buy else price >= limit


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0

"""The order manager: the one owner of order state, on the asyncio loop.

Every order, manual or from a strategy, paper or live, goes the same way::

    OrderIntent ─► risk check ─► OrderRequest (fresh client order id, rounded to the
    instrument) ─► stored PENDING ─► venue.submit_order ─► stored state ─► OrderUpdated
                                                         └► fills stored ─► OrderFilled

A refused intent publishes :class:`IntentRejected` and sends nothing. Every state change is
written to the store before its event is published, so whoever reacts to an event reads the
same state from the store.

**Never a blind resend.** When the venue's answer to a submit is lost (a timeout, a dropped
connection, a server error: a *retryable* :class:`VenueError`), the order may or may not
exist on the venue. Sending it again could double it; giving up could leave an order
working unseen. So the manager asks the venue for the order by its client order id first,
and only resends when the venue confirms it has none, with a growing pause between attempts
(the venue's own ``Retry-After`` when it gave one), a bounded number of times. If even the
lookup keeps failing, the order stays ``PENDING`` (unknown) and is settled by the next
:meth:`OrderManager.sync` or start-up reconciliation, never guessed. A non-retryable error
(insufficient funds, invalid order, authentication) marks the order ``REJECTED`` with the
venue's reason for the user.

Positions and closed trades come from fills through :mod:`terminal.core.portfolio`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any, TypeVar

from terminal.core.bus import EventBus
from terminal.core.clock import Clock, SystemClock
from terminal.core.errors import (
    InvalidArgument,
    OrderNotFound,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from terminal.core.events import ErrorRaised, IntentRejected, OrderFilled, OrderUpdated
from terminal.core.intents import AccountSnapshot, OrderIntent, RiskCheck, RiskDecision
from terminal.core.model import (
    DAY_MS,
    Balance,
    Fill,
    Instrument,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    to_decimal,
)
from terminal.core.portfolio import PositionBook, build_positions
from terminal.core.ports import OrderRequest, TradingVenue
from terminal.core.storage import Store
from terminal.core.storage.orders import MANUAL, TradingMode

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

#: Prefix of every client order id we make; it tells our orders from others on an account.
CLIENT_ID_PREFIX = "trm-"
#: Who placed an order found on the venue that the store did not know.
EXTERNAL = "external"
#: How far a venue's clock may run behind ours when it stamps a fill of a new order.
CLOCK_SKEW_MS = 60_000


def new_client_order_id() -> str:
    """A fresh client order id: 28 characters, within every major exchange's limit."""
    return f"{CLIENT_ID_PREFIX}{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class Submission:
    """What became of an intent: the order placed (None when refused) and the risk verdict."""

    order: Order | None
    decision: RiskDecision

    @property
    def rejected_reason(self) -> str | None:
        if self.order is None:
            return self.decision.reason
        if self.order.status is OrderStatus.REJECTED:
            return self.order.reject_reason
        return None


@dataclass(frozen=True, slots=True)
class Preview:
    """An intent as it would be sent: the risk verdict and, when approved, the request."""

    decision: RiskDecision
    request: OrderRequest | None


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What start-up reconciliation found and changed."""

    orders_checked: int
    orders_changed: int
    orders_adopted: int
    fills_added: int
    foreign_fills: int
    balances: tuple[Balance, ...]


class OrderManager:
    """Places, tracks, cancels and reconciles orders on one venue.

    ``mode`` is stored with every order (paper or live). ``sleep`` is the pause between
    attempts (tests pass a recorder); ``max_attempts`` bounds both sends and lookups;
    ``request_timeout_s`` is how long a venue call may take before its answer counts as lost.
    """

    def __init__(self, venue: TradingVenue, store: Store, bus: EventBus, risk: RiskCheck, *,
                 mode: TradingMode, clock: Clock | None = None, sleep: Sleep = asyncio.sleep,
                 max_attempts: int = 4, backoff_s: float = 0.5,
                 request_timeout_s: float = 30.0,
                 new_id: Callable[[], str] = new_client_order_id) -> None:
        if max_attempts < 1:
            raise InvalidArgument("max_attempts must be at least 1")
        self.venue = venue
        self.store = store
        self.bus = bus
        self.risk = risk
        self.mode = mode
        self._clock: Clock = clock or SystemClock()
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._timeout_s = request_timeout_s
        self._new_id = new_id
        self._instruments: dict[str, Instrument] = {}
        self._prices: dict[str, float] = {}
        self._book = PositionBook(venue.id)
        self._peak_equity = 0.0
        self._day: tuple[int, float] | None = None
        #: Client order ids being submitted right now (their store state is not settled).
        self._placing: set[str] = set()

    # --- start-up ---------------------------------------------------------------------------

    async def start(self) -> ReconcileReport:
        """Load the venue's instruments and bring the store into agreement with the venue."""
        instruments = await self._call(self.venue.load_instruments())
        self._instruments = {i.symbol: i for i in instruments}
        return await self.reconcile()

    async def reconcile(self) -> ReconcileReport:
        """Fetch open orders, fills and balances from the venue and settle the store on them.

        Stored orders still open or pending are looked up one by one: a pending order the
        venue never received is marked rejected, an open one it no longer lists canceled.
        Open orders with our prefix the store does not know are adopted; fills of known
        orders missing from the store are added. Fills of orders placed elsewhere are
        counted, not stored: they belong to no order of ours.
        """
        # Fills found below close trades against the positions the store already holds.
        self._rebuild_positions()
        stored = [r for r in self.store.orders.orders(venue=self.venue.id, open_only=True)
                  if r.order.client_order_id not in self._placing]
        changed = 0
        for record in stored:
            before = record.order
            after = await self._refresh_order(before)
            changed += after != before
        known = {r.order.client_order_id for r in self.store.orders.orders(venue=self.venue.id)}
        adopted = 0
        for order in await self._call(self.venue.fetch_open_orders()):
            if order.client_order_id in known or not order.client_order_id.startswith(
                    CLIENT_ID_PREFIX):
                continue
            self.store.orders.add(order, mode=self.mode, strategy=EXTERNAL,
                                  reason="found open on the venue at start-up",
                                  now_ms=self._clock.now_ms())
            known.add(order.client_order_id)
            await self._absorb(order, previous=None)
            adopted += 1
        symbols = {r.order.symbol for r in self.store.orders.orders(venue=self.venue.id)}
        added, foreign = await self._collect_fills(symbols)
        balances = tuple(await self._call(self.venue.fetch_balances()))
        self.store.orders.set_balances(self.venue.id, balances, now_ms=self._clock.now_ms())
        self._rebuild_positions()
        return ReconcileReport(len(stored), changed, adopted, added, foreign, balances)

    # --- placing ----------------------------------------------------------------------------

    def update_price(self, symbol: str, price: float) -> None:
        """The latest market price of ``symbol``, used to value positions for the risk check."""
        if math.isfinite(price) and price > 0:
            self._prices[symbol] = price

    async def preview(self, intent: OrderIntent, *,
                      prices: Mapping[str, float] | None = None) -> Preview:
        """The risk manager's verdict on ``intent`` and the exact request that would be
        sent (amount rounded to the lot, prices to the tick), without sending anything or
        publishing an event: what an order ticket shows before the user confirms."""
        for symbol, price in (prices or {}).items():
            self.update_price(symbol, price)
        instrument = self._instrument(intent.symbol)
        account = await self.snapshot(intent.symbol, intent.created_at)
        decision = self.risk.check(intent, account)
        if not decision.approved:
            return Preview(decision, None)
        request, problem = self._request(intent, decision.amount, instrument)
        if request is None:
            return Preview(RiskDecision.reject(problem), None)
        return Preview(decision, request)

    async def submit(self, intent: OrderIntent, *, strategy: str = MANUAL,
                     prices: Mapping[str, float] | None = None) -> Submission:
        """Risk-check ``intent`` and, when approved, place it on the venue.

        ``strategy`` names who made the intent (``manual`` for the user). ``prices`` updates
        the marks used to value the account first. Returns the order in the state the venue
        left it in, or no order when the risk manager refused (an :class:`IntentRejected`
        has then been published).
        """
        preview = await self.preview(intent, prices=prices)
        decision, request = preview.decision, preview.request
        if request is None:
            self.bus.publish(IntentRejected(intent, decision.reason))
            return Submission(None, decision)
        # While it is on its way the venue may not know it yet: a sync or reconciliation
        # meanwhile must not take "not found" for "never arrived" (see _placing).
        self._placing.add(request.client_order_id)
        try:
            return await self._send(request, intent, strategy, decision)
        finally:
            self._placing.discard(request.client_order_id)

    async def _send(self, request: OrderRequest, intent: OrderIntent, strategy: str,
                    decision: RiskDecision) -> Submission:
        pending = Order(
            client_order_id=request.client_order_id, venue=self.venue.id,
            symbol=request.symbol, side=request.side, type=request.type,
            amount=request.amount, created_at=self._clock.now_ms(), price=request.price,
            stop_price=request.stop_price, time_in_force=request.time_in_force)
        self.store.orders.add(pending, mode=self.mode, strategy=strategy,
                              reason=intent.reason, now_ms=pending.created_at,
                              take_profit=request.take_profit, stop_loss=request.stop_loss,
                              trailing_stop_pct=request.trailing_stop_pct)
        self.bus.publish(OrderUpdated(pending))
        return Submission(await self._place(request, pending), decision)

    async def cancel(self, client_order_id: str) -> Order:
        """Cancel one of our open orders; returns its final state (it may have filled)."""
        record = self.store.orders.get(client_order_id)
        if record is None or record.order.venue != self.venue.id:
            raise InvalidArgument(f"no order {client_order_id} on {self.venue.display_name}")
        order = record.order
        if order.status.is_final:
            raise InvalidArgument(f"order {client_order_id} is already {order.status.value}")
        try:
            answer = await self._call(self.venue.cancel_order(order.symbol, client_order_id))
        except OrderNotFound:
            found = await self._call(self.venue.fetch_order(order.symbol, client_order_id))
            if found is None:
                return self._finish(order, OrderStatus.CANCELED,
                                    "the venue has no such order (it never arrived)")
            answer = found
        return await self._absorb(answer, previous=order)

    async def close_position(self, symbol: str, *, strategy: str = MANUAL,
                             reason: str = "close position") -> Submission:
        """Sell the whole long position in ``symbol`` at market, canceling its open sells
        first so that what they hold can be sold."""
        position = self._book.position(symbol)
        if position.amount <= 0:
            raise InvalidArgument(f"no open {symbol} position to close")
        if self.is_dust(position):
            raise InvalidArgument(f"the {position.amount} {symbol.split('/')[0]} left is below"
                                  " the smallest order the venue takes: it cannot be sold"
                                  " on its own (dust)")
        for record in self.store.orders.orders(venue=self.venue.id, symbol=symbol,
                                               open_only=True):
            if record.order.side is OrderSide.SELL:
                await self.cancel(record.order.client_order_id)
        instrument = self._instrument(symbol)
        base = next((b for b in await self._call(self.venue.fetch_balances())
                     if b.currency == instrument.base), None)
        amount = min(position.amount, base.free if base else position.amount)
        if amount <= 0:
            raise InvalidArgument(f"no free {instrument.base} to sell")
        intent = OrderIntent(symbol, OrderSide.SELL, self._clock.now_ms(),
                             amount=float(amount), reduce_only=True, reason=reason)
        return await self.submit(intent, strategy=strategy)

    async def sync(self, symbols: Iterable[str] | None = None) -> list[Order]:
        """Ask the venue about every open order (of ``symbols``) and store what changed,
        including orders the venue made for us: protective exits attached to an entry."""
        wanted = None if symbols is None else set(symbols)
        changed = []
        for record in self.store.orders.orders(venue=self.venue.id, open_only=True):
            if wanted is not None and record.order.symbol not in wanted:
                continue
            if record.order.client_order_id in self._placing:
                continue  # submit settles it
            after = await self._refresh_order(record.order)
            if after != record.order:
                changed.append(after)
        # Fills of an order whose own fetch failed belong to no position yet: look where
        # orders changed or where the caller saw fills, not only where something is held.
        held = {p.symbol for p in self._book.positions()}
        await self._collect_fills(held | {o.symbol for o in changed} if wanted is None
                                  else wanted)
        return changed

    async def _collect_fills(self, symbols: Iterable[str]) -> tuple[int, int]:
        """Store the venue's fills of ``symbols`` the store lacks; (added, foreign).

        A fill of an order the store does not know is adopted with its order when the
        order's id is one of ours plus a suffix (an exit the venue attached to our entry);
        any other is foreign and left out.
        """
        added = foreign = 0
        for symbol in sorted(symbols):
            stored_fills = self.store.orders.fills(venue=self.venue.id, symbol=symbol)
            since = stored_fills[-1].timestamp if stored_fills else None
            have = {f.trade_id for f in stored_fills}
            fresh = [f for f in await self._call(self.venue.fetch_fills(symbol, since))
                     if f.trade_id not in have]
            for client_order_id in dict.fromkeys(f.client_order_id for f in fresh):
                if self.store.orders.get(client_order_id) is None:
                    await self._adopt_derived(symbol, client_order_id)
            ours = [f for f in fresh if self.store.orders.get(f.client_order_id) is not None]
            foreign += len(fresh) - len(ours)
            stored = self._store_fills(None, ours)
            for fill in stored:
                self.bus.publish(OrderFilled(fill))
            added += len(stored)
        return added, foreign

    async def _adopt_derived(self, symbol: str, client_order_id: str) -> None:
        parent_id, _, suffix = client_order_id.rpartition("-")
        parent = self.store.orders.get(parent_id) if parent_id and suffix else None
        if parent is None:
            return
        order = await self._call(self.venue.fetch_order(symbol, client_order_id))
        if order is None:
            return
        self.store.orders.add(order, mode=parent.mode, strategy=parent.strategy,
                              reason=f"protective exit of {parent_id}",
                              now_ms=self._clock.now_ms())
        self.bus.publish(OrderUpdated(order))

    # --- reading ----------------------------------------------------------------------------

    def positions(self) -> list[Position]:
        """Open positions on this venue, from the stored fills."""
        return self._book.positions()

    def position(self, symbol: str) -> Position:
        return self._book.position(symbol)

    def is_dust(self, position: Position) -> bool:
        """Whether ``position`` is too small to sell: below the pair's lot or minimum
        amount, or worth less than its minimum order value at the last price. Exchanges
        that take the buy's fee in the coin bought leave such remainders after a sell."""
        instrument = self._instruments.get(position.symbol)
        if instrument is None or position.amount <= 0:
            return False
        sellable = instrument.round_amount(position.amount)
        if sellable <= 0 or sellable < instrument.min_amount:
            return True
        price = self._prices.get(position.symbol)
        return price is not None and float(sellable) * price < float(instrument.min_notional)

    def open_orders(self) -> list[Order]:
        return [r.order for r in self.store.orders.orders(venue=self.venue.id, open_only=True)]

    async def snapshot(self, symbol: str, time_ms: int | None = None) -> AccountSnapshot:
        """The account in ``symbol``'s quote currency, as the risk manager judges it.

        Positions are marked at the latest price given (:meth:`update_price`), else at their
        average price. The peak and the 00:00 UTC equity are those this manager has seen
        since it started.
        """
        now = self._clock.now_ms() if time_ms is None else time_ms
        quote = self._instrument(symbol).quote
        balances = {b.currency: b for b in await self._call(self.venue.fetch_balances())}
        cash_balance = balances.get(quote)
        cash = float(cash_balance.free) if cash_balance else 0.0
        equity = float(cash_balance.total) if cash_balance else 0.0
        exposure: dict[str, float] = {}
        for position in self._book.positions():
            instrument = self._instruments.get(position.symbol)
            if instrument is None or instrument.quote != quote:
                continue
            price = self._prices.get(position.symbol, float(position.average_price))
            exposure[position.symbol] = float(position.amount) * price
            equity += exposure[position.symbol]
        self._peak_equity = max(self._peak_equity, equity)
        day = now - now % DAY_MS
        if self._day is None or self._day[0] != day:
            self._day = (day, equity)
        entries = {f.client_order_id for f in self.store.orders.fills(
            venue=self.venue.id, since_ms=day) if f.side is OrderSide.BUY}
        return AccountSnapshot(
            time_ms=now, equity=equity, cash=cash, peak_equity=self._peak_equity,
            day_start_equity=self._day[1], prices=dict(self._prices), exposure=exposure,
            open_trades=sum(1 for p in self._book.positions()
                            if p.amount > 0 and not self.is_dust(p)),
            trades_today=len(entries))

    # --- internals --------------------------------------------------------------------------

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            known = ", ".join(sorted(self._instruments)) or "none (not started)"
            raise InvalidArgument(f"{symbol} is not traded on {self.venue.display_name};"
                                  f" available: {known}")
        return instrument

    def _request(self, intent: OrderIntent, amount: float, instrument: Instrument
                 ) -> tuple[OrderRequest | None, str]:
        """The venue request for an approved intent, rounded the venue's way, or why not."""
        size = instrument.round_amount(to_decimal(amount))
        if size <= 0 or size < instrument.min_amount:
            smallest = max(instrument.min_amount, instrument.lot_size)
            return None, (f"{amount:.8g} {instrument.base} is below the smallest {intent.symbol}"
                          f" order of {smallest}")

        def price(value: float | None) -> Decimal | None:
            if value is None:
                return None
            return instrument.round_price(to_decimal(value))

        request = OrderRequest(
            client_order_id=self._new_id(), symbol=intent.symbol, side=intent.side,
            type=intent.type, amount=size, price=price(intent.price),
            stop_price=price(intent.stop_price), take_profit=price(intent.take_profit),
            stop_loss=price(intent.stop_loss),
            trailing_stop_pct=(None if intent.trailing_stop_pct is None
                               else to_decimal(intent.trailing_stop_pct)))
        reference = request.price or request.stop_price or (
            to_decimal(self._prices[intent.symbol]) if intent.symbol in self._prices
            else None)
        if (reference is not None and instrument.min_notional
                and size * reference < instrument.min_notional):
            value = (size * reference).quantize(Decimal("0.01"), ROUND_DOWN)
            return None, (f"order value {value} {instrument.quote} is below the"
                          f" {intent.symbol} minimum of {instrument.min_notional}"
                          f" {instrument.quote}")
        if intent.type is OrderType.MARKET and request.price is not None:
            return None, "a market order takes no limit price"
        return request, ""

    async def _call(self, call: Coroutine[Any, Any, T]) -> T:
        """A venue call whose answer counts as lost after the request timeout."""
        try:
            return await asyncio.wait_for(call, self._timeout_s)
        except TimeoutError:
            raise VenueUnavailable(
                f"{self.venue.display_name} did not answer within {self._timeout_s:g} s"
            ) from None

    async def _place(self, request: OrderRequest, pending: Order) -> Order:
        attempt = 0
        while True:
            attempt += 1
            try:
                placed = await self._call(self.venue.submit_order(request))
            except VenueError as error:
                if not error.retryable:
                    return self._finish(pending, OrderStatus.REJECTED, str(error))
                failure = error
            else:
                return await self._absorb(placed, previous=pending)
            log.warning("submit of %s failed (attempt %d): %s", request.client_order_id,
                        attempt, failure)
            # The venue may have taken the order before the answer was lost: look first.
            found, confirmed_absent = await self._look_up(request)
            if found is not None:
                return await self._absorb(found, previous=pending)
            if not confirmed_absent:
                message = (f"could not tell whether order {request.client_order_id} reached"
                           f" {self.venue.display_name} ({failure}); it stays pending and is"
                           " checked again at the next refresh or start")
                self.bus.publish(ErrorRaised("orders", message))
                return pending
            if attempt >= self._max_attempts:
                return self._finish(pending, OrderStatus.REJECTED,
                                    f"{failure} (not placed after {attempt} attempts)")
            await self._sleep(self._delay(attempt, failure))

    async def _look_up(self, request: OrderRequest) -> tuple[Order | None, bool]:
        """The order under ``request``'s client id, and whether the venue confirmed it has
        none (False: the lookup itself kept failing)."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                found = await self._call(self.venue.fetch_order(request.symbol,
                                                                request.client_order_id))
            except VenueError as error:
                if not error.retryable or attempt == self._max_attempts:
                    return None, False
                await self._sleep(self._delay(attempt, error))
                continue
            return found, found is None
        return None, False

    def _delay(self, attempt: int, error: VenueError) -> float:
        delay = self._backoff_s * 2.0 ** (attempt - 1)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, float(error.retry_after))
        return delay

    async def _refresh_order(self, order: Order) -> Order:
        try:
            answer = await self._call(self.venue.fetch_order(order.symbol,
                                                             order.client_order_id))
        except VenueError as error:
            self.bus.publish(ErrorRaised("orders", f"cannot check order"
                                                   f" {order.client_order_id}: {error}"))
            return order
        if answer is None:
            if order.status is OrderStatus.PENDING:
                return self._finish(order, OrderStatus.REJECTED,
                                    "never reached the venue (the answer to the submit was"
                                    " lost and the venue has no such order)")
            return self._finish(order, OrderStatus.CANCELED, "the venue no longer lists it")
        return await self._absorb(answer, previous=order)

    def _finish(self, order: Order, status: OrderStatus, reason: str) -> Order:
        final = order.with_status(status, reject_reason=reason)
        self.store.orders.record(final, now_ms=self._clock.now_ms())
        self.bus.publish(OrderUpdated(final))
        return final

    async def _absorb(self, order: Order, *, previous: Order | None) -> Order:
        """Store ``order``'s venue state and its new fills, then publish both."""
        fills: Sequence[Fill] = ()
        if order.filled > 0 and (previous is None or order.filled != previous.filled):
            try:
                everything = await self._call(self.venue.fetch_fills(
                    order.symbol, order.created_at - CLOCK_SKEW_MS))
            except VenueError as error:
                # The order's state is stored now; its fills follow at the next sync.
                self.bus.publish(ErrorRaised("orders", f"cannot fetch the fills of"
                                                       f" {order.client_order_id}: {error}"))
            else:
                fills = [f for f in everything if f.client_order_id == order.client_order_id]
        if previous is not None and order == previous and not fills:
            return order
        added = self._store_fills(order, fills)
        if previous is None or order != previous:
            self.bus.publish(OrderUpdated(order))
        for fill in added:
            self.bus.publish(OrderFilled(fill))
        return order

    def _store_fills(self, order: Order | None, fills: Sequence[Fill]) -> list[Fill]:
        """Store the order's state with the fills not stored yet and the trades they close."""
        stored = {f.trade_id
                  for client_order_id in {f.client_order_id for f in fills}
                  for f in self.store.orders.fills(venue=self.venue.id,
                                                   client_order_id=client_order_id)}
        new = sorted((f for f in fills if f.trade_id not in stored),
                     key=lambda f: f.timestamp)
        closed = [t for f in new if (t := self._book.apply(f)) is not None]
        try:
            return self.store.orders.record(order, new, closed, now_ms=self._clock.now_ms())
        except BaseException:
            self._rebuild_positions()
            raise

    def _rebuild_positions(self) -> None:
        self._book, _ = build_positions(self.venue.id,
                                        self.store.orders.fills(venue=self.venue.id))

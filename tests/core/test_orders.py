"""The order manager: risk check, persistence before events, lookup before any resend,
rejections, cancel, close, reconciliation; on a paper venue with injected faults."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from terminal.core.bus import EventBus
from terminal.core.clock import ManualClock
from terminal.core.errors import (
    InsufficientFunds,
    InvalidArgument,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from terminal.core.events import ErrorRaised, IntentRejected, OrderFilled, OrderUpdated
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.intents import OrderIntent
from terminal.core.model import (
    Balance,
    Candle,
    Fill,
    Instrument,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
)
from terminal.core.orders import OrderManager
from terminal.core.ports import OrderRequest
from terminal.core.risk import RiskLimits, RiskManager
from terminal.core.storage import Store
from terminal.core.storage.orders import TradeFilter, TradingMode
from terminal.exchange.paper import PaperVenue
from tests.exchange.paper_helpers import SYMBOL, FixtureMarket, instrument
from tests.factories import START_MS

MINUTE = 60_000
PRECISION = instrument(Decimal("0.01"), Decimal("0.0001"), min_amount=Decimal("0.0001"),
                       min_notional=Decimal(5))


class FaultyVenue:
    """A paper venue whose calls fail as scripted: ``faults[name]`` is a list of actions
    taken on successive calls (an exception to raise before the call, ``"after"`` to make
    the call and then lose its answer, None to pass)."""

    def __init__(self, inner: PaperVenue) -> None:
        self.inner = inner
        self.faults: dict[str, list[Any]] = {}
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def display_name(self) -> str:
        return self.inner.display_name

    async def _run(self, name: str, call: Any) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        plan = self.faults.get(name)
        action = plan.pop(0) if plan else None
        if isinstance(action, BaseException):
            call.close()
            raise action
        result = await call
        if action == "after":
            raise VenueUnavailable("connection reset while reading the answer")
        return result

    async def load_instruments(self) -> Sequence[Instrument]:
        return await self._run("load_instruments", self.inner.load_instruments())

    async def fetch_balances(self) -> Sequence[Balance]:
        return await self._run("fetch_balances", self.inner.fetch_balances())

    async def submit_order(self, request: OrderRequest) -> Order:
        return await self._run("submit_order", self.inner.submit_order(request))

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        return await self._run("cancel_order", self.inner.cancel_order(symbol, client_order_id))

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order | None:
        return await self._run("fetch_order", self.inner.fetch_order(symbol, client_order_id))

    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        return await self._run("fetch_open_orders", self.inner.fetch_open_orders(symbol))

    async def fetch_fills(self, symbol: str, since_ms: int | None = None) -> Sequence[Fill]:
        return await self._run("fetch_fills", self.inner.fetch_fills(symbol, since_ms))


class Harness:
    def __init__(self, store: Store, *, limits: RiskLimits | None = None,
                 cash: str = "10000") -> None:
        self.clock = ManualClock(START_MS + 30_000)
        self.paper = PaperVenue(store, FixtureMarket(instruments=[PRECISION]),
                                fill_model=FillModel(FeeSchedule(0.001, 0.001)),
                                clock=self.clock, starting_cash=Decimal(cash))
        self.venue = FaultyVenue(self.paper)
        self.bus = EventBus()
        self.sleeps: list[float] = []
        self.events: list[object] = []
        self.ids = iter(f"trm-{n:04d}" for n in range(1000))
        for kind in (OrderUpdated, OrderFilled, IntentRejected, ErrorRaised):
            self.bus.subscribe(kind, self.events.append)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.manager = OrderManager(self.venue, store, self.bus,
                                    RiskManager(limits or RiskLimits()),
                                    mode=TradingMode.PAPER, clock=self.clock, sleep=sleep,
                                    new_id=lambda: next(self.ids))
        self.store = store

    def start(self, price: float = 100.0, *, live: bool = True) -> None:
        asyncio.run(self.paper.open())
        self.tick(price, live=live)
        asyncio.run(self.manager.start())

    def tick(self, price: float, *, live: bool = True, minute: int = 0) -> list[Fill]:
        return self.paper.observe(SYMBOL, Candle(START_MS + minute * MINUTE, price, price,
                                                 price, price, 10.0), closed=not live)

    def buy(self, amount: float | None = 1.0, **extra: Any) -> Any:
        intent = OrderIntent(SYMBOL, OrderSide.BUY, self.clock.now_ms(), amount=amount,
                             **extra)
        return asyncio.run(self.manager.submit(intent, prices={SYMBOL: 100.0}))

    def venue_orders(self) -> list[Order]:
        return [o for o in (asyncio.run(self.paper.fetch_order(SYMBOL, f"trm-{n:04d}"))
                            for n in range(10)) if o is not None]


def test_an_approved_intent_is_stored_sent_filled_and_published_in_that_order(
        store: Store) -> None:
    h = Harness(store)
    h.start()
    seen: list[tuple[str, str | None]] = []

    def check_stored(event: object) -> None:
        # Every event describes a state the store already holds.
        if isinstance(event, OrderUpdated):
            record = store.orders.get(event.order.client_order_id)
            assert record is not None and record.order == event.order
            seen.append(("order", event.order.status.value))
        elif isinstance(event, OrderFilled):
            assert event.fill in store.orders.fills(client_order_id=event.fill.client_order_id)
            seen.append(("fill", None))

    h.bus.subscribe(OrderUpdated, check_stored)
    h.bus.subscribe(OrderFilled, check_stored)
    submission = h.buy(1.5)
    order = submission.order
    assert order is not None and order.status is OrderStatus.FILLED
    assert order.client_order_id == "trm-0000" and order.amount == Decimal("1.5")
    assert seen == [("order", "pending"), ("order", "filled"), ("fill", None)]
    record = store.orders.get("trm-0000")
    assert record is not None and record.strategy == "manual"
    assert record.mode is TradingMode.PAPER
    position = h.manager.position(SYMBOL)
    # Fee-aware average: 150 paid plus 0.15 fee for 1.5 units.
    assert position.amount == Decimal("1.5")
    assert position.average_price == Decimal("100.1")


def test_a_refused_intent_publishes_the_reason_and_sends_nothing(store: Store) -> None:
    h = Harness(store, limits=RiskLimits(max_open_trades=1, min_position_quote=500))
    h.start()
    submission = h.buy(1.0)
    assert submission.order is None
    assert "below the minimum position size" in (submission.rejected_reason or "")
    (event,) = [e for e in h.events if isinstance(e, IntentRejected)]
    assert event.reason == submission.rejected_reason
    assert h.venue.calls.get("submit_order", 0) == 0
    assert store.orders.orders() == []


def test_amounts_are_rounded_down_to_the_lot_and_dust_is_refused(store: Store) -> None:
    h = Harness(store)
    h.start()
    order = h.buy(0.123456789).order
    assert order is not None and order.amount == Decimal("0.1234")
    submission = h.buy(0.00001)
    assert submission.order is None and "below the smallest" in (submission.rejected_reason or "")


def test_a_lost_answer_is_looked_up_and_never_resent(store: Store) -> None:
    h = Harness(store)
    h.start()
    h.venue.faults["submit_order"] = ["after"]
    order = h.buy(1.0).order
    assert order is not None and order.status is OrderStatus.FILLED
    assert h.venue.calls["submit_order"] == 1
    assert h.venue.calls["fetch_order"] >= 1
    assert len(h.venue_orders()) == 1
    assert len(store.orders.fills()) == 1
    assert h.sleeps == []


def test_fills_whose_fetch_failed_are_collected_at_the_next_sync(store: Store) -> None:
    h = Harness(store)
    h.start()
    h.venue.faults["fetch_fills"] = [VenueUnavailable("timeout while fetching fills")]
    order = h.buy(1.0).order
    assert order is not None and order.status is OrderStatus.FILLED
    assert store.orders.fills() == [] and h.manager.position(SYMBOL).amount == 0
    asyncio.run(h.manager.sync([SYMBOL]))
    (fill,) = store.orders.fills()
    assert fill.client_order_id == order.client_order_id
    assert h.manager.position(SYMBOL).amount == fill.amount
    assert sum(isinstance(e, OrderFilled) for e in h.events) == 1


def test_a_failed_send_is_resent_only_after_the_venue_confirms_it_has_nothing(
        store: Store) -> None:
    h = Harness(store)
    h.start()
    h.venue.faults["submit_order"] = [VenueUnavailable("502 bad gateway"),
                                      RateLimited("slow down", retry_after=7.0)]
    order = h.buy(1.0).order
    assert order is not None and order.status is OrderStatus.FILLED
    assert h.venue.calls["submit_order"] == 3
    assert h.venue.calls["fetch_order"] == 2
    # Backoff doubles from 0.5 s; the venue's Retry-After wins when longer.
    assert h.sleeps == [0.5, 7.0]
    assert len(h.venue_orders()) == 1


def test_giving_up_after_the_last_attempt_rejects_an_order_that_is_confirmed_absent(
        store: Store) -> None:
    h = Harness(store)
    h.start()
    h.venue.faults["submit_order"] = [VenueUnavailable("down")] * 4
    order = h.buy(1.0).order
    assert order is not None and order.status is OrderStatus.REJECTED
    assert "not placed after 4 attempts" in (order.reject_reason or "")
    assert h.venue_orders() == []
    assert store.orders.fills() == []
    assert h.sleeps == [0.5, 1.0, 2.0]


def test_an_order_whose_fate_is_unknown_stays_pending_until_reconciled(store: Store) -> None:
    h = Harness(store)
    h.start()
    down = VenueUnavailable("timeout")
    h.venue.faults["submit_order"] = ["after"]
    h.venue.faults["fetch_order"] = [down, down, down, down]
    order = h.buy(1.0).order
    assert order is not None and order.status is OrderStatus.PENDING
    assert any(isinstance(e, ErrorRaised) and "stays pending" in e.message for e in h.events)
    stored = store.orders.get(order.client_order_id)
    assert stored is not None and stored.order.status is OrderStatus.PENDING
    report = asyncio.run(h.manager.reconcile())
    assert report.orders_changed == 1
    settled = store.orders.get(order.client_order_id)
    assert settled is not None and settled.order.status is OrderStatus.FILLED
    assert len(store.orders.fills()) == 1 and len(h.venue_orders()) == 1


def test_a_sync_or_reconciliation_while_an_order_is_on_its_way_leaves_it_alone(
        store: Store) -> None:
    """A live account is synced every few seconds: one that lands while a submit waits for
    the venue must not take the order the venue does not know yet for one that never came."""
    h = Harness(store)
    h.start()
    release = asyncio.Event()
    send = h.venue.submit_order

    async def slow_submit(request: OrderRequest) -> Order:
        await release.wait()
        return await send(request)

    h.venue.submit_order = slow_submit  # type: ignore[method-assign]

    async def scenario() -> tuple[OrderStatus, OrderStatus, Any]:
        intent = OrderIntent(SYMBOL, OrderSide.BUY, h.clock.now_ms(), amount=1.0)
        placing = asyncio.create_task(h.manager.submit(intent, prices={SYMBOL: 100.0}))
        while not store.orders.orders(open_only=True):
            await asyncio.sleep(0)
        [record] = store.orders.orders(open_only=True)
        await h.manager.sync()
        after_sync = store.orders.get(record.order.client_order_id).order.status
        await h.manager.reconcile()
        after_reconcile = store.orders.get(record.order.client_order_id).order.status
        release.set()
        return after_sync, after_reconcile, await placing

    after_sync, after_reconcile, submission = asyncio.run(scenario())
    assert (after_sync, after_reconcile) == (OrderStatus.PENDING, OrderStatus.PENDING)
    assert submission.order.status is OrderStatus.FILLED
    assert len(h.venue_orders()) == 1


def test_a_pending_order_the_venue_never_got_is_rejected_at_reconciliation(
        store: Store) -> None:
    h = Harness(store)
    h.start()
    down = VenueUnavailable("timeout")
    h.venue.faults["submit_order"] = [down]
    h.venue.faults["fetch_order"] = [down, down, down, down]
    order = h.buy(1.0).order
    assert order is not None and order.status is OrderStatus.PENDING
    asyncio.run(h.manager.reconcile())
    settled = store.orders.get(order.client_order_id)
    assert settled is not None and settled.order.status is OrderStatus.REJECTED
    assert "never reached the venue" in (settled.order.reject_reason or "")


@pytest.mark.parametrize("error", [InsufficientFunds("balance too low for this order")])
def test_a_non_retryable_error_rejects_the_order_with_the_reason(store: Store,
                                                                 error: VenueError) -> None:
    h = Harness(store)
    h.start()
    h.venue.faults["submit_order"] = [error]
    order = h.buy(1.0).order
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reject_reason == "balance too low for this order"
    assert h.venue.calls["submit_order"] == 1 and h.sleeps == []
    assert store.orders.fills() == []


def test_a_real_venue_refusal_is_never_stored_as_filled(store: Store) -> None:
    h = Harness(store)
    h.start()
    intent = OrderIntent(SYMBOL, OrderSide.SELL, h.clock.now_ms(), amount=1.0)
    order = asyncio.run(h.manager.submit(intent)).order
    # The risk manager passes exits; the venue refuses to sell what the account lacks.
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reject_reason == "cannot sell 1 BTC: 0 free"
    assert store.orders.fills() == [] and h.manager.positions() == []
    stored = store.orders.get(order.client_order_id)
    assert stored is not None and stored.order.status is OrderStatus.REJECTED


def test_a_remainder_below_the_smallest_order_is_dust_not_an_open_trade(store: Store) -> None:
    h = Harness(store, limits=RiskLimits(max_open_trades=1))
    h.start()
    h.buy(1.0)
    sell = OrderIntent(SYMBOL, OrderSide.SELL, h.clock.now_ms(), amount=0.96)
    asyncio.run(h.manager.submit(sell, prices={SYMBOL: 100.0}))
    [left] = h.manager.positions()
    assert left.amount == Decimal("0.04")  # worth 4 USDT: the pair's minimum order is 5
    assert h.manager.is_dust(left)
    with pytest.raises(InvalidArgument, match="cannot be sold on its own"):
        asyncio.run(h.manager.close_position(SYMBOL))
    # Dust is no open trade: a new entry is not refused for max_open_trades=1.
    assert asyncio.run(h.manager.snapshot(SYMBOL)).open_trades == 0
    assert h.buy(1.0).order.status is OrderStatus.FILLED
    assert not h.manager.is_dust(h.manager.position(SYMBOL))


def test_cancel_and_close_position(store: Store) -> None:
    h = Harness(store)
    h.start()
    h.buy(2.0)
    resting = h.buy(1.0, type=OrderType.LIMIT, price=90.0).order
    assert resting is not None and resting.status is OrderStatus.OPEN
    canceled = asyncio.run(h.manager.cancel(resting.client_order_id))
    assert canceled.status is OrderStatus.CANCELED
    with pytest.raises(InvalidArgument, match="already canceled"):
        asyncio.run(h.manager.cancel(resting.client_order_id))
    h.tick(110.0, minute=1)
    closed = asyncio.run(h.manager.close_position(SYMBOL)).order
    assert closed is not None and closed.status is OrderStatus.FILLED
    assert closed.amount == Decimal(2) and h.manager.positions() == []
    (trade,) = store.orders.trades()
    assert trade.trade.amount == Decimal(2) and trade.strategy == "manual"
    # 220 received less 0.22 fee, against 200 paid plus 0.2 fee.
    assert trade.trade.pnl == Decimal("19.58")
    totals = store.orders.totals(TradeFilter(symbol=SYMBOL, mode=TradingMode.PAPER))
    assert (totals.count, totals.wins, totals.pnl) == (1, 1, Decimal("19.58"))
    assert store.orders.totals(TradeFilter(mode=TradingMode.LIVE)).count == 0
    with pytest.raises(InvalidArgument, match="no open BTC/USDT position"):
        asyncio.run(h.manager.close_position(SYMBOL))


def test_reconcile_adopts_orders_and_fills_the_store_missed(store: Store) -> None:
    h = Harness(store)
    h.start()
    h.buy(1.0)
    # Placed on the venue behind the manager's back (as if the terminal crashed after
    # sending and before storing): an open limit order and a filled market order.
    asyncio.run(h.paper.submit_order(OrderRequest("trm-lost", SYMBOL, OrderSide.BUY,
                                                  OrderType.LIMIT, Decimal(1),
                                                  price=Decimal(80))))
    asyncio.run(h.paper.submit_order(OrderRequest("elsewhere", SYMBOL, OrderSide.BUY,
                                                  OrderType.MARKET, Decimal(1))))
    report = asyncio.run(h.manager.reconcile())
    assert report.orders_adopted == 1 and report.foreign_fills == 1
    adopted = store.orders.get("trm-lost")
    assert adopted is not None and adopted.strategy == "external"
    assert adopted.order.status is OrderStatus.OPEN
    assert {b.currency for b in store.orders.balances("paper")} == {"USDT", "BTC"}


def test_a_preview_shows_the_verdict_and_request_without_sending(store: Store) -> None:
    h = Harness(store, limits=RiskLimits(max_position_quote=50))
    h.start()
    intent = OrderIntent(SYMBOL, OrderSide.BUY, h.clock.now_ms(), amount=3.0)
    preview = asyncio.run(h.manager.preview(intent, prices={SYMBOL: 100.0}))
    assert preview.decision.approved and preview.request is not None
    assert preview.request.amount == Decimal("0.5")
    assert "maximum position size" in preview.decision.adjustments[0]
    refused = asyncio.run(h.manager.preview(OrderIntent(SYMBOL, OrderSide.SELL,
                                                        h.clock.now_ms())))
    assert not refused.decision.approved and refused.request is None
    assert "nothing to close" in refused.decision.reason
    assert h.events == [] and h.venue.calls.get("submit_order", 0) == 0
    assert store.orders.orders() == []


def test_a_restarted_manager_closes_trades_against_the_stored_position(store: Store) -> None:
    h = Harness(store)
    h.start()
    h.buy(1.0)
    sell = asyncio.run(h.manager.submit(OrderIntent(SYMBOL, OrderSide.SELL, h.clock.now_ms(),
                                                    type=OrderType.LIMIT, amount=1.0,
                                                    price=110.0))).order
    assert sell is not None and sell.status is OrderStatus.OPEN
    # The terminal stops; the limit fills while it is away; a new manager starts.
    h.tick(111.0, minute=1)
    restarted = OrderManager(h.venue, store, EventBus(), RiskManager(RiskLimits()),
                             mode=TradingMode.PAPER, clock=h.clock)
    asyncio.run(restarted.start())
    (trade,) = store.orders.trades()
    # Bought at 100 plus 0.1 fee; the limit was below the next price, so it sold at 111
    # less 0.111 fee.
    assert trade.trade.entry_price == Decimal(100) and trade.trade.exit_price == Decimal(111)
    assert trade.trade.pnl == Decimal("10.789")
    assert restarted.positions() == []

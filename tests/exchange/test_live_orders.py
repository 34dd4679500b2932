"""Live trading end to end: the order manager, the ccxt venue and the exchange emulator;
and paper trading on the emulator's prices.

The ledger of the emulator is the truth. After every scenario each of our stored orders exists
there exactly once with the same state, the stored fills are exactly the ledger's trades, and
nothing refused or never placed is stored as filled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest

from terminal.core.bus import EventBus
from terminal.core.clock import ManualClock
from terminal.core.events import ErrorRaised
from terminal.core.intents import OrderIntent
from terminal.core.model import Order, OrderSide, OrderStatus, OrderType, Timeframe, to_decimal
from terminal.core.orders import OrderManager
from terminal.core.ports import OrderRequest
from terminal.core.risk import RiskLimits, RiskManager
from terminal.core.storage import Store
from terminal.core.storage.orders import TradingMode
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.exchange.paper import PaperVenue
from tests.exchange.conftest import VenueFactory
from tests.exchange.emulator import ExchangeEmulator
from tests.factories import make_series

T = TypeVar("T")
BTC = "BTC/USDT"
CREATE = "POST /api/v3/order"
QUERY = "GET /api/v3/order"
LEDGER_STATUS = {"NEW": OrderStatus.OPEN, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
                 "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
                 "EXPIRED": OrderStatus.EXPIRED}


@pytest.fixture
def market(emulator: ExchangeEmulator) -> ExchangeEmulator:
    emulator.set_candles("BTCUSDT", "1m", make_series(10))
    emulator.set_price("BTCUSDT", "30000")
    emulator.deposit("USDT", "10000")
    return emulator


async def _no_wait(_seconds: float) -> None:
    return None


def trade(store: Store, venue: CcxtVenue, bus: EventBus,
          scenario: Callable[[OrderManager], Awaitable[T]]) -> T:
    async def main() -> T:
        bus.bind_loop(asyncio.get_running_loop())
        manager = OrderManager(venue, store, bus, RiskManager(RiskLimits()),
                               mode=TradingMode.LIVE, sleep=_no_wait, request_timeout_s=5)
        try:
            await manager.start()
            return await scenario(manager)
        finally:
            await venue.close()

    return asyncio.run(main())


def buy(amount: float, *, limit: float | None = None) -> OrderIntent:
    return OrderIntent(BTC, OrderSide.BUY, 0, type=OrderType.LIMIT if limit else OrderType.MARKET,
                       amount=amount, price=limit, reason="test")


def assert_store_agrees_with_ledger(store: Store, emulator: ExchangeEmulator) -> None:
    emulator.check_ledger()
    records = store.orders.orders(venue="binance")
    for record in records:
        order = record.order
        found = emulator.orders_with_client_id(order.client_order_id)
        if order.status is OrderStatus.REJECTED:
            assert found == [], f"{order.client_order_id} is rejected here but on the exchange"
            continue
        assert len(found) == 1, f"{order.client_order_id}: {len(found)} orders in the ledger"
        assert order.status is LEDGER_STATUS[found[0].status]
        assert order.filled == found[0].executed
        assert record.mode is TradingMode.LIVE
    ours = {r.order.client_order_id for r in records}
    assert {o.client_order_id for o in emulator.all_orders()} <= ours
    stored = sorted((f.trade_id, f.client_order_id, f.price, f.amount)
                    for f in store.orders.fills(venue="binance"))
    client_ids = {o.order_id: o.client_order_id for o in emulator.all_orders()}
    ledger = sorted((str(t.trade_id), client_ids[t.order_id], t.price, t.qty)
                    for t in emulator.ledger.trades)
    assert stored == ledger


def test_orders_through_the_manager_agree_with_the_ledger(
        tmp_path: Path, market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    bus = EventBus()
    market.inject("drop_after_accept", CREATE)

    async def scenario(manager: OrderManager) -> list[OrderStatus]:
        lost_answer = await manager.submit(buy(0.01), prices={BTC: 30000})
        resting = await manager.submit(buy(0.01, limit=29000))
        market.set_price("BTCUSDT", "28990")
        await manager.sync([BTC])
        doomed = await manager.submit(buy(0.01, limit=25000))
        assert doomed.order is not None
        cancelled = await manager.cancel(doomed.order.client_order_id)
        market.inject("insufficient", CREATE)
        refused = await manager.submit(buy(0.01), prices={BTC: 28990})
        statuses = []
        for submission in (lost_answer, resting, refused):
            assert submission.order is not None
            record = manager.store.orders.get(submission.order.client_order_id)
            assert record is not None
            statuses.append(record.order.status)
        # Binance takes a buy's fee in the coin bought: the position is what remains.
        assert manager.position(BTC).amount == sum(
            t.qty - (t.commission if t.commission_asset == "BTC" else 0)
            for t in market.ledger.trades)
        return [*statuses, cancelled.status]

    with Store.open(tmp_path) as store:
        statuses = trade(store, make_venue(), bus, scenario)
        assert statuses == [OrderStatus.FILLED, OrderStatus.FILLED, OrderStatus.REJECTED,
                            OrderStatus.CANCELED]
        assert market.calls[CREATE] == 4  # the lost answer was looked up, never resent
        (refused,) = [r for r in store.orders.orders(venue="binance")
                      if r.order.status is OrderStatus.REJECTED]
        assert "balance" in (refused.order.reject_reason or "").lower()
        assert store.orders.fills(client_order_id=refused.order.client_order_id) == []
        assert_store_agrees_with_ledger(store, market)


@pytest.mark.parametrize(("first_failed_lookup", "settled_as", "creates"), [
    # The venue's own check before sending worked: the order went out, its answer was lost.
    (2, OrderStatus.FILLED, 1),
    # Even that check failed: nothing was sent, and the exchange later confirms it.
    (1, OrderStatus.REJECTED, 0),
])
def test_an_order_of_unknown_fate_stays_pending_until_reconcile_settles_it(
        tmp_path: Path, market: ExchangeEmulator, make_venue: VenueFactory,
        first_failed_lookup: int, settled_as: OrderStatus, creates: int) -> None:
    bus = EventBus()
    errors: list[ErrorRaised] = []
    bus.subscribe(ErrorRaised, errors.append)
    market.inject("drop_after_accept", CREATE)
    market.inject("unavailable", QUERY, calls=tuple(range(first_failed_lookup, 60)))

    async def scenario(manager: OrderManager) -> tuple[OrderStatus, OrderStatus]:
        submission = await manager.submit(buy(0.01), prices={BTC: 30000})
        assert submission.order is not None
        before = submission.order.status
        market.clear_faults()
        await manager.reconcile()
        record = manager.store.orders.get(submission.order.client_order_id)
        assert record is not None
        return before, record.order.status

    with Store.open(tmp_path) as store:
        before, after = trade(store, make_venue(), bus, scenario)
        assert (before, after) == (OrderStatus.PENDING, settled_as)
        assert market.calls[CREATE] == creates
        assert any("could not tell whether order" in e.message for e in errors)
        assert_store_agrees_with_ledger(store, market)


def test_paper_trades_on_a_real_exchanges_prices_and_never_sends_it_an_order(
        tmp_path: Path, emulator: ExchangeEmulator, make_venue: VenueFactory) -> None:
    series = make_series(12, price=30000)
    emulator.set_candles("BTCUSDT", "1m", series)
    emulator.deposit("USDT", "10000")
    minute = Timeframe.M1.ms
    # Candles 0-9 have closed; the paper account first sees the exchange at that moment.
    clock = ManualClock(int(series.open_time[10]))
    exchange = make_venue()

    async def scenario() -> Order:
        try:
            with Store.open(tmp_path) as store:
                paper = PaperVenue(store, exchange, clock=clock)
                await paper.catch_up([BTC])
                order = await paper.submit_order(OrderRequest(
                    "paper-1", BTC, OrderSide.BUY, OrderType.MARKET, Decimal("0.01")))
                assert order.status is OrderStatus.OPEN  # it waits for the next price
                clock.advance(minute)
                await paper.catch_up([BTC])
                filled = await paper.fetch_order(BTC, "paper-1")
                assert filled is not None
                (fill,) = await paper.fetch_fills(BTC)
                assert fill.price == to_decimal(float(series.open[10]))
                return filled
        finally:
            await exchange.close()

    assert asyncio.run(scenario()).status is OrderStatus.FILLED
    assert emulator.calls[CREATE] == 0 and emulator.all_orders() == []

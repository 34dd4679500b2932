from __future__ import annotations

from decimal import Decimal

import pytest

from terminal.core.errors import InvalidArgument, StoreError
from terminal.core.model import Fill, Order, OrderSide, OrderStatus, OrderType
from terminal.core.portfolio import PositionBook, build_positions
from terminal.core.storage import Store
from terminal.core.storage.orders import TradeFilter, TradingMode

D = Decimal


def fill(trade_id: str, side: OrderSide, price: str, amount: str, fee: str = "0",
         fee_currency: str = "USDT", time: int = 0, order: str = "o1",
         symbol: str = "BTC/USDT") -> Fill:
    return Fill(trade_id, order, "paper", symbol, side, D(price), D(amount), D(fee),
                fee_currency, time)


def test_average_price_includes_entry_fees_and_pnl_is_net() -> None:
    book = PositionBook("paper")
    assert book.apply(fill("1", OrderSide.BUY, "100", "1", "0.1", time=1)) is None
    assert book.apply(fill("2", OrderSide.BUY, "110", "1", "0.11", time=2)) is None
    position = book.position("BTC/USDT")
    assert position.amount == 2 and position.average_price == D("105.105")
    closed = book.apply(fill("3", OrderSide.SELL, "120", "0.5", "0.06", time=3))
    assert closed is not None
    assert (closed.amount, closed.entry_price, closed.entry_time) == (D("0.5"), D(105), 1)
    assert closed.entry_fee == D("0.0525") and closed.exit_fee == D("0.06")
    assert closed.pnl == D("7.5") - D("0.0525") - D("0.06")
    # What is left keeps its cost per unit.
    assert book.position("BTC/USDT").average_price == D("105.105")
    last = book.apply(fill("4", OrderSide.SELL, "100", "1.5", "0.15", time=4))
    assert last is not None and book.positions() == []
    flat = book.position("BTC/USDT")
    assert flat.realized_pnl == closed.pnl + last.pnl
    # Everything paid and received, fees included, is what was realized.
    assert flat.realized_pnl == (D(60) + D(150) - D("0.06") - D("0.15")) - (
        D(210) + D("0.21"))


def test_a_fee_taken_in_the_base_currency_shrinks_the_amount_not_the_cost() -> None:
    book = PositionBook("binance")
    book.apply(fill("1", OrderSide.BUY, "100", "1", "0.001", fee_currency="BTC"))
    position = book.position("BTC/USDT")
    assert position.amount == D("0.999")
    assert position.average_price * position.amount == D(100)


def test_a_sell_beyond_the_holding_closes_it_and_opens_a_short() -> None:
    book, closed = build_positions("paper", [
        fill("1", OrderSide.BUY, "100", "1"), fill("2", OrderSide.SELL, "90", "3")])
    assert [c.pnl for c in closed] == [D(-10)]
    position = book.position("BTC/USDT")
    assert position.amount == D(-2) and position.average_price == D(90)
    (cover,) = build_positions("paper", [fill("1", OrderSide.SELL, "90", "2"),
                                         fill("2", OrderSide.BUY, "80", "2")])[1]
    assert cover.side == "short" and cover.pnl == D(20)


def order(client_order_id: str, status: OrderStatus = OrderStatus.PENDING) -> Order:
    return Order(client_order_id, "paper", "BTC/USDT", OrderSide.BUY, OrderType.MARKET, D(1),
                 created_at=5, status=status)


def test_orders_fills_and_trades_are_written_together_or_not_at_all(store: Store) -> None:
    store.orders.add(order("a"), mode=TradingMode.PAPER, strategy="sma", reason="entry",
                     now_ms=5)
    with pytest.raises(InvalidArgument, match="already stored"):
        store.orders.add(order("a"), mode=TradingMode.PAPER, strategy="sma", reason="",
                         now_ms=5)
    filled = order("a").with_status(OrderStatus.FILLED, filled=D(1), average_price=D(100))
    orphan = fill("x", OrderSide.BUY, "100", "1", order="unknown")
    with pytest.raises(InvalidArgument, match="unknown order"):
        store.orders.record(filled, [fill("1", OrderSide.BUY, "100", "1", order="a"), orphan],
                            now_ms=6)
    record = store.orders.get("a")
    assert record is not None and record.order.status is OrderStatus.PENDING
    assert store.orders.fills() == []
    added = store.orders.record(filled, [fill("1", OrderSide.BUY, "100", "1", order="a")],
                                now_ms=7)
    assert len(added) == 1
    assert store.orders.record(None, added, now_ms=8) == []  # stored once only
    record = store.orders.get("a")
    assert record is not None and record.order == filled and record.updated_at == 7
    assert record.strategy == "sma" and record.reason == "entry"


def test_trade_history_filters_and_totals(store: Store) -> None:
    for name, mode, strategy in (("p", TradingMode.PAPER, "sma"),
                                 ("l", TradingMode.LIVE, "manual")):
        store.orders.add(order(f"{name}1"), mode=mode, strategy=strategy, reason="", now_ms=1)
        store.orders.add(order(f"{name}2"), mode=mode, strategy=strategy, reason="", now_ms=1)
    fills = []
    for name, day in (("p", 1), ("l", 2)):
        fills += [fill(f"{name}b", OrderSide.BUY, "100", "1", "0.1", time=day * 86_400_000,
                       order=f"{name}1"),
                  fill(f"{name}s", OrderSide.SELL, "90" if name == "l" else "120", "1",
                       "0.1", time=day * 86_400_000 + 1, order=f"{name}2")]
    _, closed = build_positions("paper", fills[:2])
    _, closed_live = build_positions("paper", fills[2:])
    store.orders.record(None, fills, [*closed, *closed_live], now_ms=9)
    everything = store.orders.totals()
    assert (everything.count, everything.wins) == (2, 1)
    assert everything.pnl == D("19.8") + D("-10.2") and everything.fees == D("0.4")
    assert everything.win_rate == 0.5
    paper = store.orders.trades(TradeFilter(mode=TradingMode.PAPER))
    assert [(t.strategy, t.mode) for t in paper] == [("sma", TradingMode.PAPER)]
    assert store.orders.trades(TradeFilter(start_ms=2 * 86_400_000))[0].strategy == "manual"
    assert store.orders.trades(TradeFilter(end_ms=2 * 86_400_000))[0].strategy == "sma"
    assert store.orders.trades(TradeFilter(symbol="ETH/USDT", side="long")) == []
    assert len(store.orders.trades(TradeFilter(side="long", strategy="sma"))) == 1


def test_a_store_failure_leaves_nothing_half_written(store: Store,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store.orders.add(order("a"), mode=TradingMode.PAPER, strategy="sma", reason="", now_ms=1)
    filled = order("a").with_status(OrderStatus.FILLED, filled=D(1), average_price=D(100))
    import terminal.core.storage.orders as orders_module

    real = orders_module._insert_fill

    def failing(conn, item):  # type: ignore[no-untyped-def]
        real(conn, item)
        raise StoreError("disk I/O error")

    monkeypatch.setattr(orders_module, "_insert_fill", failing)
    with pytest.raises(StoreError):
        store.orders.record(filled, [fill("1", OrderSide.BUY, "100", "1", order="a")],
                            now_ms=2)
    monkeypatch.undo()
    stored = store.orders.get("a")
    assert stored is not None and stored.order.status is OrderStatus.PENDING
    assert store.orders.fills() == []

"""The paper venue: orders against candle updates, balances, persistence, reset."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from terminal.core.bus import EventBus
from terminal.core.clock import ManualClock
from terminal.core.errors import (
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    StoreError,
)
from terminal.core.events import CandleClosed, CandleUpdated
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.model import (
    Candle,
    Liquidity,
    OrderSide,
    OrderStatus,
    OrderType,
    Timeframe,
    TimeInForce,
    VenueKind,
)
from terminal.core.ports import OrderRequest
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.exchange.paper import PaperVenue
from tests.exchange.paper_helpers import SYMBOL, FixtureMarket, instrument
from tests.factories import START_MS, make_series

MINUTE = 60_000
FEES = FeeSchedule(maker=0.0005, taker=0.001)
REAL_PRECISION = instrument(Decimal("0.01"), Decimal("0.00001"), min_amount=Decimal("0.00001"),
                            min_notional=Decimal(5))


def candle(minute: int, open_: float, high: float, low: float, close: float,
           volume: float = 10.0) -> Candle:
    return Candle(START_MS + minute * MINUTE, open_, high, low, close, volume)


def make_venue(store: Store, *, clock: ManualClock | None = None,
               market: FixtureMarket | None = None, cash: str = "10000") -> PaperVenue:
    return PaperVenue(store, market or FixtureMarket(instruments=[REAL_PRECISION]),
                      fill_model=FillModel(FEES), clock=clock or ManualClock(START_MS),
                      starting_cash=Decimal(cash))


def request(client_order_id: str, side: OrderSide = OrderSide.BUY,
            type_: OrderType = OrderType.MARKET, amount: str = "0.1", **extra: object
            ) -> OrderRequest:
    return OrderRequest(client_order_id, SYMBOL, side, type_, Decimal(amount), **extra)


def balances(venue: PaperVenue) -> dict[str, tuple[Decimal, Decimal]]:
    return {b.currency: (b.free, b.used)
            for b in asyncio.run(venue.fetch_balances())}


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_new_account_holds_its_starting_cash(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    assert venue.kind is VenueKind.PAPER and venue.id == "paper"
    assert balances(venue) == {"USDT": (Decimal(10000), Decimal(0))}
    assert [i.venue for i in run(venue.load_instruments())] == ["paper"]


def test_a_market_order_at_a_live_price_fills_at_once(store: Store) -> None:
    clock = ManualClock(START_MS + 30_000)
    venue = make_venue(store, clock=clock)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100.5), closed=False)
    order = run(venue.submit_order(request("a", amount="2")))
    assert order.status is OrderStatus.FILLED and order.average_price == Decimal("100.5")
    (fill,) = run(venue.fetch_fills(SYMBOL))
    assert (fill.price, fill.amount) == (Decimal("100.5"), Decimal(2))
    assert fill.timestamp == clock.now_ms()
    assert fill.fee == Decimal(repr(201 * 0.001)) and fill.liquidity is Liquidity.TAKER
    assert balances(venue) == {"USDT": (Decimal(10000) - Decimal(201) - fill.fee, Decimal(0)),
                               "BTC": (Decimal(2), Decimal(0))}


def test_a_lagging_feed_never_fills_an_order_on_minutes_that_ended_before_it(
        store: Store) -> None:
    clock = ManualClock(START_MS + 3 * MINUTE + 30_000)
    venue = make_venue(store, clock=clock)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=True)
    order = run(venue.submit_order(request("late", amount="1")))
    assert order.status is OrderStatus.OPEN
    assert venue.observe(SYMBOL, candle(1, 90, 91, 89, 90), closed=True) == []
    assert venue.observe(SYMBOL, candle(2, 95, 96, 94, 95), closed=True) == []
    (fill,) = venue.observe(SYMBOL, candle(3, 97, 98, 96, 97), closed=False)
    assert fill.price == Decimal(97) and fill.timestamp == START_MS + 3 * MINUTE


def test_an_order_after_a_close_waits_for_the_next_open(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=True)
    order = run(venue.submit_order(request("a", amount="1")))
    assert order.status is OrderStatus.OPEN
    assert balances(venue)["USDT"][1] > 0  # the estimate is held
    fills = venue.observe(SYMBOL, candle(1, 102, 103, 101, 102.5), closed=True)
    assert [(f.price, f.timestamp) for f in fills] == [(Decimal(102), START_MS + MINUTE)]
    assert run(venue.fetch_order(SYMBOL, "a")).status is OrderStatus.FILLED
    usdt = balances(venue)["USDT"]
    assert usdt == (Decimal(10000) - Decimal(102) - fills[0].fee, Decimal(0))


def test_a_limit_order_holds_funds_and_fills_as_maker_when_reached(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=True)
    run(venue.submit_order(request("a", type_=OrderType.LIMIT, amount="1",
                                   price=Decimal("98.5"))))
    held = Decimal("98.5") * (1 + Decimal("0.001"))
    assert balances(venue)["USDT"] == (Decimal(10000) - held, held)
    assert venue.observe(SYMBOL, candle(1, 100, 100.5, 99, 99.5), closed=True) == []
    # A forming update proves only the move since the last state seen.
    assert venue.observe(SYMBOL, candle(2, 99.5, 99.6, 99.2, 99.3), closed=False) == []
    (fill,) = venue.observe(SYMBOL, candle(2, 99.5, 99.6, 98.0, 98.2), closed=False,
                            at_ms=START_MS + 2 * MINUTE + 20_000)
    assert fill.price == Decimal("98.5") and fill.liquidity is Liquidity.MAKER
    assert fill.timestamp == START_MS + 2 * MINUTE + 20_000
    assert fill.fee == Decimal(repr(98.5 * 0.0005))
    assert balances(venue)["USDT"] == (Decimal(10000) - Decimal("98.5") - fill.fee, Decimal(0))
    # The candle's close adds nothing new: the order is not worked twice.
    assert venue.observe(SYMBOL, candle(2, 99.5, 99.6, 98.0, 98.2), closed=True) == []


def test_stop_and_stop_limit_orders(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=True)
    run(venue.submit_order(request("stop", type_=OrderType.STOP, amount="1",
                                   stop_price=Decimal(102))))
    run(venue.submit_order(request("sl", type_=OrderType.STOP_LIMIT, amount="1",
                                   stop_price=Decimal(103), price=Decimal("102.5"))))
    fills = venue.observe(SYMBOL, candle(1, 100, 104, 99.5, 103.5), closed=True)
    # The stop fills at its price; the stop-limit triggers above its limit and rests.
    assert [(f.client_order_id, f.price) for f in fills] == [("stop", Decimal(102))]
    assert run(venue.fetch_order(SYMBOL, "sl")).status is OrderStatus.OPEN
    (fill,) = venue.observe(SYMBOL, candle(2, 103.5, 103.6, 102.0, 102.2), closed=True)
    assert (fill.client_order_id, fill.price) == ("sl", Decimal("102.5"))


def test_the_same_client_order_id_never_places_twice(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=False)
    first = run(venue.submit_order(request("same", amount="1")))
    again = run(venue.submit_order(request("same", amount="1")))
    assert first == again
    assert len(run(venue.fetch_fills(SYMBOL))) == 1
    assert balances(venue)["BTC"] == (Decimal(1), Decimal(0))


def test_bad_orders_are_refused_with_reasons(store: Store) -> None:
    venue = make_venue(store, cash="100")
    run(venue.open())
    with pytest.raises(OrderRejected, match="no price known"):
        run(venue.submit_order(request("a")))
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=False)
    with pytest.raises(InsufficientFunds, match=r"needs about 200\.20 USDT"):
        run(venue.submit_order(request("b", amount="2")))
    with pytest.raises(InsufficientFunds, match="cannot sell 1 BTC: 0 free"):
        run(venue.submit_order(request("c", OrderSide.SELL, amount="1")))
    with pytest.raises(OrderRejected, match="lot size"):
        run(venue.submit_order(request("d", amount="0.000001")))
    with pytest.raises(OrderRejected, match="below the BTC/USDT minimum of 5"):
        run(venue.submit_order(request("e", amount="0.01")))
    with pytest.raises(OrderRejected, match="tick size"):
        run(venue.submit_order(request("f", type_=OrderType.LIMIT, amount="0.1",
                                       price=Decimal("99.001"))))
    with pytest.raises(OrderRejected, match="not traded"):
        run(venue.submit_order(OrderRequest("g", "ETH/USDT", OrderSide.BUY, OrderType.MARKET,
                                            Decimal(1))))
    with pytest.raises(OrderRejected, match="only a buy can attach"):
        run(venue.submit_order(request("h", OrderSide.SELL, amount="0.1",
                                       stop_loss=Decimal(90))))
    with pytest.raises(OrderRejected, match="post-only"):
        run(venue.submit_order(request("i", type_=OrderType.LIMIT, amount="0.1",
                                       price=Decimal(101), time_in_force=TimeInForce.POST_ONLY)))
    assert balances(venue) == {"USDT": (Decimal(100), Decimal(0))}
    assert run(venue.fetch_open_orders()) == ()


def test_immediate_or_cancel_expires_what_cannot_fill_now(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=False)
    order = run(venue.submit_order(request("a", type_=OrderType.LIMIT, amount="1",
                                           price=Decimal(95), time_in_force=TimeInForce.IOC)))
    assert order.status is OrderStatus.EXPIRED
    assert balances(venue)["USDT"] == (Decimal(10000), Decimal(0))


def test_cancel_releases_what_the_order_held(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=False)
    run(venue.submit_order(request("a", type_=OrderType.LIMIT, amount="1", price=Decimal(90))))
    canceled = run(venue.cancel_order(SYMBOL, "a"))
    assert canceled.status is OrderStatus.CANCELED
    assert balances(venue)["USDT"] == (Decimal(10000), Decimal(0))
    assert run(venue.cancel_order(SYMBOL, "a")) == canceled
    with pytest.raises(OrderNotFound):
        run(venue.cancel_order(SYMBOL, "nope"))


def test_a_buy_is_cut_to_what_the_money_pays_for_at_the_fill(store: Store) -> None:
    venue = make_venue(store, cash="1001")
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=True)
    run(venue.submit_order(request("a", amount="10")))
    (fill,) = venue.observe(SYMBOL, candle(1, 110, 111, 109, 110), closed=True)
    assert fill.amount < 10
    order = run(venue.fetch_order(SYMBOL, "a"))
    assert order.status is OrderStatus.CANCELED and "could be paid for" in order.reject_reason
    usdt = balances(venue)["USDT"]
    assert Decimal(0) <= usdt[0] < Decimal("0.000001") and usdt[1] == 0


def test_protective_exits_sell_what_the_entry_bought(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=True)
    run(venue.submit_order(request("e", amount="1", stop_loss=Decimal(97),
                                   take_profit=Decimal(106))))
    venue.observe(SYMBOL, candle(1, 100, 101, 99.5, 100.5), closed=True)
    assert venue.protection(SYMBOL) is not None
    (exit_fill,) = venue.observe(SYMBOL, candle(2, 100.5, 107, 100, 106.5), closed=True)
    assert (exit_fill.client_order_id, exit_fill.price) == ("e-tp", Decimal(106))
    assert venue.protection(SYMBOL) is None
    assert balances(venue).get("BTC") is None
    exit_order = run(venue.fetch_order(SYMBOL, "e-tp"))
    assert exit_order is not None and exit_order.status is OrderStatus.FILLED


def test_a_restart_continues_with_the_same_account(store: Store, data_dir) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=False)
    run(venue.submit_order(request("a", amount="1")))
    run(venue.submit_order(request("b", type_=OrderType.LIMIT, amount="1", price=Decimal(95))))
    before = balances(venue)
    with Store.open(data_dir) as reopened:
        again = make_venue(reopened, cash="5")
        run(again.open())
        assert balances(again) == before
        assert [o.client_order_id for o in run(again.fetch_open_orders())] == ["b"]
        # The cursor came back too: the next update is worked from where it stopped.
        (fill,) = again.observe(SYMBOL, candle(0, 100, 101, 94, 95.5), closed=True)
        assert fill.client_order_id == "b"


def test_reset_starts_over(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=False)
    run(venue.submit_order(request("a", amount="1")))
    venue.reset(Decimal(500))
    assert balances(venue) == {"USDT": (Decimal(500), Decimal(0))}
    assert run(venue.fetch_fills(SYMBOL)) == ()
    assert run(venue.fetch_order(SYMBOL, "a")) is None
    with Store.open(store.path.parent) as reopened:
        assert reopened.paper.load("paper").account.starting_cash == 500


def test_a_failed_write_leaves_memory_and_store_as_they_were(store: Store,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    venue = make_venue(store)
    run(venue.open())
    venue.observe(SYMBOL, candle(0, 100, 101, 99, 100), closed=False)
    before = balances(venue)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(store.paper, "save", broken)
    with pytest.raises(StoreError):
        run(venue.submit_order(request("a", amount="1")))
    monkeypatch.undo()
    assert balances(venue) == before
    assert run(venue.fetch_order(SYMBOL, "a")) is None


def test_catch_up_works_orders_on_the_candles_closed_meanwhile(store: Store) -> None:
    series = make_series(30, Timeframe.M1, start_ms=START_MS, price=100.0)
    clock = ManualClock(START_MS + 10 * MINUTE)
    venue = make_venue(store, clock=clock, market=FixtureMarket(series, [REAL_PRECISION]))
    run(venue.catch_up([SYMBOL]))
    assert venue.last_price(SYMBOL) == Decimal(repr(float(series.close[9])))
    run(venue.submit_order(request("a", amount="1")))
    clock.set(START_MS + 30 * MINUTE)
    (fill,) = run(venue.catch_up([SYMBOL]))
    assert (fill.timestamp, fill.price) == (START_MS + 10 * MINUTE,
                                            Decimal(repr(float(series.open[10]))))
    assert venue.last_price(SYMBOL) == Decimal(repr(float(series.close[29])))


def test_following_the_bus_works_orders_on_the_markets_minutes(store: Store) -> None:
    venue = make_venue(store)
    run(venue.open())
    bus = EventBus()
    seen: list[tuple[str, int]] = []
    stop = venue.follow(bus, lambda symbol, fills: seen.append((symbol, len(fills))))
    minute = SeriesKey("fixture", SYMBOL, Timeframe.M1)
    bus.publish(CandleClosed(minute, candle(0, 100, 101, 99, 100)))
    run(venue.submit_order(request("a", amount="1")))
    # Other venues' candles and other timeframes are not this market's minutes.
    bus.publish(CandleClosed(SeriesKey("other", SYMBOL, Timeframe.M1),
                             candle(1, 50, 51, 49, 50)))
    bus.publish(CandleClosed(SeriesKey("fixture", SYMBOL, Timeframe.H1),
                             candle(1, 50, 51, 49, 50)))
    assert seen == []
    bus.publish(CandleUpdated(minute, candle(1, 101, 101, 101, 101)))
    assert seen == [(SYMBOL, 1)]
    assert run(venue.fetch_fills(SYMBOL))[0].price == Decimal(101)
    stop()
    bus.publish(CandleClosed(minute, candle(2, 90, 91, 89, 90)))
    assert venue.last_price(SYMBOL) == Decimal(101)


def test_a_hole_in_the_feed_is_fetched_and_worked_before_going_on(store: Store) -> None:
    # Flat minutes around 100, except minute 5, whose low alone reaches 97.
    lows = np.full(12, 99.5)
    lows[5] = 97.0
    series = CandleSeries(Timeframe.M1, START_MS + np.arange(12, dtype=np.int64) * MINUTE,
                          np.full(12, 100.0), np.full(12, 100.5), lows, np.full(12, 100.0),
                          np.full(12, 10.0))
    clock = ManualClock(START_MS + MINUTE)
    venue = make_venue(store, clock=clock, market=FixtureMarket(series, [REAL_PRECISION]))
    bus = EventBus()
    seen: list[tuple[str, list]] = []
    minute = SeriesKey("fixture", SYMBOL, Timeframe.M1)

    async def scenario() -> None:
        await venue.open()
        venue.follow(bus, lambda symbol, fills: seen.append((symbol, fills)))
        bus.publish(CandleClosed(minute, series[0]))
        await venue.submit_order(request("b", OrderSide.BUY, OrderType.LIMIT, "1",
                                         price=Decimal(98)))
        bus.publish(CandleClosed(minute, series[1]))
        clock.set(START_MS + 11 * MINUTE + 5_000)
        # The feed comes back at minute 10: minutes 2 to 9 were missed.
        bus.publish(CandleUpdated(minute, series[10]))
        await asyncio.sleep(0.05)

    run(scenario())
    ((symbol, (fill,)),) = seen
    assert symbol == SYMBOL and fill.price == Decimal(98)
    assert fill.timestamp == START_MS + 5 * MINUTE
    assert venue.last_price(SYMBOL) == Decimal(100)


# --- no sequence of orders makes money appear or vanish ---------------------------------------

ORDER_KINDS = st.sampled_from([OrderType.MARKET, OrderType.LIMIT, OrderType.STOP,
                               OrderType.STOP_LIMIT])
ACTIONS = st.lists(
    st.tuples(st.sampled_from(["buy", "buy", "sell", "sell", "cancel", "candle", "candle",
                               "tick", "tick"]), ORDER_KINDS,
              st.integers(1, 300), st.floats(0.95, 1.05), st.floats(0.95, 1.05)),
    min_size=1, max_size=60)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_balances_never_go_negative_and_value_is_conserved(tmp_path_factory, actions) -> None:
    with Store.open(tmp_path_factory.mktemp("paper")) as store:
        clock = ManualClock(START_MS)
        venue = make_venue(store, clock=clock, cash="1000")
        run(venue.open())
        price, minute, ids = 100.0, 0, []
        venue.observe(SYMBOL, candle(0, price, price, price, price), closed=True)
        for action, kind, size, level, move in actions:
            if action in ("candle", "tick"):
                minute += action == "candle"
                clock.set(START_MS + minute * MINUTE + 30_000)
                close = round(price * move, 2)
                high, low = max(price, close) + 0.5, min(price, close) - 0.5
                venue.observe(SYMBOL, candle(minute, price, high, low, close),
                              closed=action == "candle")
                price = close
                continue
            if action == "cancel":
                if ids:
                    run(venue.cancel_order(SYMBOL, ids[size % len(ids)]))
                continue
            side = OrderSide.BUY if action == "buy" else OrderSide.SELL
            limit = Decimal(repr(round(price * level, 2)))
            stop = Decimal(repr(round(price * (2 - level), 2)))
            extra: dict[str, object] = {}
            if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                extra["price"] = limit
            if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
                extra["stop_price"] = stop
            client_order_id = f"o{len(ids)}"
            try:
                run(venue.submit_order(request(client_order_id, side, kind,
                                               str(Decimal(size) / 100), **extra)))
            except (InsufficientFunds, OrderRejected):
                continue
            ids.append(client_order_id)
        held = balances(venue)
        assert all(free >= 0 and used >= 0 for free, used in held.values())
        fills = run(venue.fetch_fills(SYMBOL))
        event(f"fills: {min(len(fills), 3)}{'+' if len(fills) >= 3 else ''}")
        quote = Decimal(1000)
        base = Decimal(0)
        for fill in fills:
            if fill.side is OrderSide.BUY:
                quote -= fill.price * fill.amount + fill.fee
                base += fill.amount
            else:
                quote += fill.price * fill.amount - fill.fee
                base -= fill.amount
        usdt_free, usdt_used = held["USDT"]
        assert abs(usdt_free + usdt_used - quote) < Decimal("1e-9")
        btc = held.get("BTC", (Decimal(0), Decimal(0)))
        assert btc[0] + btc[1] == base
        open_orders = run(venue.fetch_open_orders())
        if not open_orders:
            assert usdt_used == 0 and btc[1] == 0

"""The ccxt venue against ccxt's real ``binance`` class talking HTTP to the exchange emulator.

After every order scenario the emulator's ledger is the judge: each client order id appears
there exactly once (or not at all when the order was refused), and what the venue reports
agrees with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import pytest

from terminal.core.errors import (
    AuthenticationFailed,
    InsufficientFunds,
    InvalidArgument,
    MarketClosed,
    OrderRejected,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from terminal.core.model import Order, OrderSide, OrderStatus, OrderType, TimeInForce, VenueKind
from terminal.core.ports import OrderRequest
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.exchange.errors import Redactor, RetryPolicy, retry_after_seconds
from tests.exchange.conftest import VenueFactory, fast_retry
from tests.exchange.emulator import API_KEY, SECRET, ExchangeEmulator
from tests.factories import make_series

T = TypeVar("T")
BTC = "BTC/USDT"
CREATE = "POST /api/v3/order"
QUERY = "GET /api/v3/order"


def run(venue: CcxtVenue, scenario: Callable[[CcxtVenue], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await scenario(venue)
        finally:
            await venue.close()

    return asyncio.run(main())


@pytest.fixture
def market(emulator: ExchangeEmulator) -> ExchangeEmulator:
    emulator.set_candles("BTCUSDT", "1m", make_series(10))
    emulator.set_price("BTCUSDT", "30000")
    emulator.set_price("ETHUSDT", "2000")
    emulator.deposit("USDT", "10000")
    emulator.deposit("BTC", "1")
    return emulator


def market_buy(client_id: str, amount: str = "0.01") -> OrderRequest:
    return OrderRequest(client_id, BTC, OrderSide.BUY, OrderType.MARKET, Decimal(amount))


def limit_buy(client_id: str, price: str, amount: str = "0.01") -> OrderRequest:
    return OrderRequest(client_id, BTC, OrderSide.BUY, OrderType.LIMIT, Decimal(amount),
                        price=Decimal(price))


def assert_agrees(emulator: ExchangeEmulator, *orders: Order) -> None:
    """Every reported order exists exactly once in the ledger, with the same state."""
    emulator.check_ledger()
    for order in orders:
        found = emulator.orders_with_client_id(order.client_order_id)
        assert len(found) == 1, f"{order.client_order_id}: {len(found)} orders in the ledger"
        ledger = found[0]
        assert order.venue_order_id == str(ledger.order_id)
        assert order.filled == ledger.executed
        assert order.amount == ledger.quantity
        expected = {"NEW": OrderStatus.OPEN, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
                    "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
                    "EXPIRED": OrderStatus.EXPIRED}[ledger.status]
        assert order.status is expected


# ---- markets and account -------------------------------------------------------------------


def test_instruments_carry_the_exchange_precision_and_limits(
        market: ExchangeEmulator, make_venue: VenueFactory, no_internet: list[str]) -> None:
    instruments = run(make_venue(), lambda v: v.load_instruments())
    by_symbol = {i.symbol: i for i in instruments}
    assert set(by_symbol) == {"BTC/USDT", "ETH/USDT"}  # HALT/USDT is not trading
    btc = by_symbol["BTC/USDT"]
    assert (btc.tick_size, btc.lot_size) == (Decimal("0.01"), Decimal("0.00001"))
    assert (btc.min_amount, btc.min_notional) == (Decimal("0.00001"), Decimal(5))
    assert btc.venue == "binance"
    # Spot only, no private currency list: nothing outside /api/v3 was asked for.
    assert market.requests == ["GET /api/v3/exchangeInfo"]
    assert no_internet == []


def test_identity_sandbox_and_unknown_exchanges(emulator: ExchangeEmulator) -> None:
    live = CcxtVenue("binance", websocket=False)
    testnet = CcxtVenue("binance", sandbox=True, websocket=False)
    assert (live.id, live.kind, live.display_name) == ("binance", VenueKind.LIVE, "Binance")
    assert testnet.id == "binance-testnet" and "testnet" in testnet.display_name
    assert live.candles_per_request == 1000
    with pytest.raises(InvalidArgument, match=r"unknown exchange 'binanse'.*binance"):
        CcxtVenue("binanse")
    with pytest.raises(InvalidArgument, match="kraken has no sandbox"):
        CcxtVenue("kraken", sandbox=True, websocket=False)
    for venue in (live, testnet):
        asyncio.run(venue.close())


def test_balances_and_ticker(market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    async def scenario(venue: CcxtVenue) -> Any:
        return await venue.fetch_balances(), await venue.fetch_ticker(BTC)

    balances, ticker = run(make_venue(), scenario)
    assert {(b.currency, b.free, b.used) for b in balances} == {
        ("USDT", Decimal(10000), Decimal(0)), ("BTC", Decimal(1), Decimal(0))}
    assert (ticker.last, ticker.bid, ticker.ask) == (
        Decimal(30000), Decimal("29999.99"), Decimal("30000.01"))


def test_fetch_candles_pages_and_returns_closed_candles_only(
        emulator: ExchangeEmulator, make_venue: VenueFactory) -> None:
    series = make_series(2500)
    emulator.set_candles("BTCUSDT", "1m", series)
    start, end = int(series.open_time[100]), int(series.open_time[2300])
    candles = run(make_venue(), lambda v: v.fetch_candles(BTC, series.timeframe, start, end))
    assert candles == series.between(start, end)
    assert emulator.calls["GET /api/v3/klines"] == 3


def test_ticker_without_quotes_takes_them_from_the_order_book(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    market.ticker_quotes = False
    ticker = run(make_venue(), lambda v: v.fetch_ticker(BTC))
    assert (ticker.last, ticker.bid, ticker.ask) == (
        Decimal(30000), Decimal("29999.99"), Decimal("30000.01"))
    assert (ticker.bid_amount, ticker.ask_amount) == (Decimal(1), Decimal(1))
    assert market.calls["GET /api/v3/depth"] == 1


# ---- orders --------------------------------------------------------------------------------


def test_market_limit_cancel_and_fills_agree_with_the_ledger(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    async def scenario(venue: CcxtVenue) -> Any:
        bought = await venue.submit_order(market_buy("m-1", "0.010004"))
        resting = await venue.submit_order(limit_buy("l-1", "29000.004"))
        open_orders = await venue.fetch_open_orders(BTC)
        market.set_price("BTCUSDT", "28990")
        filled = await venue.fetch_order(BTC, "l-1")
        await venue.submit_order(limit_buy("l-2", "25000"))
        cancelled = await venue.cancel_order(BTC, "l-2")
        fills = await venue.fetch_fills(BTC)
        return bought, resting, open_orders, filled, cancelled, fills

    bought, resting, open_orders, filled, cancelled, fills = run(make_venue(), scenario)
    # Rounded the exchange's way: amount down to the lot, price to the tick.
    assert bought.amount == Decimal("0.01") and bought.status is OrderStatus.FILLED
    assert bought.average_price == Decimal(30000) and bought.type is OrderType.MARKET
    assert resting.price == Decimal("29000.00") and resting.status is OrderStatus.OPEN
    assert [o.client_order_id for o in open_orders] == ["l-1"]
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert cancelled.status is OrderStatus.CANCELED and cancelled.client_order_id == "l-2"
    assert_agrees(market, bought, filled, cancelled)
    ledger_trades = market.ledger.trades
    assert [(f.client_order_id, f.price, f.amount, f.fee) for f in fills] == [
        ("m-1", Decimal(30000), Decimal("0.01"), Decimal("0.00001")),
        ("l-1", Decimal(29000), Decimal("0.01"), Decimal("0.00001")),
    ]
    assert [f.trade_id for f in fills] == [str(t.trade_id) for t in ledger_trades]
    assert market.balance("USDT") == (Decimal(10000) - 300 - 290, Decimal(0))


def test_submit_is_idempotent_per_client_id(market: ExchangeEmulator,
                                            make_venue: VenueFactory) -> None:
    async def scenario(venue: CcxtVenue) -> Any:
        first = await venue.submit_order(limit_buy("same", "29000"))
        again = await venue.submit_order(limit_buy("same", "29000"))
        return first, again

    first, again = run(make_venue(), scenario)
    assert first == again
    assert market.calls[CREATE] == 1
    assert_agrees(market, first)


def test_a_fresh_venue_finds_an_order_placed_before_a_restart(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    placed = run(make_venue(), lambda v: v.submit_order(limit_buy("restart", "29000")))
    again = run(make_venue(), lambda v: v.submit_order(limit_buy("restart", "29000")))
    assert again.venue_order_id == placed.venue_order_id
    assert market.calls[CREATE] == 1


def test_partial_fill_then_cancel_keeps_the_filled_part(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    async def scenario(venue: CcxtVenue) -> Any:
        await venue.submit_order(limit_buy("p-1", "29000", "0.02"))
        market.fill_partially("p-1", "0.005")
        partial = await venue.fetch_order(BTC, "p-1")
        cancelled = await venue.cancel_order(BTC, "p-1")
        return partial, cancelled

    partial, cancelled = run(make_venue(), scenario)
    assert partial is not None and partial.status is OrderStatus.PARTIALLY_FILLED
    assert partial.filled == Decimal("0.005")
    assert cancelled.status is OrderStatus.CANCELED and cancelled.filled == Decimal("0.005")
    assert_agrees(market, cancelled)
    assert market.balance("USDT") == (Decimal(10000) - Decimal("145"), Decimal(0))


def test_partially_filled_market_order_reports_what_filled(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    market.inject("partial", CREATE, fraction="0.4")
    order = run(make_venue(), lambda v: v.submit_order(market_buy("pm-1", "0.01")))
    assert order.status is OrderStatus.EXPIRED and order.filled == Decimal("0.004")
    assert_agrees(market, order)


def test_cancel_of_an_order_that_filled_meanwhile_returns_the_fill(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    async def scenario(venue: CcxtVenue) -> Order:
        await venue.submit_order(limit_buy("race", "29000"))
        await venue.fetch_order(BTC, "race")
        market.set_price("BTCUSDT", "28000")
        return await venue.cancel_order(BTC, "race")

    order = run(make_venue(), scenario)
    assert order.status is OrderStatus.FILLED
    assert_agrees(market, order)


def test_stop_and_stop_limit_orders_trigger_on_the_exchange(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    stop = OrderRequest("s-1", BTC, OrderSide.SELL, OrderType.STOP, Decimal("0.01"),
                        stop_price=Decimal("29500"))
    stop_limit = OrderRequest("s-2", BTC, OrderSide.SELL, OrderType.STOP_LIMIT,
                              Decimal("0.01"), price=Decimal("28000"),
                              stop_price=Decimal("28500"), time_in_force=TimeInForce.GTC)

    async def scenario(venue: CcxtVenue) -> Any:
        placed = [await venue.submit_order(stop), await venue.submit_order(stop_limit)]
        market.set_price("BTCUSDT", "29400")
        middle = [await venue.fetch_order(BTC, "s-1"), await venue.fetch_order(BTC, "s-2")]
        market.set_price("BTCUSDT", "28400")
        final = await venue.fetch_order(BTC, "s-2")
        return placed, middle, final

    placed, middle, final = run(make_venue(), scenario)
    assert [o.type for o in placed] == [OrderType.STOP, OrderType.STOP_LIMIT]
    assert placed[0].stop_price == Decimal(29500) and placed[1].price == Decimal(28000)
    assert [o.status for o in placed] == [OrderStatus.OPEN, OrderStatus.OPEN]
    assert middle[0] is not None and middle[0].status is OrderStatus.FILLED
    assert middle[1] is not None and middle[1].status is OrderStatus.OPEN
    assert final is not None and final.status is OrderStatus.FILLED
    assert [o.type for o in (middle[0], final)] == [OrderType.STOP, OrderType.STOP_LIMIT]
    assert_agrees(market, middle[0], final)


def test_refused_orders_are_clear_and_never_retried(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    def refused(request: OrderRequest) -> BaseException:
        with pytest.raises(VenueError) as caught:
            run(make_venue(), lambda v: v.submit_order(request))
        return caught.value

    too_small = refused(market_buy("small", "0.000001"))
    assert isinstance(too_small, OrderRejected) and "below the minimum" in str(too_small)
    bracket = refused(OrderRequest("tp", BTC, OrderSide.BUY, OrderType.MARKET,
                                   Decimal("0.01"), take_profit=Decimal(31000)))
    assert isinstance(bracket, OrderRejected) and "take-profit" in str(bracket)
    immediate = refused(OrderRequest("now", BTC, OrderSide.SELL, OrderType.STOP,
                                     Decimal("0.01"), stop_price=Decimal(31000)))
    assert isinstance(immediate, OrderRejected) and "trigger immediately" in str(immediate)
    broke = refused(market_buy("broke", "1"))  # 30,000 USDT against 10,000
    assert isinstance(broke, InsufficientFunds) and "insufficient balance" in str(broke)
    halted = OrderRequest("halted", "ETH/USDT", OrderSide.BUY, OrderType.MARKET,
                          Decimal("0.01"))

    async def halt_after_loading(venue: CcxtVenue) -> None:
        await venue.load_instruments()
        market.halt("ETHUSDT")
        await venue.submit_order(halted)

    with pytest.raises(MarketClosed, match="closed"):
        run(make_venue(), halt_after_loading)
    assert market.calls[CREATE] == 3  # the immediate stop, the broke buy, the halted one
    # A venue that loads the markets after the halt refuses without asking the exchange.
    assert isinstance(refused(halted), MarketClosed)
    assert market.calls[CREATE] == 3
    assert market.all_orders() == []


def test_an_injected_balance_refusal_is_not_retried(market: ExchangeEmulator,
                                                     make_venue: VenueFactory) -> None:
    market.inject("insufficient", CREATE)
    with pytest.raises(InsufficientFunds):
        run(make_venue(), lambda v: v.submit_order(limit_buy("poor", "29000")))
    assert market.calls[CREATE] == 1 and market.all_orders() == []


def test_bad_key_is_an_authentication_error_and_not_retried(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    with pytest.raises(AuthenticationFailed, match="refused the API key"):
        run(make_venue(api_key="wrong-key"), lambda v: v.fetch_balances())
    assert market.calls["GET /api/v3/account"] == 1
    with pytest.raises(AuthenticationFailed):
        run(make_venue(secret="wrong-secret"), lambda v: v.fetch_balances())
    market.inject("bad_key", CREATE)
    with pytest.raises(AuthenticationFailed):
        run(make_venue(), lambda v: v.submit_order(market_buy("k-1")))
    assert market.calls[CREATE] == 1 and market.all_orders() == []


# ---- lost responses: never doubled ---------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop_after_accept", "timeout_after_accept"])
def test_a_lost_answer_to_an_accepted_order_is_looked_up_not_resent(
        market: ExchangeEmulator, make_venue: VenueFactory, fault: str) -> None:
    market.inject(fault, CREATE, sleep_s=1.0)
    order = run(make_venue(timeout_ms=300), lambda v: v.submit_order(market_buy("lost-1")))
    assert market.calls[CREATE] == 1
    assert order.status is OrderStatus.FILLED
    assert_agrees(market, order)


@pytest.mark.parametrize("fault", ["timeout", "server_error", "unavailable", "rate_limit"])
def test_an_order_the_exchange_never_took_is_sent_again_after_the_lookup(
        market: ExchangeEmulator, make_venue: VenueFactory, fault: str) -> None:
    market.inject(fault, CREATE, sleep_s=1.0)
    order = run(make_venue(timeout_ms=300), lambda v: v.submit_order(limit_buy("re-1", "29000")))
    assert market.calls[CREATE] == 2
    # The pre-check, then the lookup after the failure that confirmed there was no order.
    assert market.calls[QUERY] == 2
    assert_agrees(market, order)


def test_when_the_lookup_fails_too_the_order_is_not_resent(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    market.inject("drop_after_accept", CREATE)
    market.inject("unavailable", QUERY, calls=tuple(range(2, 20)))
    with pytest.raises(VenueUnavailable, match="may or may not have been placed"):
        run(make_venue(), lambda v: v.submit_order(market_buy("unknown-1")))
    assert market.calls[CREATE] == 1
    assert len(market.orders_with_client_id("unknown-1")) == 1


@pytest.mark.parametrize(("fault", "creates"), [("drop_after_accept", 1), ("unavailable", 2)])
def test_without_lookup_by_client_id_the_order_lists_are_searched(
        market: ExchangeEmulator, make_venue: VenueFactory, fault: str, creates: int) -> None:
    venue = make_venue()
    venue._lookup_by_client_id = False  # as for exchanges ccxt cannot query by client id
    market.inject(fault, CREATE)
    order = run(venue, lambda v: v.submit_order(limit_buy("scan-1", "29000")))
    assert market.calls[CREATE] == creates
    assert market.calls[QUERY] == 0 and market.calls["GET /api/v3/allOrders"] >= 1
    assert_agrees(market, order)


def test_an_order_that_never_gets_through_is_reported_as_not_placed(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    market.inject("unavailable", CREATE, calls=None)
    with pytest.raises(VenueUnavailable, match=r"order never-1 was not placed.*4 tries"):
        run(make_venue(retry=fast_retry(attempts=4)),
            lambda v: v.submit_order(market_buy("never-1")))
    assert market.calls[CREATE] == 4 and market.all_orders() == []


def test_repeated_drops_end_with_one_order(market: ExchangeEmulator,
                                           make_venue: VenueFactory) -> None:
    market.inject("unavailable", CREATE, calls=(1, 2))
    order = run(make_venue(), lambda v: v.submit_order(market_buy("twice")))
    assert market.calls[CREATE] == 3
    assert_agrees(market, order)


# ---- retries, rate limits, clock --------------------------------------------------------------


def recording_policy(attempts: int = 4) -> tuple[RetryPolicy, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return RetryPolicy(attempts=attempts, base_delay_s=0.01, max_delay_s=1, max_wait_s=60,
                       sleep=sleep), waits


def test_rate_limit_is_retried_after_the_retry_after_pause(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    policy, waits = recording_policy()
    market.inject("rate_limit", "GET /api/v3/ticker/24hr", calls=(1, 2), retry_after=7)
    ticker = run(make_venue(retry=policy), lambda v: v.fetch_ticker(BTC))
    assert ticker.last == Decimal(30000)
    assert waits == [7, 7]
    assert market.calls["GET /api/v3/ticker/24hr"] == 3


def test_server_errors_back_off_exponentially_and_give_up(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    policy, waits = recording_policy(attempts=4)
    market.inject("server_error", "GET /api/v3/account", calls=None)
    with pytest.raises(VenueUnavailable):
        run(make_venue(retry=policy), lambda v: v.fetch_balances())
    assert waits == [0.01, 0.02, 0.04]
    assert market.calls["GET /api/v3/account"] == 4


def test_a_long_ban_is_reported_at_once_with_its_duration(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    policy, waits = recording_policy()
    market.inject("ban", "GET /api/v3/klines", retry_after=600)
    with pytest.raises(RateLimited, match=r"IP ban.*600 s") as caught:
        run(make_venue(retry=policy), lambda v: v.fetch_candles(
            BTC, make_series(1).timeframe, 0, 10**13))
    assert caught.value.retry_after == 600 and waits == []
    market.inject("ban", CREATE, retry_after=600)
    with pytest.raises(RateLimited, match="IP ban"):
        run(make_venue(retry=policy), lambda v: v.submit_order(market_buy("banned")))
    assert market.calls[CREATE] == 1 and market.calls[QUERY] == 1  # the pre-check only
    assert market.all_orders() == [] and waits == []


def test_clock_skew_is_corrected_once_and_the_request_repeated(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    market.clock_offset_ms = -120_000  # our clock runs two minutes ahead of the exchange
    order = run(make_venue(), lambda v: v.submit_order(market_buy("skew-1")))
    assert order.status is OrderStatus.FILLED
    assert market.calls["GET /api/v3/time"] == 1
    assert_agrees(market, order)


def test_a_single_timestamp_rejection_resynchronises_the_clock(
        market: ExchangeEmulator, make_venue: VenueFactory) -> None:
    market.inject("clock_skew", "GET /api/v3/account")
    balances = run(make_venue(), lambda v: v.fetch_balances())
    assert {b.currency for b in balances} == {"USDT", "BTC"}
    assert market.calls["GET /api/v3/account"] == 2 and market.calls["GET /api/v3/time"] == 1


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"Retry-After": "12"}) == 12
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert retry_after_seconds({"Content-Type": "x"}) is None
    assert retry_after_seconds(None) is None


def test_redaction_covers_signed_urls_header_secrets_and_known_keys() -> None:
    redact = Redactor(["my-api-key-1"])
    text = redact("GET https://x/api?a=1&signature=9f3a0b {'X-MBX-APIKEY': 'my-api-key-1',"
                  " 'OK-ACCESS-SIGN': 'c2lnbg==', 'Content-Type': 'application/json'}")
    assert text == ("GET https://x/api?a=1&signature=<redacted> {'X-MBX-APIKEY': '<redacted>',"
                    " 'OK-ACCESS-SIGN': '<redacted>', 'Content-Type': 'application/json'}")


def test_keys_and_signatures_never_reach_logs_or_messages(
        market: ExchangeEmulator, make_venue: VenueFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    market.inject("timeout", "GET /api/v3/account", calls=None, sleep_s=1.0)
    with pytest.raises(VenueUnavailable) as caught:
        run(make_venue(timeout_ms=200, retry=fast_retry(attempts=2)),
            lambda v: v.fetch_balances())
    text = caplog.text + str(caught.value)
    assert "signature=<redacted>" in text  # ccxt did log the signed URL, redacted
    assert API_KEY not in text and SECRET not in text
    assert "signature=" not in text.replace("signature=<redacted>", "")


def test_precision_in_every_ccxt_mode_becomes_a_step_size() -> None:
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE

    from terminal.exchange.ccxt_venue import _to_instrument

    def market(price: float, amount: float, **extra: object) -> dict[str, object]:
        return {"symbol": "ETH/EUR", "base": "ETH", "quote": "EUR", "spot": True,
                "active": True, "precision": {"price": price, "amount": amount},
                "limits": {"amount": {"min": 0.001}, "cost": {"min": None}}, **extra}

    ticks = _to_instrument("x", market(0.05, 0.001), TICK_SIZE)
    places = _to_instrument("x", market(2, 4), DECIMAL_PLACES)
    digits = _to_instrument("x", market(5, 8), SIGNIFICANT_DIGITS)
    assert ticks is not None and (ticks.tick_size, ticks.lot_size) == (
        Decimal("0.05"), Decimal("0.001"))
    assert places is not None and (places.tick_size, places.lot_size) == (
        Decimal("0.01"), Decimal("0.0001"))
    assert digits is not None and digits.tick_size == Decimal("1e-8")
    assert (ticks.min_amount, ticks.min_notional) == (Decimal("0.001"), Decimal(0))
    assert _to_instrument("x", market(0.05, 0.001, active=False), TICK_SIZE) is None
    assert _to_instrument("x", market(0.05, 0.001, spot=False), TICK_SIZE) is None


def test_attached_take_profit_and_stop_loss_use_ccxts_unified_params() -> None:
    """OKX has native exits attached to an order; the emulator speaks Binance, so this one
    checks the arguments handed to ccxt's real okx class (whose markets are set, not fetched)."""
    venue = CcxtVenue("okx", api_key="k", secret="s", password="p", websocket=False,
                      retry=fast_retry())
    exchange: Any = venue._exchange
    exchange.set_markets([{
        "id": "BTC-USDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
        "baseId": "BTC", "quoteId": "USDT", "type": "spot", "spot": True, "active": True,
        "precision": {"price": 0.1, "amount": 0.0001},
        "limits": {"amount": {"min": 0.0001}, "cost": {"min": 1}},
    }])
    sent: list[tuple[Any, ...]] = []

    async def load_markets(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return dict(exchange.markets)

    async def fetch_order(*_args: Any) -> dict[str, Any]:
        raise ccxt.OrderNotFound("okx order does not exist")

    async def create_order(*args: Any) -> dict[str, Any]:
        sent.append(args)
        return {"id": "77", "clientOrderId": args[5]["clientOrderId"], "symbol": args[0],
                "type": args[1], "side": args[2], "amount": args[3], "price": args[4],
                "status": "open", "filled": 0, "timestamp": 1}

    exchange.load_markets, exchange.fetch_order = load_markets, fetch_order
    exchange.create_order = create_order
    request = OrderRequest("bracket1", BTC, OrderSide.BUY, OrderType.LIMIT,
                           Decimal("0.01234"), price=Decimal("30000.04"),
                           take_profit=Decimal("33000.06"), stop_loss=Decimal("28000.01"))
    order = run(venue, lambda v: v.submit_order(request))
    assert sent == [(BTC, "limit", "buy", 0.0123, 30000.0, {
        "clientOrderId": "bracket1", "timeInForce": "GTC",
        "takeProfit": {"triggerPrice": 33000.1}, "stopLoss": {"triggerPrice": 28000.0}})]
    assert order.status is OrderStatus.OPEN and order.price == Decimal(30000)

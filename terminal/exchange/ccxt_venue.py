"""A real exchange through ccxt: market data and trading for any ccxt exchange id (spot).

This is the only module that imports ccxt (besides :mod:`terminal.exchange.errors`, which
translates its exceptions). Every ccxt dict becomes a domain object here, in the ``_to_*``
functions at the bottom, and nowhere else: prices and amounts as ``Decimal``, times as UTC
epoch milliseconds, precision and limits applied the exchange's own way (ccxt's
``amount_to_precision`` / ``price_to_precision``, whatever its ``precisionMode``).

**Orders are never doubled.** Every order carries our client order id. Before sending, the
venue asks the exchange whether it already holds an order with that id (a retry after a
restart returns that order). When a create fails in a way that leaves its fate unknown (a
timeout, a dropped connection, a 5xx, a rate limit), it is not sent again blindly: the order
is looked up by client id first, and only when the exchange confirms it has no such order is
it sent again. If the lookup itself keeps failing, the caller gets a :class:`VenueUnavailable`
saying the order's state is unknown, and nothing is resent.

**Live data** comes from ccxt's websocket methods (``watch_ohlcv``, ``watch_ticker``) where the
exchange has them and websockets are enabled, from polling ``fetch_ohlcv`` / ``fetch_ticker``
otherwise. Either way a closed candle is reported exactly once, across reconnects too: after a
failure, the candles missed meanwhile are fetched before live updates resume.

API keys are given to the constructor by the caller (from the OS keyring) and handed to ccxt
only; they are never logged: ccxt's loggers get a filter that redacts keys and signatures, and
error messages pass through the same redaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE

from terminal.core.clock import Clock, SystemClock
from terminal.core.errors import (
    InvalidArgument,
    MarketClosed,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from terminal.core.model import (
    Balance,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
    Timeframe,
    TimeInForce,
    VenueKind,
)
from terminal.core.ports import CandleTick, OrderRequest
from terminal.core.series import CandleSeries, concat
from terminal.exchange.errors import (
    ClockSkew,
    RedactingFilter,
    Redactor,
    RetryPolicy,
    call_with_retry,
    translate,
)
from terminal.exchange.feeds import CLOSE_GRACE_MS, LiveCandleTracker, series_from_rows

log = logging.getLogger(__name__)
T = TypeVar("T")
Raw = dict[str, Any]
#: Hands one item (or an error that ends the stream) from a feed producer to its consumer.
Put = Callable[[object], Awaitable[None]]

#: Candles per ``fetch_ohlcv`` request when the exchange does not declare its maximum.
DEFAULT_CANDLES_PER_REQUEST = 500
#: The finest step assumed for exchanges that count precision in significant digits (no fixed
#: tick); rounding still goes through ccxt, which applies the real rule.
_FINEST_STEP = Decimal("1e-8")
_STATUS = {"open": OrderStatus.OPEN, "closed": OrderStatus.FILLED,
           "canceled": OrderStatus.CANCELED, "cancelled": OrderStatus.CANCELED,
           "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED}
_TIME_IN_FORCE = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_DIRECT_CLIENT_ID_LOOKUP = frozenset({"okx", "bitget", "kucoin"})
#: How far back closed orders are searched for a client id (a lost answer is seconds old).
_SCAN_BACK_MS = 24 * 60 * 60 * 1000
_CCXT_LOGGERS = ("ccxt", "ccxt.base.exchange", "ccxt.async_support.base.exchange")
#: One redactor for every venue in the process: ccxt's loggers are global, and a key given to
#: any venue must stay out of every log line.
_REDACT = Redactor()
for _name in _CCXT_LOGGERS:
    logging.getLogger(_name).addFilter(RedactingFilter(_REDACT))


def exchange_ids() -> list[str]:
    """Every exchange id ccxt supports (for pickers such as the API-keys dialog)."""
    return list(ccxt.exchanges)


class CcxtVenue:
    """A ccxt exchange as a :class:`MarketDataVenue` and a :class:`TradingVenue` (spot).

    ``api_key``, ``secret`` and ``password`` (some exchanges call it passphrase) are only
    needed for account and order calls. ``sandbox`` switches to the exchange's testnet where
    ccxt knows one (an :class:`InvalidArgument` says when it does not); its data is stored
    under its own venue id (``binance-testnet``) so it never mixes with the real market's.
    ``api_base_url`` sends every REST request to another host (a local mirror or proxy, or
    the tests' exchange emulator) keeping each endpoint's path. ``retry`` sets how retryable
    failures are repeated; ``websocket=False`` forces polling for live data.
    """

    def __init__(self, exchange_id: str, *, api_key: str | None = None,
                 secret: str | None = None, password: str | None = None,
                 sandbox: bool = False, clock: Clock | None = None,
                 retry: RetryPolicy | None = None, timeout_ms: int = 10_000,
                 websocket: bool = True, poll_interval_s: float = 2.0,
                 rate_limit_ms: float | None = None, api_base_url: str | None = None) -> None:
        exchange_id = exchange_id.strip().lower()
        known = exchange_ids()
        if exchange_id not in known:
            close = difflib.get_close_matches(exchange_id, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InvalidArgument(f"unknown exchange {exchange_id!r}{hint}")
        self._websocket = websocket and exchange_id in ccxt_pro.exchanges
        module = ccxt_pro if self._websocket else ccxt_async
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        for name, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
            if value:
                config[name] = value
        self._exchange: Any = getattr(module, exchange_id)(config)
        self._redact = _REDACT
        _REDACT.add(api_key, secret, password)
        self._spot_only_options()
        if sandbox:
            # Many exchanges declare an empty test URL: setting it would send requests nowhere.
            if not self._exchange.urls.get("test"):
                raise InvalidArgument(f"{exchange_id} has no sandbox/testnet that ccxt knows;"
                                      " use it without sandbox mode")
            self._exchange.set_sandbox_mode(True)
        if api_base_url is not None:
            self._exchange.urls["api"] = _rebase_urls(self._exchange.urls["api"],
                                                      api_base_url)
        self._id = f"{exchange_id}-testnet" if sandbox else exchange_id
        self._name = str(self._exchange.name) + (" (testnet)" if sandbox else "")
        self._clock = clock or SystemClock()
        self._retry = retry or RetryPolicy()
        self._poll_interval_s = poll_interval_s
        self._instruments: dict[str, Instrument] | None = None
        # Exchanges whose ccxt fetch_order takes a clientOrderId param; elsewhere orders are
        # found by searching the open and recent closed orders.
        self._lookup_by_client_id = isinstance(self._exchange, ccxt_async.binance) or \
            exchange_id in _DIRECT_CLIENT_ID_LOOKUP
        self._order_ids: dict[str, str] = {}  # our client id -> the exchange's order id
        self._client_ids: dict[str, str] = {}  # the exchange's order id -> our client id

    # ---- identity ---------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def display_name(self) -> str:
        return self._name

    @property
    def kind(self) -> VenueKind:
        return VenueKind.LIVE

    @property
    def candles_per_request(self) -> int:
        """How many candles one ``fetch_ohlcv`` request returns at most on this exchange."""
        features = self._exchange.features or {}
        limit = (features.get("spot") or {}).get("fetchOHLCV", {}) or {}
        value = limit.get("limit") if isinstance(limit, dict) else None
        return int(value) if value else DEFAULT_CANDLES_PER_REQUEST

    @property
    def has_websocket(self) -> bool:
        return self._websocket

    # ---- market data ------------------------------------------------------------------------

    async def load_instruments(self) -> Sequence[Instrument]:
        """The exchange's active spot pairs with their precision and limits (loaded once)."""
        if self._instruments is None:
            markets = await self._call(self._exchange.load_markets, "load markets")
            mode = self._exchange.precisionMode
            found = (_to_instrument(self._id, market, mode) for market in markets.values())
            self._instruments = {i.symbol: i for i in found if i is not None}
        return list(self._instruments.values())

    async def instrument(self, symbol: str) -> Instrument:
        await self.load_instruments()
        assert self._instruments is not None
        found = self._instruments.get(symbol)
        if found is None:
            listed = (self._exchange.markets or {}).get(symbol)
            if listed is not None and listed.get("spot") and listed.get("active") is False:
                raise MarketClosed(f"{symbol} is not trading on {self._name} now (halted or"
                                   " delisted)")
            raise InvalidArgument(f"{self._name} has no spot market {symbol}")
        return found

    async def fetch_candles(self, symbol: str, timeframe: Timeframe, start_ms: int,
                            end_ms: int) -> CandleSeries:
        """Closed candles with ``start_ms <= open_time < end_ms``, paging as needed (a candle
        counts as closed a few seconds after its end: see :data:`feeds.CLOSE_GRACE_MS`)."""
        await self.instrument(symbol)
        code = self._timeframe_code(timeframe)
        closed_end = min(end_ms, timeframe.floor(self._clock.now_ms() - CLOSE_GRACE_MS))
        since = timeframe.floor(start_ms)
        if since < start_ms:
            since += timeframe.ms
        pages: list[CandleSeries] = []
        while since < closed_end:
            wanted = min(self.candles_per_request, -(-(closed_end - since) // timeframe.ms))
            rows = await self._call(
                functools.partial(self._exchange.fetch_ohlcv, symbol, code, since, wanted),
                f"fetch {symbol} {code} candles")
            page = series_from_rows(rows, timeframe).between(since, closed_end)
            if not len(page):
                break
            pages.append(page)
            since = int(page.open_time[-1]) + timeframe.ms
        return concat(pages) if pages else CandleSeries.empty(timeframe)

    async def fetch_latest_candles(self, symbol: str, timeframe: Timeframe, start_ms: int
                                   ) -> list[CandleTick]:
        """The candles from ``start_ms`` to now, the forming one included, oldest first.

        Each says whether it has closed by the live feed's rule (a newer candle exists, or
        its period ended more than :data:`feeds.CLOSE_GRACE_MS` ago). One request: meant for
        the last few candles, not for history (:meth:`fetch_candles` pages through that).
        """
        await self.instrument(symbol)
        code = self._timeframe_code(timeframe)
        now = self._clock.now_ms()
        since = timeframe.floor(start_ms)
        end = timeframe.floor(now) + timeframe.ms
        wanted = min(self.candles_per_request, max(1, -(-(end - since) // timeframe.ms)))
        rows = await self._call(
            functools.partial(self._exchange.fetch_ohlcv, symbol, code, since, wanted),
            f"fetch {symbol} {code} candles")
        series = series_from_rows(rows, timeframe).between(since, end)
        return [CandleTick(symbol, timeframe, candle, closed)
                for candle, closed in LiveCandleTracker(timeframe).update(list(series), now)]

    async def fetch_ticker(self, symbol: str) -> Ticker:
        """Last price and best bid/ask of ``symbol``."""
        raw = await self._call(functools.partial(self._exchange.fetch_ticker, symbol),
                               f"fetch {symbol} ticker")
        ticker = _to_ticker(self._id, symbol, raw, self._clock.now_ms())
        if (ticker.bid is None or ticker.ask is None) and self._exchange.has.get(
                "fetchOrderBook"):
            # Some exchanges' tickers carry no quotes: the top of the book has them.
            book = await self._call(functools.partial(self._exchange.fetch_order_book,
                                                      symbol, 5), f"fetch {symbol} book")
            ticker = _with_best_quotes(ticker, book)
        return ticker

    def stream_candles(self, symbols: Sequence[str],
                       timeframe: Timeframe) -> AsyncGenerator[CandleTick, None]:
        """Forming and closed candles of ``symbols``; each closed candle exactly once."""
        code = self._timeframe_code(timeframe)
        watch = self._websocket and bool(self._exchange.has.get("watchOHLCV"))
        producers = [
            (lambda put, s=symbol: self._follow_candles(s, timeframe, code, watch, put))
            for symbol in symbols
        ]
        return _merged(producers)

    def stream_tickers(self, symbols: Sequence[str]) -> AsyncGenerator[Ticker, None]:
        """Ticker updates (last price, best bid/ask) of ``symbols`` whenever they change."""
        watch = self._websocket and bool(self._exchange.has.get("watchTicker"))
        producers = [(lambda put, s=symbol: self._follow_ticker(s, watch, put))
                     for symbol in symbols]
        return _merged(producers)

    async def close(self) -> None:
        await self._exchange.close()

    # ---- account and orders -----------------------------------------------------------------

    async def fetch_balances(self) -> Sequence[Balance]:
        raw = await self._call(self._exchange.fetch_balance, "fetch balances")
        return _to_balances(raw)

    async def can_withdraw(self) -> bool | None:
        """Whether the API key may withdraw funds, where the exchange says so (None: it
        cannot tell through ccxt).

        Binance answers through ``GET /sapi/v1/account/apiRestrictions``
        (``enableWithdrawals``); ccxt has no unified call for key permissions.
        """
        ask = getattr(self._exchange, "sapi_get_account_apirestrictions", None)
        if ask is None or not isinstance(self._exchange, ccxt_async.binance):
            return None
        raw = await self._call(ask, "read the API key's permissions")
        value = raw.get("enableWithdrawals") if isinstance(raw, dict) else None
        return value if isinstance(value, bool) else None

    async def submit_order(self, request: OrderRequest) -> Order:
        """Place ``request`` or return the order already placed under its client id.

        Amount and prices are rounded the exchange's way and checked against its minimums
        first (an :class:`OrderRejected` names the limit). Never sends an order twice: see
        the module docstring.
        """
        instrument = await self.instrument(request.symbol)
        kind, price, params = self._order_arguments(request, instrument)
        amount = self._rounded_amount(request, instrument)
        existing = await self.fetch_order(request.symbol, request.client_order_id)
        if existing is not None:
            return existing
        what = f"place order {request.client_order_id}"
        skew_fixed = False
        retry = 0
        while True:
            try:
                raw = await self._exchange.create_order(request.symbol, kind,
                                                        request.side.value, float(amount),
                                                        price, dict(params))
                return self._to_order(raw, request.client_order_id, request)
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                error = self._translate(failure)
                if isinstance(error, ClockSkew) and not skew_fixed:
                    # A timestamp rejection happens before the order is looked at: resending
                    # after resynchronising cannot double it.
                    skew_fixed = True
                    await self._resync_clock()
                    continue
                if not error.retryable:
                    raise error from failure
                retry += 1
                delay = self._retry.delay(retry - 1, error)
                if isinstance(error, RateLimited) and delay > self._retry.max_wait_s:
                    # A 429/418 refuses the request before the exchange looks at it.
                    raise error from failure
                if retry >= self._retry.attempts or delay > self._retry.max_wait_s:
                    found = await self._lookup_after_failure(request, error)
                    if found is not None:
                        return found
                    raise VenueUnavailable(f"{self._name}: order {request.client_order_id} was"
                                           f" not placed, giving up after {retry} tries:"
                                           f" {error}") from failure
                log.warning("%s failed (%s); checking whether it arrived", what, error)
                await self._retry.sleep(delay)
                found = await self._lookup_after_failure(request, error)
                if found is not None:
                    return found

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        """Cancel an open order; returns its final state (it may have filled meanwhile)."""
        order = await self.fetch_order(symbol, client_order_id)
        if order is None:
            raise OrderNotFound(f"{self._name} has no order {client_order_id} on {symbol}")
        if order.status.is_final:
            return order
        venue_id = order.venue_order_id
        try:
            raw = await self._call(lambda: self._exchange.cancel_order(venue_id, symbol),
                                   f"cancel order {client_order_id}")
        except OrderNotFound:
            # Gone between the lookup and the cancel: it filled or was canceled elsewhere.
            final = await self.fetch_order(symbol, client_order_id)
            if final is None:
                raise
            return final
        cancelled = self._to_order(raw, client_order_id, None)
        if cancelled.status.is_final:
            return cancelled
        refreshed = await self.fetch_order(symbol, client_order_id)
        return refreshed if refreshed is not None else cancelled

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order | None:
        """The order placed under ``client_order_id``, or None when the exchange has none."""
        await self.instrument(symbol)
        venue_id = self._order_ids.get(client_order_id)
        what = f"fetch order {client_order_id}"
        if venue_id is None and not self._lookup_by_client_id:
            raw_found = await self._scan_for(symbol, client_order_id)
            return None if raw_found is None else self._to_order(raw_found, client_order_id,
                                                                   None)
        try:
            if venue_id is not None:
                raw = await self._call(
                    functools.partial(self._exchange.fetch_order, venue_id, symbol), what)
            else:
                raw = await self._call(functools.partial(
                    self._exchange.fetch_order, "", symbol, {"clientOrderId": client_order_id}),
                    what)
        except OrderNotFound:
            return None
        return self._to_order(raw, client_order_id, None)

    async def _scan_for(self, symbol: str, client_order_id: str) -> Raw | None:
        """Find an order by client id in the open and the recent closed orders, for
        exchanges whose ccxt class cannot look orders up by client id directly."""
        has = self._exchange.has
        recent = self._clock.now_ms() - _SCAN_BACK_MS
        sources: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        if has.get("fetchOpenOrders"):
            sources.append(("open orders", functools.partial(
                self._exchange.fetch_open_orders, symbol)))
        if has.get("fetchClosedOrders"):
            sources.append(("closed orders", functools.partial(
                self._exchange.fetch_closed_orders, symbol, recent)))
        elif has.get("fetchOrders"):
            sources.append(("orders", functools.partial(
                self._exchange.fetch_orders, symbol, recent)))
        if len(sources) < 2:
            raise VenueError(f"{self._name} offers no way to confirm whether order"
                             f" {client_order_id} exists, so it cannot be placed safely")
        for label, fetch in sources:
            for raw in await self._call(fetch, f"search {symbol} {label}"):
                if raw.get("clientOrderId") == client_order_id:
                    return dict(raw)
        return None

    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        raw = await self._call(lambda: self._exchange.fetch_open_orders(symbol),
                               "fetch open orders")
        return [self._to_order(item, None, None) for item in raw]

    async def fetch_fills(self, symbol: str, since_ms: int | None = None) -> Sequence[Fill]:
        """Our executions on ``symbol``, oldest first, each tied to its client order id.

        Without ``since_ms`` the exchange decides how far back it answers (Binance: the
        latest 500 trades); the order manager passes the time of the last fill it knows.
        """
        await self.instrument(symbol)
        fills: list[Fill] = []
        seen: set[str] = set()
        since = since_ms
        while True:
            raw = await self._call(
                functools.partial(self._exchange.fetch_my_trades, symbol, since),
                f"fetch {symbol} fills")
            fresh = [t for t in raw if str(t.get("id")) not in seen]
            if not fresh:
                break
            for trade in fresh:
                seen.add(str(trade.get("id")))
                client_id = await self._client_id_of(symbol, str(trade.get("order")))
                fills.append(_to_fill(self._id, trade, client_id))
            since = max(int(t.get("timestamp") or 0) for t in fresh)
        fills.sort(key=lambda f: (f.timestamp, f.trade_id))
        return fills

    # ---- internals: calls, retries, orders --------------------------------------------------

    async def _call(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await call_with_retry(call, translate_error=self._translate,
                                     policy=self._retry, what=f"{self._name}: {what}",
                                     on_clock_skew=self._resync_clock)

    def _translate(self, error: BaseException) -> VenueError:
        return translate(error, venue=self._name, redact=self._redact,
                         headers=self._exchange.last_response_headers)

    async def _resync_clock(self) -> None:
        """Measure the exchange clock's offset so signed requests carry its time."""
        with contextlib.suppress(Exception):
            self._exchange.options["adjustForTimeDifference"] = True
            await self._exchange.load_time_difference()
            log.warning("%s: clock differs from the exchange's by %s ms; requests now use the"
                        " exchange's time", self._name,
                        self._exchange.options.get("timeDifference"))

    async def _lookup_after_failure(self, request: OrderRequest,
                                    cause: VenueError) -> Order | None:
        """Did the create whose answer was lost arrive? None only when the exchange says no."""
        try:
            return await self.fetch_order(request.symbol, request.client_order_id)
        except VenueError as error:
            raise VenueUnavailable(
                f"{self._name}: order {request.client_order_id} may or may not have been"
                f" placed ({cause}); looking it up failed too ({error}). It was not sent"
                " again; check the open orders before placing it anew") from error

    async def _client_id_of(self, symbol: str, venue_order_id: str) -> str:
        known = self._client_ids.get(venue_order_id)
        if known is not None:
            return known
        raw = await self._call(lambda: self._exchange.fetch_order(venue_order_id, symbol),
                               f"fetch order {venue_order_id}")
        return self._to_order(raw, None, None).client_order_id

    def _order_arguments(self, request: OrderRequest,
                         instrument: Instrument) -> tuple[str, float | None, Raw]:
        """ccxt's (type, price, params) for ``request``, prices rounded to the tick."""
        has = self._exchange.has
        params: Raw = {"clientOrderId": request.client_order_id}
        price: float | None = None
        if request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            if request.price is None:
                raise OrderRejected(f"a {request.type.value} order needs a price")
            price = float(self._rounded_price(request.symbol, request.price))
            if request.time_in_force is TimeInForce.POST_ONLY:
                params["postOnly"] = True
            else:
                params["timeInForce"] = _TIME_IN_FORCE[request.time_in_force]
        if request.type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if request.stop_price is None:
                raise OrderRejected(f"a {request.type.value} order needs a stop price")
            if not (has.get("createStopOrder") or has.get("createTriggerOrder")):
                raise OrderRejected(f"{self._name} does not take stop orders through ccxt")
            params["triggerPrice"] = float(self._rounded_price(request.symbol,
                                                               request.stop_price))
        if request.take_profit is not None or request.stop_loss is not None:
            if not has.get("createOrderWithTakeProfitAndStopLoss"):
                raise OrderRejected(
                    f"{self._name} cannot attach take-profit/stop-loss to an order; place them"
                    " as separate stop and limit orders once this one has filled")
            if request.take_profit is not None:
                params["takeProfit"] = {"triggerPrice": float(
                    self._rounded_price(request.symbol, request.take_profit))}
            if request.stop_loss is not None:
                params["stopLoss"] = {"triggerPrice": float(
                    self._rounded_price(request.symbol, request.stop_loss))}
        kind = "market" if request.type in (OrderType.MARKET, OrderType.STOP) else "limit"
        return kind, price, params

    def _rounded_price(self, symbol: str, price: Decimal) -> Decimal:
        try:
            return Decimal(self._exchange.price_to_precision(symbol, str(price)))
        except (ccxt.BaseError, InvalidOperation) as error:
            raise OrderRejected(f"{symbol}: price {price} cannot be used ({error})") from None

    def _rounded_amount(self, request: OrderRequest, instrument: Instrument) -> Decimal:
        symbol = request.symbol
        try:
            amount = Decimal(self._exchange.amount_to_precision(symbol, str(request.amount)))
        except (ccxt.BaseError, InvalidOperation):
            amount = Decimal(0)
        if amount <= 0 or amount < instrument.min_amount:
            raise OrderRejected(f"{symbol}: amount {request.amount} is below the minimum"
                                f" {instrument.min_amount or instrument.lot_size}"
                                f" {instrument.base} after rounding to the lot size")
        reference = request.price or request.stop_price
        if reference is not None and instrument.min_notional > 0 and \
                amount * reference < instrument.min_notional:
            raise OrderRejected(f"{symbol}: order value {amount * reference} {instrument.quote}"
                                f" is below the minimum {instrument.min_notional}")
        return amount

    def _to_order(self, raw: Raw, client_order_id: str | None,
                  request: OrderRequest | None) -> Order:
        order = _to_order(self._id, raw, client_order_id, request, self._clock.now_ms())
        if order.venue_order_id is not None:
            self._order_ids[order.client_order_id] = order.venue_order_id
            self._client_ids[order.venue_order_id] = order.client_order_id
        return order

    def _timeframe_code(self, timeframe: Timeframe) -> str:
        timeframes = self._exchange.timeframes or {}
        if timeframe.code not in timeframes:
            raise InvalidArgument(f"{self._name} has no {timeframe.code} candles; it offers"
                                  f" {', '.join(timeframes)}")
        return timeframe.code

    def _spot_only_options(self) -> None:
        """Ask ccxt for spot markets only, and not for the private currency list: fewer and
        cheaper requests on start, and none to endpoints a spot key may not reach."""
        options = self._exchange.options
        options["defaultType"] = "spot"
        fetch_markets = options.get("fetchMarkets")
        if isinstance(fetch_markets, dict) and "types" in fetch_markets:
            fetch_markets["types"] = ["spot"]
        for name in ("fetchMargins", "fetchCurrencies"):
            if name in options:
                options[name] = False
        open_orders = options.get("fetchOpenOrders")
        if isinstance(open_orders, dict) and "warnWithoutSymbol" in open_orders:
            open_orders["warnWithoutSymbol"] = False

    # ---- internals: live data ---------------------------------------------------------------

    async def _follow_candles(self, symbol: str, timeframe: Timeframe, code: str, watch: bool,
                              put: Put) -> None:
        tracker = LiveCandleTracker(timeframe)
        failures = 0
        backfill = True
        while True:
            try:
                if backfill or not watch:
                    await self._poll_candles(symbol, timeframe, code, tracker, put)
                    backfill = False
                if watch:
                    rows = await self._exchange.watch_ohlcv(symbol, code)
                    await _emit(tracker, series_from_rows(rows, timeframe), symbol, timeframe,
                                self._clock.now_ms(), put)
                else:
                    await asyncio.sleep(self._poll_interval_s)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                if not await self._after_failure(failure, failures, put, f"{symbol} candles"):
                    return
                backfill = True
                failures += 1

    async def _poll_candles(self, symbol: str, timeframe: Timeframe, code: str,
                            tracker: LiveCandleTracker,
                            put: Put) -> None:
        """Fetch from the last closed candle on (all missed ones, page by page)."""
        limit = self.candles_per_request
        while True:
            now = self._clock.now_ms()
            since = tracker.resume_from(now)
            rows = await self._exchange.fetch_ohlcv(symbol, code, since, limit)
            series = series_from_rows(rows, timeframe).between(since, None)
            await _emit(tracker, series, symbol, timeframe, now, put)
            if len(series) < limit:
                return

    async def _follow_ticker(self, symbol: str, watch: bool,
                             put: Put) -> None:
        last: Ticker | None = None
        failures = 0
        while True:
            try:
                if watch:
                    raw = await self._exchange.watch_ticker(symbol)
                else:
                    raw = await self._exchange.fetch_ticker(symbol)
                ticker = _to_ticker(self._id, symbol, raw, self._clock.now_ms())
                if last is None or (ticker.last, ticker.bid, ticker.ask) != \
                        (last.last, last.bid, last.ask):
                    await put(ticker)
                    last = ticker
                failures = 0
                if not watch:
                    await asyncio.sleep(self._poll_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                if not await self._after_failure(failure, failures, put, f"{symbol} ticker"):
                    return
                failures += 1

    async def _after_failure(self, failure: Exception, failures: int, put: Put,
                             what: str) -> bool:
        """Back off before reconnecting a live feed; False, with the error handed to the
        consumer, when the failure cannot go away by trying again."""
        error = self._translate(failure)
        if not error.retryable:
            await put(error)
            return False
        delay = self._retry.delay(failures, error)
        log.warning("%s: live %s interrupted (%s); reconnecting in %.1f s", self._name, what,
                    error, delay)
        await self._retry.sleep(delay)
        return True


async def _emit(tracker: LiveCandleTracker, series: CandleSeries, symbol: str,
                timeframe: Timeframe, now_ms: int,
                put: Put) -> None:
    for candle, closed in tracker.update(list(series), now_ms):
        await put(CandleTick(symbol, timeframe, candle, closed))


async def _merged(producers: Sequence[Callable[[Put], Coroutine[Any, Any, None]]],
                  ) -> AsyncGenerator[Any, None]:
    """Run ``producers`` concurrently and yield what they put, until closed; an exception put
    by a producer is raised here."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=10_000)
    tasks = [asyncio.create_task(producer(queue.put)) for producer in producers]
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _rebase_urls(urls: Any, base_url: str) -> Any:
    """``urls`` (ccxt's ``urls['api']``, nested or flat) with every host replaced by
    ``base_url``'s, each path kept."""
    if isinstance(urls, dict):
        return {key: _rebase_urls(value, base_url) for key, value in urls.items()}
    if isinstance(urls, str):
        parts = urlsplit(urls)
        return base_url.rstrip("/") + parts.path
    return urls


# ---- ccxt dicts -> domain objects (the one place they are read) ------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _step(value: Any, mode: int) -> Decimal | None:
    """A precision value as a step size, in any of ccxt's precision modes."""
    number = _decimal(value)
    if number is None or number <= 0:
        return None
    if mode == TICK_SIZE:
        return number
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(number))
    if mode == SIGNIFICANT_DIGITS:
        return _FINEST_STEP
    return None


def _to_instrument(venue: str, market: Raw, mode: int) -> Instrument | None:
    if not market.get("spot") or market.get("active") is False:
        return None
    base, quote = market.get("base"), market.get("quote")
    if not base or not quote or market.get("symbol") != f"{base}/{quote}":
        return None
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    tick = _step(precision.get("price"), mode) or _FINEST_STEP
    lot = _step(precision.get("amount"), mode) or _FINEST_STEP
    min_amount = _decimal((limits.get("amount") or {}).get("min")) or Decimal(0)
    min_notional = _decimal((limits.get("cost") or {}).get("min")) or Decimal(0)
    return Instrument(venue, f"{base}/{quote}", base, quote, tick, lot, min_amount,
                      min_notional)


def _to_order_type(raw: Raw) -> OrderType:
    kind = str(raw.get("type") or "").lower()
    triggered = raw.get("triggerPrice") not in (None, 0, 0.0) or "stop" in kind
    limit = kind in ("limit", "limit_maker", "stop_limit", "stop_loss_limit")
    if triggered:
        return OrderType.STOP_LIMIT if limit else OrderType.STOP
    return OrderType.LIMIT if limit else OrderType.MARKET


def _to_order(venue: str, raw: Raw, client_order_id: str | None, request: OrderRequest | None,
              now_ms: int) -> Order:
    client_id = client_order_id or raw.get("clientOrderId")
    if not client_id:
        client_id = f"venue-{raw.get('id')}"
    amount = _decimal(raw.get("amount")) or (request.amount if request else None)
    if amount is None or amount <= 0:
        raise VenueError(f"{venue} returned order {raw.get('id')} without an amount")
    filled = min(amount, max(Decimal(0), _decimal(raw.get("filled")) or Decimal(0)))
    status = _STATUS.get(str(raw.get("status") or "").lower(), OrderStatus.OPEN)
    if status is OrderStatus.OPEN and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    kind = request.type if request is not None else _to_order_type(raw)
    price = _decimal(raw.get("price")) or None
    stop = _decimal(raw.get("triggerPrice") or raw.get("stopPrice")) or None
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and price is None:
        price = request.price if request is not None else None
        if price is None:
            kind = OrderType.STOP if kind is OrderType.STOP_LIMIT else OrderType.MARKET
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and stop is None:
        stop = request.stop_price if request is not None else None
        if stop is None:
            kind = OrderType.LIMIT if kind is OrderType.STOP_LIMIT else OrderType.MARKET
    if kind in (OrderType.MARKET, OrderType.STOP):
        price = None
    tif_text = str(raw.get("timeInForce") or "").upper()
    time_in_force = {"IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK,
                     "PO": TimeInForce.POST_ONLY}.get(tif_text, TimeInForce.GTC)
    if raw.get("postOnly"):
        time_in_force = TimeInForce.POST_ONLY
    side_text = str(raw.get("side") or (request.side.value if request else "")).lower()
    return Order(
        client_order_id=str(client_id), venue=venue, symbol=str(raw.get("symbol")),
        side=OrderSide(side_text), type=kind, amount=amount,
        created_at=int(raw.get("timestamp") or now_ms), price=price,
        stop_price=stop if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
        time_in_force=time_in_force, status=status, filled=filled,
        average_price=_decimal(raw.get("average")) if filled > 0 else None,
        venue_order_id=str(raw["id"]) if raw.get("id") is not None else None,
    )


def _to_fill(venue: str, raw: Raw, client_order_id: str) -> Fill:
    fee = raw.get("fee") or {}
    return Fill(
        trade_id=str(raw.get("id")), client_order_id=client_order_id, venue=venue,
        symbol=str(raw.get("symbol")), side=OrderSide(str(raw.get("side")).lower()),
        price=_decimal(raw.get("price")) or Decimal(0),
        amount=_decimal(raw.get("amount")) or Decimal(0),
        fee=_decimal(fee.get("cost")) or Decimal(0), fee_currency=str(fee.get("currency") or ""),
        timestamp=int(raw.get("timestamp") or 0),
        liquidity=Liquidity.MAKER if raw.get("takerOrMaker") == "maker" else Liquidity.TAKER,
    )


def _to_balances(raw: Raw) -> list[Balance]:
    free, used = raw.get("free") or {}, raw.get("used") or {}
    balances = []
    for currency in sorted(set(free) | set(used)):
        amount_free = _decimal(free.get(currency)) or Decimal(0)
        amount_used = _decimal(used.get(currency)) or Decimal(0)
        if amount_free or amount_used:
            balances.append(Balance(currency, amount_free, amount_used))
    return balances


def _with_best_quotes(ticker: Ticker, book: Raw) -> Ticker:
    bids, asks = book.get("bids") or [], book.get("asks") or []
    best_bid = bids[0] if bids else (None, None)
    best_ask = asks[0] if asks else (None, None)
    return dataclasses.replace(ticker, bid=_decimal(best_bid[0]), ask=_decimal(best_ask[0]),
                               bid_amount=_decimal(best_bid[1]),
                               ask_amount=_decimal(best_ask[1]))


def _to_ticker(venue: str, symbol: str, raw: Raw, now_ms: int) -> Ticker:
    return Ticker(venue=venue, symbol=symbol, timestamp=int(raw.get("timestamp") or now_ms),
                  last=_decimal(raw.get("last")), bid=_decimal(raw.get("bid")),
                  ask=_decimal(raw.get("ask")), bid_amount=_decimal(raw.get("bidVolume")),
                  ask_amount=_decimal(raw.get("askVolume")))


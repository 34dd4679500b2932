"""A local exchange that speaks enough of Binance's spot REST API for ccxt's ``binance`` class.

It runs an aiohttp server on 127.0.0.1 (a random port) in a thread of its own, so tests drive
it from plain synchronous code while the venue under test runs its own event loop. It keeps a
server-side ledger (orders, trades, balances) that tests read to prove that nothing was doubled
or lost, checks HMAC-SHA256 signatures, API keys and timestamps like Binance does, and
misbehaves on purpose when told to (:meth:`ExchangeEmulator.inject`): 429 with Retry-After,
418 bans, 5xx, timeouts, connections dropped after an order was accepted, insufficient balance,
clock skew and bad keys.

Prices: each symbol has a current price (:meth:`set_price`); market orders fill at it, and
resting limit and stop orders are matched whenever it moves. Candles are whatever the test
stored with :meth:`set_candles`; gaps in them are exchange outages.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from aiohttp import web

from terminal.core.series import CandleSeries

API_KEY = "emulator-key"
SECRET = "emulator-secret"
FEE_RATE = Decimal("0.001")
RECV_WINDOW_LIMIT_MS = 60_000
INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
               "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
               "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000, "1w": 604_800_000}
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT")

#: Fault kinds understood by :meth:`ExchangeEmulator.inject`.
FAULTS = ("rate_limit", "ban", "server_error", "unavailable", "timeout", "timeout_after_accept",
          "drop_after_accept", "insufficient", "clock_skew", "bad_key", "partial")


@dataclass(frozen=True)
class MarketSpec:
    symbol: str  # Binance id, e.g. BTCUSDT
    base: str
    quote: str
    tick: str
    step: str
    min_qty: str
    min_notional: str
    status: str = "TRADING"


DEFAULT_MARKETS = (
    MarketSpec("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "5"),
    MarketSpec("ETHUSDT", "ETH", "USDT", "0.01", "0.0001", "0.0001", "5"),
    MarketSpec("HALTUSDT", "HALT", "USDT", "0.001", "0.1", "0.1", "5", status="BREAK"),
)


@dataclass
class Fault:
    kind: str
    endpoint: str  # "POST /api/v3/order", or "*" for every endpoint
    calls: frozenset[int] | None  # 1-based call numbers of that endpoint; None: every call
    retry_after: int = 1
    sleep_s: float = 5.0
    fraction: Decimal = Decimal("0.5")


@dataclass
class LedgerOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    stop_price: Decimal
    created: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    updated: int = 0
    triggered: bool = False
    reserve_price: Decimal = Decimal(0)  # quote locked per unit of a buy

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class LedgerTrade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    maker: bool


@dataclass
class Ledger:
    orders: dict[int, LedgerOrder] = field(default_factory=dict)
    trades: list[LedgerTrade] = field(default_factory=list)
    balances: dict[str, list[Decimal]] = field(default_factory=dict)  # asset -> [free, locked]


class ExchangeError(Exception):
    """A Binance error answer: HTTP status, Binance code, message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class ExchangeEmulator:
    """Binance spot, as far as ccxt needs it, with a ledger and injectable faults."""

    def __init__(self, markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS, *,
                 api_key: str = API_KEY, secret: str = SECRET) -> None:
        self.markets = {m.symbol: m for m in markets}
        self.api_key = api_key
        self.secret = secret
        self.ledger = Ledger()
        self.prices: dict[str, Decimal] = {}
        self.candles: dict[tuple[str, str], np.ndarray] = {}
        self.calls: Counter[str] = Counter()
        self.requests: list[str] = []  # "METHOD path" of every request, in order
        self.clock_offset_ms = 0
        self.api_restrictions: dict[str, Any] = {
            "ipRestrict": False, "enableReading": True, "enableSpotAndMarginTrading": True,
            "enableWithdrawals": False, "enableInternalTransfer": False, "enableMargin": False,
            "enableFutures": False, "permitsUniversalTransfer": False}
        self.ticker_quotes = True  # False: the ticker has no bid/ask, as on some exchanges
        self._faults: list[Fault] = []
        self._order_ids = itertools.count(1001)
        self._trade_ids = itertools.count(5001)
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True,
                                        name="exchange-emulator")
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the exchange emulator did not start")

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_urls(self) -> dict[str, str]:
        """Every entry of ccxt binance's ``urls['api']``, pointed at this server."""
        root = self.base_url
        return {
            "public": f"{root}/api/v3", "private": f"{root}/api/v3", "v1": f"{root}/api/v1",
            "sapi": f"{root}/sapi/v1", "sapiV2": f"{root}/sapi/v2", "sapiV3": f"{root}/sapi/v3",
            "sapiV4": f"{root}/sapi/v4",
            **{name: f"{root}/unsupported/{name}" for name in (
                "dapiPublic", "dapiPrivate", "dapiPrivateV2", "dapiData", "fapiPublic",
                "fapiPublicV2", "fapiPublicV3", "fapiPrivate", "fapiPrivateV2", "fapiPrivateV3",
                "fapiData", "eapiPublic", "eapiPrivate", "papi", "papiV2")},
        }

    def _serve(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        started.set()
        loop.run_forever()
        loop.close()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- test controls ----------------------------------------------------------------------

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    def inject(self, kind: str, endpoint: str = "*", *, calls: tuple[int, ...] | None = (1,),
               retry_after: int = 1, sleep_s: float = 5.0, fraction: str = "0.5") -> None:
        """Misbehave on the given call numbers of ``endpoint`` (counted from now on)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            base = self.calls[endpoint] if endpoint != "*" else 0
            numbers = None if calls is None else frozenset(base + n for n in calls)
            self._faults.append(Fault(kind, endpoint, numbers, retry_after, sleep_s,
                                      Decimal(fraction)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def halt(self, symbol: str) -> None:
        """Stop trading ``symbol`` (a halt after clients loaded the markets)."""
        with self._lock:
            self.markets[symbol] = replace(self.markets[symbol], status="BREAK")

    def deposit(self, asset: str, amount: str) -> None:
        with self._lock:
            self.ledger.balances.setdefault(asset, [Decimal(0), Decimal(0)])[0] += Decimal(amount)

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        with self._lock:
            free, locked = self.ledger.balances.get(asset, [Decimal(0), Decimal(0)])
            return free, locked

    def set_price(self, symbol: str, price: str) -> None:
        """Move ``symbol``'s price; resting orders that it crosses fill (stops trigger)."""
        with self._lock:
            self.prices[symbol] = Decimal(price)
            self._match(symbol)

    def set_candles(self, symbol: str, interval: str, series: CandleSeries) -> None:
        with self._lock:
            self.candles[(symbol, interval)] = series.to_records()
            if len(series) and symbol not in self.prices:
                self.prices[symbol] = Decimal(repr(float(series.close[-1])))

    def fill_partially(self, client_order_id: str, quantity: str) -> None:
        """Fill part of a resting order at its limit price, as if another trader took it."""
        with self._lock:
            order = self.order_by_client_id(client_order_id)
            assert order is not None and order.is_open
            self._execute(order, Decimal(quantity), order.price, maker=True)

    def orders_with_client_id(self, client_order_id: str) -> list[LedgerOrder]:
        with self._lock:
            return [o for o in self.ledger.orders.values()
                    if o.client_order_id == client_order_id]

    def order_by_client_id(self, client_order_id: str) -> LedgerOrder | None:
        found = self.orders_with_client_id(client_order_id)
        return found[-1] if found else None

    def all_orders(self) -> list[LedgerOrder]:
        with self._lock:
            return list(self.ledger.orders.values())

    def check_ledger(self) -> None:
        """The ledger's own bookkeeping holds: nothing negative, and what is locked is exactly
        what the open orders reserve."""
        with self._lock:
            locked: dict[str, Decimal] = {}
            for order in self.ledger.orders.values():
                if order.is_open:
                    asset, amount = self._reserved(order)
                    locked[asset] = locked.get(asset, Decimal(0)) + amount
            for asset, (free, held) in self.ledger.balances.items():
                assert free >= 0 and held >= 0, f"{asset}: free {free}, locked {held}"
                assert held == locked.get(asset, Decimal(0)), f"{asset}: locked {held}"
            for order in self.ledger.orders.values():
                filled = sum((t.qty for t in self.trades_of(order.order_id)), Decimal(0))
                assert filled == order.executed, f"order {order.order_id}: trades {filled}"

    def trades_of(self, order_id: int) -> list[LedgerTrade]:
        with self._lock:
            return [t for t in self.ledger.trades if t.order_id == order_id]

    # ---- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = f"{request.method} {request.path}"
        body = await request.text()
        with self._lock:
            self.calls[endpoint] += 1
            self.requests.append(endpoint)
            fault = self._fault_for(endpoint)
        if fault is not None and fault.kind in ("rate_limit", "ban"):
            status = 429 if fault.kind == "rate_limit" else 418
            return web.json_response(
                {"code": -1003, "msg": "Too much request weight used; current limit is 6000"
                 " request weight per 1 MINUTE."},
                status=status, headers={"Retry-After": str(fault.retry_after)})
        if fault is not None and fault.kind == "server_error":
            return web.json_response(
                {"code": -1001, "msg": "Internal error; unable to process your request."
                 " Please try again."}, status=500)
        if fault is not None and fault.kind == "unavailable":
            return web.Response(status=503, text="<html>Service Unavailable</html>",
                                content_type="text/html")
        if fault is not None and fault.kind == "timeout":
            # Lost before it was processed: the client gives up, the ledger never sees it.
            await asyncio.sleep(fault.sleep_s)
            return web.json_response({"code": -1007, "msg": "Timeout waiting for response"
                                      " from backend server."}, status=504)
        params = dict(parse_qsl(request.query_string, keep_blank_values=True))
        params.update(dict(parse_qsl(body, keep_blank_values=True)))
        signed = request.query_string if request.method in ("GET", "DELETE") else body
        try:
            with self._lock:
                payload = self._dispatch(request, endpoint, params, signed, fault)
        except ExchangeError as error:
            return web.json_response({"code": error.code, "msg": error.msg},
                                     status=error.status)
        if fault is not None and fault.kind == "timeout_after_accept":
            await asyncio.sleep(fault.sleep_s)
        if fault is not None and fault.kind == "drop_after_accept":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        return web.Response(text=json.dumps(payload), content_type="application/json")

    def _fault_for(self, endpoint: str) -> Fault | None:
        for fault in self._faults:
            if fault.endpoint not in ("*", endpoint):
                continue
            count = self.calls[endpoint]
            if fault.calls is None or count in fault.calls:
                return fault
        return None

    def _dispatch(self, request: web.Request, endpoint: str, params: dict[str, str],
                  signed: str, fault: Fault | None) -> Any:
        public = {
            "GET /api/v3/ping": dict,
            "GET /api/v3/time": lambda: {"serverTime": self.now_ms()},
            "GET /api/v3/exchangeInfo": self._exchange_info,
            "GET /api/v3/klines": lambda: self._klines(params),
            "GET /api/v3/ticker/24hr": lambda: self._ticker(params),
            "GET /api/v3/depth": lambda: self._depth(params),
        }
        if endpoint in public:
            return public[endpoint]()
        private = {
            "GET /api/v3/account": self._account,
            "POST /api/v3/order": lambda p: self._new_order(p, fault),
            "GET /api/v3/order": self._query_order,
            "DELETE /api/v3/order": self._cancel_order,
            "GET /api/v3/openOrders": self._open_orders,
            "GET /api/v3/allOrders": self._all_orders,
            "GET /api/v3/myTrades": self._my_trades,
            "GET /sapi/v1/account/apiRestrictions": lambda _p: dict(self.api_restrictions),
        }
        if endpoint not in private:
            raise ExchangeError(404, -1000, f"the emulator does not serve {endpoint}")
        self._authenticate(request, params, signed, fault)
        if fault is not None and fault.kind == "insufficient":
            raise ExchangeError(400, -2010,
                                "Account has insufficient balance for requested action.")
        return private[endpoint](params)

    def _authenticate(self, request: web.Request, params: dict[str, str], signed: str,
                      fault: Fault | None) -> None:
        if (fault is not None and fault.kind == "bad_key") or \
                request.headers.get("X-MBX-APIKEY") != self.api_key:
            raise ExchangeError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = params.pop("signature", "")
        payload = signed.rsplit("&signature=", 1)[0]
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise ExchangeError(400, -1022, "Signature for this request is not valid.")
        timestamp = int(params.get("timestamp", "0"))
        recv_window = int(params.get("recvWindow", "5000"))
        if recv_window > RECV_WINDOW_LIMIT_MS:
            raise ExchangeError(400, -1131, "recvWindow must be less than 60000")
        now = self.now_ms()
        if (fault is not None and fault.kind == "clock_skew") or timestamp > now + 1000 or \
                now - timestamp > recv_window:
            raise ExchangeError(400, -1021, "Timestamp for this request is outside of the"
                                            " recvWindow.")

    def _market(self, params: dict[str, str]) -> MarketSpec:
        market = self.markets.get(params.get("symbol", ""))
        if market is None:
            raise ExchangeError(400, -1121, "Invalid symbol.")
        return market

    def _exchange_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC", "serverTime": self.now_ms(), "exchangeFilters": [],
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": 6000}],
            "symbols": [{
                "symbol": m.symbol, "status": m.status, "baseAsset": m.base,
                "baseAssetPrecision": 8, "quoteAsset": m.quote, "quotePrecision": 8,
                "quoteAssetPrecision": 8, "orderTypes": list(ORDER_TYPES),
                "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False, "permissions": ["SPOT"],
                "permissionSets": [["SPOT"]],
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": m.tick, "maxPrice": "1000000",
                     "tickSize": m.tick},
                    {"filterType": "LOT_SIZE", "minQty": m.min_qty, "maxQty": "9000",
                     "stepSize": m.step},
                    {"filterType": "NOTIONAL", "minNotional": m.min_notional,
                     "applyMinToMarket": True, "maxNotional": "9000000",
                     "applyMaxToMarket": False, "avgPriceMins": 5},
                ],
            } for m in self.markets.values()],
        }

    def _klines(self, params: dict[str, str]) -> list[list[Any]]:
        market = self._market(params)
        interval = params.get("interval", "")
        if interval not in INTERVAL_MS:
            raise ExchangeError(400, -1120, "Invalid interval.")
        limit = min(int(params.get("limit", "500")), 1000)
        records = self.candles.get((market.symbol, interval))
        if records is None:
            return []
        times = records["open_time"]
        start = int(params.get("startTime", times[0] if len(times) else 0))
        first = int(np.searchsorted(times, start, side="left"))
        stop = first + limit
        if "endTime" in params:
            stop = min(stop, int(np.searchsorted(times, int(params["endTime"]), side="right")))
        step = INTERVAL_MS[interval]
        return [[int(r["open_time"]), repr(float(r["open"])), repr(float(r["high"])),
                 repr(float(r["low"])), repr(float(r["close"])), repr(float(r["volume"])),
                 int(r["open_time"]) + step - 1, "0", 0, "0", "0", "0"]
                for r in records[first:stop]]

    def _price(self, market: MarketSpec) -> Decimal:
        price = self.prices.get(market.symbol)
        if price is None:
            raise ExchangeError(400, -1013, "No price for this symbol yet.")
        return price

    def _ticker(self, params: dict[str, str]) -> dict[str, Any]:
        market = self._market(params)
        price = self._price(market)
        tick = Decimal(market.tick)
        now = self.now_ms()
        quotes = {"bidPrice": str(price - tick), "bidQty": "1.5", "askPrice": str(price + tick),
                  "askQty": "2.5"} if self.ticker_quotes else {}
        return {"symbol": market.symbol, "lastPrice": str(price), **quotes,
                "openPrice": str(price), "highPrice": str(price), "lowPrice": str(price),
                "volume": "100", "quoteVolume": str(price * 100), "priceChange": "0",
                "priceChangePercent": "0", "weightedAvgPrice": str(price),
                "prevClosePrice": str(price), "openTime": now - 86_400_000, "closeTime": now,
                "firstId": 1, "lastId": 2, "count": 2}

    def _depth(self, params: dict[str, str]) -> dict[str, Any]:
        market = self._market(params)
        price = self._price(market)
        tick = Decimal(market.tick)
        levels = min(int(params.get("limit", "100")), 20)
        return {"lastUpdateId": self.calls["GET /api/v3/depth"],
                "bids": [[str(price - tick * (i + 1)), "1"] for i in range(levels)],
                "asks": [[str(price + tick * (i + 1)), "1"] for i in range(levels)]}

    def _account(self, _params: dict[str, str]) -> dict[str, Any]:
        return {"makerCommission": 10, "takerCommission": 10, "canTrade": True,
                "canWithdraw": True, "canDeposit": True, "updateTime": self.now_ms(),
                "accountType": "SPOT", "permissions": ["SPOT"],
                "balances": [{"asset": asset, "free": str(free), "locked": str(locked)}
                             for asset, (free, locked) in self.ledger.balances.items()]}

    # ---- orders -----------------------------------------------------------------------------

    def _new_order(self, params: dict[str, str], fault: Fault | None) -> dict[str, Any]:
        market = self._market(params)
        if market.status != "TRADING":
            raise ExchangeError(400, -1013, "Market is closed.")
        side, kind = params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL") or kind not in ORDER_TYPES:
            raise ExchangeError(400, -1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or f"x-{uuid.uuid4().hex[:20]}"
        if any(o.client_order_id == client_id and o.is_open
               for o in self.ledger.orders.values()):
            raise ExchangeError(400, -2010, "Duplicate order sent.")
        quantity = self._decimal(params, "quantity")
        price = self._decimal(params, "price") if kind != "MARKET" and \
            kind != "STOP_LOSS" else Decimal(0)
        stop = self._decimal(params, "stopPrice") if kind.startswith("STOP") else Decimal(0)
        self._check_filters(market, quantity, price)
        last = self._price(market)
        if stop and ((side == "SELL" and last <= stop) or (side == "BUY" and last >= stop)):
            raise ExchangeError(400, -2010, "Stop price would trigger immediately.")
        if kind == "LIMIT_MAKER" and ((side == "BUY" and price >= last) or
                                      (side == "SELL" and price <= last)):
            raise ExchangeError(400, -2010, "Order would immediately match and take.")
        now = self.now_ms()
        order = LedgerOrder(next(self._order_ids), client_id, market.symbol, side, kind,
                            params.get("timeInForce", "GTC"), quantity, price, stop, now,
                            updated=now, reserve_price=price or last)
        reserve_asset, reserve = self._reserved(order)
        balance = self.ledger.balances.setdefault(reserve_asset, [Decimal(0), Decimal(0)])
        if balance[0] < reserve:
            raise ExchangeError(400, -2010,
                                "Account has insufficient balance for requested action.")
        self.ledger.orders[order.order_id] = order
        balance[0] -= reserve
        balance[1] += reserve
        first_trade = len(self.ledger.trades)
        if kind == "MARKET":
            share = fault.fraction if fault is not None and fault.kind == "partial" else 1
            self._execute(order, self._round(quantity * share, market.step), last, maker=False)
            if order.is_open:  # not enough liquidity: the rest expires, as on Binance
                self._close(order, "EXPIRED")
        else:
            self._match_order(order, last)
        response = self._order_json(order)
        response["transactTime"] = now
        response["fills"] = [
            {"price": str(t.price), "qty": str(t.qty), "commission": str(t.commission),
             "commissionAsset": t.commission_asset, "tradeId": t.trade_id}
            for t in self.ledger.trades[first_trade:]]
        return response

    def _decimal(self, params: dict[str, str], name: str) -> Decimal:
        try:
            value = Decimal(params[name])
        except (KeyError, ArithmeticError):
            raise ExchangeError(400, -1102, f"Mandatory parameter '{name}' was not sent, was"
                                            " empty/null, or malformed.") from None
        if value <= 0:
            raise ExchangeError(400, -1013, f"Invalid {name}.")
        return value

    def _check_filters(self, market: MarketSpec, quantity: Decimal, price: Decimal) -> None:
        if quantity < Decimal(market.min_qty) or quantity % Decimal(market.step):
            raise ExchangeError(400, -1013, "Filter failure: LOT_SIZE")
        if price and price % Decimal(market.tick):
            raise ExchangeError(400, -1013, "Filter failure: PRICE_FILTER")
        notional = quantity * (price or self._price(market))
        if notional < Decimal(market.min_notional):
            raise ExchangeError(400, -1013, "Filter failure: NOTIONAL")

    def _reserved(self, order: LedgerOrder) -> tuple[str, Decimal]:
        """What the unfilled rest of ``order`` holds locked: quote for a buy, base for a sell."""
        market = self.markets[order.symbol]
        remaining = order.quantity - order.executed
        if order.side == "BUY":
            return market.quote, remaining * order.reserve_price
        return market.base, remaining

    def _round(self, quantity: Decimal, step: str) -> Decimal:
        return quantity.quantize(Decimal(step), rounding=ROUND_DOWN)

    def _match(self, symbol: str) -> None:
        price = self.prices[symbol]
        for order in list(self.ledger.orders.values()):
            if order.symbol == symbol and order.is_open:
                self._match_order(order, price)

    def _match_order(self, order: LedgerOrder, last: Decimal) -> None:
        if order.stop_price and not order.triggered:
            hit = last <= order.stop_price if order.side == "SELL" else last >= order.stop_price
            if not hit:
                return
            order.triggered = True
        if order.type in ("MARKET", "STOP_LOSS"):
            self._execute(order, order.quantity - order.executed, last, maker=False)
            return
        crosses = last <= order.price if order.side == "BUY" else last >= order.price
        if crosses:
            self._execute(order, order.quantity - order.executed, order.price,
                          maker=order.type == "LIMIT_MAKER")

    def _execute(self, order: LedgerOrder, qty: Decimal, price: Decimal, *, maker: bool) -> None:
        if qty <= 0:
            return
        market = self.markets[order.symbol]
        balances = self.ledger.balances
        for asset in (market.base, market.quote):
            balances.setdefault(asset, [Decimal(0), Decimal(0)])
        quote_amount = qty * price
        if order.side == "BUY":
            balances[market.quote][1] -= qty * order.reserve_price
            balances[market.quote][0] += qty * order.reserve_price - quote_amount
            fee = qty * FEE_RATE
            balances[market.base][0] += qty - fee
            fee_asset = market.base
        else:
            balances[market.base][1] -= qty
            fee = quote_amount * FEE_RATE
            balances[market.quote][0] += quote_amount - fee
            fee_asset = market.quote
        now = self.now_ms()
        self.ledger.trades.append(LedgerTrade(next(self._trade_ids), order.order_id,
                                              order.symbol, order.side, price, qty, fee,
                                              fee_asset, now, maker))
        order.executed += qty
        order.quote_executed += quote_amount
        order.updated = now
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"

    def _close(self, order: LedgerOrder, status: str) -> None:
        asset, amount = self._reserved(order)
        balance = self.ledger.balances[asset]
        balance[1] -= amount
        balance[0] += amount
        order.status = status
        order.updated = self.now_ms()

    def _find(self, params: dict[str, str], missing_code: int, missing_msg: str) -> LedgerOrder:
        market = self._market(params)
        order: LedgerOrder | None = None
        if "orderId" in params:
            order = self.ledger.orders.get(int(params["orderId"]))
        elif "origClientOrderId" in params:
            found = [o for o in self.ledger.orders.values() if o.symbol == market.symbol
                     and o.client_order_id == params["origClientOrderId"]]
            order = found[-1] if found else None
        else:
            raise ExchangeError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be"
                                            " sent, but both were empty/null!")
        if order is None or order.symbol != market.symbol:
            raise ExchangeError(400, missing_code, missing_msg)
        return order

    def _query_order(self, params: dict[str, str]) -> dict[str, Any]:
        return self._order_json(self._find(params, -2013, "Order does not exist."))

    def _cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(params, -2011, "Unknown order sent.")
        if not order.is_open:
            raise ExchangeError(400, -2011, "Unknown order sent.")
        self._close(order, "CANCELED")
        response = self._order_json(order)
        response["origClientOrderId"] = order.client_order_id
        response["clientOrderId"] = f"cancel-{uuid.uuid4().hex[:16]}"
        response["transactTime"] = order.updated
        return response

    def _open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._market(params).symbol if "symbol" in params else None
        return [self._order_json(o) for o in self.ledger.orders.values()
                if o.is_open and (symbol is None or o.symbol == symbol)]

    def _all_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._market(params).symbol
        start = int(params.get("startTime", "0"))
        limit = min(int(params.get("limit", "500")), 1000)
        found = [self._order_json(o) for o in self.ledger.orders.values()
                 if o.symbol == symbol and o.created >= start]
        return found[:limit]

    def _my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        market = self._market(params)
        start = int(params.get("startTime", "0"))
        limit = min(int(params.get("limit", "500")), 1000)
        order_id = int(params["orderId"]) if "orderId" in params else None
        found = [t for t in self.ledger.trades if t.symbol == market.symbol and t.time >= start
                 and (order_id is None or t.order_id == order_id)]
        return [{"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id,
                 "orderListId": -1, "price": str(t.price), "qty": str(t.qty),
                 "quoteQty": str(t.price * t.qty), "commission": str(t.commission),
                 "commissionAsset": t.commission_asset, "time": t.time,
                 "isBuyer": t.side == "BUY", "isMaker": t.maker, "isBestMatch": True}
                for t in found[:limit]]

    def _order_json(self, order: LedgerOrder) -> dict[str, Any]:
        return {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                "clientOrderId": order.client_order_id, "price": str(order.price),
                "origQty": str(order.quantity), "executedQty": str(order.executed),
                "cummulativeQuoteQty": str(order.quote_executed), "status": order.status,
                "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
                "stopPrice": str(order.stop_price), "icebergQty": "0", "time": order.created,
                "updateTime": order.updated, "isWorking": not order.stop_price or
                order.triggered, "workingTime": order.created, "origQuoteOrderQty": "0",
                "selfTradePreventionMode": "NONE"}


"""The paper venue: a trading account with pretend money, on real (or simulated) prices.

It implements :class:`terminal.core.ports.TradingVenue`, so the order manager trades on it
exactly as on an exchange, and it is the default trading venue. Prices come from any
:class:`~terminal.core.ports.MarketDataVenue`: the caller hands it each candle update
(:meth:`PaperVenue.observe`) or asks it to catch up on closed candles
(:meth:`PaperVenue.catch_up`). Fills come from :class:`terminal.core.fills.FillModel`, the
same rules the backtester uses; there is no second fill logic here.

**Which price movement an order meets.** The venue remembers, per symbol, the last state of
the candle it saw (its *cursor*, kept in the store). Each update is cut into the movement it
proves happened since then, a *segment*, and every working order is put to the fill model
against that segment as if it were a candle:

* a candle not seen before is its own segment (its open, high, low, close): an order waiting
  since the previous candle closed meets the new candle's open, as in a backtest;
* a later state of the same candle proves only the move from the last close seen: the
  segment opens there and reaches a new high or low only where the candle's extremes grew.

An order placed while the venue sees a forming candle meets the current price at once (a
market order fills there); one placed after the last candle closed waits for the next
candle's open. Driving the venue with closed candles only therefore executes exactly as the
backtest engine does: decided at a close, filled in the next candle.

**Balances.** One account per venue id, in its quote currency (``USDT`` by default) plus the
bases it buys. An open order holds (``used``) what it may spend: a sell its amount of base,
a buy its amount at its limit or stop price (at the last price for a market order) plus the
higher fee. A buy fills for at most what its reservation and the free quote pay for at the
fill price, fee included (as the backtester caps a buy by the cash); when that is less than
asked, the rest of the order is canceled with the reason. Balances never go negative.

Everything is written to the store in one transaction per change, so a restart continues
with the same balances, working orders and cursors; :meth:`PaperVenue.reset` starts over.
**Protective exits.** A buy may attach a stop loss, a take profit and a trailing stop
(:class:`OrderRequest`). When it fills, they guard what it bought: on every later segment
:meth:`FillModel.exit_fill` decides whether one of them sells it (the stop side winning when
both are reached, as in a backtest), and the trailing stop follows each closed candle's high.
The exit is recorded as a filled order whose client order id is the entry's plus ``-sl``,
``-tp`` or ``-ts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal

from terminal.core.bus import EventBus
from terminal.core.clock import Clock, SystemClock
from terminal.core.errors import (
    InsufficientFunds,
    InvalidArgument,
    OrderNotFound,
    OrderRejected,
    TerminalError,
)
from terminal.core.events import CandleClosed, CandleUpdated, ErrorRaised
from terminal.core.fills import ExitReason, FillModel, Protection, SimFill, SimOrder
from terminal.core.model import (
    Balance,
    Candle,
    Fill,
    Instrument,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Timeframe,
    TimeInForce,
    VenueKind,
    to_decimal,
)
from terminal.core.ports import MarketDataVenue, OrderRequest
from terminal.core.storage import Store
from terminal.core.storage.paper import (
    PaperAccount,
    PaperOrderState,
    PaperProtection,
    PriceCursor,
)
from terminal.exchange.simulated import is_simulated_venue

VENUE_ID = "paper"
DEFAULT_QUOTE = "USDT"
DEFAULT_STARTING_CASH = Decimal(10_000)
ZERO = Decimal(0)
# Closed candles fetched per request when catching up after a pause.
_CATCH_UP_CHUNK = 1_000
#: The candles the account follows and catches up on: an order meets every minute's prices.
FEED_TIMEFRAME = Timeframe.M1
# Suffixes of the client order ids of protective exits: the entry's id plus one of these.
EXIT_SUFFIXES = {ExitReason.STOP_LOSS: "-sl", ExitReason.TAKE_PROFIT: "-tp",
                 ExitReason.TRAILING_STOP: "-ts"}


def paper_account_id(market_id: str) -> str:
    """The paper account trading on ``market_id``'s prices: ``paper`` on the simulated
    market, ``paper-binance`` on Binance's. Balances made on different prices never mix."""
    return VENUE_ID if is_simulated_venue(market_id) else f"{VENUE_ID}-{market_id}"


class PaperVenue:
    """A paper trading account on ``market``'s prices, persisted in ``store``.

    ``venue_id`` names the account in the store (several can coexist). ``starting_cash`` in
    ``quote`` funds a new account; an existing one keeps its balances until :meth:`reset`.
    """

    def __init__(self, store: Store, market: MarketDataVenue, *, venue_id: str = VENUE_ID,
                 fill_model: FillModel | None = None, clock: Clock | None = None,
                 starting_cash: Decimal = DEFAULT_STARTING_CASH,
                 quote: str = DEFAULT_QUOTE) -> None:
        if not starting_cash > 0:
            raise InvalidArgument(f"the starting cash must be positive, got {starting_cash}")
        self._store = store
        self._market = market
        self._id = venue_id
        self._model = fill_model or FillModel()
        self._clock: Clock = clock or SystemClock()
        self._initial = (starting_cash, quote)
        self._instruments: dict[str, Instrument] = {}
        self._account: PaperAccount | None = None
        self._balances: dict[str, Balance] = {}
        self._open: dict[str, PaperOrderState] = {}
        self._cursors: dict[str, PriceCursor] = {}
        self._protections: dict[str, PaperProtection] = {}
        # Changes since the last save: order states (open or final) and protections.
        self._dirty: dict[str, PaperOrderState] = {}
        self._dirty_protections: dict[str, PaperProtection | None] = {}
        # Symbols whose protected entry filled inside the segment being worked.
        self._entered_inside: set[str] = set()

    # --- identity ---------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def display_name(self) -> str:
        return f"Paper trading on {self._market.display_name}"

    @property
    def kind(self) -> VenueKind:
        return VenueKind.PAPER

    @property
    def fill_model(self) -> FillModel:
        return self._model

    @property
    def quote(self) -> str:
        return self._require_account().quote

    @property
    def starting_cash(self) -> Decimal:
        return self._require_account().starting_cash

    # --- opening and resetting --------------------------------------------------------------

    async def open(self) -> None:
        """Load the market's instruments and the account (creating it on first use)."""
        if not self._instruments:
            for instrument in await self._market.load_instruments():
                self._instruments[instrument.symbol] = replace(instrument, venue=self._id)
        if self._account is None:
            self._load()

    def _load(self) -> None:
        snapshot = self._store.paper.load(self._id)
        self._dirty, self._dirty_protections = {}, {}
        if snapshot is None:
            cash, quote = self._initial
            self._start(cash, quote)
        else:
            self._account = snapshot.account
            self._balances = snapshot.balances
            self._open = snapshot.open_orders
            self._cursors = snapshot.cursors
            self._protections = snapshot.protections

    def reset(self, starting_cash: Decimal | None = None, quote: str | None = None) -> None:
        """Forget every order, fill and holding; start again with ``starting_cash``.

        The order manager's records of this account (orders, fills, closed trades) go too,
        in the same transaction: a history whose positions the account no longer holds
        would contradict it.
        """
        current = self._account
        cash = starting_cash if starting_cash is not None else (
            current.starting_cash if current else self._initial[0])
        if not cash > 0:
            raise InvalidArgument(f"the starting cash must be positive, got {cash}")
        self._start(cash, quote or (current.quote if current else self._initial[1]))

    def _start(self, cash: Decimal, quote: str) -> None:
        account = PaperAccount(self._id, quote, cash, 1, self._clock.now_ms())
        with self._store.transaction() as transaction:
            transaction.paper.reset(account)
            transaction.orders.forget_venue(self._id)
        self._account = account
        self._balances = {quote: Balance(quote, cash)}
        self._open = {}
        self._cursors = {}
        self._protections = {}
        self._dirty, self._dirty_protections = {}, {}

    # --- TradingVenue -----------------------------------------------------------------------

    async def load_instruments(self) -> Sequence[Instrument]:
        await self.open()
        return tuple(self._instruments.values())

    async def fetch_balances(self) -> Sequence[Balance]:
        await self.open()
        return tuple(self._balances[c] for c in sorted(self._balances)
                     if self._balances[c].total != 0 or c == self.quote)

    async def submit_order(self, request: OrderRequest) -> Order:
        """Place ``request``; the same client order id twice returns the first order."""
        await self.open()
        known = self._find(request.client_order_id)
        if known is not None:
            return known.order
        instrument = self._instrument(request.symbol)
        self._validate(request, instrument)
        cursor = self._cursors.get(request.symbol)
        if cursor is None:
            raise OrderRejected(
                f"no price known for {request.symbol} yet; the paper venue needs the market's"
                " prices before it takes orders")
        reserved = self._reservation(request, cursor.candle.close, instrument)
        now = self._clock.now_ms()
        order = Order(
            client_order_id=request.client_order_id, venue=self._id, symbol=request.symbol,
            side=request.side, type=request.type, amount=request.amount, created_at=now,
            price=request.price, stop_price=request.stop_price,
            time_in_force=request.time_in_force, status=OrderStatus.OPEN,
            venue_order_id=f"P{self._require_account().next_seq}")
        self._bump_seq()
        self._hold(instrument, request.side, reserved)
        state = PaperOrderState(order, reserved, False, now, _float(request.stop_loss),
                                _float(request.take_profit), _float(request.trailing_stop_pct))
        self._put(state)
        fills: list[Fill] = []
        if not cursor.closed:
            # A live price: the order meets it now, as on an exchange.
            price = cursor.candle.close
            point = Candle(now, price, price, price, price, cursor.candle.volume)
            fills.extend(self._work(state, point, time_ms=now))
        state = self._latest(order.client_order_id)
        if state.order.status is OrderStatus.OPEN and request.time_in_force in (
                TimeInForce.IOC, TimeInForce.FOK):
            self._close_order(state, OrderStatus.EXPIRED,
                              "immediate-or-cancel: nothing could fill at once", now)
        self._save(fills=fills)
        return self._latest(order.client_order_id).order

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        await self.open()
        state = self._find(client_order_id)
        if state is None or state.order.symbol != symbol:
            raise OrderNotFound(f"the paper account has no {symbol} order {client_order_id}")
        if state.order.status.is_final:
            return state.order
        self._close_order(state, OrderStatus.CANCELED, None, self._clock.now_ms())
        self._save()
        return self._latest(client_order_id).order

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order | None:
        await self.open()
        state = self._find(client_order_id)
        return state.order if state is not None and state.order.symbol == symbol else None

    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        await self.open()
        return tuple(s.order for s in self._open.values()
                     if symbol is None or s.order.symbol == symbol)

    async def fetch_fills(self, symbol: str, since_ms: int | None = None) -> Sequence[Fill]:
        await self.open()
        return tuple(self._store.paper.fills(self._id, symbol, since_ms))

    async def close(self) -> None:
        """Nothing to release: every change is already in the store."""

    # --- prices -----------------------------------------------------------------------------

    def observe(self, symbol: str, candle: Candle, *, closed: bool,
                at_ms: int | None = None) -> list[Fill]:
        """Work the open orders of ``symbol`` against a new state of its candle.

        ``closed`` says the candle is final. ``at_ms`` is when the state was seen (default:
        the clock); it stamps fills made inside a candle already seen, while fills at the
        first sight of a candle carry its open time, as in a backtest. Returns the fills
        made. An update older than the cursor is ignored: its movement was worked already.
        """
        self._require_account()
        fills, moved = self._advance(symbol, candle, closed=closed, at_ms=at_ms)
        if moved:
            self._save(fills=fills, cursors={symbol: self._cursors[symbol]})
        return fills

    def _advance(self, symbol: str, candle: Candle, *, closed: bool,
                 at_ms: int | None) -> tuple[list[Fill], bool]:
        """:meth:`observe` without saving: the fills, and whether the cursor moved."""
        cursor = self._cursors.get(symbol)
        if cursor is not None and cursor.candle.open_time > candle.open_time:
            return [], False
        self._cursors[symbol] = PriceCursor(candle, closed)
        segment = _segment(cursor, candle)
        if segment is None:
            return [], True
        if at_ms is None:
            at_ms = self._clock.now_ms()
        fresh = cursor is None or cursor.candle.open_time != candle.open_time
        stamp = None if fresh else at_ms
        fills: list[Fill] = []
        self._entered_inside.discard(symbol)
        for state in [s for s in self._open.values() if s.order.symbol == symbol]:
            if fresh and state.order.created_at >= candle.open_time + FEED_TIMEFRAME.ms:
                # A feed lagging behind the clock: this minute was over before the order
                # existed, and filling on it would trade on prices already known.
                continue
            fills.extend(self._work(state, segment, time_ms=stamp))
        exit_fill = self._protect(symbol, segment, time_ms=stamp)
        if exit_fill is not None:
            fills.append(exit_fill)
        protection = self._protections.get(symbol)
        if closed and protection is not None and protection.trailing_pct is not None:
            # The trailing stop ratchets when a candle closes, with that candle's high.
            ratcheted = Protection(trailing_pct=protection.trailing_pct,
                                   high_water=protection.high_water).after_close(candle.high)
            self._set_protection(symbol, replace(protection,
                                                 high_water=ratcheted.high_water))
        return fills, True

    def protection(self, symbol: str) -> PaperProtection | None:
        """The protective exits guarding the ``symbol`` position, if any."""
        return self._protections.get(symbol)

    def _set_protection(self, symbol: str, protection: PaperProtection | None) -> None:
        if protection is None:
            self._protections.pop(symbol, None)
        else:
            self._protections[symbol] = protection
        self._dirty_protections[symbol] = protection

    def _protect(self, symbol: str, segment: Candle, *, time_ms: int | None) -> Fill | None:
        """Sell the protected amount when ``segment`` reaches a protective exit."""
        protection = self._protections.get(symbol)
        if protection is None:
            return None
        instrument = self._instruments[symbol]
        base = self._balance(instrument.base)
        if base.total <= 0:
            self._set_protection(symbol, None)
            return None
        amount = min(protection.amount, base.free)
        if amount <= 0:
            return None
        rule = Protection(protection.stop_loss, protection.take_profit,
                          protection.trailing_pct, protection.high_water)
        sim = self._model.exit_fill(rule, float(amount), segment,
                                    entered_inside=symbol in self._entered_inside)
        if sim is None:
            return None
        reason = ExitReason(sim.reason)
        now = self._clock.now_ms()
        if reason is ExitReason.TAKE_PROFIT:
            kind, price, stop = OrderType.LIMIT, _decimal(protection.take_profit), None
        else:
            level = rule.stop_level()
            assert level is not None
            kind, price, stop = OrderType.STOP, None, to_decimal(level[0])
        order = Order(
            client_order_id=protection.client_order_id + EXIT_SUFFIXES[reason],
            venue=self._id, symbol=symbol, side=OrderSide.SELL, type=kind, amount=amount,
            created_at=now, price=price, stop_price=stop, status=OrderStatus.OPEN,
            venue_order_id=f"P{self._bump_seq()}")
        state = PaperOrderState(order, amount, False, now)
        self._hold(instrument, OrderSide.SELL, amount)
        self._set_protection(symbol, None)
        return self._apply(state, instrument, sim, amount, time_ms, now)

    async def catch_up(self, symbols: Sequence[str]) -> list[Fill]:
        """Work the orders on every one-minute candle that closed since the cursor.

        A symbol seen for the first time starts at its latest closed candle (nothing is
        replayed from before the account knew it); one with nothing working (no open order,
        no protective exit) jumps straight there too. Each chunk of candles is saved in one
        transaction.
        """
        await self.open()
        fills: list[Fill] = []
        now = self._clock.now_ms()
        for symbol in symbols:
            self._instrument(symbol)
            cursor = self._cursors.get(symbol)
            working = symbol in self._protections or any(
                s.order.symbol == symbol for s in self._open.values())
            if cursor is None or not working:
                start = max(now - 3 * FEED_TIMEFRAME.ms, 0 if cursor is None
                            else cursor.candle.open_time)
            else:
                start = cursor.candle.open_time + (FEED_TIMEFRAME.ms if cursor.closed else 0)
            while start < now:
                end = min(now, start + _CATCH_UP_CHUNK * FEED_TIMEFRAME.ms)
                series = await self._market.fetch_candles(symbol, FEED_TIMEFRAME, start, end)
                made: list[Fill] = []
                for i in range(len(series)):
                    candle = series[i]
                    made.extend(self._advance(symbol, candle, closed=True,
                                              at_ms=candle.open_time + FEED_TIMEFRAME.ms)[0])
                if len(series):
                    self._save(fills=made, cursors={symbol: self._cursors[symbol]})
                fills.extend(made)
                start = end
        return fills

    def follow(self, bus: EventBus, on_fills: Callable[[str, list[Fill]], None]
               ) -> Callable[[], None]:
        """Work orders on the market's 1-minute candles as the market-data service
        publishes them (:class:`CandleUpdated`, :class:`CandleClosed`).

        ``on_fills(symbol, fills)`` is called after an update filled something (the app
        then asks the order manager to sync). A minute that arrives after a hole (the feed
        reconnected) first has the missing minutes fetched and worked (:meth:`catch_up`,
        in a task on the running loop), so no price the market made is skipped. Returns a
        function that stops following.
        """
        market = self._market.id
        catching: dict[str, asyncio.Task[None]] = {}

        async def fill_hole(symbol: str) -> None:
            try:
                fills = await self.catch_up([symbol])
            except TerminalError as error:
                bus.publish(ErrorRaised(self.display_name, f"cannot catch up on {symbol}:"
                                                           f" {error}"))
                return
            finally:
                catching.pop(symbol, None)
            if fills:
                on_fills(symbol, fills)

        def handle(event: CandleUpdated | CandleClosed) -> None:
            key = event.key
            if key.venue != market or key.timeframe is not FEED_TIMEFRAME:
                return
            symbol = key.symbol
            if self._account is None or symbol not in self._instruments or symbol in catching:
                return
            cursor = self._cursors.get(symbol)
            if cursor is not None and (event.candle.open_time
                                       > cursor.candle.open_time + FEED_TIMEFRAME.ms):
                catching[symbol] = asyncio.get_running_loop().create_task(
                    fill_hole(symbol), name=f"paper-catch-up-{symbol}")
                return
            fills = self.observe(symbol, event.candle, closed=isinstance(event, CandleClosed))
            if fills:
                on_fills(symbol, fills)

        stops = [bus.subscribe(CandleUpdated, handle), bus.subscribe(CandleClosed, handle)]

        def stop() -> None:
            for unsubscribe in stops:
                unsubscribe()
            for task in catching.values():
                task.cancel()

        return stop

    def last_price(self, symbol: str) -> Decimal | None:
        """The newest price the account has seen for ``symbol``."""
        cursor = self._cursors.get(symbol)
        return None if cursor is None else to_decimal(cursor.candle.close)

    # --- internals --------------------------------------------------------------------------

    def _require_account(self) -> PaperAccount:
        if self._account is None:
            raise InvalidArgument("the paper venue is not open yet; call open() first")
        return self._account

    def _bump_seq(self) -> int:
        account = self._require_account()
        self._account = replace(account, next_seq=account.next_seq + 1)
        return account.next_seq

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            known = ", ".join(sorted(self._instruments)) or "none"
            raise OrderRejected(f"{symbol} is not traded on {self._market.display_name};"
                                f" available: {known}")
        if instrument.quote != self.quote:
            raise OrderRejected(f"the paper account holds {self.quote}; {symbol} is quoted in"
                                f" {instrument.quote}")
        return instrument

    def _validate(self, request: OrderRequest, instrument: Instrument) -> None:
        exits = (request.take_profit, request.stop_loss, request.trailing_stop_pct)
        if request.side is OrderSide.SELL and any(v is not None for v in exits):
            raise OrderRejected("protective exits guard a long position: only a buy can"
                                " attach a take profit, stop loss or trailing stop")
        if any(v is not None and not v > 0 for v in exits):
            raise OrderRejected("take profit, stop loss and trailing stop must be positive")
        if request.trailing_stop_pct is not None and not request.trailing_stop_pct < 100:
            raise OrderRejected("a trailing stop is a percentage below 100")
        if request.amount % instrument.lot_size != 0:
            raise OrderRejected(f"amount {request.amount} is not a multiple of the"
                                f" {request.symbol} lot size {instrument.lot_size}")
        if request.amount < instrument.min_amount:
            raise OrderRejected(f"amount {request.amount} is below the {request.symbol}"
                                f" minimum of {instrument.min_amount}")
        for name, value in (("price", request.price), ("stop price", request.stop_price)):
            if value is None:
                continue
            if not value > 0:
                raise OrderRejected(f"the {name} must be positive, got {value}")
            if value % instrument.tick_size != 0:
                raise OrderRejected(f"{name} {value} is not a multiple of the"
                                    f" {request.symbol} tick size {instrument.tick_size}")
        if request.type is OrderType.MARKET and request.price is not None:
            raise OrderRejected("a market order takes no limit price")
        if request.time_in_force is TimeInForce.POST_ONLY and request.type is not OrderType.LIMIT:
            raise OrderRejected("only a limit order can be post-only")

    def _reservation(self, request: OrderRequest, last: float, instrument: Instrument
                     ) -> Decimal:
        """What the order holds, after checking the free balance covers it."""
        reference = request.price or request.stop_price or to_decimal(last)
        notional = request.amount * reference
        if instrument.min_notional and notional < instrument.min_notional:
            raise OrderRejected(
                f"order value {notional:.2f} {instrument.quote} is below the {request.symbol}"
                f" minimum of {instrument.min_notional} {instrument.quote}")
        if request.time_in_force is TimeInForce.POST_ONLY and _marketable(
                request.side, request.price, last):
            raise OrderRejected(f"post-only {request.side.value} at {request.price} would"
                                f" trade at once against the price {last:g}")
        if request.side is OrderSide.SELL:
            free = self._balance(instrument.base).free
            if request.amount > free:
                raise InsufficientFunds(
                    f"cannot sell {_plain(request.amount)} {instrument.base}: {_plain(free)} free")
            return request.amount
        rate = to_decimal(max(self._model.fees.maker, self._model.fees.taker))
        needed = notional * (1 + rate)
        free = self._balance(instrument.quote).free
        # A market buy sized from the last price may exceed it by the float rounding of its
        # sizing; it is capped at the fill anyway.
        tolerance = free * Decimal("1e-9") if request.type is OrderType.MARKET else ZERO
        if needed > free + tolerance:
            raise InsufficientFunds(
                f"a {_plain(request.amount)} {instrument.base} buy needs about {needed:.2f}"
                f" {instrument.quote} including the fee; {free:.2f} {instrument.quote} free")
        return min(needed, free)

    def _balance(self, currency: str) -> Balance:
        return self._balances.get(currency) or Balance(currency, ZERO)

    def _set_balance(self, currency: str, free: Decimal, used: Decimal) -> None:
        self._balances[currency] = Balance(currency, free, used)

    def _hold(self, instrument: Instrument, side: OrderSide, amount: Decimal) -> None:
        currency = instrument.quote if side is OrderSide.BUY else instrument.base
        balance = self._balance(currency)
        self._set_balance(currency, balance.free - amount, balance.used + amount)

    def _release(self, state: PaperOrderState, amount: Decimal) -> None:
        instrument = self._instruments[state.order.symbol]
        currency = instrument.quote if state.order.side is OrderSide.BUY else instrument.base
        balance = self._balance(currency)
        self._set_balance(currency, balance.free + amount, balance.used - amount)

    def _find(self, client_order_id: str) -> PaperOrderState | None:
        return (self._dirty.get(client_order_id) or self._open.get(client_order_id)
                or self._store.paper.order(self._id, client_order_id))

    def _put(self, state: PaperOrderState) -> None:
        client_order_id = state.order.client_order_id
        if state.order.status.is_final:
            self._open.pop(client_order_id, None)
        else:
            self._open[client_order_id] = state
        self._dirty[client_order_id] = state

    def _latest(self, client_order_id: str) -> PaperOrderState:
        state = self._find(client_order_id)
        assert state is not None
        return state

    def _close_order(self, state: PaperOrderState, status: OrderStatus, reason: str | None,
                     now: int) -> None:
        self._release(state, state.reserved)
        order = state.order.with_status(status, reject_reason=reason)
        self._put(PaperOrderState(order, ZERO, state.triggered, now))

    def _work(self, state: PaperOrderState, candle: Candle, *, time_ms: int | None
              ) -> list[Fill]:
        """Put one order to the fill model against ``candle``; apply what it decides."""
        order = state.order
        instrument = self._instruments[order.symbol]
        remaining = order.remaining
        sim = SimOrder(order.side, order.type, amount=float(remaining),
                       max_quote=(float(state.reserved + self._balance(instrument.quote).free)
                                  if order.side is OrderSide.BUY else None),
                       price=None if order.price is None else float(order.price),
                       stop_price=None if order.stop_price is None else float(order.stop_price),
                       triggered=state.triggered)
        outcome = self._model.execute(sim, candle)
        now = self._clock.now_ms()
        if outcome.fill is None:
            if outcome.order is not None and outcome.order.triggered != state.triggered:
                self._put(replace(state, triggered=True, updated_at=now))
            return []
        return [self._apply(state, instrument, outcome.fill, remaining, time_ms, now)]

    def _apply(self, state: PaperOrderState, instrument: Instrument, sim: SimFill,
               remaining: Decimal, time_ms: int | None, now: int) -> Fill:
        order = state.order
        # A fill of the whole remainder keeps its exact Decimal amount; only a buy cut to
        # what the money pays for takes the fill model's float amount.
        capped = sim.amount < float(remaining)
        amount = to_decimal(sim.amount) if capped else remaining
        price = to_decimal(sim.price)
        fee = to_decimal(sim.fee)
        quote, base = self._balance(instrument.quote), self._balance(instrument.base)
        if order.side is OrderSide.BUY:
            spent = price * amount + fee
            free = quote.free + state.reserved - spent
            # The fill model sizes a capped buy in floating point; its last digit may
            # overshoot the money by a fraction of a cent's millionth.
            self._set_balance(instrument.quote, max(free, ZERO), quote.used - state.reserved)
            self._set_balance(instrument.base, base.free + amount, base.used)
            reserved_left = ZERO
            if state.stop_loss or state.take_profit or state.trailing_pct:
                self._attach(state, amount, sim)
        else:
            self._set_balance(instrument.base, base.free, base.used - amount)
            self._set_balance(instrument.quote, quote.free + price * amount - fee, quote.used)
            reserved_left = state.reserved - amount
        filled = order.filled + amount
        average = price if order.average_price is None else (
            (order.average_price * order.filled + price * amount) / filled)
        seq = self._bump_seq()
        fill = Fill(trade_id=f"{self._id}-{seq}", client_order_id=order.client_order_id,
                    venue=self._id, symbol=order.symbol, side=order.side, price=price,
                    amount=amount, fee=fee, fee_currency=instrument.quote,
                    timestamp=sim.time_ms if time_ms is None else time_ms,
                    liquidity=sim.liquidity)
        if filled == order.amount:
            updated = order.with_status(OrderStatus.FILLED, filled=filled, average_price=average)
        else:
            updated = order.with_status(
                OrderStatus.CANCELED, filled=filled, average_price=average,
                reject_reason=f"only {_plain(amount)} {instrument.base} could be paid for at"
                              f" {_plain(price)}; the rest was canceled")
        if reserved_left:
            self._release(state, reserved_left)
        self._put(PaperOrderState(updated, ZERO, state.triggered, now))
        return fill

    def _attach(self, entry: PaperOrderState, amount: Decimal, sim: SimFill) -> None:
        """Guard what ``entry`` bought with its protective exits; an earlier protection of
        the same position is replaced, and its amount stays guarded by the new levels."""
        symbol = entry.order.symbol
        earlier = self._protections.get(symbol)
        guarded = amount + (earlier.amount if earlier is not None else ZERO)
        self._set_protection(symbol, PaperProtection(
            entry.order.client_order_id, guarded, entry.stop_loss, entry.take_profit,
            entry.trailing_pct, sim.price))
        if not sim.at_open:
            self._entered_inside.add(symbol)

    def _save(self, *, fills: Sequence[Fill] = (),
              cursors: dict[str, PriceCursor] | None = None) -> None:
        account = self._require_account()
        try:
            self._store.paper.save(self._id, next_seq=account.next_seq,
                                   balances=list(self._balances.values()),
                                   orders=list(self._dirty.values()), fills=fills,
                                   cursors=cursors, protections=self._dirty_protections)
        except BaseException:
            # Nothing of the change reached the store; forget it in memory too.
            self._load()
            raise
        self._dirty, self._dirty_protections = {}, {}


def _segment(cursor: PriceCursor | None, candle: Candle) -> Candle | None:
    """The price movement ``candle`` proves happened after ``cursor``, as a candle."""
    if cursor is None or candle.open_time > cursor.candle.open_time:
        return candle
    seen = cursor.candle
    if candle.open_time < seen.open_time or cursor.closed:
        return None
    if (candle.high, candle.low, candle.close) == (seen.high, seen.low, seen.close):
        return None
    start, end = seen.close, candle.close
    high = candle.high if candle.high > seen.high else max(start, end)
    low = candle.low if candle.low < seen.low else min(start, end)
    return Candle(candle.open_time, start, high, low, end,
                  max(candle.volume - seen.volume, 0.0))


def _plain(value: Decimal) -> str:
    """A Decimal for a message: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else to_decimal(value)


def _marketable(side: OrderSide, limit: Decimal | None, price: float) -> bool:
    if limit is None:
        return True
    return price <= float(limit) if side is OrderSide.BUY else price >= float(limit)

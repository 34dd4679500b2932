"""``paper``: trade with pretend money on live prices, from the command line.

Each call opens the paper account from the store, catches it up on the simulated minutes
that closed since the last call (resting orders fill on them, exactly as in the window),
shows it the minute forming now, and then does its job through the order manager, so a
market order fills at the simulated price of this moment and every order passes the risk
manager with the limits from the settings. The simulated market is a pure function of its
seed and the time, so the price a call sees is the one the window shows at that instant
(at speed 1).

With ``--exchange ID`` the prices are an exchange's public market data instead (no API key;
nothing is ever sent to the exchange but requests for prices): each call catches up on the
1-minute candles that closed since the last one, then sees the exchange's forming candle (or
its last price), so orders meet that exchange's current price the same way. Each price
source has its own account (``paper`` for the simulated market, ``paper-binance`` for
Binance, ...), so balances made on different prices never mix.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.cli import EXIT_OK, print_json
from terminal.core.bus import EventBus
from terminal.core.clock import Clock, SystemClock
from terminal.core.errors import InvalidArgument, OrderRejected, TerminalError, VenueUnavailable
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.intents import OrderIntent
from terminal.core.model import (
    Candle,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Timeframe,
    VenueKind,
    normalize_symbol,
)
from terminal.core.orders import OrderManager, Submission
from terminal.core.paths import resolve_data_dir
from terminal.core.ports import MarketDataVenue
from terminal.core.risk import RiskManager
from terminal.core.settings import Settings, SettingsFile
from terminal.core.storage import Store
from terminal.core.storage.orders import TradeFilter, TradeRecord, TradingMode
from terminal.core.timefmt import format_ms, parse_user_time
from terminal.exchange.paper import PaperVenue, paper_account_id
from terminal.exchange.simulated import DEFAULT_SEED, SimulatedMarket
from terminal.exchange.simulated import VENUE_ID as SIMULATED_VENUE

MAX_CASH = Decimal(10) ** 12
DISPLAY_DECIMALS = 8


class IntentRefused(TerminalError):
    """The risk manager refused the order; nothing was sent."""


def register(commands: Any) -> None:
    """Add the ``paper`` command and its actions to the CLI's subparsers."""
    paper = commands.add_parser(
        "paper", help="trade with pretend money on live prices",
        description="A paper trading account on the simulated market's live prices, or on an"
                    " exchange's (--exchange): orders fill by the same rules as backtests and"
                    " pass the risk manager with the limits from the settings. Balances and"
                    " orders are kept in the store, one account per price source. Nothing is"
                    " ever sent to an exchange, and no API key is needed.")
    paper.add_argument("--exchange", metavar="ID",
                       help="trade on this exchange's public prices: a ccxt exchange id such"
                            f" as binance, bybit, okx, kraken (default: {SIMULATED_VENUE},"
                            " the simulated market)")
    paper.add_argument("--sandbox", action="store_true",
                       help="the exchange's testnet prices (their own paper account)")
    paper.add_argument("--api-url", metavar="URL",
                       help="send the exchange's REST requests to this host instead (a local"
                            " mirror or proxy), keeping each endpoint's path")
    actions = paper.add_subparsers(title="paper commands", metavar="ACTION", required=True)

    balance = actions.add_parser("balance", help="balances, positions and equity")
    balance.add_argument("--json", action="store_true", help="print one JSON object")
    balance.set_defaults(run=run_balance)

    for side in ("buy", "sell"):
        order = actions.add_parser(side, help=f"{side} at market, or with a limit or stop")
        order.add_argument("symbol", help="pair such as BTC/USDT")
        order.add_argument("amount", help="amount of the base currency, e.g. 0.01")
        order.add_argument("--limit", metavar="PRICE", help="limit price (a limit order)")
        order.add_argument("--stop", metavar="PRICE",
                           help="stop price (a stop order; with --limit a stop-limit order)")
        if side == "buy":
            order.add_argument("--stop-loss", metavar="PRICE",
                               help="protective stop loss for what this buy gets")
            order.add_argument("--take-profit", metavar="PRICE",
                               help="protective take profit for what this buy gets")
        order.add_argument("--allow-resize", action="store_true",
                           help="send a smaller order when the risk limits or the balance do not"
                                " allow the whole amount (otherwise nothing is sent)")
        order.add_argument("--json", action="store_true", help="print one JSON object")
        order.set_defaults(run=run_order, side=OrderSide(side))

    orders = actions.add_parser("orders", help="open orders (--all: recent orders too)")
    orders.add_argument("--all", action="store_true", help="also finished orders (last 50)")
    orders.add_argument("--json", action="store_true", help="print one JSON object")
    orders.set_defaults(run=run_orders)

    cancel = actions.add_parser("cancel", help="cancel an open order by its id")
    cancel.add_argument("id", help="the order id `paper orders` shows")
    cancel.add_argument("--json", action="store_true", help="print one JSON object")
    cancel.set_defaults(run=run_cancel)

    trades = actions.add_parser("trades", help="closed trades with totals")
    trades.add_argument("--symbol", help="only this pair")
    trades.add_argument("--since", help="exits at or after this UTC time, e.g. 2026-01-01")
    trades.add_argument("--until", help="exits before this UTC time")
    trades.add_argument("--strategy", help="only trades of this strategy (manual: yours)")
    trades.add_argument("--json", action="store_true", help="print one JSON object")
    trades.set_defaults(run=run_trades)

    reset = actions.add_parser("reset", help="start the account over with fresh cash")
    reset.add_argument("--cash", help="starting cash in USDT (default: as before)")
    reset.add_argument("--json", action="store_true", help="print one JSON object")
    reset.set_defaults(run=run_reset)


# --- the session every action runs in ---------------------------------------------------------

#: Says what the current price of a symbol is: the market's newest candles up to the one
#: forming now, each with whether it has closed, oldest first.
CurrentCandles = Callable[[str], Awaitable[list[tuple[Candle, bool]]]]


@dataclass
class _Market:
    """Where a paper account's prices come from, and the clock that goes with them."""

    venue: MarketDataVenue
    clock: Clock
    current: CurrentCandles
    account: str


@dataclass
class _Session:
    store: Store
    market: MarketDataVenue
    venue: PaperVenue
    manager: OrderManager
    bus: EventBus
    clock: Clock

    def now(self) -> int:
        return self.clock.now_ms()


def _market(args: argparse.Namespace, settings: Settings) -> _Market:
    exchange = (args.exchange or SIMULATED_VENUE).strip().lower()
    if exchange == SIMULATED_VENUE:
        if args.sandbox or args.api_url:
            raise InvalidArgument("--sandbox and --api-url apply with --exchange only")
        seed = DEFAULT_SEED if settings.simulated.seed is None else settings.simulated.seed
        # The wall clock's present: the window shows the same prices at speed 1.
        simulated = SimulatedMarket(seed=seed)

        async def forming(symbol: str) -> list[tuple[Candle, bool]]:
            return [(_forming_candle(simulated, symbol), False)]

        return _Market(simulated, simulated, forming, paper_account_id(simulated.id))
    # Imported here: ccxt takes a noticeable time to import, and the simulated market's
    # paper account never needs it. No keys: paper reads public market data only.
    from terminal.exchange.ccxt_venue import CcxtVenue

    exchange_log = logging.getLogger("terminal.exchange")
    if not logging.getLogger().handlers and not exchange_log.handlers:
        # With no logging set up Python prints every retry notice on stderr; this command's
        # answer to an exchange that stays unreachable is its one error line.
        exchange_log.addHandler(logging.NullHandler())
    # The exchange's prices are happening now: its time is the wall clock. ccxt stamps
    # candles in UTC, and the venue corrects our clock's skew for signed calls only.
    clock = SystemClock()
    live = CcxtVenue(exchange, sandbox=args.sandbox, websocket=False, clock=clock,
                     api_base_url=args.api_url)

    async def latest(symbol: str) -> list[tuple[Candle, bool]]:
        minute = Timeframe.M1.floor(clock.now_ms())
        # From the minute before: one that ended moments ago may not count as closed yet.
        ticks = [(t.candle, t.closed) for t in
                 await live.fetch_latest_candles(symbol, Timeframe.M1, minute - Timeframe.M1.ms)]
        if ticks and ticks[-1][0].open_time >= minute:
            return ticks
        # No candle for this minute yet (no trade in it, or an exchange that lists only
        # closed candles): its last price, as a candle of one point, is the price now.
        last = (await live.fetch_ticker(symbol)).last
        if last is None:
            raise VenueUnavailable(f"{live.display_name} gives no current price for {symbol};"
                                   " try again later")
        price = float(last)
        return [*ticks, (Candle(minute, price, price, price, price, 0.0), False)]

    return _Market(live, clock, latest, paper_account_id(live.id))


async def _open_session(store: Store, settings: Settings, market: _Market,
                        symbols: list[str]) -> _Session:
    # The symbols are checked before the account is opened: a first call with a bad symbol
    # (or an exchange that cannot be reached) leaves no account behind.
    listed = {i.symbol for i in await market.venue.load_instruments()}
    for symbol in symbols:
        if symbol not in listed:
            raise InvalidArgument(_not_listed(market.venue, symbol, listed))
    fill_model = FillModel(FeeSchedule())
    venue = PaperVenue(store, market.venue, venue_id=market.account, fill_model=fill_model,
                       clock=market.clock)
    await venue.open()
    instruments = {i.symbol: i for i in await venue.load_instruments()}
    held = {b.currency for b in await venue.fetch_balances()}
    # Held coins are valued in the account's currency: on an exchange that lists BTC against
    # many currencies, only BTC/USDT matters to a USDT account.
    followed = sorted(set(symbols) | {o.symbol for o in await venue.fetch_open_orders()}
                      | {s for s, i in instruments.items() if i.quote == venue.quote
                         and (i.base in held or venue.protection(s) is not None)})
    await venue.catch_up(followed)
    bus = EventBus()
    manager = OrderManager(venue, store, bus,
                           RiskManager(settings.risk, fee_rate=fill_model.fees.taker),
                           mode=TradingMode.PAPER, clock=market.clock)
    for symbol in followed:
        for candle, closed in await market.current(symbol):
            venue.observe(symbol, candle, closed=closed)
        price = venue.last_price(symbol)
        if price is not None:
            manager.update_price(symbol, float(price))
    await manager.start()
    return _Session(store, market.venue, venue, manager, bus, market.clock)


def _not_listed(market: MarketDataVenue, symbol: str, listed: set[str]) -> str:
    if market.kind is VenueKind.SIMULATED:
        return (f"{symbol} is not traded on the simulated market; available:"
                f" {', '.join(sorted(listed))}")
    return f"{symbol} is not listed on {market.display_name} (spot pairs only)"


def _forming_candle(market: SimulatedMarket, symbol: str) -> Candle:
    now = market.now_ms()
    minute = Timeframe.M1.floor(now)
    if now == minute:
        minute -= Timeframe.M1.ms
    return market.generator.candle_at(symbol, Timeframe.M1, minute, now)


def _run(args: argparse.Namespace, symbols: list[str],
         action: Callable[[_Session], Awaitable[dict[str, Any]]],
         show: Callable[[dict[str, Any]], None]) -> int:
    settings_file = SettingsFile()
    settings = settings_file.load()
    market = _market(args, settings)
    with Store.open(resolve_data_dir(args.data_dir)) as store:
        async def main() -> dict[str, Any]:
            try:
                session = await _open_session(store, settings, market, symbols)
                return await action(session)
            finally:
                await market.venue.close()

        report = asyncio.run(main())
    if args.json:
        print_json(report)
    else:
        show(report)
    return EXIT_OK


# --- actions ----------------------------------------------------------------------------------

def run_balance(args: argparse.Namespace) -> int:
    return _run(args, [], _balance, _show_balance)


async def _balance(session: _Session) -> dict[str, Any]:
    venue = session.venue
    balances = await venue.fetch_balances()
    quote = venue.quote
    positions = []
    equity = Decimal(0)
    for balance in balances:
        if balance.currency == quote:
            equity += balance.total
    for position in session.manager.positions():
        mark = venue.last_price(position.symbol) or position.average_price
        value = position.amount * mark
        equity += value
        positions.append({
            "symbol": position.symbol, "amount": _text(position.amount),
            "average_price": _text(position.average_price), "mark_price": _text(mark),
            "value": _money(value), "unrealized_pnl": _money(position.unrealized_pnl(mark)),
            "realized_pnl": _money(position.realized_pnl)})
    start = venue.starting_cash
    return {
        "venue": venue.id, "market": session.market.id,
        "market_name": session.market.display_name, "quote": quote,
        "time": session.now(), "time_utc": format_ms(session.now()),
        "starting_cash": _money(start),
        "balances": [{"currency": b.currency, "free": _text(b.free), "used": _text(b.used),
                      "total": _text(b.total)} for b in balances],
        "positions": positions,
        "equity": _money(equity), "pnl": _money(equity - start),
        "return_pct": round(float((equity - start) / start * 100), 4),
    }


def _show_balance(report: dict[str, Any]) -> None:
    quote = report["quote"]
    source = ("the simulated market" if report["market"] == SIMULATED_VENUE
              else f"{report['market_name']} prices")
    print(f"Paper account {report['venue']} on {source} at {report['time_utc']}"
          f" (started with {report['starting_cash']} {quote})")
    for balance in report["balances"]:
        print(f"  {balance['currency']:<6} free {balance['free']:>18}  used {balance['used']:>18}")
    for position in report["positions"]:
        print(f"  {position['symbol']:<10} {position['amount']} at {position['average_price']}"
              f" (fees included), now {position['mark_price']}: unrealized"
              f" {position['unrealized_pnl']} {quote}")
    print(f"Equity {report['equity']} {quote}, P/L {report['pnl']} {quote}"
          f" ({report['return_pct']:+.2f}%)")


def run_order(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol)
    amount = _positive(args.amount, "the amount")
    limit = _positive(args.limit, "--limit") if args.limit is not None else None
    stop = _positive(args.stop, "--stop") if args.stop is not None else None
    stop_loss = take_profit = None
    if args.side is OrderSide.BUY:
        stop_loss = _positive(args.stop_loss, "--stop-loss") if args.stop_loss else None
        take_profit = _positive(args.take_profit, "--take-profit") if args.take_profit else None
    if limit is not None:
        kind = OrderType.STOP_LIMIT if stop is not None else OrderType.LIMIT
    else:
        kind = OrderType.STOP if stop is not None else OrderType.MARKET

    async def place(session: _Session) -> dict[str, Any]:
        intent = OrderIntent(symbol, args.side, session.now(), type=kind,
                             amount=float(amount), price=_float(limit), stop_price=_float(stop),
                             stop_loss=_float(stop_loss), take_profit=_float(take_profit),
                             reduce_only=args.side is OrderSide.SELL, reason="command line")
        if not args.allow_resize:
            preview = await session.manager.preview(intent)
            if preview.decision.approved and preview.decision.amount < intent.amount:
                # A typed amount is what the trader meant; a silently smaller order is not.
                raise IntentRefused(
                    "not sent: the risk manager would change the order: "
                    f"{'; '.join(preview.decision.adjustments)}."
                    " Pass --allow-resize to send the smaller order")
        submission = await session.manager.submit(intent)
        return _submission_report(session, submission)

    return _run(args, [symbol], place, _show_order_report)


def _submission_report(session: _Session, submission: Submission) -> dict[str, Any]:
    order = submission.order
    if order is None:
        raise IntentRefused(f"refused by the risk manager: {submission.decision.reason}")
    if order.status is OrderStatus.REJECTED:
        raise OrderRejected(f"order {order.client_order_id} rejected: {order.reject_reason}")
    fills = session.store.orders.fills(client_order_id=order.client_order_id)
    return {"order": _order_json(order), "fills": [_fill_json(f) for f in fills],
            "risk_notes": list(submission.decision.adjustments)}


def _show_order_report(report: dict[str, Any]) -> None:
    order = report["order"]
    for note in report.get("risk_notes", []):
        print(f"risk manager: {note}")
    print(_order_line(order))
    for fill in report["fills"]:
        print(f"  filled {fill['amount']} at {fill['price']}, fee {fill['fee']}"
              f" {fill['fee_currency']} ({fill['liquidity']}) at {fill['time_utc']}")


def run_orders(args: argparse.Namespace) -> int:
    async def listing(session: _Session) -> dict[str, Any]:
        records = session.store.orders.orders(venue=session.venue.id, open_only=not args.all,
                                              limit=50 if args.all else None)
        return {"orders": [{**_order_json(r.order), "strategy": r.strategy,
                            "reason": r.reason} for r in records]}

    def show(report: dict[str, Any]) -> None:
        if not report["orders"]:
            print("no open orders" if not args.all else "no orders yet")
        for order in report["orders"]:
            print(_order_line(order))

    return _run(args, [], listing, show)


def run_cancel(args: argparse.Namespace) -> int:
    async def cancel(session: _Session) -> dict[str, Any]:
        order = await session.manager.cancel(args.id.strip())
        return {"order": _order_json(order), "fills": []}

    return _run(args, [], cancel, _show_order_report)


def run_trades(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol) if args.symbol else None
    start = parse_user_time(args.since) if args.since else None
    end = parse_user_time(args.until) if args.until else None

    async def listing(session: _Session) -> dict[str, Any]:
        where = TradeFilter(venue=session.venue.id, symbol=symbol, start_ms=start, end_ms=end,
                            strategy=args.strategy, mode=TradingMode.PAPER)
        records = session.store.orders.trades(where)
        totals = session.store.orders.totals(where)
        return {"trades": [_trade_json(r) for r in records],
                "totals": {"count": totals.count, "wins": totals.wins,
                           "win_rate": round(totals.win_rate, 4),
                           "pnl": _money(totals.pnl), "fees": _money(totals.fees)}}

    def show(report: dict[str, Any]) -> None:
        for trade in report["trades"]:
            print(f"{trade['exit_utc']}  {trade['symbol']:<10} {trade['amount']:>14}"
                  f"  {trade['entry_price']} -> {trade['exit_price']}"
                  f"  P/L {trade['pnl']:>12}  fees {trade['fees']}  {trade['strategy']}")
        totals = report["totals"]
        print(f"{totals['count']} trades, {totals['wins']} won"
              f" ({totals['win_rate'] * 100:.1f}%), P/L {totals['pnl']}, fees {totals['fees']}")

    return _run(args, [], listing, show)


def run_reset(args: argparse.Namespace) -> int:
    cash = _positive(args.cash, "--cash") if args.cash is not None else None
    if cash is not None and cash >= MAX_CASH:
        raise InvalidArgument(f"--cash must be below {MAX_CASH:,}")

    async def reset(session: _Session) -> dict[str, Any]:
        session.venue.reset(cash)
        await session.manager.reconcile()
        return {"venue": session.venue.id, "starting_cash": _money(session.venue.starting_cash),
                "quote": session.venue.quote}

    def show(report: dict[str, Any]) -> None:
        print(f"paper account reset: {report['starting_cash']} {report['quote']},"
              " no orders, no trades")

    return _run(args, [], reset, show)


# --- formatting ---------------------------------------------------------------------------------

def _positive(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise InvalidArgument(f"{name} must be a number, got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise InvalidArgument(f"{name} must be a positive number, got {text}")
    if not math.isfinite(float(value)):
        raise InvalidArgument(f"{name} is too large: {text}")
    return value


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _text(value: Decimal | None) -> str | None:
    """A Decimal for people: at most 8 decimals (the ledger keeps every digit)."""
    if value is None:
        return None
    if value.as_tuple().exponent < -DISPLAY_DECIMALS:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-DISPLAY_DECIMALS))
    return format(value.normalize(), "f")


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.client_order_id, "symbol": order.symbol, "side": order.side.value,
        "type": order.type.value, "amount": _text(order.amount), "price": _text(order.price),
        "stop_price": _text(order.stop_price), "status": order.status.value,
        "filled": _text(order.filled), "average_price": _text(order.average_price),
        "reason": order.reject_reason, "created": order.created_at,
        "created_utc": format_ms(order.created_at)}


def _order_line(order: dict[str, Any]) -> str:
    prices = "".join(f" {name} {order[key]}" for name, key in (("at", "price"),
                                                               ("stop", "stop_price"))
                     if order[key] is not None)
    state = order["status"]
    if order["average_price"] is not None:
        state = (f"filled at {order['average_price']}" if state == "filled" else
                 f"{state} after filling {order['filled']} at {order['average_price']}")
    reason = f" ({order['reason']})" if order["reason"] else ""
    return (f"{order['id']}  {order['created_utc']}  {order['side']} {order['amount']}"
            f" {order['symbol']} {order['type']}{prices}: {state}{reason}")


def _fill_json(fill: Fill) -> dict[str, Any]:
    return {"trade_id": fill.trade_id, "price": _text(fill.price), "amount": _text(fill.amount),
            "fee": _text(fill.fee), "fee_currency": fill.fee_currency,
            "liquidity": fill.liquidity.value, "time": fill.timestamp,
            "time_utc": format_ms(fill.timestamp)}


def _trade_json(record: TradeRecord) -> dict[str, Any]:
    trade = record.trade
    return {"symbol": trade.symbol, "side": trade.side, "amount": _text(trade.amount),
            "entry_time": trade.entry_time, "entry_utc": format_ms(trade.entry_time),
            "exit_time": trade.exit_time, "exit_utc": format_ms(trade.exit_time),
            "entry_price": _text(trade.entry_price), "exit_price": _text(trade.exit_price),
            "fees": _money(trade.fees), "pnl": _money(trade.pnl),
            "return_pct": round(trade.return_pct, 4), "strategy": record.strategy,
            "mode": record.mode.value}

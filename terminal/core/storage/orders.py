"""Our orders, their fills and the closed trades they make, in the store.

Every change the order manager makes goes through :meth:`OrderRepository.record`: the order's
new state, its new fills and the round trips they closed are written in one transaction, so
the store never holds a fill without its order's state, nor an order marked filled without
its fills. Decimals are stored as text so that nothing is rounded on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, unique
from typing import Any

from sqlalchemy import Connection

from terminal.core.errors import InvalidArgument
from terminal.core.model import (
    Balance,
    Fill,
    Liquidity,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from terminal.core.portfolio import ClosedTrade

ConnectionScope = Callable[[], AbstractContextManager[Connection]]

#: Who placed an order that no strategy made: the user, from the ticket or the CLI.
MANUAL = "manual"


@unique
class TradingMode(Enum):
    """Whether an order risked real money. Stored with every order, fill and trade."""

    PAPER = "paper"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order with what the store keeps beside it: who placed it, why, and in which mode."""

    order: Order
    mode: TradingMode
    strategy: str
    reason: str
    take_profit: Decimal | None
    stop_loss: Decimal | None
    trailing_stop_pct: Decimal | None
    updated_at: int


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """A closed trade with its mode and strategy, as the trade history lists it."""

    id: int
    trade: ClosedTrade
    mode: TradingMode
    strategy: str


@dataclass(frozen=True, slots=True)
class TradeFilter:
    """Which closed trades to list: every field that is set must match.

    ``start_ms``/``end_ms`` bound the exit time (start included, end excluded); ``side`` is the
    position's side (``long``/``short``).
    """

    venue: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    symbol: str | None = None
    side: str | None = None
    strategy: str | None = None
    mode: TradingMode | None = None


@dataclass(frozen=True, slots=True)
class TradeTotals:
    """Sums over a list of closed trades."""

    count: int
    wins: int
    pnl: Decimal
    fees: Decimal

    @property
    def win_rate(self) -> float:
        return self.wins / self.count if self.count else 0.0


class OrderRepository:
    """Reads and writes orders, fills, closed trades and venue balances."""

    def __init__(self, read_scope: ConnectionScope, write_scope: ConnectionScope) -> None:
        self._read_scope = read_scope
        self._write_scope = write_scope

    # --- writing ----------------------------------------------------------------------------

    def add(self, order: Order, *, mode: TradingMode, strategy: str, reason: str,
            now_ms: int, take_profit: Decimal | None = None,
            stop_loss: Decimal | None = None,
            trailing_stop_pct: Decimal | None = None) -> None:
        """Store a new order (normally ``PENDING``, before it is sent)."""
        with self._write_scope() as conn:
            if _order_exists(conn, order.client_order_id):
                raise InvalidArgument(f"an order {order.client_order_id} is already stored")
            conn.exec_driver_sql(
                "INSERT INTO trade_order (client_order_id, venue, mode, strategy, reason,"
                " symbol, side, type, amount, price, stop_price, time_in_force, status,"
                " filled, average_price, venue_order_id, reject_reason, take_profit,"
                " stop_loss, trailing_stop_pct, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (order.client_order_id, order.venue, mode.value, strategy, reason,
                 order.symbol, order.side.value, order.type.value, str(order.amount),
                 decimal_text(order.price), decimal_text(order.stop_price),
                 order.time_in_force.value, order.status.value, str(order.filled),
                 decimal_text(order.average_price), order.venue_order_id,
                 order.reject_reason, decimal_text(take_profit), decimal_text(stop_loss),
                 decimal_text(trailing_stop_pct), order.created_at, now_ms))

    def record(self, order: Order | None, fills: Sequence[Fill] = (),
               closed: Sequence[ClosedTrade] = (), *, now_ms: int) -> list[Fill]:
        """Store an order's new state with its new fills and the trades they closed.

        All of it commits together or not at all. Fills already stored (same venue and
        trade id) are skipped; the ones actually added are returned. The mode and strategy
        of fills and trades are those of the order they belong to.
        """
        with self._write_scope() as conn:
            if order is not None:
                _update_order(conn, order, now_ms)
            added = [fill for fill in fills if _insert_fill(conn, fill)]
            for trade in closed:
                mode, strategy = _order_origin(conn, trade.exit_client_order_id)
                conn.exec_driver_sql(
                    "INSERT INTO closed_trade (venue, mode, strategy, symbol, side, amount,"
                    " entry_time, exit_time, entry_price, exit_price, entry_fee, exit_fee,"
                    " pnl, exit_trade_id, exit_client_order_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (trade.venue, mode, strategy, trade.symbol, trade.side, str(trade.amount),
                     trade.entry_time, trade.exit_time, str(trade.entry_price),
                     str(trade.exit_price), str(trade.entry_fee), str(trade.exit_fee),
                     str(trade.pnl), trade.exit_trade_id, trade.exit_client_order_id))
            return added

    def forget_venue(self, venue: str) -> None:
        """Delete every order, fill, closed trade and balance kept for ``venue``."""
        with self._write_scope() as conn:
            for table in ("closed_trade", "trade_fill", "trade_order", "account_balance"):
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE venue = ?", (venue,))

    def set_balances(self, venue: str, balances: Iterable[Balance], *, now_ms: int) -> None:
        """Replace the balances kept for ``venue`` with the ones it just reported."""
        with self._write_scope() as conn:
            conn.exec_driver_sql("DELETE FROM account_balance WHERE venue = ?", (venue,))
            for balance in balances:
                conn.exec_driver_sql(
                    "INSERT INTO account_balance (venue, currency, free, used, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (venue, balance.currency, str(balance.free), str(balance.used), now_ms))

    # --- reading ----------------------------------------------------------------------------

    def get(self, client_order_id: str) -> OrderRecord | None:
        with self._read_scope() as conn:
            row = conn.exec_driver_sql(f"SELECT {_ORDER_COLUMNS} FROM trade_order"
                                       " WHERE client_order_id = ?", (client_order_id,)).first()
        return None if row is None else _order_record(row)

    def orders(self, *, venue: str | None = None, symbol: str | None = None,
               open_only: bool = False, limit: int | None = None) -> list[OrderRecord]:
        """Orders, newest first. ``open_only``: those not in a final state (pending too)."""
        clauses, params = equal_clauses(venue=venue, symbol=symbol)
        if open_only:
            final = [s.value for s in OrderStatus if s.is_final]
            clauses.append(f"status NOT IN ({', '.join('?' * len(final))})")
            params.extend(final)
        sql = f"SELECT {_ORDER_COLUMNS} FROM trade_order{where_sql(clauses)}"
        sql += " ORDER BY created_at DESC, client_order_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read_scope() as conn:
            return [_order_record(row) for row in conn.exec_driver_sql(sql, tuple(params))]

    def fills(self, *, venue: str | None = None, symbol: str | None = None,
              client_order_id: str | None = None, since_ms: int | None = None) -> list[Fill]:
        """Fills, oldest first."""
        clauses, params = equal_clauses(venue=venue, symbol=symbol, client_order_id=client_order_id)
        if since_ms is not None:
            clauses.append("timestamp >= ?")
            params.append(since_ms)
        sql = (f"SELECT {FILL_COLUMNS} FROM trade_fill{where_sql(clauses)}"
               " ORDER BY timestamp, rowid")
        with self._read_scope() as conn:
            return [fill_from_row(row) for row in conn.exec_driver_sql(sql, tuple(params))]

    def trades(self, where: TradeFilter | None = None) -> list[TradeRecord]:
        """Closed trades matching ``where``, oldest exit first."""
        sql, params = _trade_query(where or TradeFilter())
        with self._read_scope() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, venue, mode, strategy, symbol, side, amount, entry_time, exit_time,"
                " entry_price, exit_price, entry_fee, exit_fee, pnl, exit_trade_id,"
                f" exit_client_order_id FROM closed_trade{sql} ORDER BY exit_time, id",
                params).all()
        return [_trade_record(row) for row in rows]

    def totals(self, where: TradeFilter | None = None) -> TradeTotals:
        """Count, winners, net P/L and fees of the closed trades matching ``where``."""
        trades = self.trades(where)
        pnl = sum((t.trade.pnl for t in trades), Decimal(0))
        fees = sum((t.trade.fees for t in trades), Decimal(0))
        wins = sum(1 for t in trades if t.trade.pnl > 0)
        return TradeTotals(len(trades), wins, pnl, fees)

    def balances(self, venue: str) -> list[Balance]:
        """The balances ``venue`` last reported."""
        with self._read_scope() as conn:
            rows = conn.exec_driver_sql(
                "SELECT currency, free, used FROM account_balance WHERE venue = ?"
                " ORDER BY currency", (venue,)).all()
        return [Balance(row[0], Decimal(row[1]), Decimal(row[2])) for row in rows]


#: The columns :func:`order_from_row` reads, in its order; both order tables have them.
ORDER_COLUMNS = (
    "client_order_id, venue, symbol, side, type, amount, created_at, price, stop_price,"
    " time_in_force, status, filled, average_price, venue_order_id, reject_reason")
_ORDER_COLUMNS = (f"{ORDER_COLUMNS}, mode, strategy, reason, take_profit, stop_loss,"
                  " trailing_stop_pct, updated_at")
#: The columns :func:`fill_from_row` reads, in its order; both fill tables have them.
FILL_COLUMNS = (
    "trade_id, client_order_id, venue, symbol, side, price, amount, fee, fee_currency,"
    " timestamp, liquidity")


def _order_exists(conn: Connection, client_order_id: str) -> bool:
    return conn.exec_driver_sql("SELECT 1 FROM trade_order WHERE client_order_id = ?",
                                (client_order_id,)).first() is not None


def _update_order(conn: Connection, order: Order, now_ms: int) -> None:
    result = conn.exec_driver_sql(
        "UPDATE trade_order SET status = ?, filled = ?, average_price = ?,"
        " venue_order_id = ?, reject_reason = ?, updated_at = ? WHERE client_order_id = ?",
        (order.status.value, str(order.filled), decimal_text(order.average_price),
         order.venue_order_id, order.reject_reason, now_ms, order.client_order_id))
    if result.rowcount != 1:
        raise InvalidArgument(f"no stored order {order.client_order_id} to update")


def _insert_fill(conn: Connection, fill: Fill) -> bool:
    mode, strategy = _order_origin(conn, fill.client_order_id)
    result = conn.exec_driver_sql(
        "INSERT INTO trade_fill (venue, trade_id, client_order_id, mode, strategy, symbol,"
        " side, price, amount, fee, fee_currency, liquidity, timestamp)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (venue, trade_id) DO NOTHING",
        (fill.venue, fill.trade_id, fill.client_order_id, mode, strategy, fill.symbol,
         fill.side.value, str(fill.price), str(fill.amount), str(fill.fee), fill.fee_currency,
         fill.liquidity.value, fill.timestamp))
    return bool(result.rowcount)


def _order_origin(conn: Connection, client_order_id: str) -> tuple[str, str]:
    row = conn.exec_driver_sql("SELECT mode, strategy FROM trade_order"
                               " WHERE client_order_id = ?", (client_order_id,)).first()
    if row is None:
        raise InvalidArgument(f"a fill or trade refers to the unknown order {client_order_id}")
    return str(row[0]), str(row[1])


def equal_clauses(**equal: object) -> tuple[list[str], list[Any]]:
    """``column = ?`` clauses and their parameters for the values given (None: any)."""
    clauses = [f"{column} = ?" for column, value in equal.items() if value is not None]
    return clauses, [value for value in equal.values() if value is not None]


def where_sql(clauses: list[str]) -> str:
    """The WHERE part joining ``clauses`` (empty when there are none)."""
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _trade_query(where: TradeFilter) -> tuple[str, tuple[Any, ...]]:
    clauses, params = equal_clauses(venue=where.venue, symbol=where.symbol, side=where.side,
                             strategy=where.strategy,
                             mode=None if where.mode is None else where.mode.value)
    if where.start_ms is not None:
        clauses.append("exit_time >= ?")
        params.append(where.start_ms)
    if where.end_ms is not None:
        clauses.append("exit_time < ?")
        params.append(where.end_ms)
    return where_sql(clauses), tuple(params)


def decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as stored: its exact text."""
    return None if value is None else str(value)


def text_decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def order_from_row(row: Any) -> Order:
    """The :class:`Order` in the first columns of a row selected with :data:`ORDER_COLUMNS`."""
    return Order(
        client_order_id=row[0], venue=row[1], symbol=row[2], side=OrderSide(row[3]),
        type=OrderType(row[4]), amount=Decimal(row[5]), created_at=int(row[6]),
        price=text_decimal(row[7]), stop_price=text_decimal(row[8]),
        time_in_force=TimeInForce(row[9]), status=OrderStatus(row[10]),
        filled=Decimal(row[11]), average_price=text_decimal(row[12]),
        venue_order_id=row[13] or None, reject_reason=row[14])


def _order_record(row: Any) -> OrderRecord:
    return OrderRecord(order_from_row(row), TradingMode(row[15]), row[16], row[17],
                       text_decimal(row[18]), text_decimal(row[19]), text_decimal(row[20]),
                       int(row[21]))


def fill_from_row(row: Any) -> Fill:
    """The :class:`Fill` in a row selected with :data:`FILL_COLUMNS`."""
    return Fill(trade_id=row[0], client_order_id=row[1], venue=row[2], symbol=row[3],
                side=OrderSide(row[4]), price=Decimal(row[5]), amount=Decimal(row[6]),
                fee=Decimal(row[7]), fee_currency=row[8], timestamp=int(row[9]),
                liquidity=Liquidity(row[10]))


def _trade_record(row: Any) -> TradeRecord:
    trade = ClosedTrade(
        venue=row[1], symbol=row[4], side=row[5], amount=Decimal(row[6]),
        entry_time=int(row[7]), exit_time=int(row[8]), entry_price=Decimal(row[9]),
        exit_price=Decimal(row[10]), entry_fee=Decimal(row[11]), exit_fee=Decimal(row[12]),
        pnl=Decimal(row[13]), exit_trade_id=row[14], exit_client_order_id=row[15])
    return TradeRecord(int(row[0]), trade, TradingMode(row[2]), row[3])

"""Paper accounts in the store: balances, the venue's order book, its fills, its price cursors.

A paper venue keeps its working state in memory and writes every change through
:meth:`PaperRepository.save` in one transaction, so a restart continues exactly where it
stopped: the same balances, the same working orders, and the price movement already worked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from terminal.core.model import Balance, Candle, Fill, Order, OrderStatus
from terminal.core.storage.orders import (
    FILL_COLUMNS,
    ORDER_COLUMNS,
    decimal_text,
    equal_clauses,
    fill_from_row,
    order_from_row,
    where_sql,
)

ConnectionScope = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True, slots=True)
class PaperAccount:
    """A paper account's settings. ``next_seq`` numbers its orders and fills."""

    venue: str
    quote: str
    starting_cash: Decimal
    next_seq: int
    reset_at: int


@dataclass(frozen=True, slots=True)
class PaperOrderState:
    """An order on a paper account and what it holds: ``reserved`` is the balance set aside
    (quote for a buy, base for a sell); ``triggered`` marks a stop-limit whose stop was hit.
    A buy may carry protective exits to attach to the position it opens."""

    order: Order
    reserved: Decimal
    triggered: bool
    updated_at: int
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_pct: float | None = None


@dataclass(frozen=True, slots=True)
class PriceCursor:
    """The last state of a symbol's candle a paper account has worked its orders against."""

    candle: Candle
    closed: bool


@dataclass(frozen=True, slots=True)
class PaperProtection:
    """Protective exits guarding ``amount`` of a position, set by the entry order
    ``client_order_id``. ``high_water`` is the trailing stop's reference price."""

    client_order_id: str
    amount: Decimal
    stop_loss: float | None
    take_profit: float | None
    trailing_pct: float | None
    high_water: float


@dataclass(frozen=True, slots=True)
class PaperSnapshot:
    account: PaperAccount
    balances: dict[str, Balance]
    open_orders: dict[str, PaperOrderState]
    cursors: dict[str, PriceCursor]
    protections: dict[str, PaperProtection]


class PaperRepository:
    """Reads and writes paper accounts."""

    def __init__(self, read_scope: ConnectionScope, write_scope: ConnectionScope) -> None:
        self._read_scope = read_scope
        self._write_scope = write_scope

    def load(self, venue: str) -> PaperSnapshot | None:
        """The account's state, or None when ``venue`` has never been opened."""
        with self._read_scope() as conn:
            row = conn.exec_driver_sql(
                "SELECT venue, quote, starting_cash, next_seq, reset_at FROM paper_account"
                " WHERE venue = ?", (venue,)).first()
            if row is None:
                return None
            account = PaperAccount(row[0], row[1], Decimal(row[2]), int(row[3]), int(row[4]))
            balances = {
                r[0]: Balance(r[0], Decimal(r[1]), Decimal(r[2])) for r in conn.exec_driver_sql(
                    "SELECT currency, free, used FROM paper_balance WHERE venue = ?", (venue,))}
            final = [s.value for s in OrderStatus if s.is_final]
            orders = [_order_state(r) for r in conn.exec_driver_sql(
                f"SELECT {_ORDER_COLUMNS} FROM paper_order WHERE venue = ?"
                f" AND status NOT IN ({', '.join('?' * len(final))}) ORDER BY created_at",
                (venue, *final))]
            cursors = {
                r[0]: PriceCursor(Candle(int(r[1]), r[2], r[3], r[4], r[5], r[6]), bool(r[7]))
                for r in conn.exec_driver_sql(
                    "SELECT symbol, open_time, open, high, low, close, volume, closed"
                    " FROM paper_cursor WHERE venue = ?", (venue,))}
            protections = {
                r[0]: PaperProtection(r[1], Decimal(r[2]), r[3], r[4], r[5], r[6])
                for r in conn.exec_driver_sql(
                    "SELECT symbol, client_order_id, amount, stop_loss, take_profit,"
                    " trailing_pct, high_water FROM paper_protection WHERE venue = ?",
                    (venue,))}
        return PaperSnapshot(account, balances,
                             {o.order.client_order_id: o for o in orders}, cursors,
                             protections)

    def reset(self, account: PaperAccount) -> None:
        """Start ``account`` afresh: its starting cash in its quote currency and nothing else."""
        with self._write_scope() as conn:
            for table in ("paper_balance", "paper_order", "paper_fill", "paper_cursor",
                          "paper_protection", "paper_account"):
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE venue = ?", (account.venue,))
            conn.exec_driver_sql(
                "INSERT INTO paper_account (venue, quote, starting_cash, next_seq, reset_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (account.venue, account.quote, str(account.starting_cash), account.next_seq,
                 account.reset_at))
            conn.exec_driver_sql(
                "INSERT INTO paper_balance (venue, currency, free, used) VALUES (?, ?, ?, '0')",
                (account.venue, account.quote, str(account.starting_cash)))

    def save(self, venue: str, *, next_seq: int, balances: Iterable[Balance] = (),
             orders: Iterable[PaperOrderState] = (), fills: Iterable[Fill] = (),
             cursors: dict[str, PriceCursor] | None = None,
             protections: dict[str, PaperProtection | None] | None = None) -> None:
        """Write changed balances, orders, new fills, cursors and protections together
        (a protection of None is removed)."""
        with self._write_scope() as conn:
            conn.exec_driver_sql("UPDATE paper_account SET next_seq = ? WHERE venue = ?",
                                 (next_seq, venue))
            for balance in balances:
                conn.exec_driver_sql(
                    "INSERT INTO paper_balance (venue, currency, free, used) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (venue, currency) DO UPDATE SET free = excluded.free,"
                    " used = excluded.used",
                    (venue, balance.currency, str(balance.free), str(balance.used)))
            for state in orders:
                order = state.order
                conn.exec_driver_sql(
                    "INSERT INTO paper_order (venue, client_order_id, venue_order_id, symbol,"
                    " side, type, amount, price, stop_price, time_in_force, status, filled,"
                    " average_price, reject_reason, reserved, triggered, stop_loss,"
                    " take_profit, trailing_pct, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (venue, client_order_id) DO UPDATE SET"
                    " status = excluded.status, filled = excluded.filled,"
                    " average_price = excluded.average_price,"
                    " reject_reason = excluded.reject_reason, reserved = excluded.reserved,"
                    " triggered = excluded.triggered, updated_at = excluded.updated_at",
                    (venue, order.client_order_id, order.venue_order_id or "", order.symbol,
                     order.side.value, order.type.value, str(order.amount),
                     decimal_text(order.price), decimal_text(order.stop_price),
                     order.time_in_force.value, order.status.value, str(order.filled),
                     decimal_text(order.average_price), order.reject_reason,
                     str(state.reserved), state.triggered, state.stop_loss,
                     state.take_profit, state.trailing_pct, order.created_at,
                     state.updated_at))
            for fill in fills:
                conn.exec_driver_sql(
                    "INSERT INTO paper_fill (venue, trade_id, seq, client_order_id, symbol,"
                    " side, price, amount, fee, fee_currency, liquidity, timestamp)"
                    " VALUES (?, ?, (SELECT COUNT(*) FROM paper_fill WHERE venue = ?),"
                    " ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (venue, fill.trade_id, venue, fill.client_order_id, fill.symbol,
                     fill.side.value, str(fill.price), str(fill.amount), str(fill.fee),
                     fill.fee_currency, fill.liquidity.value, fill.timestamp))
            for symbol, cursor in (cursors or {}).items():
                candle = cursor.candle
                conn.exec_driver_sql(
                    "INSERT INTO paper_cursor (venue, symbol, open_time, open, high, low,"
                    " close, volume, closed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (venue, symbol) DO UPDATE SET open_time = excluded.open_time,"
                    " open = excluded.open, high = excluded.high, low = excluded.low,"
                    " close = excluded.close, volume = excluded.volume,"
                    " closed = excluded.closed",
                    (venue, symbol, candle.open_time, candle.open, candle.high, candle.low,
                     candle.close, candle.volume, cursor.closed))
            for symbol, protection in (protections or {}).items():
                conn.exec_driver_sql("DELETE FROM paper_protection WHERE venue = ?"
                                     " AND symbol = ?", (venue, symbol))
                if protection is None:
                    continue
                conn.exec_driver_sql(
                    "INSERT INTO paper_protection (venue, symbol, client_order_id, amount,"
                    " stop_loss, take_profit, trailing_pct, high_water)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (venue, symbol, protection.client_order_id, str(protection.amount),
                     protection.stop_loss, protection.take_profit, protection.trailing_pct,
                     protection.high_water))

    def order(self, venue: str, client_order_id: str) -> PaperOrderState | None:
        with self._read_scope() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {_ORDER_COLUMNS} FROM paper_order WHERE venue = ?"
                " AND client_order_id = ?", (venue, client_order_id)).first()
        return None if row is None else _order_state(row)

    def fills(self, venue: str, symbol: str | None = None,
              since_ms: int | None = None) -> list[Fill]:
        """The account's fills, oldest first."""
        clauses, params = equal_clauses(venue=venue, symbol=symbol)
        if since_ms is not None:
            clauses.append("timestamp >= ?")
            params.append(since_ms)
        sql = f"SELECT {FILL_COLUMNS} FROM paper_fill{where_sql(clauses)} ORDER BY seq"
        with self._read_scope() as conn:
            rows = conn.exec_driver_sql(sql, tuple(params)).all()
        return [fill_from_row(row) for row in rows]


_ORDER_COLUMNS = (f"{ORDER_COLUMNS}, reserved, triggered, updated_at, stop_loss,"
                  " take_profit, trailing_pct")


def _order_state(row: Any) -> PaperOrderState:
    return PaperOrderState(order_from_row(row), Decimal(row[15]), bool(row[16]),
                           int(row[17]), row[18], row[19], row[20])

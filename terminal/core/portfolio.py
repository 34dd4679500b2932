"""Positions and closed trades, derived from fills in one place.

Every mode (paper, live, and the order manager's reconciliation) turns executions into
positions here, so a position's average price and realized P/L mean the same everywhere:

* The **average price is fee-aware**: it is what each unit held cost, entry fees included.
  A buy of 1 BTC at 100 with a 0.1 USDT fee leaves a position of 1 at 100.1. A fee charged
  in the base currency (some exchanges take a buy's fee from what it bought) shrinks the
  amount received instead, which raises the cost per unit the same way.
* **Realized P/L is net of fees**: closing ``q`` units at price ``p`` with fee ``f`` realizes
  ``q * p - f - q * average``. Each fill that reduces a position produces one
  :class:`ClosedTrade` (a round trip), with the entry fee share it carries.
* Positions are signed (spot accounts only ever hold longs; a sell beyond the holding would
  open a short and is handled the same way, mirrored).

Fees in a third currency (e.g. BNB) cannot be valued here without a price; they are kept on
the fill but left out of the P/L.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from terminal.core.model import Fill, OrderSide, Position

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One round trip: ``amount`` opened from ``entry_time`` and closed by one fill.

    ``side`` is the side of the position (``long`` or ``short``); ``entry_price`` is the raw
    average entry price (fees apart) and ``entry_fee`` the share of the entry fees this part
    carried; ``pnl`` is net of both fees.
    """

    venue: str
    symbol: str
    side: str
    amount: Decimal
    entry_time: int
    exit_time: int
    entry_price: Decimal
    exit_price: Decimal
    entry_fee: Decimal
    exit_fee: Decimal
    pnl: Decimal
    exit_trade_id: str
    exit_client_order_id: str

    @property
    def fees(self) -> Decimal:
        return self.entry_fee + self.exit_fee

    @property
    def return_pct(self) -> float:
        """P/L as a percentage of what the entry cost."""
        cost = self.entry_price * self.amount + self.entry_fee
        return float(self.pnl / cost * 100) if cost else 0.0


@dataclass(slots=True)
class _Book:
    amount: Decimal = ZERO
    # Raw cost (price * amount) and entry fees of what is held, in quote currency.
    cost: Decimal = ZERO
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    opened_at: int = 0


class PositionBook:
    """Positions of one venue, built fill by fill. Feed fills in time order."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self._books: dict[str, _Book] = {}

    def apply(self, fill: Fill) -> ClosedTrade | None:
        """Take ``fill`` into its symbol's position; the round trip it closed, if any."""
        book = self._books.setdefault(fill.symbol, _Book())
        base, quote = _assets(fill.symbol)
        amount, fee = fill.amount, _fee_in_quote(fill, base, quote)
        if fill.fee_currency == base and fill.side is OrderSide.BUY:
            # The exchange kept part of what was bought as its fee: fewer units, same cost.
            amount = amount - fill.fee
        signed = amount * fill.side.sign
        closed: ClosedTrade | None = None
        if book.amount != 0 and (book.amount > 0) != (signed > 0):
            closing = min(abs(signed), abs(book.amount))
            closed = self._close(book, fill, closing, fee * closing / amount if amount else fee)
            fee = fee - closed.exit_fee
            signed += closing if signed < 0 else -closing
        if signed != 0:
            if book.amount == 0:
                book.opened_at = fill.timestamp
            book.amount += signed
            book.cost += fill.price * abs(signed)
            book.fees += fee
        return closed

    def _close(self, book: _Book, fill: Fill, closing: Decimal, exit_fee: Decimal
               ) -> ClosedTrade:
        held = abs(book.amount)
        share = closing / held
        entry_cost, entry_fee = book.cost * share, book.fees * share
        entry_price = book.cost / held
        long = book.amount > 0
        gross = (fill.price - entry_price) * closing if long else (
            (entry_price - fill.price) * closing)
        pnl = gross - entry_fee - exit_fee
        book.realized += pnl
        book.cost -= entry_cost
        book.fees -= entry_fee
        book.amount += closing if book.amount < 0 else -closing
        if book.amount == 0:
            book.cost = book.fees = ZERO
        return ClosedTrade(
            venue=self.venue, symbol=fill.symbol, side="long" if long else "short",
            amount=closing, entry_time=book.opened_at, exit_time=fill.timestamp,
            entry_price=entry_price, exit_price=fill.price, entry_fee=entry_fee,
            exit_fee=exit_fee, pnl=pnl, exit_trade_id=fill.trade_id,
            exit_client_order_id=fill.client_order_id)

    def position(self, symbol: str) -> Position:
        """The position in ``symbol`` (flat when none was ever opened)."""
        book = self._books.get(symbol, _Book())
        average = ZERO
        if book.amount != 0:
            per_unit_fee = book.fees / abs(book.amount)
            raw = book.cost / abs(book.amount)
            # Fees raise a long's break-even price and lower a short's.
            average = raw + per_unit_fee if book.amount > 0 else raw - per_unit_fee
        return Position(self.venue, symbol, book.amount, average, book.realized)

    def positions(self, *, include_flat: bool = False) -> list[Position]:
        """Every position, by symbol; flat ones (with only realized P/L) when asked."""
        return [self.position(symbol) for symbol in sorted(self._books)
                if include_flat or self._books[symbol].amount != 0]


def build_positions(venue: str, fills: Iterable[Fill]) -> tuple[PositionBook, list[ClosedTrade]]:
    """A position book from ``fills`` (time order) and the round trips they closed."""
    book = PositionBook(venue)
    closed = [trade for fill in fills if (trade := book.apply(fill)) is not None]
    return book, closed


def _assets(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote


def _fee_in_quote(fill: Fill, base: str, quote: str) -> Decimal:
    if fill.fee_currency == quote or not fill.fee_currency:
        return fill.fee
    if fill.fee_currency == base:
        return fill.fee * fill.price
    return ZERO

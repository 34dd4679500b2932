"""The interfaces the core needs from the outside world, implemented in ``terminal/exchange``.

Every market-data source, the built-in simulated market and real exchanges alike, is reached
through :class:`MarketDataVenue`, so nothing above it knows which one it talks to. Every place
that takes orders, the paper venue and real exchange accounts alike, is a :class:`TradingVenue`.
Venues raise the :class:`terminal.core.errors.VenueError` family, never their library's errors.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from terminal.core.model import (
    Balance,
    Candle,
    Fill,
    Instrument,
    Order,
    OrderSide,
    OrderType,
    Timeframe,
    TimeInForce,
    VenueKind,
)
from terminal.core.series import CandleSeries


@dataclass(frozen=True, slots=True)
class CandleTick:
    """A live update of one symbol's candle. ``closed`` is True exactly once per candle."""

    symbol: str
    timeframe: Timeframe
    candle: Candle
    closed: bool


class MarketDataVenue(Protocol):
    @property
    def id(self) -> str:
        """Stable identifier used as the store's venue key (``simulated``, ``binance``)."""
        ...

    @property
    def display_name(self) -> str: ...

    @property
    def kind(self) -> VenueKind: ...

    async def load_instruments(self) -> Sequence[Instrument]: ...

    async def fetch_candles(self, symbol: str, timeframe: Timeframe, start_ms: int,
                            end_ms: int) -> CandleSeries:
        """Closed candles with ``start_ms <= open_time < end_ms``."""
        ...

    def stream_candles(self, symbols: Sequence[str],
                       timeframe: Timeframe) -> AsyncGenerator[CandleTick, None]:
        """Live forming and closed candles of ``symbols`` until the generator is closed."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to place, after the risk manager approved it and sized it.

    ``client_order_id`` is ours: a venue that already holds an order with this id returns that
    order instead of placing a second one, which is what makes a retry safe. ``take_profit``
    and ``stop_loss`` are prices for the exchange's native attached exits, where it has them;
    ``trailing_stop_pct`` a trailing stop that far (in percent) below the highest price since
    the entry, where the venue has one.
    """

    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    trailing_stop_pct: Decimal | None = None


class TradingVenue(Protocol):
    """An account that holds balances and takes orders (paper or live)."""

    @property
    def id(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def kind(self) -> VenueKind: ...

    async def load_instruments(self) -> Sequence[Instrument]: ...

    async def fetch_balances(self) -> Sequence[Balance]: ...

    async def submit_order(self, request: OrderRequest) -> Order:
        """Place ``request``, or return the order already placed under its client id."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        """Cancel an open order; returns its final state (it may have filled meanwhile)."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order | None:
        """The order placed under ``client_order_id``, or None when the venue has none."""
        ...

    async def fetch_open_orders(self, symbol: str | None = None) -> Sequence[Order]: ...

    async def fetch_fills(self, symbol: str, since_ms: int | None = None) -> Sequence[Fill]:
        """Our executions on ``symbol``, oldest first."""
        ...

    async def close(self) -> None: ...

"""The interfaces the core needs from the outside world, implemented in ``terminal/exchange``.

Every market-data source, the built-in simulated market and real exchanges alike, is reached
through :class:`MarketDataVenue`, so nothing above it knows which one it talks to.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from terminal.core.model import Candle, Instrument, Timeframe, VenueKind
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

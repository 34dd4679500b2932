"""Events published on the bus. Named in the past tense: each says what already happened."""

from __future__ import annotations

from dataclasses import dataclass

from terminal.core.intents import OrderIntent
from terminal.core.model import Candle, Fill, Instrument, Order
from terminal.core.series import SeriesKey


@dataclass(frozen=True, slots=True)
class CandleUpdated:
    """The forming candle of ``key`` changed (it is not closed yet)."""

    key: SeriesKey
    candle: Candle


@dataclass(frozen=True, slots=True)
class CandleClosed:
    """A candle of ``key`` closed and has been stored. Published once per candle."""

    key: SeriesKey
    candle: Candle


@dataclass(frozen=True, slots=True)
class InstrumentsLoaded:
    """The pairs ``venue`` offers are known (the first step of starting its market data)."""

    venue: str
    instruments: tuple[Instrument, ...]


@dataclass(frozen=True, slots=True)
class MarketDataReady:
    """``venue``'s history is stored up to its present; live candles follow from here."""

    venue: str


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The market-data connection to ``venue`` went up or down."""

    venue: str
    connected: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HistoryProgress:
    """Background history loading for ``venue``: ``done`` of ``total`` steps."""

    venue: str
    done: int
    total: int
    message: str


@dataclass(frozen=True, slots=True)
class ErrorRaised:
    """Something failed in the background; ``message`` is written for the user."""

    source: str
    message: str


@dataclass(frozen=True, slots=True)
class IntentRejected:
    """The risk manager refused ``intent``; nothing was sent. ``reason`` is for the user."""

    intent: OrderIntent
    reason: str


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    """An order changed state (acknowledged, partly filled, filled, canceled, rejected)."""

    order: Order


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """An execution happened; the order's new state was published before this event."""

    fill: Fill

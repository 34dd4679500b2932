"""Fakes for the window tests: a market-data service that records what the window asks.

And the Qt lifecycle every UI test runs under (see :func:`qt_objects_die_on_the_gui_thread`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QMainWindow

from terminal.core.bus import EventBus
from terminal.core.errors import InvalidArgument
from terminal.core.model import Candle, Instrument, Timeframe, VenueKind
from terminal.core.series import CandleSeries, SeriesKey
from terminal.ui.collector import GuiThreadCollector
from terminal.widgets.candle_chart import CandleChart
from tests.factories import make_series

SYMBOLS = ("BTC/USDT", "ETH/USDT")


@dataclass
class FakeVenue:
    id: str = "simulated"
    display_name: str = "Simulated market"
    kind: VenueKind = VenueKind.SIMULATED


@dataclass
class FakeService:
    """Answers like :class:`MarketDataService` from fixed random walks; records every call."""

    venue: FakeVenue = field(default_factory=FakeVenue)
    instruments: list[Instrument] = field(default_factory=list)
    ready: bool = False
    calls: list[tuple[str, str, Timeframe]] = field(default_factory=list)
    forming_candle: Candle | None = None
    limited: bool = False
    listed: frozenset[str] = frozenset(SYMBOLS)

    def load(self) -> None:
        """What ``start()`` does first: the instruments become known."""
        self.instruments = [Instrument(self.venue.id, s, *s.split("/"), Decimal("0.01"),
                                       Decimal("0.001")) for s in SYMBOLS]

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self.instruments]

    def key(self, symbol: str, timeframe: Timeframe) -> SeriesKey:
        return SeriesKey(self.venue.id, symbol, timeframe)

    def history(self, symbol: str, timeframe: Timeframe, bars: int | None = None) -> CandleSeries:
        if symbol not in self.symbols:
            raise InvalidArgument(f"{symbol} is not traded here")
        self.calls.append(("history", symbol, timeframe))
        price = 60_000.0 if symbol.startswith("BTC") else 3_000.0
        return make_series(300, timeframe, price=price, seed=len(symbol) + timeframe.ms % 97)

    def watch(self, symbol: str, timeframe: Timeframe) -> None:
        self.calls.append(("watch", symbol, timeframe))

    def unwatch(self, symbol: str, timeframe: Timeframe) -> None:
        self.calls.append(("unwatch", symbol, timeframe))

    def forming(self, symbol: str, timeframe: Timeframe) -> Candle | None:
        return self.forming_candle


@pytest.fixture(scope="session", autouse=True)
def frozen_heap() -> Iterator[None]:
    """Leave what exists before the UI tests (modules, caches) out of every collection, so
    collecting after each test (see below) costs milliseconds, not a scan of the whole heap."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
    gc.collect()


@pytest.fixture(autouse=True)
def qt_objects_die_on_the_gui_thread(qapp: QApplication) -> Iterator[None]:
    """Nothing a test made in Qt outlives it, and it dies on the GUI thread.

    During the test the cycle collector runs only on the GUI thread (as in the app). After it,
    every main window the test opened is deleted, with what pytest-qt scheduled for deletion
    (the widgets given to ``qtbot.addWidget``), and what they leave in reference cycles
    (pyqtgraph items, closed qasync loops with their timers and threads) is collected, here on
    the GUI thread: otherwise the collector would free it at some later moment, maybe on a
    worker thread of a later test or inside a paint, and the run would die with a
    segmentation fault.
    """
    before = set(QApplication.topLevelWidgets())
    with GuiThreadCollector():
        yield
        # Windows delete their own children, pyqtgraph's menus among them: deleting those
        # first would leave the window's destructor with dangling pointers.
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMainWindow) and widget not in before:
                if widget.isVisible():
                    widget.close()
                widget.deleteLater()
        before.clear()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def chart(qtbot) -> CandleChart:
    """A shown 1000x600 chart without data."""
    widget = CandleChart()
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget

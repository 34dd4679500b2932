from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from terminal.core.bus import EventBus
from terminal.core.errors import TerminalError
from terminal.core.events import (
    CandleClosed,
    CandleUpdated,
    ConnectionChanged,
    ErrorRaised,
    HistoryProgress,
    InstrumentsLoaded,
    MarketDataReady,
)
from terminal.core.model import Candle, Timeframe
from terminal.core.paths import APP_DISPLAY_NAME
from terminal.ui.main_window import DEFAULT_TIMEFRAME, MainWindow
from tests.ui.conftest import FakeService

pytestmark = pytest.mark.qt


@pytest.fixture
def window(qtbot, service: FakeService, bus: EventBus) -> MainWindow:
    service.load()
    service.ready = True
    widget = MainWindow(service, bus)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_a_ready_service_is_charted_at_once(window: MainWindow, service: FakeService) -> None:
    assert window.symbol == "BTC/USDT"
    assert window.timeframe is DEFAULT_TIMEFRAME
    # The watchlist is seeded with each pair's last day of 1-minute candles first.
    assert service.calls == [("history", "BTC/USDT", Timeframe.M1),
                             ("history", "ETH/USDT", Timeframe.M1),
                             ("history", "BTC/USDT", DEFAULT_TIMEFRAME),
                             ("watch", "BTC/USDT", DEFAULT_TIMEFRAME)]
    assert window.chart.bar_count == 300
    assert window.chart.watermark == "BTC/USDT · 5m"


def test_title_and_status_bar_say_simulated(window: MainWindow) -> None:
    assert APP_DISPLAY_NAME in window.windowTitle()
    assert "SIMULATED" in window.windowTitle()
    texts = window.status_texts()
    assert "SIMULATED — Simulated market" in texts
    assert "300 bars" in texts
    last = window.chart.last_candle
    assert last is not None
    assert "2023-11-15 00:55 UTC" in texts  # bar 299 of 5-minute bars from 2023-11-14 00:00
    assert any(f"{last.close:.2f}" in text for text in texts)


def test_choosing_a_symbol_reloads_and_resubscribes(window: MainWindow, service: FakeService,
                                                   qtbot) -> None:
    service.calls.clear()
    box = window._symbol_box
    box.setCurrentIndex(box.findData("ETH/USDT"))
    box.activated.emit(box.currentIndex())
    assert service.calls == [("unwatch", "BTC/USDT", DEFAULT_TIMEFRAME),
                             ("history", "ETH/USDT", DEFAULT_TIMEFRAME),
                             ("watch", "ETH/USDT", DEFAULT_TIMEFRAME)]
    assert window.symbol == "ETH/USDT"
    assert "ETH/USDT" in window.windowTitle()
    assert window.chart.last_candle.close < 10_000  # the ETH walk, not the BTC one


def test_timeframe_buttons_and_shortcuts_switch_the_chart(window: MainWindow,
                                                          service: FakeService, qtbot) -> None:
    service.calls.clear()
    window._timeframe_actions[Timeframe.H1].trigger()
    assert window.timeframe is Timeframe.H1
    assert ("history", "BTC/USDT", Timeframe.H1) in service.calls
    assert window.chart.timeframe is Timeframe.H1
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.timeframe is Timeframe.M1
    assert service.calls[-1] == ("watch", "BTC/USDT", Timeframe.M1)
    assert window._timeframe_actions[Timeframe.M1].isChecked()


def test_live_candles_of_the_charted_series_update_it(window: MainWindow, bus: EventBus,
                                                      service: FakeService) -> None:
    last = window.chart.last_candle
    forming = Candle(last.open_time + Timeframe.M5.ms, last.close, last.close + 9,
                     last.close - 1, last.close + 8, 1.5)
    bus.publish(CandleUpdated(service.key("BTC/USDT", Timeframe.M5), forming))
    assert window.chart.last_candle == forming
    bus.publish(CandleUpdated(service.key("ETH/USDT", Timeframe.M5),
                              replace(forming, close=1.0, low=1.0)))
    bus.publish(CandleUpdated(service.key("BTC/USDT", Timeframe.M1),
                              replace(forming, close=2.0, low=2.0)))
    assert window.chart.last_candle == forming
    closed = replace(forming, close=last.close + 7)
    bus.publish(CandleClosed(service.key("BTC/USDT", Timeframe.M5), closed))
    assert window.chart.last_candle == closed
    assert window.chart.bar_count == 301
    assert f"{closed.close:.2f}" in window.status_texts()[-1]


def test_the_window_shows_loading_progress_then_the_chart(qtbot, service: FakeService,
                                                          bus: EventBus) -> None:
    window = MainWindow(service, bus)
    qtbot.addWidget(window)
    window.show()
    assert window.chart.placeholder == "Loading market history…"
    assert not window._symbol_box.isEnabled()
    assert "Connecting…" in window.status_texts()[2]
    service.load()
    bus.publish(InstrumentsLoaded("simulated", tuple(service.instruments)))
    assert window._symbol_box.isEnabled()
    bus.publish(HistoryProgress("simulated", 2, 5, "Loading BTC/USDT history"))
    assert window.status_message == "Loading BTC/USDT history… 2/5"
    assert window._progress.isVisible()
    assert window.chart.bar_count == 0
    bus.publish(HistoryProgress("simulated", 5, 5, "History up to date"))
    assert not window._progress.isVisible()
    assert window.chart.bar_count == 0, "the chart waits for MarketDataReady"
    bus.publish(MarketDataReady("simulated"))
    assert window.chart.bar_count == 300
    bus.publish(ConnectionChanged("simulated", True))
    assert "Live" in window.status_texts()[2]
    bus.publish(ConnectionChanged("simulated", False, "socket closed"))
    assert "Disconnected" in window.status_texts()[2]


def test_errors_are_shown_in_the_status_bar(window: MainWindow, bus: EventBus) -> None:
    bus.publish(ErrorRaised("Simulated market", "live data interrupted: boom"))
    assert window.status_message == "⚠ Simulated market: live data interrupted: boom"
    window._error_timer.timeout.emit()
    assert window.status_message == "Ready"


def test_an_unknown_symbol_or_timeframe_is_refused(window: MainWindow) -> None:
    with pytest.raises(TerminalError, match="DOGE/USDT is not traded"):
        window.select(symbol="DOGE/USDT")
    with pytest.raises(TerminalError, match="offers the timeframes 1m, 5m, 15m, 30m, 1h, 4h, 1d"):
        window.select(timeframe=Timeframe.M3)
    assert (window.symbol, window.timeframe) == ("BTC/USDT", DEFAULT_TIMEFRAME)


def test_a_failed_start_says_so_instead_of_loading_forever(qtbot, service: FakeService,
                                                          bus: EventBus) -> None:
    window = MainWindow(service, bus)
    qtbot.addWidget(window)
    bus.publish(ErrorRaised("Simulated market", "cannot start: OSError()"))
    assert window.chart.placeholder == "Market data unavailable (see the status bar)"
    assert "cannot start" in window.status_message


def test_geometry_and_selection_are_remembered(qtbot, service: FakeService, bus: EventBus,
                                               tmp_path: Path) -> None:
    service.load()
    service.ready = True
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    first = MainWindow(service, bus, settings=settings)
    qtbot.addWidget(first)
    first.show()
    first.resize(790, 660)
    first.select(symbol="ETH/USDT", timeframe=Timeframe.H4)
    with qtbot.waitSignal(first.closed):
        first.close()
    assert service.calls[-1] == ("unwatch", "ETH/USDT", Timeframe.H4)

    second = MainWindow(service, bus, settings=settings)
    qtbot.addWidget(second)
    assert (second.symbol, second.timeframe) == ("ETH/USDT", Timeframe.H4)
    # The remembered size (far below the default), widened only as far as the panels need.
    assert second.height() == 660
    assert 790 <= second.width() < 900

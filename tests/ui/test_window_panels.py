"""The main window's panels, layout, theme, shortcuts, notifications and dialogs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import QDate, QSettings

from terminal.core.bus import EventBus
from terminal.core.events import (
    CandleClosed,
    ConnectionChanged,
    ErrorRaised,
    IntentRejected,
    OrderFilled,
)
from terminal.core.intents import OrderIntent
from terminal.core.model import Candle, Fill, OrderSide, Timeframe
from terminal.core.series import SeriesKey
from terminal.core.settings import AppearanceSettings, Settings, SettingsFile
from terminal.ui import theme
from terminal.ui.main_window import NO_MODELS_TEXT, MainWindow
from terminal.widgets.chart_layers import IndicatorSettings
from terminal.widgets.notifications import Severity
from tests.ui.conftest import FakeService

pytestmark = pytest.mark.qt


@pytest.fixture
def ready_service(service: FakeService) -> FakeService:
    service.load()
    service.ready = True
    return service


def make_window(qtbot, service: FakeService, bus: EventBus, **kwargs) -> MainWindow:
    window = MainWindow(service, bus, **kwargs)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture(autouse=True)
def dark_again(qapp):
    yield
    theme.apply_theme(qapp, theme.DARK)


def test_panels_are_docks_and_the_status_bar_is_honest(qtbot, ready_service, bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    assert set(window.docks) == {"watchlist", "predictions", "notifications", "ticket",
                                 "positions", "history", "dashboard", "backtest", "models"}
    assert window.docks["watchlist"].isVisible() and window.docks["predictions"].isVisible()
    assert not window.docks["backtest"].isVisible() and not window.docks["models"].isVisible()
    assert NO_MODELS_TEXT in window.status_texts()
    window.set_worker_state("Models: training 40%")
    assert "Models: training 40%" in window.status_texts()
    assert window.watchlist.model.symbols == ["BTC/USDT", "ETH/USDT"]


def test_the_layout_is_remembered_and_can_be_reset(qtbot, ready_service, bus,
                                                    tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    first = make_window(qtbot, ready_service, bus, settings=settings)
    first.docks["backtest"].show()
    first.docks["notifications"].hide()
    first.set_indicators(IndicatorSettings(rsi=True, sma=False))
    with qtbot.waitSignal(first.closed):
        first.close()
    second = make_window(qtbot, ready_service, bus, settings=settings)
    assert second.docks["backtest"].isVisible()
    assert not second.docks["notifications"].isVisible()
    assert second.chart.indicator_settings == IndicatorSettings(rsi=True, sma=False)
    assert second._indicator_actions["rsi"].isChecked()
    second.reset_layout()
    assert not second.docks["backtest"].isVisible()
    assert second.docks["notifications"].isVisible()


def test_the_theme_switches_at_run_time(qtbot, ready_service, bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    assert window.theme_name == "dark"
    window.toggle_theme()
    assert window.theme_name == "light"
    assert window.chart._style.background == theme.LIGHT.background
    assert theme.LIGHT.background in qtbot_app_style_sheet()
    window.toggle_theme()
    assert window.chart._style.background == theme.DARK.background


def qtbot_app_style_sheet() -> str:
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return app.styleSheet()


def test_saved_preferences_set_the_theme(qtbot, ready_service, bus, tmp_path: Path) -> None:
    window = make_window(qtbot, ready_service, bus, settings_file=SettingsFile(tmp_path))
    dialog = window.show_preferences()
    box = dialog.editor("appearance", "theme")
    box.setCurrentIndex(box.findData("light"))
    assert dialog.save()
    assert window.theme_name == "light"
    assert window.preferences.appearance.theme == "light"
    assert window.notification_center.notifications[0].title == "Preferences saved"


def test_shortcuts_are_listed_and_work(qtbot, ready_service, bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    dialog = window.show_shortcuts()
    rows = dict(dialog.rows())
    assert rows["1 hour candles"] == "Ctrl+5"
    assert rows["Full screen on or off"] == "F11"
    assert rows["Open the preferences"] == "Ctrl+,"
    assert rows["Chart the next pair of the watchlist"] == "Ctrl+PgDown"
    assert "Show or hide the watchlist panel" in rows
    dialog.close()
    window._timeframe_actions[Timeframe.H1].trigger()
    assert window.timeframe is Timeframe.H1
    window._next_symbol_action.trigger()
    assert window.symbol == "ETH/USDT"
    window._next_symbol_action.trigger()
    assert window.symbol == "BTC/USDT", "wraps around"
    window._previous_symbol_action.trigger()
    assert window.symbol == "ETH/USDT"
    before = window.chart.visible_range()
    window._zoom_in_action.trigger()
    after = window.chart.visible_range()
    assert after[1] - after[0] < before[1] - before[0]
    window._indicator_actions["macd"].trigger()
    assert window.chart.indicator_settings.macd
    window._full_screen_action.trigger()
    assert window.isFullScreen()
    window._full_screen_action.trigger()
    assert not window.isFullScreen()


def test_clicking_the_watchlist_charts_the_pair(qtbot, ready_service, bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    window.watchlist.symbol_activated.emit("ETH/USDT")
    assert window.symbol == "ETH/USDT"
    minute = SeriesKey("simulated", "ETH/USDT", Timeframe.M1)
    before = window.watchlist.model.figures("ETH/USDT")
    last = before[0]
    bus.publish(CandleClosed(minute, Candle(4_000_000_000_000, last, last * 2, last, last * 2,
                                            1.0)))
    assert window.watchlist.model.figures("ETH/USDT")[0] == last * 2


def test_background_events_become_notifications(qtbot, ready_service, bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    shown = []
    window.set_tray_icon(_RecordingTray(shown))
    bus.publish(ErrorRaised("Simulated market", "live data interrupted: boom"))
    bus.publish(ConnectionChanged("simulated", False, "socket closed"))
    bus.publish(ConnectionChanged("simulated", True))
    intent = OrderIntent("BTC/USDT", OrderSide.BUY, 0)
    bus.publish(IntentRejected(intent, "daily loss limit reached"))
    bus.publish(OrderFilled(Fill("t1", "c1", "paper", "BTC/USDT", OrderSide.BUY,
                                 Decimal("60000"), Decimal("0.1"), Decimal("6"), "USDT", 0)))
    center = window.notification_center
    titles = [n.title for n in center.notifications]
    assert titles == ["Filled: buy BTC/USDT", "Order refused: buy BTC/USDT",
                      "Market data reconnected", "Market data disconnected",
                      "Simulated market"]
    assert center.notifications[1].text == "daily loss limit reached"
    assert center.notifications[-1].severity is Severity.ERROR
    assert window.docks["notifications"].windowTitle() == "Notifications (5)"
    assert [title for title, _ in shown] == list(reversed(titles))


class _RecordingTray:
    def __init__(self, shown: list) -> None:
        self._shown = shown

    def showMessage(self, title: str, text: str, icon, timeout: int) -> None:
        self._shown.append((title, text))


def test_a_backtest_runs_in_the_background_and_marks_the_chart(qtbot, ready_service,
                                                                bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    panel = window.backtest_panel
    panel.set_period(QDate(2023, 11, 14), QDate(2023, 11, 20))
    panel.parameter_edit("fast").setText("5")
    panel.parameter_edit("slow").setText("12")
    with qtbot.waitSignal(window.backtest_runner.finished, timeout=20_000) as signal:
        panel.run_button.click()
    result = signal.args[0]
    assert window.timeframe is Timeframe.H1 and window.symbol == result.symbol
    assert result.trades, "the random walk crosses its averages"
    assert window.chart.trade_marker_count >= len(result.trades)
    assert panel.stats_text()["Trades"][0] == str(len(result.trades))
    assert window.notification_center.notifications[0].title == "Backtest finished"


def test_the_first_run_wizard_is_remembered(qtbot, ready_service, bus, tmp_path: Path) -> None:
    settings_file = SettingsFile(tmp_path)
    window = make_window(qtbot, ready_service, bus, settings_file=settings_file,
                         preferences=Settings(appearance=AppearanceSettings(theme="dark")))
    wizard = window.show_first_run_wizard()
    assert wizard.pageIds() == [0, 1, 2]
    wizard.next()
    assert "Paper trading" in wizard.currentPage().title()
    wizard.accept()
    assert window.preferences.first_run_done
    assert settings_file.load().first_run_done


def test_a_fast_stream_is_drawn_once_a_frame_with_its_newest_tick(qtbot, ready_service,
                                                                   bus) -> None:
    from terminal.core.events import CandleUpdated

    window = make_window(qtbot, ready_service, bus)
    key = window.series_key
    last = window.chart.last_candle
    ticks = [Candle(last.open_time + Timeframe.M5.ms, last.close, last.close + step,
                    last.close - 1, last.close + step, 1.0) for step in range(1, 6)]
    for tick in ticks:
        bus.publish(CandleUpdated(key, tick))
    assert window.chart.last_candle == ticks[0], "the first tick is drawn at once"
    qtbot.waitUntil(lambda: window.chart.last_candle == ticks[-1], timeout=1_000)
    closed = ticks[-1]
    bus.publish(CandleClosed(key, closed))
    assert window.chart.last_candle == closed, "a closed candle is never held back"


def test_indicator_periods_are_validated_then_applied(qtbot, ready_service, bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    dialog = window.show_indicator_settings()
    dialog.edit("sma_period").setText("0")
    assert "sma period must be 1 to 1000 bars" in dialog.field_error("sma_period")
    assert not dialog.apply_button.isEnabled()
    dialog.edit("sma_period").setText("9.5")
    assert "whole number" in dialog.field_error("sma_period")
    dialog.edit("sma_period").setText("9")
    dialog.edit("macd_fast").setText("40")
    assert "fast period (40) must be below its slow period" in dialog.field_error("macd_fast")
    assert dialog.apply() is False
    dialog.edit("macd_fast").setText("8")
    dialog.edit("bollinger_width").setText("2.5")
    assert dialog.apply() is True
    settings = window.chart.indicator_settings
    assert (settings.sma_period, settings.macd_fast, settings.bollinger_width) == (9, 8, 2.5)
    assert "SMA 9" in window.chart.readout_text()


def test_a_cancelled_backtest_shows_nothing_and_the_next_run_does(qtbot, ready_service,
                                                                 bus) -> None:
    window = make_window(qtbot, ready_service, bus)
    panel = window.backtest_panel
    panel.set_period(QDate(2023, 11, 14), QDate(2023, 11, 20))
    panel.parameter_edit("fast").setText("5")
    panel.parameter_edit("slow").setText("12")
    # Cancel is pressed before the worker's first word reaches the window: whether the job
    # stopped at a check or had already finished, the run ends as cancelled.
    with qtbot.waitSignal(window.backtest_runner.cancelled, timeout=20_000):
        panel.run_button.click()
        panel.cancel_button.click()
    assert panel.status_text.startswith("Backtest cancelled")
    assert window.chart.trade_marker_count == 0 and panel.stats_text() == {}
    assert "Backtest finished" not in [n.title for n in window.notification_center.notifications]
    with qtbot.waitSignal(window.backtest_runner.finished, timeout=20_000) as signal:
        panel.run_button.click()
    assert panel.stats_text()["Trades"][0] == str(len(signal.args[0].trades))
    assert window.notification_center.notifications[0].title == "Backtest finished"

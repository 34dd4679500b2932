"""Watchlist, notification centre, backtest panel and preferences, each on its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QDate, Qt

from terminal.core.model import Candle, Timeframe
from terminal.core.series import CandleSeries
from terminal.core.settings import Settings, SettingsFile
from terminal.ui.backtest_runner import BacktestRunner
from terminal.ui.preferences import PreferencesDialog
from terminal.widgets.backtest_panel import BacktestPanel, BacktestRequest
from terminal.widgets.forms import field_label
from terminal.widgets.notifications import (
    MAX_NOTIFICATIONS,
    Notification,
    NotificationCenter,
    Severity,
)
from terminal.widgets.watchlist import Watchlist
from tests.factories import START_MS, make_series

pytestmark = pytest.mark.qt


# -- watchlist ---------------------------------------------------------------------------------

@pytest.fixture
def watchlist(qtbot) -> Watchlist:
    widget = Watchlist()
    qtbot.addWidget(widget)
    widget.model.set_symbols(["BTC/USDT", "ETH/USDT"], {"BTC/USDT": 2})
    return widget


def cell(watchlist: Watchlist, row: int, column: int, role=Qt.ItemDataRole.DisplayRole):
    return watchlist.model.index(row, column).data(role)


def test_the_watchlist_asks_to_add_and_remove_pairs_only_where_they_are_chosen(
        qtbot, watchlist: Watchlist) -> None:
    watchlist.show()
    assert not watchlist.entry.isVisible() and not watchlist.remove_action.isEnabled()
    assert watchlist.table.contextMenuPolicy() is Qt.ContextMenuPolicy.NoContextMenu
    watchlist.set_editable(True)
    assert watchlist.entry.isVisible() and watchlist.remove_action.isEnabled()
    assert watchlist.table.actions() == [watchlist.remove_action]  # its context menu
    with qtbot.waitSignal(watchlist.add_requested) as added:
        qtbot.keyClicks(watchlist.entry, " sol/usdt ")
        qtbot.keyClick(watchlist.entry, Qt.Key.Key_Return)
    assert added.args == ["SOL/USDT"]
    watchlist.set_entry_error("SOL/USDT is not listed")
    assert watchlist.entry_error == "SOL/USDT is not listed"
    watchlist.entry_done()
    assert (watchlist.entry.text(), watchlist.entry_error) == ("", "")
    watchlist.table.setCurrentIndex(watchlist.model.index(1, 2))
    watchlist.activateWindow()
    watchlist.table.setFocus()
    qtbot.waitUntil(watchlist.table.hasFocus)
    with qtbot.waitSignal(watchlist.remove_requested) as removed:
        qtbot.keyClick(watchlist.table, Qt.Key.Key_Delete)
    assert removed.args == ["ETH/USDT"]


def test_the_watchlist_shows_rolling_24h_figures(watchlist: Watchlist) -> None:
    day = make_series(2_000)  # more than a day of 1-minute candles
    watchlist.model.set_history("BTC/USDT", day)
    last, change, high, low, volume = watchlist.model.figures("BTC/USDT")
    window = day.take(2_000 - 1_440, 2_000)
    assert last == day.close[-1]
    assert change == pytest.approx((day.close[-1] / window.open[0] - 1) * 100)
    assert (high, low) == (window.high.max(), window.low.min())
    assert volume == pytest.approx(window.volume.sum())
    assert cell(watchlist, 0, 1) == f"{last:,.2f}"
    assert cell(watchlist, 0, 2) == f"{change:+.2f}%"
    assert cell(watchlist, 1, 1) == "—", "no data for ETH yet"
    color = cell(watchlist, 0, 2, Qt.ItemDataRole.ForegroundRole)
    assert color.name() == ("#26a69a" if change >= 0 else "#ef5350")


def test_live_candles_update_the_row(watchlist: Watchlist) -> None:
    day = make_series(1_440)
    watchlist.model.set_history("ETH/USDT", day)
    last = day[1_439]
    forming = Candle(last.open_time + 60_000, last.close, last.close * 1.2, last.close,
                     last.close * 1.2, 5.0)
    watchlist.model.update_candle("ETH/USDT", forming, closed=False)
    figures = watchlist.model.figures("ETH/USDT")
    assert figures[0] == forming.close and figures[2] == forming.high
    watchlist.model.update_candle("ETH/USDT", forming, closed=True)
    after = watchlist.model.figures("ETH/USDT")
    assert after[0] == forming.close
    # The oldest minute left the 24-hour window when the new one closed.
    assert after[1] == pytest.approx((forming.close / day.open[1] - 1) * 100)
    older = Candle(START_MS, 1.0, 1.0, 1.0, 1.0, 1.0)
    watchlist.model.update_candle("ETH/USDT", older, closed=True)
    assert watchlist.model.figures("ETH/USDT") == after, "a late old candle is ignored"
    watchlist.model.update_candle("DOGE/USDT", forming, closed=True)  # not listed: ignored


def test_the_24h_extremes_follow_the_window_as_it_slides(watchlist: Watchlist) -> None:
    day = make_series(1_440)
    watchlist.model.set_history("BTC/USDT", day)
    peak = float(day.high.max())
    leaves_at = int(np.argmax(day.high))
    for minute in range(leaves_at + 1):
        time = int(day.open_time[-1]) + (minute + 1) * 60_000
        watchlist.model.update_candle("BTC/USDT", Candle(time, 50.0, 50.5, 49.5, 50.0, 1.0),
                                      closed=True)
    figures = watchlist.model.figures("BTC/USDT")
    remaining = day.take(leaves_at + 1, 1_440)
    expected_high = max(float(remaining.high.max()) if len(remaining) else 0.0, 50.5)
    assert figures[2] == expected_high < peak
    assert figures[3] == 49.5
    assert figures[4] == pytest.approx(float(remaining.volume.sum()) + leaves_at + 1)


def test_a_stream_of_ticks_is_repainted_in_batches(watchlist: Watchlist, qtbot) -> None:
    watchlist.model.set_history("BTC/USDT", make_series(100))
    changes = []
    watchlist.model.dataChanged.connect(lambda *args: changes.append(args))
    last = watchlist.model.figures("BTC/USDT")[0]
    for step in range(50):
        candle = Candle(START_MS + 100 * 60_000, last, last + step, last - 1, last + step, 1.0)
        watchlist.model.update_candle("BTC/USDT", candle, closed=False)
    assert watchlist.model.figures("BTC/USDT")[0] == last + 49, "the figures are current"
    assert changes == [], "the views hear about it once the refresh interval has passed"
    qtbot.waitUntil(lambda: len(changes) == 1, timeout=2_000)


def test_clicking_a_row_asks_to_chart_it(watchlist: Watchlist, qtbot) -> None:
    watchlist.show()
    with qtbot.waitSignal(watchlist.symbol_activated) as signal:
        watchlist.table.clicked.emit(watchlist.model.index(1, 2))
    assert signal.args == ["ETH/USDT"]
    watchlist.select_symbol("ETH/USDT")
    assert watchlist.table.selectionModel().selectedRows()[0].row() == 1


# -- notifications -----------------------------------------------------------------------------

def test_notifications_are_listed_newest_first_and_counted(qtbot) -> None:
    center = NotificationCenter()
    qtbot.addWidget(center)
    with qtbot.waitSignal(center.unread_changed) as signal:
        center.add(Notification(START_MS, Severity.ERROR, "Simulated market", "boom"))
    assert signal.args == [1]
    center.add(Notification(START_MS + 1, Severity.INFO, "Backtest finished", "ok"))
    assert [n.title for n in center.notifications] == ["Backtest finished", "Simulated market"]
    assert center.unread == 2
    assert center._list.item(0).text().startswith("Backtest finished")
    center.mark_read()
    assert center.unread == 0
    center.clear()
    assert center.notifications == []
    assert not center._clear.isEnabled()


def test_old_notifications_are_dropped(qtbot) -> None:
    center = NotificationCenter()
    qtbot.addWidget(center)
    for number in range(MAX_NOTIFICATIONS + 5):
        center.add(Notification(START_MS + number, Severity.WARNING, f"n{number}", ""))
    assert len(center.notifications) == MAX_NOTIFICATIONS
    assert center._list.count() == MAX_NOTIFICATIONS
    assert center.notifications[0].title == f"n{MAX_NOTIFICATIONS + 4}"


# -- backtest panel ----------------------------------------------------------------------------

@pytest.fixture
def panel(qtbot) -> BacktestPanel:
    widget = BacktestPanel()
    qtbot.addWidget(widget)
    widget.set_symbols(["BTC/USDT", "ETH/USDT"], "ETH/USDT")
    widget.set_period(QDate(2023, 11, 14), QDate(2023, 12, 20))
    return widget


def test_the_form_follows_the_strategys_parameters(panel: BacktestPanel) -> None:
    request = panel.validate()
    assert request is not None
    assert request.strategy == "sma_crossover"
    assert request.params["fast"] == 20 and request.params["slow"] == 50
    assert request.symbol == "ETH/USDT"
    assert request.fee_rate == pytest.approx(0.001)
    panel.select_strategy("rsi_mean_reversion")
    assert panel.parameter_edit("oversold").text() == "30"
    with pytest.raises(KeyError):
        panel.parameter_edit("fast")


@pytest.mark.parametrize(("field", "text", "message"), [
    ("fast", "abc", "must be a number"),
    ("fast", "2.5", "whole number"),
    ("slow", "100000", "between 3 and 5000"),
])
def test_bad_parameters_are_marked_and_block_the_run(panel: BacktestPanel, field: str,
                                                     text: str, message: str) -> None:
    edit = panel.parameter_edit(field)
    edit.setText(text)
    assert panel.validate() is None
    assert not panel.run_button.isEnabled()
    assert edit.property("invalid") is True
    assert message in edit.toolTip()
    edit.setText("30")
    assert panel.run_button.isEnabled()
    assert edit.property("invalid") is False


def test_rules_across_parameters_fees_and_period_are_checked(panel: BacktestPanel) -> None:
    panel.parameter_edit("fast").setText("60")
    assert panel.validate() is None
    assert "fast (60) must be below slow (50)" in panel._form_error.text()
    panel.parameter_edit("fast").setText("20")
    panel.fee_edit.setText("9")
    assert panel.validate() is None and panel.fee_edit.property("invalid") is True
    panel.fee_edit.setText("0")
    panel.cash_edit.setText("0")
    assert panel.validate() is None and panel.cash_edit.property("invalid") is True
    panel.cash_edit.setText("5000")
    panel.set_period(QDate(2024, 1, 2), QDate(2024, 1, 1))
    assert panel.validate() is None
    panel.set_period(QDate(2024, 1, 1), QDate(2024, 1, 31))
    assert panel.validate() is not None


def test_a_run_in_the_background_shows_stats_and_curves(panel: BacktestPanel, qtbot) -> None:
    series = make_series(3_000, Timeframe.H1)
    runner = BacktestRunner(lambda symbol, timeframe: series)
    panel.run_requested.connect(lambda request: (panel.set_running("…"),
                                                 runner.start(request)))
    runner.finished.connect(panel.show_result)
    with qtbot.waitSignal(runner.finished, timeout=20_000) as signal:
        panel.run_button.click()
        assert panel.running and not panel.run_button.isEnabled()
    result = signal.args[0]
    assert not panel.running and panel.run_button.isEnabled()
    stats = panel.stats_text()
    assert stats["Trades"][0] == str(result.metrics.trades)
    assert stats["Total return"][1] == f"{result.buy_and_hold.total_return * 100:+.2f}%"
    assert panel.curve_lengths() == (len(result.equity), len(result.buy_and_hold_equity))
    assert "vs buy & hold" in panel.status_text
    assert result.symbol == "ETH/USDT"
    assert int(result.times[-1]) < panel.validate().end_ms


def test_a_failed_run_says_why(panel: BacktestPanel, qtbot) -> None:
    empty = CandleSeries.empty(Timeframe.H1)
    runner = BacktestRunner(lambda symbol, timeframe: empty)
    runner.failed.connect(panel.set_failed)
    request = panel.validate()
    assert isinstance(request, BacktestRequest)
    with qtbot.waitSignal(runner.failed, timeout=10_000) as signal:
        runner.start(request)
    assert "no 1h candles of ETH/USDT" in signal.args[0]
    assert panel.status_text.startswith("⚠ no 1h candles")


# -- preferences -------------------------------------------------------------------------------

@pytest.fixture
def preferences(qtbot, tmp_path: Path) -> PreferencesDialog:
    dialog = PreferencesDialog(Settings(), SettingsFile(tmp_path))
    qtbot.addWidget(dialog)
    return dialog


def test_labels_read_like_words() -> None:
    assert field_label("risk_per_trade_pct") == "Risk per trade %"
    assert field_label("max_position_quote") == "Max position (quote)"


@pytest.mark.parametrize(("section", "name", "text", "message"), [
    ("risk", "risk_per_trade_pct", "250", "less than or equal to 100"),
    ("risk", "max_open_trades", "two", "valid integer"),
    ("trading", "pairs", "BTC/USDT, ETHUSDT", "'ETHUSDT' is not a pair like BTC/USDT"),
    ("simulated", "speed", "-1", "greater than 0"),
    ("data", "retrain_schedule", "now and then", "cannot read the schedule"),
    ("data", "poll_interval_s", "", "valid integer"),
])
def test_bad_input_is_shown_at_the_field_and_never_saved(preferences: PreferencesDialog,
                                                         tmp_path: Path, section: str,
                                                         name: str, text: str,
                                                         message: str) -> None:
    preferences.editor(section, name).setText(text)
    assert message in preferences.field_error(section, name)
    assert preferences.editor(section, name).property("invalid") is True
    assert not preferences.save_button.isEnabled()
    assert preferences.save() is False
    assert not (tmp_path / "settings.json").exists()


def test_a_rule_across_fields_is_shown_on_its_tab(preferences: PreferencesDialog) -> None:
    preferences.editor("risk", "min_position_pct").setText("20")
    preferences.editor("risk", "max_position_pct").setText("10")
    assert "min_position_pct (20) is above max_position_pct (10)" in \
        preferences._section_errors["risk"].text()
    assert not preferences.save_button.isEnabled()


def test_good_input_is_saved_atomically(preferences: PreferencesDialog, tmp_path: Path,
                                        qtbot) -> None:
    preferences.editor("risk", "risk_per_trade_pct").setText("1.5")
    preferences.editor("trading", "pairs").setText("btc/usdt, sol/usdt")
    preferences.editor("trading", "automated_trading").setChecked(True)
    theme_box = preferences.editor("appearance", "theme")
    theme_box.setCurrentIndex(theme_box.findData("light"))
    with qtbot.waitSignal(preferences.saved) as signal:
        assert preferences.save() is True
    saved: Settings = signal.args[0]
    assert saved.risk.risk_per_trade_pct == 1.5
    assert saved.trading.pairs == ("BTC/USDT", "SOL/USDT")
    assert saved.trading.automated_trading is True
    on_disk = json.loads((tmp_path / "settings.json").read_text())
    assert on_disk["appearance"]["theme"] == "light"
    assert on_disk["risk"]["max_open_trades"] is None, "an empty field switches a limit off"
    assert SettingsFile(tmp_path).load() == saved

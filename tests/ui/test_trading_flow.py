"""The trading panels on the real application: paper orders from the ticket, positions,
history, dashboard, and importing a CSV file from the window."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from terminal.app import build_terminal
from terminal.core.model import OrderStatus, VenueKind
from terminal.core.settings import SimulatedMarketSettings
from terminal.core.storage import Store
from terminal.exchange.paper import PaperVenue
from terminal.ui.import_dialog import ImportDialog
from tests.ui.test_app import FAST, run_on_qt_loop

pytestmark = pytest.mark.qt


async def _until(condition, timeout_s: float = 20.0, what: str = "condition") -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_paper_order_from_the_ticket_shows_in_positions_history_and_dashboard(
        qapp, qtbot, data_dir: Path) -> None:
    terminal = build_terminal(str(data_dir), FAST, market=SimulatedMarketSettings(history_days=1))
    window = terminal.window
    window.show()
    ticket = window.order_ticket
    desk = window.trading_desk
    assert desk is not None

    async def scenario() -> None:
        terminal.bus.bind_loop(asyncio.get_running_loop())
        await terminal.start_service()
        await _until(lambda: ticket.symbol == "BTC/USDT" and desk.marks.get("BTC/USDT"),
                     what="a live price")
        # Bad input is refused at once, nothing is sent.
        qtbot.keyClicks(ticket._amount, "abc")
        await _until(lambda: "must be a number" in ticket.verdict_text, what="input error")
        assert not ticket.can_send
        ticket.clear()
        # A buy of 0.01 BTC: the risk manager approves, Enter sends it.
        ticket._amount.setText("0.01")
        await _until(lambda: ticket.verdict_text.startswith("Approved"), what="approval")
        qtbot.keyClick(ticket._amount, Qt.Key.Key_Return)
        await _until(lambda: window.positions_panel.positions_table.rowCount() == 1,
                     what="the position")
        await _until(lambda: ticket.result_text.startswith(("Filled", "Placed")),
                     what="the result")
        # Sell it again from the ticket: one closed trade in the history.
        ticket._sell.click()
        ticket._amount.setText("0.01")
        await _until(lambda: ticket.verdict_text.startswith("Approved"), what="sell approval")
        ticket.submit()
        await _until(lambda: window.history_panel.model.rowCount() == 1, what="a trade")
        await _until(lambda: window.positions_panel.positions_table.rowCount() == 0,
                     what="a flat position")
        await _until(lambda: window.dashboard.value_text("trades") == "1",
                     what="the dashboard")
        # Too large: the risk manager says how it would reduce it. Too small: refused, why.
        ticket._buy.click()
        ticket._amount.setText("1000")
        await _until(lambda: "reduced from 1000" in ticket.verdict_text, what="a reduction")
        ticket._amount.setText("0.0000001")
        await _until(lambda: ticket.verdict_text.startswith("Refused"), what="a refusal")
        await terminal.shutdown()

    try:
        run_on_qt_loop(qapp, scenario(), timeout_s=90)
    finally:
        window.close()
    assert "below the smallest" in ticket.verdict_text
    assert not ticket.can_send
    with Store.open(data_dir) as store:
        orders = store.orders.orders(venue=terminal.paper.id)
        assert [r.order.status for r in orders] == [OrderStatus.FILLED, OrderStatus.FILLED]
        assert len(store.orders.trades()) == 1
    line = window.history_panel.model.lines[0]
    assert line.trade.symbol == "BTC/USDT" and line.strategy == "manual" and line.mode == "paper"
    assert window.dashboard.curve_points >= 2
    texts = [n.title for n in window.notification_center.notifications]
    assert any(title.startswith("Filled: buy BTC/USDT") for title in texts)


CSV = """timestamp,open,high,low,close,volume
2024-01-01T00:00:00Z,100,110,90,105,10
2024-01-01T01:00:00Z,105,115,95,110,11
2024-01-01T02:00:00Z,110,120,100,115,12
2024-01-01T04:00:00Z,115,125,105,120,13
"""


def test_a_csv_is_imported_from_the_window_and_charted(qapp, qtbot, data_dir: Path,
                                                         tmp_path: Path) -> None:
    terminal = build_terminal(str(data_dir), FAST, market=SimulatedMarketSettings(history_days=1))
    window = terminal.window
    qtbot.addWidget(window)
    good = tmp_path / "SOLUSDT_1h.csv"
    good.write_text(CSV)
    bad = tmp_path / "broken.csv"
    bad.write_text(CSV + "2024-01-01T05:00:00Z,120,oops,110,121,14\n")
    try:
        dialog = window.show_import()
        assert isinstance(dialog, ImportDialog)
        # Bad input is shown at the fields and nothing runs.
        assert not dialog.start_import()
        assert "choose the file" in dialog.field_error("path")
        dialog.set_path(bad)
        dialog.set_symbol("SOL/USDT")
        assert dialog.start_import()
        qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)
        assert dialog.status_text.startswith("Rejected, nothing stored")
        assert "line 6" in dialog.report_text
        assert not terminal.store.candles.summaries()
        # The good file: timeframe detected, stored, listed and charted.
        dialog.set_path(good)
        assert dialog.start_import()
        qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)
        assert "timeframe detected" in dialog.status_text, dialog.status_text
        assert "gaps:        1 (1 missing bars" in dialog.report_text
        key = window.static_series
        assert key is not None and (key.venue, key.symbol, key.timeframe.code) == (
            "imported", "SOL/USDT", "1h")
        assert window.chart.bar_count == 4
        assert key in window.imported_series
        dialog.close()
    finally:
        window.close()
        terminal.store.close()


def test_a_live_order_waits_for_confirmation(qapp, qtbot, data_dir: Path, monkeypatch) -> None:
    # The paper venue dressed as a live one: what the desk checks is the venue's kind.
    monkeypatch.setattr(PaperVenue, "kind", property(lambda _self: VenueKind.LIVE))
    terminal = build_terminal(str(data_dir), FAST, market=SimulatedMarketSettings(history_days=1))
    window = terminal.window
    window.show()
    ticket = window.order_ticket
    desk = window.trading_desk
    assert desk is not None

    def orders() -> int:
        return len(terminal.store.orders.orders(venue=terminal.paper.id))

    async def scenario() -> None:
        terminal.bus.bind_loop(asyncio.get_running_loop())
        await terminal.start_service()
        await _until(lambda: desk.marks.get(ticket.symbol), what="a live price")
        assert "LIVE" in ticket._send.text()
        ticket._amount.setText("0.01")
        await _until(lambda: ticket.verdict_text.startswith("Approved"), what="approval")
        ticket.submit()
        confirm = desk.confirmation
        assert confirm is not None and confirm.isVisible()
        assert "real money" in confirm.text()
        await asyncio.sleep(0.2)
        assert orders() == 0  # nothing is sent before the user confirms
        confirm.reject()
        await asyncio.sleep(0.2)
        assert orders() == 0
        ticket.submit()
        desk.confirmation.accept()
        await _until(lambda: orders() == 1, what="the confirmed order")
        await terminal.shutdown()

    try:
        run_on_qt_loop(qapp, scenario(), timeout_s=60)
    finally:
        window.close()

"""The trading views on their own: ticket input and keys, positions, history, dashboard."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from terminal.core.account import PriceHistory, TradeLine, summarize_account
from terminal.core.model import Balance, Fill, Order, OrderSide, OrderStatus, OrderType
from terminal.core.portfolio import build_positions
from terminal.widgets.dashboard import DashboardPanel
from terminal.widgets.order_ticket import OrderTicket, TicketDraft
from terminal.widgets.positions import PositionRow, PositionsPanel
from terminal.widgets.trade_history import TradeHistoryPanel

pytestmark = pytest.mark.qt
HOUR = 3_600_000
T0 = 1_700_000_000_000


@pytest.fixture
def ticket(qtbot) -> OrderTicket:
    widget = OrderTicket()
    qtbot.addWidget(widget)
    widget.set_market("BTC/USDT", price_decimals=2)
    widget.set_last_price(50_000.0)
    widget.set_available(10_000.0, 0.5)
    widget.show()
    return widget


def drafts(qtbot, ticket: OrderTicket, text: str) -> object:
    with qtbot.waitSignal(ticket.draft_changed, timeout=2000) as blocker:
        ticket._amount.setText(text)
    return blocker.args[0]


def test_the_ticket_turns_input_into_a_draft_and_converts_a_share(qtbot, ticket) -> None:
    draft = drafts(qtbot, ticket, "0.1")
    assert draft == TicketDraft("BTC/USDT", OrderSide.BUY, OrderType.MARKET, 0.1)
    ticket.set_share(50)  # 50% of 10,000 USDT at 50,000
    qtbot.waitUntil(lambda: "0.1 BTC" in ticket._estimate.text())
    assert ticket.draft().amount == pytest.approx(0.1)
    ticket._sell.click()
    assert ticket.draft().amount == pytest.approx(0.25)
    assert ticket._unit.currentText() == "% of BTC"


def test_a_share_of_the_balance_is_checked_again_when_the_balance_arrives(qtbot,
                                                                        ticket) -> None:
    ticket.set_available(0.0, 0.0)  # the account is still loading
    with qtbot.waitSignal(ticket.draft_changed, timeout=2000) as blocker:
        ticket.set_share(25)
    assert blocker.args[0] is None
    assert ticket.verdict_text == "No free USDT to trade"
    with qtbot.waitSignal(ticket.draft_changed, timeout=2000) as blocker:
        ticket.set_available(10_000.0, 0.0)
    assert blocker.args[0].amount == pytest.approx(0.05)  # 25% of 10,000 USDT at 50,000
    with qtbot.assertNotEmitted(ticket.draft_changed, wait=400):
        ticket.set_available(10_000.0, 0.0)  # the same balance again: nothing to check


@pytest.mark.parametrize(("setup", "message"), [
    ({"_amount": "abc"}, "the amount must be a number"),
    ({"_amount": "-1"}, "the amount must be positive"),
    ({"_amount": "0.1", "_take_profit": "40000"}, "take profit must be above"),
    ({"_amount": "0.1", "_stop_loss": "60000"}, "stop loss must be below"),
    ({"_amount": "0.1", "_trailing": "120"}, "below 100"),
])
def test_bad_ticket_input_is_named_and_cannot_be_sent(qtbot, ticket, setup, message) -> None:
    for name, text in setup.items():
        getattr(ticket, name).setText(text)
    qtbot.waitUntil(lambda: message in ticket.verdict_text.lower(), timeout=2000)
    assert not ticket.can_send


def test_a_limit_order_needs_its_price_and_draws_its_lines(qtbot, ticket) -> None:
    ticket._type.setCurrentIndex(1)
    ticket._amount.setText("0.1")
    qtbot.waitUntil(lambda: "enter the limit price" in ticket.verdict_text.lower())
    with qtbot.waitSignal(ticket.lines_changed) as blocker:
        ticket._limit.setText("49000")
    ticket._take_profit.setText("52000")
    with qtbot.waitSignal(ticket.lines_changed) as blocker:
        ticket._stop_loss.setText("48000")
    kinds = {line.kind: line.price for line in blocker.args[0]}
    assert kinds == {"entry": 49000.0, "take_profit": 52000.0, "stop_loss": 48000.0}
    assert ticket.draft().price == 49000.0


def test_enter_sends_only_an_approved_ticket_and_escape_clears(qtbot, ticket) -> None:
    sent: list[TicketDraft] = []
    ticket.submitted.connect(sent.append)
    drafts(qtbot, ticket, "0.1")
    qtbot.keyClick(ticket._amount, Qt.Key.Key_Return)
    assert sent == []  # no verdict yet
    ticket.show_verdict(False, "Refused: daily loss limit reached")
    qtbot.keyClick(ticket._amount, Qt.Key.Key_Return)
    assert sent == [] and "daily loss" in ticket.verdict_text
    ticket.show_verdict(True, "Approved: buy 0.1 BTC")
    qtbot.keyClick(ticket._amount, Qt.Key.Key_Return)
    assert [d.amount for d in sent] == [0.1]
    qtbot.keyClick(ticket._amount, Qt.Key.Key_Escape)
    assert ticket._amount.text() == "" and not ticket.can_send


def test_enter_right_after_typing_sends_once_the_verdict_approves(qtbot, ticket) -> None:
    sent: list[TicketDraft] = []
    ticket.submitted.connect(sent.append)
    ticket._amount.setText("0.2")
    qtbot.keyClick(ticket._amount, Qt.Key.Key_Return)
    assert sent == []
    ticket.show_verdict(True, "Approved")
    assert [d.amount for d in sent] == [0.2]


def order(client_id: str, side: OrderSide = OrderSide.BUY) -> Order:
    return Order(client_id, "paper", "BTC/USDT", side, OrderType.LIMIT, Decimal("0.1"), T0,
                 price=Decimal("49000"), status=OrderStatus.OPEN)


def test_positions_are_coloured_and_their_buttons_ask_to_close_or_cancel(qtbot) -> None:
    panel = PositionsPanel()
    qtbot.addWidget(panel)
    panel.set_colors("#00ff00", "#ff0000", "#888888")
    panel.set_positions([PositionRow("BTC/USDT", 0.5, 50_000, 51_000, -12.5),
                         PositionRow("ETH/USDT", 1, 3_000, None, 0)])
    table = panel.positions_table
    assert table.item(0, 5).text() == "+500.00"
    assert table.item(0, 5).foreground().color().name() == "#00ff00"
    assert table.item(0, 6).foreground().color().name() == "#ff0000"
    assert table.item(1, 3).text() == "—"
    assert panel.tabs.tabText(0) == "Positions (2)"
    with qtbot.waitSignal(panel.close_requested) as closing:
        panel.action_button(table, 0).click()
    assert closing.args == ["BTC/USDT"]
    panel.set_positions([PositionRow("BTC/USDT", 0.0000056, 50_000, 51_000, -5.0, dust=True)])
    dust = panel.action_button(table, 0)
    assert (dust.text(), dust.isEnabled()) == ("Dust", False)
    assert "cannot be sold on its own" in dust.toolTip()
    panel.set_orders([order("trm-a"), order("trm-b", OrderSide.SELL)])
    with qtbot.waitSignal(panel.cancel_requested) as canceling:
        panel.action_button(panel.orders_table, 1).click()
    assert canceling.args == ["trm-b"]
    assert panel.orders_table.item(1, 2).text() == "SELL"
    panel.set_orders([])
    assert panel.tabs.tabText(1) == "Open orders"


def closed_trades() -> list[TradeLine]:
    fills = []
    for n, (side, price, at) in enumerate([(OrderSide.BUY, "100", 0), (OrderSide.SELL, "110", 1),
                                           (OrderSide.BUY, "100", 2), (OrderSide.SELL, "95", 3)]):
        fills.append(Fill(f"t{n}", f"o{n}", "paper", "BTC/USDT", side, Decimal(price),
                          Decimal("1"), Decimal("0.1"), "USDT", T0 + at * HOUR))
    _, closed = build_positions("paper", fills)
    return [TradeLine(closed[0], "manual", "paper"), TradeLine(closed[1], "sma_cross", "paper")]


def test_history_searches_totals_and_exports_what_is_shown(qtbot, tmp_path: Path) -> None:
    panel = TradeHistoryPanel()
    qtbot.addWidget(panel)
    queries = []
    panel.query_changed.connect(queries.append)
    panel.set_trades(closed_trades())
    assert panel.model.rowCount() == 2
    assert "Win rate</span> <b>50%" in panel.totals_text
    panel.set_search("sma")
    assert [line.strategy for line in panel.model.lines] == ["sma_cross"]
    assert "-5.20" in panel.totals_text
    target = tmp_path / "out.csv"
    assert panel.export_csv(target)
    rows = list(csv.DictReader(target.open()))
    assert [row["strategy"] for row in rows] == ["sma_cross"]
    # A folder that does not exist: the error is shown, nothing is written.
    assert not panel.export_csv(tmp_path / "nope" / "out.csv")
    assert panel.message.startswith("Export failed")
    panel.set_filter(symbol="BTC/USDT", side="long", mode="paper", days=7)
    query = queries[-1]
    assert (query.symbol, query.side, query.mode) == ("BTC/USDT", "long", "paper")
    assert query.end_ms - query.start_ms == 8 * 24 * HOUR
    # A start after the end is named, not queried.
    count = len(queries)
    panel._from.setDate(panel._to.date().addDays(3))
    assert len(queries) == count and "after the end" in panel.message


def test_the_dashboard_shows_the_summary(qtbot) -> None:
    panel = DashboardPanel()
    qtbot.addWidget(panel)
    lines = closed_trades()
    fills = [Fill("t0", "o0", "paper", "BTC/USDT", OrderSide.BUY, Decimal("100"), Decimal("1"),
                  Decimal("0"), "USDT", T0)]
    summary = summarize_account(
        quote="USDT", balances=[Balance("USDT", Decimal("900")), Balance("BTC", Decimal("1"))],
        fills=fills, trades=[line.trade for line in lines], marks={"BTC/USDT": 120.0},
        prices={"BTC/USDT": PriceHistory([T0 + HOUR], [110.0])}, now_ms=T0 + 2 * HOUR)
    panel.set_colors("#00ff00", "#ff0000", "#888888", "#0000ff", "#000000", "#ffffff")
    panel.set_summary(summary)
    assert panel.value_text("equity") == "1,020.00 USDT"
    assert panel.value_text("trades") == "2"
    assert panel.value_text("win") == "50%"
    assert panel.value_text("exposure") == "11.8%"
    assert panel.curve_points == 3
    assert panel.balances_table.rowCount() == 2

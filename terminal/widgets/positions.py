"""Open positions (with Close) and open orders (with Cancel), in two tabs.

A view: :meth:`PositionsPanel.set_positions` and :meth:`PositionsPanel.set_orders` replace the
rows; the buttons emit :attr:`PositionsPanel.close_requested` and
:attr:`PositionsPanel.cancel_requested`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from terminal.core.model import Order, OrderSide

POSITION_COLUMNS = ("Symbol", "Amount", "Avg price", "Mark", "Value", "Unrealized P/L",
                    "Realized P/L", "")
ORDER_COLUMNS = ("Time (UTC)", "Symbol", "Side", "Type", "Price", "Amount", "Filled",
                 "Status", "")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


@dataclass(frozen=True, slots=True)
class PositionRow:
    """A position as listed: ``mark`` is None while no price is known."""

    symbol: str
    amount: float
    average_price: float
    mark: float | None
    realized: float
    price_decimals: int = 2
    #: Too small to sell (below the pair's smallest order): no Close.
    dust: bool = False

    @property
    def unrealized(self) -> float | None:
        return None if self.mark is None else (self.mark - self.average_price) * self.amount

    @property
    def value(self) -> float | None:
        return None if self.mark is None else self.mark * self.amount


class PositionsPanel(QWidget):
    """Tabs "Positions" and "Open orders"; colours follow :meth:`set_colors`."""

    close_requested = Signal(str)
    cancel_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._up, self._down, self._muted = QColor("#26a69a"), QColor("#ef5350"), QColor("#787b86")
        self._positions = self._table(POSITION_COLUMNS, "PositionsTable")
        self._orders = self._table(ORDER_COLUMNS, "OpenOrdersTable")
        self._position_rows: list[PositionRow] = []
        self._order_rows: list[tuple[Order, int]] = []
        self._empty_positions = QLabel("No open positions")
        self._empty_orders = QLabel("No open orders")
        self._tabs = QTabWidget()
        self._tabs.setDocumentMode(True)
        self._tabs.addTab(self._page(self._positions, self._empty_positions), "Positions")
        self._tabs.addTab(self._page(self._orders, self._empty_orders), "Open orders")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._tabs)
        self.set_positions([])
        self.set_orders([])

    @staticmethod
    def _page(table: QTableWidget, empty: QLabel) -> QWidget:
        page = QWidget()
        empty.setObjectName("Muted")
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(table)
        column.addWidget(empty)
        return page

    @staticmethod
    def _table(columns: Sequence[str], name: str) -> QTableWidget:
        table = QTableWidget(0, len(columns))
        table.setObjectName(name)
        table.setHorizontalHeaderLabels(list(columns))
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(30)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setShowGrid(False)
        table.setAlternatingRowColors(True)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(len(columns) - 1, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(len(columns) - 1, 84)
        for index in range(1, len(columns) - 1):
            item = table.horizontalHeaderItem(index)
            if item is not None and columns[index] not in ("Symbol", "Side", "Type", "Status"):
                item.setTextAlignment(_RIGHT)
        return table

    def set_colors(self, up: str, down: str, muted: str) -> None:
        self._up, self._down, self._muted = QColor(up), QColor(down), QColor(muted)
        self.set_positions(self._position_rows)

    # -- positions --------------------------------------------------------------------------

    def set_positions(self, rows: Sequence[PositionRow]) -> None:
        self._position_rows = list(rows)
        table = self._positions
        table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            decimals = row.price_decimals
            texts = (row.symbol, f"{row.amount:,.6g}", f"{row.average_price:,.{decimals}f}",
                     "—" if row.mark is None else f"{row.mark:,.{decimals}f}",
                     "—" if row.value is None else f"{row.value:,.2f}",
                     _signed(row.unrealized), _signed(row.realized))
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(_RIGHT)
                if column == 5:
                    self._color(item, row.unrealized)
                if column == 6:
                    self._color(item, row.realized)
                table.setItem(index, column, item)
            if row.dust:
                holder = self._button("Dust", "Below the smallest order the venue takes: it"
                                              " cannot be sold on its own", lambda: None)
                holder.findChild(QPushButton).setEnabled(False)
            else:
                holder = self._button("Close", "Sell the whole position at market",
                                      lambda _=False, s=row.symbol:
                                      self.close_requested.emit(s))
            table.setCellWidget(index, len(POSITION_COLUMNS) - 1, holder)
        self._empty_positions.setVisible(not rows)
        self._tabs.setTabText(0, f"Positions ({len(rows)})" if rows else "Positions")

    def _color(self, item: QTableWidgetItem, value: float | None) -> None:
        if value is None or value == 0:
            item.setForeground(self._muted)
        else:
            item.setForeground(self._up if value > 0 else self._down)

    # -- orders -----------------------------------------------------------------------------

    def set_orders(self, orders: Sequence[Order], price_decimals: dict[str, int] | None = None
                   ) -> None:
        decimals = price_decimals or {}
        self._order_rows = [(order, decimals.get(order.symbol, 2)) for order in orders]
        table = self._orders
        table.setRowCount(len(orders))
        for index, (order, places) in enumerate(self._order_rows):
            price = order.price if order.price is not None else order.stop_price
            when = datetime.fromtimestamp(order.created_at / 1000, tz=UTC)
            texts = (when.strftime("%m-%d %H:%M:%S"), order.symbol, order.side.value.upper(),
                     order.type.value.replace("_", " "),
                     "market" if price is None else f"{price:,.{places}f}",
                     f"{order.amount:,.6g}", f"{order.filled:,.6g}",
                     order.status.value.replace("_", " "))
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if column in (4, 5, 6):
                    item.setTextAlignment(_RIGHT)
                if column == 2:
                    item.setForeground(self._up if order.side is OrderSide.BUY else self._down)
                table.setItem(index, column, item)
            table.setCellWidget(index, len(ORDER_COLUMNS) - 1,
                                self._button("Cancel", "Cancel this order",
                                             lambda _=False, c=order.client_order_id:
                                             self.cancel_requested.emit(c)))
        self._empty_orders.setVisible(not orders)
        self._tabs.setTabText(1, f"Open orders ({len(orders)})" if orders else "Open orders")

    @staticmethod
    def _button(text: str, tip: str, slot: object) -> QWidget:
        button = QPushButton(text)
        button.setObjectName("RowAction")
        button.setToolTip(tip)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(slot)
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(button)
        return holder

    # -- for tests and the window -----------------------------------------------------------

    @property
    def positions_table(self) -> QTableWidget:
        return self._positions

    @property
    def orders_table(self) -> QTableWidget:
        return self._orders

    @property
    def tabs(self) -> QTabWidget:
        return self._tabs

    def action_button(self, table: QTableWidget, row: int) -> QPushButton:
        """The Close or Cancel button of ``row``."""
        holder = table.cellWidget(row, table.columnCount() - 1)
        button = holder.findChild(QPushButton) if holder is not None else None
        if button is None:
            raise IndexError(f"no row {row}")
        return button


def _signed(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:+,.2f}"

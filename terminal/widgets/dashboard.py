"""The account dashboard: headline figures, the equity curve and the balances.

A view over an :class:`AccountSummary` (computed in ``terminal.core.account``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from terminal.core.account import RECENT_DAYS, AccountSummary

#: The cards, in order: (key, title, tooltip).
CARDS = (
    ("equity", "Equity", "Cash plus every asset at its latest price"),
    ("cash", "Cash", "The quote-currency balance, free and in orders"),
    ("pnl", f"{RECENT_DAYS}-day P/L", f"Change of equity over the last {RECENT_DAYS} days"),
    ("trades", "Trades", "Closed round trips"),
    ("win", "Win ratio", "Share of closed trades with a profit after fees"),
    ("drawdown", "Max drawdown", "Largest fall of the equity curve from a peak"),
    ("exposure", "Exposure", "Value of the assets held as a share of equity"),
)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class DashboardPanel(QWidget):
    """Cards across the top; equity curve on the left, balances on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colors = ("#26a69a", "#ef5350", "#787b86", "#2962ff", "#131722", "#d1d4dc")
        self._summary: AccountSummary | None = None
        self._values: dict[str, QLabel] = {}
        cards = QGridLayout()
        cards.setContentsMargins(0, 0, 0, 0)
        cards.setHorizontalSpacing(8)
        for index, (key, title, tip) in enumerate(CARDS):
            card = QFrame()
            card.setObjectName("DashboardCard")
            card.setToolTip(tip)
            caption = QLabel(title.upper())
            caption.setObjectName("CardTitle")
            value = QLabel("—")
            value.setObjectName("CardValue")
            value.setMinimumWidth(10)
            caption.setMinimumWidth(10)
            box = QVBoxLayout(card)
            box.setContentsMargins(10, 6, 10, 6)
            box.setSpacing(2)
            box.addWidget(caption)
            box.addWidget(value)
            cards.addWidget(card, 0, index)
            self._values[key] = value
        self._plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self._plot.setObjectName("AccountEquity")
        self._plot.setMenuEnabled(False)
        self._plot.hideButtons()
        self._plot.setMouseEnabled(x=True, y=False)
        item = self._plot.getPlotItem()
        item.hideAxis("left")
        item.showAxis("right")
        item.showGrid(x=True, y=True, alpha=0.15)
        self._curve = self._plot.plot()
        self._empty = pg.TextItem("No trades yet: the curve starts at the first fill",
                                  anchor=(0.5, 0.5))
        self._plot.addItem(self._empty)
        self._balances = QTableWidget(0, 4)
        self._balances.setObjectName("BalancesTable")
        self._balances.setHorizontalHeaderLabels(["Asset", "Free", "In orders", "Value"])
        self._balances.verticalHeader().hide()
        self._balances.setShowGrid(False)
        self._balances.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._balances.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self._balances.setMinimumWidth(160)
        for column in (1, 2, 3):
            header = self._balances.horizontalHeaderItem(column)
            if header is not None:
                header.setTextAlignment(_RIGHT)
        body = QHBoxLayout()
        body.setSpacing(8)
        body.addWidget(self._plot, 3)
        body.addWidget(self._balances, 2)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(8)
        column.addLayout(cards)
        column.addLayout(body, 1)

    def set_colors(self, up: str, down: str, muted: str, accent: str, background: str,
                   text: str) -> None:
        self._colors = (up, down, muted, accent, background, text)
        self._plot.setBackground(background)
        item = self._plot.getPlotItem()
        for axis in ("right", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen(muted))
            item.getAxis(axis).setTextPen(pg.mkPen(muted))
        self._empty.setColor(QColor(muted))
        if self._summary is not None:
            self.set_summary(self._summary)

    def set_summary(self, summary: AccountSummary) -> None:
        self._summary = summary
        up, down, muted, _accent, _background, _text = self._colors
        quote = summary.quote
        values = {
            "equity": (f"{summary.equity:,.2f} {quote}", None),
            "cash": (f"{summary.cash:,.2f} {quote}", None),
            "pnl": (f"{summary.pnl_recent:+,.2f}", summary.pnl_recent),
            "trades": (f"{summary.total_trades:,}", None),
            "win": ("—" if summary.win_ratio is None else f"{summary.win_ratio:.0%}", None),
            "drawdown": (f"{summary.max_drawdown:.2%}",
                         -summary.max_drawdown if summary.max_drawdown else None),
            "exposure": (f"{summary.exposure:.1%}", None),
        }
        for key, (text, sign) in values.items():
            label = self._values[key]
            label.setText(text)
            color = "" if not sign else up if sign > 0 else down
            label.setStyleSheet(f"color: {color};" if color else "")
        times = np.asarray(summary.curve_times, dtype=np.float64) / 1000.0
        equity = np.asarray(summary.curve_equity, dtype=np.float64)
        rising = len(equity) < 2 or equity[-1] >= equity[0]
        line = up if rising else down
        self._curve.setData(times, equity, pen=pg.mkPen(line, width=2))
        if len(equity):
            fill = QColor(line)
            fill.setAlpha(40)
            self._curve.setFillLevel(float(equity.min()))
            self._curve.setBrush(fill)
            self._plot.getPlotItem().enableAutoRange()
        self._empty.setVisible(not len(equity))
        self._balances.setRowCount(len(summary.assets))
        for row, asset in enumerate(summary.assets):
            texts = (asset.currency, f"{asset.free:,.8g}", f"{asset.used:,.8g}",
                     "—" if asset.value is None else f"{asset.value:,.2f} {quote}")
            for column, text in enumerate(texts):
                cell = QTableWidgetItem(text)
                if column:
                    cell.setTextAlignment(_RIGHT)
                if column == 3 and asset.value is None:
                    cell.setForeground(QColor(muted))
                self._balances.setItem(row, column, cell)

    def value_text(self, key: str) -> str:
        """The text of one card (``equity``, ``pnl``, ``trades``, ``win``, ...)."""
        return self._values[key].text()

    @property
    def balances_table(self) -> QTableWidget:
        return self._balances

    @property
    def curve_points(self) -> int:
        data = self._curve.getData()[0]
        return 0 if data is None else len(data)

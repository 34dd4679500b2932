"""Closed trades: a table model, filters, a search box, totals and CSV export.

The filters that the store answers (date range, symbol, side, strategy, mode) are emitted as a
:class:`HistoryQuery`; the owner reads the trades and hands them to :meth:`set_trades`. The
search box narrows the rows in the model itself, and the totals follow what is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from terminal.core.account import TradeLine, trades_csv, write_text_atomically
from terminal.core.errors import TerminalError
from terminal.core.timefmt import format_ms

COLUMNS = ("Exit (UTC)", "Symbol", "Side", "Amount", "Entry", "Exit", "Fees", "P/L", "Return",
           "Strategy", "Mode")
ANY = "Any"
#: Days back the date filter starts at.
DEFAULT_DAYS = 90
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """The store-side filters: exit time in [start_ms, end_ms); None fields match all."""

    start_ms: int | None
    end_ms: int | None
    symbol: str | None
    side: str | None
    strategy: str | None
    mode: str | None


class TradeHistoryModel(QAbstractTableModel):
    """Rows of :class:`TradeLine`, newest exit first, narrowed by a search text."""

    def __init__(self) -> None:
        super().__init__()
        self._all: list[TradeLine] = []
        self._rows: list[TradeLine] = []
        self._search = ""
        self._up, self._down = QColor("#26a69a"), QColor("#ef5350")

    def set_colors(self, up: str, down: str) -> None:
        self._up, self._down = QColor(up), QColor(down)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(COLUMNS) - 1))

    def set_trades(self, lines: Sequence[TradeLine]) -> None:
        self.beginResetModel()
        self._all = sorted(lines, key=lambda line: line.trade.exit_time, reverse=True)
        self._rows = self._matching()
        self.endResetModel()

    def set_search(self, text: str) -> None:
        self.beginResetModel()
        self._search = text.strip().lower()
        self._rows = self._matching()
        self.endResetModel()

    def _matching(self) -> list[TradeLine]:
        if not self._search:
            return list(self._all)
        words = self._search.split()
        return [line for line in self._all
                if all(word in _haystack(line) for word in words)]

    @property
    def lines(self) -> list[TradeLine]:
        """The rows shown, in order."""
        return list(self._rows)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation is not Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= section <= 8:
            return _RIGHT
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        line = self._rows[index.row()]
        trade = line.trade
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (format_ms(trade.exit_time)[:16].replace("T", " "), trade.symbol,
                    trade.side, f"{trade.amount:,.6g}", _price(trade.entry_price),
                    _price(trade.exit_price), f"{trade.fees:,.4f}", f"{trade.pnl:+,.2f}",
                    f"{trade.return_pct:+.2f}%", line.strategy, line.mode)[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= column <= 8:
            return _RIGHT
        if role == Qt.ItemDataRole.ForegroundRole and column in (7, 8) and trade.pnl != 0:
            return self._up if trade.pnl > 0 else self._down
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"Opened {format_ms(trade.entry_time)}, closed {format_ms(trade.exit_time)}"
                    f" on {trade.venue}")
        return None


def _haystack(line: TradeLine) -> str:
    trade = line.trade
    return " ".join((trade.symbol, trade.side, line.strategy, line.mode, trade.venue,
                     format_ms(trade.exit_time))).lower()


def _price(value: Decimal) -> str:
    return f"{value:,.2f}" if value >= 100 else f"{value:,.6g}"


class TradeHistoryPanel(QWidget):
    """Filters above, the table, totals below; Export writes what is shown as CSV."""

    #: The store-side filters changed: a :class:`HistoryQuery`.
    query_changed = Signal(object)
    #: An export finished: (path, None) or (path, error message).
    exported = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        today = QDate.currentDate()
        self._from = self._date(today.addDays(-DEFAULT_DAYS), "First exit day (UTC)")
        self._to = self._date(today, "Last exit day (UTC)")
        self._symbol = self._combo("Symbol")
        self._side = self._combo("Side of the position")
        for side in ("long", "short"):
            self._side.addItem(side, side)
        self._strategy = self._combo("Strategy that placed the orders")
        self._mode = self._combo("Paper or live")
        for mode in ("paper", "live"):
            self._mode.addItem(mode, mode)
        self._search = QLineEdit()
        self._search.setObjectName("HistorySearch")
        self._search.setPlaceholderText("Search…")
        self._search.setClearButtonEnabled(True)
        self._search.setMinimumWidth(60)
        self._export = QPushButton("Export CSV…")
        self._export.setToolTip("Write the trades shown to a CSV file")
        self._export.clicked.connect(self.choose_export_file)
        bar = QWidget()
        filters = QHBoxLayout(bar)
        filters.setContentsMargins(8, 6, 8, 0)
        filters.setSpacing(6)
        for label, widget in (("From", self._from), ("to", self._to), (None, self._symbol),
                              (None, self._side), (None, self._strategy), (None, self._mode)):
            if label:
                caption = QLabel(label)
                caption.setObjectName("Muted")
                filters.addWidget(caption)
            filters.addWidget(widget)
        filters.addWidget(self._search, 1)
        filters.addWidget(self._export)

        self._model = TradeHistoryModel()
        self._view = QTableView()
        self._view.setObjectName("TradeHistoryTable")
        self._view.setModel(self._model)
        self._view.verticalHeader().hide()
        self._view.verticalHeader().setDefaultSectionSize(26)
        self._view.setShowGrid(False)
        self._view.setAlternatingRowColors(True)
        self._view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self._totals = QLabel()
        self._totals.setObjectName("HistoryTotals")
        self._totals.setTextFormat(Qt.TextFormat.RichText)
        self._message = QLabel()
        self._message.setObjectName("Muted")
        footer = QHBoxLayout()
        footer.setContentsMargins(8, 0, 8, 6)
        footer.addWidget(self._totals, 1)
        footer.addWidget(self._message)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        # In a narrow dock the filter bar scrolls sideways instead of widening the window.
        scroller = QScrollArea()
        scroller.setWidget(bar)
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QFrame.Shape.NoFrame)
        scroller.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroller.setFixedHeight(bar.sizeHint().height() + 4)
        column.addWidget(scroller)
        column.addWidget(self._view, 1)
        column.addLayout(footer)
        self._up, self._down, self._muted = "#26a69a", "#ef5350", "#787b86"

        for widget in (self._from, self._to):
            widget.dateChanged.connect(lambda _d: self._emit_query())
        for combo in (self._symbol, self._side, self._strategy, self._mode):
            combo.currentIndexChanged.connect(lambda _i: self._emit_query())
        self._search.textChanged.connect(self._on_search)
        self._update_totals()

    @staticmethod
    def _date(value: QDate, tip: str) -> QDateEdit:
        edit = QDateEdit(value)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.setToolTip(tip)
        return edit

    @staticmethod
    def _combo(tip: str) -> QComboBox:
        combo = QComboBox()
        combo.setToolTip(tip)
        # The filter bar must fit narrow docks: combos shrink instead of widening the window.
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(11)
        combo.addItem(f"{tip.split()[0]}: {ANY}" if tip != "Paper or live" else f"Mode: {ANY}",
                      None)
        return combo

    def set_colors(self, up: str, down: str, muted: str) -> None:
        self._up, self._down, self._muted = up, down, muted
        self._model.set_colors(up, down)
        self._update_totals()

    def set_choices(self, symbols: Sequence[str], strategies: Sequence[str]) -> None:
        """What the symbol and strategy filters offer (the current choice is kept)."""
        for combo, values in ((self._symbol, symbols), (self._strategy, strategies)):
            chosen = combo.currentData()
            known = [combo.itemData(i) for i in range(1, combo.count())]
            if list(values) == known:
                continue
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for value in values:
                combo.addItem(value, value)
            combo.setCurrentIndex(max(0, combo.findData(chosen)))
            combo.blockSignals(False)

    def query(self) -> HistoryQuery:
        """The filters as set; the date range covers whole UTC days."""
        start = _day_start(self._from.date())
        end = _day_start(self._to.date()) + int(timedelta(days=1).total_seconds() * 1000)
        return HistoryQuery(start, end, self._symbol.currentData(), self._side.currentData(),
                            self._strategy.currentData(), self._mode.currentData())

    def set_trades(self, lines: Sequence[TradeLine]) -> None:
        self._model.set_trades(lines)
        self._update_totals()

    def set_filter(self, *, symbol: str | None = None, side: str | None = None,
                   strategy: str | None = None, mode: str | None = None,
                   days: int | None = None) -> None:
        """Set filters from code (tests, links from other panels)."""
        for combo, value in ((self._symbol, symbol), (self._side, side),
                             (self._strategy, strategy), (self._mode, mode)):
            if value is not None:
                index = combo.findData(value)
                if index < 0:
                    combo.addItem(value, value)
                    index = combo.count() - 1
                combo.setCurrentIndex(index)
        if days is not None:
            self._from.setDate(self._to.date().addDays(-days))

    def set_search(self, text: str) -> None:
        self._search.setText(text)

    def _emit_query(self) -> None:
        if self._from.date() > self._to.date():
            self._message.setText("The start day is after the end day")
            self._model.set_trades([])
            self._update_totals()
            return
        self._message.setText("")
        self.query_changed.emit(self.query())

    def _on_search(self, text: str) -> None:
        self._model.set_search(text)
        self._update_totals()

    def _update_totals(self) -> None:
        lines = self._model.lines
        pnl = sum((line.trade.pnl for line in lines), Decimal(0))
        fees = sum((line.trade.fees for line in lines), Decimal(0))
        wins = sum(1 for line in lines if line.trade.pnl > 0)
        rate = f"{wins / len(lines):.0%}" if lines else "—"
        color = self._muted if pnl == 0 else self._up if pnl > 0 else self._down
        self._totals.setText(
            f'<span style="color:{self._muted}">Trades</span> <b>{len(lines)}</b>'
            f'&nbsp;&nbsp;&nbsp;<span style="color:{self._muted}">P/L</span> '
            f'<b style="color:{color}">{pnl:+,.2f}</b>'
            f'&nbsp;&nbsp;&nbsp;<span style="color:{self._muted}">Fees</span> <b>{fees:,.2f}</b>'
            f'&nbsp;&nbsp;&nbsp;<span style="color:{self._muted}">Win rate</span> <b>{rate}</b>')

    @property
    def totals_text(self) -> str:
        return self._totals.text()

    @property
    def model(self) -> TradeHistoryModel:
        return self._model

    @property
    def message(self) -> str:
        return self._message.text()

    def choose_export_file(self) -> QFileDialog:
        """Ask where to save (non-blocking), then export there."""
        dialog = QFileDialog(self, "Export trades", str(Path.home() / "trades.csv"),
                             "CSV files (*.csv)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.export_csv(Path(path)))
        dialog.open()
        return dialog

    def export_csv(self, path: Path) -> bool:
        """Write the rows shown to ``path`` (atomically); False, with the reason shown, when
        the file cannot be written."""
        try:
            write_text_atomically(path, trades_csv(self._model.lines))
        except TerminalError as error:
            self._message.setText(f"Export failed: {error}")
            self.exported.emit(str(path), str(error))
            return False
        self._message.setText(f"Exported {len(self._model.lines)} trades to {path.name}")
        self.exported.emit(str(path), None)
        return True


def _day_start(day: QDate) -> int:
    moment = datetime.combine(day.toPython(), time(), tzinfo=UTC)
    return int(moment.timestamp() * 1000)

"""The watchlist: every pair with its last price and rolling 24-hour figures; a click charts it.

The model keeps each pair's closed 1-minute candles of the last 24 hours and their running
figures, updated once per closed candle (the extremes are searched again only when the candle
leaving the window held one); a tick of the forming candle only combines it with them. Views
are told about changes at most :data:`REFRESH_MS` apart: a fast stream would otherwise have
them repaint on every tick.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from terminal.core.model import DAY_MS, Candle
from terminal.core.series import CandleSeries
from terminal.widgets.forms import FieldBox

COLUMNS = ("Symbol", "Last", "24h %", "24h High", "24h Low", "24h Vol")
#: Shortest time between two repaints of the rows that changed.
REFRESH_MS = 250
_Index = QModelIndex | QPersistentModelIndex


@dataclass
class _Row:
    symbol: str
    decimals: int | None = None
    closed: deque[Candle] = field(default_factory=deque)
    forming: Candle | None = None
    high: float = math.nan
    low: float = math.nan
    volume: float = 0.0
    cached: tuple[float, float, float, float, float] | None = None

    @property
    def last(self) -> Candle | None:
        if self.forming is not None:
            return self.forming
        return self.closed[-1] if self.closed else None

    def window_start(self) -> int | None:
        last = self.last
        return None if last is None else last.open_time - DAY_MS + 60_000

    def recount(self) -> None:
        """Figures of the closed candles, searched in full."""
        self.high = max((c.high for c in self.closed), default=math.nan)
        self.low = min((c.low for c in self.closed), default=math.nan)
        self.volume = math.fsum(c.volume for c in self.closed)
        self.cached = None

    def close(self, candle: Candle) -> None:
        """Add a closed candle and drop those that left the 24-hour window."""
        if self.closed and self.closed[-1].open_time == candle.open_time:
            self.closed[-1] = candle
            self.forming = None
            self.recount()
            return
        self.closed.append(candle)
        self.forming = None
        self.high = candle.high if math.isnan(self.high) else max(self.high, candle.high)
        self.low = candle.low if math.isnan(self.low) else min(self.low, candle.low)
        self.volume += candle.volume
        start = self.window_start()
        stale = False
        while start is not None and self.closed and self.closed[0].open_time < start:
            gone = self.closed.popleft()
            self.volume -= gone.volume
            stale = stale or gone.high >= self.high or gone.low <= self.low
        if stale:
            self.recount()
        self.cached = None

    def figures(self) -> tuple[float, float, float, float, float] | None:
        """(last, change %, high, low, volume) over the last 24 hours, None without data."""
        if self.cached is None:
            self.cached = self._figures()
        return self.cached

    def _figures(self) -> tuple[float, float, float, float, float] | None:
        last = self.last
        if last is None:
            return None
        reference = self.closed[0].open if self.closed else last.open
        high, low, volume = self.high, self.low, self.volume
        if self.forming is not None:
            high = max(high, self.forming.high) if math.isfinite(high) else self.forming.high
            low = min(low, self.forming.low) if math.isfinite(low) else self.forming.low
            volume += self.forming.volume
        change = (last.close / reference - 1.0) * 100.0 if reference > 0 else 0.0
        return last.close, change, high, low, volume


class WatchlistModel(QAbstractTableModel):
    """One row per pair: symbol, last price, 24 h change %, high, low and volume."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[_Row] = []
        self._dirty: set[int] = set()
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self.flush)
        self._up = QColor("#26a69a")
        self._down = QColor("#ef5350")
        self._muted = QColor("#787b86")
        self._bold = QFont()
        self._bold.setBold(True)

    def set_colors(self, up: str, down: str, muted: str) -> None:
        self._up, self._down, self._muted = QColor(up), QColor(down), QColor(muted)
        self._changed(0, len(self._rows) - 1)

    def set_symbols(self, symbols: Sequence[str], decimals: dict[str, int] | None = None) -> None:
        """Show ``symbols`` in this order; figures of pairs already listed are kept."""
        known = {row.symbol: row for row in self._rows}
        self._dirty.clear()
        self.beginResetModel()
        self._rows = [known.get(symbol) or _Row(symbol) for symbol in symbols]
        for row in self._rows:
            if decimals and row.symbol in decimals:
                row.decimals = decimals[row.symbol]
        self.endResetModel()

    @property
    def symbols(self) -> list[str]:
        return [row.symbol for row in self._rows]

    def set_history(self, symbol: str, candles: CandleSeries) -> None:
        """Seed ``symbol`` with its latest closed 1-minute candles (the last 24 h are kept)."""
        position = self._position(symbol)
        if position is None:
            return
        row = self._rows[position]
        start = len(candles) - min(len(candles), DAY_MS // 60_000)
        row.closed = deque(candles[i] for i in range(start, len(candles)))
        row.forming = None
        row.recount()
        self._changed(position, position)

    def update_candle(self, symbol: str, candle: Candle, *, closed: bool) -> None:
        """A 1-minute candle of ``symbol`` changed (``closed``: it is final)."""
        position = self._position(symbol)
        if position is None:
            return
        row = self._rows[position]
        last = row.last
        if last is not None and candle.open_time < last.open_time:
            return
        if closed:
            row.close(candle)
        else:
            row.forming = candle
            row.cached = None
        self._dirty.add(position)
        if not self._refresh.isActive():
            self._refresh.start()

    def flush(self) -> None:
        """Tell the views about every row changed since the last flush."""
        self._refresh.stop()
        if self._dirty:
            self._changed(min(self._dirty), max(self._dirty))
            self._dirty.clear()

    def figures(self, symbol: str) -> tuple[float, float, float, float, float] | None:
        """(last, change %, 24 h high, low, volume) of ``symbol``, None without data."""
        position = self._position(symbol)
        return None if position is None else self._rows[position].figures()

    def _position(self, symbol: str) -> int | None:
        for position, row in enumerate(self._rows):
            if row.symbol == symbol:
                return position
        return None

    def _changed(self, first: int, last: int) -> None:
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    # -- Qt model ---------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return _alignment(section)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        column = index.column()
        figures = row.figures()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return row.symbol
            if figures is None:
                return "—"
            last, change, high, low, volume = figures
            decimals = row.decimals if row.decimals is not None else _auto_decimals(last)
            return (None, f"{last:,.{decimals}f}", f"{change:+.2f}%", f"{high:,.{decimals}f}",
                    f"{low:,.{decimals}f}", _compact(volume))[column]
        if role == Qt.ItemDataRole.ForegroundRole:
            if figures is None or column in (0, 3, 4):
                return None
            if column == 5:
                return self._muted
            return self._up if figures[1] >= 0 else self._down
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _alignment(column)
        if role == Qt.ItemDataRole.FontRole and column in (0, 1):
            return self._bold
        if role == Qt.ItemDataRole.ToolTipRole and figures is not None:
            decimals = row.decimals if row.decimals is not None else _auto_decimals(figures[0])
            return (f"{row.symbol}: {figures[1]:+.2f}% over the last 24 hours; high"
                    f" {figures[2]:,.{decimals}f}, low {figures[3]:,.{decimals}f}, volume"
                    f" {_compact(figures[4])}")
        if role == Qt.ItemDataRole.UserRole:
            return row.symbol
        return None


def _alignment(column: int) -> Qt.AlignmentFlag:
    horizontal = Qt.AlignmentFlag.AlignLeft if column == 0 else Qt.AlignmentFlag.AlignRight
    return horizontal | Qt.AlignmentFlag.AlignVCenter


def _auto_decimals(price: float) -> int:
    if not math.isfinite(price) or price <= 0:
        return 2
    return min(8, max(2, 4 - (math.floor(math.log10(price)) + 1)))


def _compact(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.2f}"


class Watchlist(QWidget):
    """A table over a :class:`WatchlistModel`; clicking or Enter on a row emits its symbol.

    Where the pairs are the user's choice (on an exchange), :meth:`set_editable` shows a field
    to add a pair and a Remove action (context menu, Delete) on the rows; both only ask, by
    signal: the window checks, saves and answers with :meth:`entry_done` or an error.
    """

    #: The user picked a pair to chart.
    symbol_activated = Signal(str)
    #: The user asked to watch a pair (as typed, trimmed and upper-cased).
    add_requested = Signal(str)
    #: The user asked to stop watching a pair.
    remove_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = WatchlistModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("Watchlist")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # High and low are in each row's tooltip; a narrow panel shows the essentials.
        for column in (3, 4):
            self.table.setColumnHidden(column, True)
        self.table.clicked.connect(self._on_activated)
        self.table.activated.connect(self._on_activated)
        self.remove_action = QAction("Remove from watchlist", self.table)
        self.remove_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.remove_action.triggered.connect(self._on_remove)
        self.table.addAction(self.remove_action)
        self.entry = QLineEdit(self)
        self.entry.setObjectName("WatchlistEntry")
        self.entry.setPlaceholderText("Add a pair, e.g. SOL/USDT, and press Enter")
        self.entry.returnPressed.connect(self._on_add)
        self._entry_field = FieldBox(self.entry)
        self.set_editable(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addWidget(self._entry_field.box)

    def set_editable(self, editable: bool) -> None:
        """Offer adding and removing pairs (only where the pairs are the user's choice)."""
        self._entry_field.box.setVisible(editable)
        self.remove_action.setEnabled(editable)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu if editable
                                        else Qt.ContextMenuPolicy.NoContextMenu)

    def entry_done(self) -> None:
        """The pair asked for was added: empty the field."""
        self.entry.clear()
        self._entry_field.set_error(None)

    def set_entry_error(self, message: str | None) -> None:
        """Why the last add or remove was not done, shown under the field (None clears)."""
        self._entry_field.set_error(message)

    @property
    def entry_error(self) -> str:
        return self._entry_field.error_text

    def select_symbol(self, symbol: str) -> None:
        """Highlight ``symbol``'s row (the charted pair) without emitting anything."""
        for row in range(self.model.rowCount()):
            if self.model.index(row, 0).data(Qt.ItemDataRole.UserRole) == symbol:
                self.table.selectRow(row)
                return

    def _on_activated(self, index: QModelIndex) -> None:
        symbol = index.data(Qt.ItemDataRole.UserRole)
        if isinstance(symbol, str):
            self.symbol_activated.emit(symbol)

    def _on_add(self) -> None:
        text = self.entry.text().strip().upper()
        if text:
            self.add_requested.emit(text)

    def _on_remove(self) -> None:
        symbol = self.table.currentIndex().siblingAtColumn(0).data(Qt.ItemDataRole.UserRole)
        if isinstance(symbol, str):
            self.remove_requested.emit(symbol)

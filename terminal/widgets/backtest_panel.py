"""The backtest panel: a form generated from a strategy's parameters, and the run's results.

The panel only collects a valid :class:`BacktestRequest` and shows a
:class:`~terminal.core.backtest.BacktestResult`; running it is the window's business (in the
background, so the form stays responsive). While a run is under way, Cancel (or Esc) asks
the window to stop it, and the bar shows how many of its bars the engine has gone through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from terminal.core.backtest import BacktestResult
from terminal.core.errors import InvalidArgument
from terminal.core.metrics import Metrics
from terminal.core.model import DAY_MS, Timeframe
from terminal.core.strategies import STRATEGIES, create_strategy
from terminal.core.strategy import Parameter, ParamValue
from terminal.widgets.forms import FieldBox, field_label, mark_invalid

#: Strategies that run on candles alone (the model strategy needs a prediction series).
FORM_STRATEGIES = tuple(name for name, cls in STRATEGIES.items() if name != "model_signal")
BACKTEST_TIMEFRAMES = (Timeframe.M5, Timeframe.M15, Timeframe.H1, Timeframe.H4, Timeframe.D1)
MAX_FEE_PCT = 5.0
DEFAULT_DAYS = 60


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """Everything one run needs, checked: dates are UTC epoch ms (end exclusive)."""

    strategy: str
    params: dict[str, ParamValue]
    symbol: str
    timeframe: Timeframe
    start_ms: int
    end_ms: int
    fee_rate: float
    cash: float


class _Field(FieldBox):
    """A line edit with its error label below."""

    def __init__(self, text: str, tooltip: str) -> None:
        self.edit = QLineEdit(text)
        self.edit.setToolTip(tooltip)
        super().__init__(self.edit)


class BacktestPanel(QWidget):
    """Pick a strategy and its parameters, a period, fee and cash; Run shows the results."""

    #: The user asked for a run; the request is valid.
    run_requested = Signal(object)
    #: The user asked to stop the run under way.
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._param_fields: dict[str, tuple[Parameter, _Field]] = {}
        self._running = False
        self._has_result = False
        # The last (done, total) the run reported; total 0 while the candles are read.
        self._counted = (0, 0)
        self._accent, self._muted = "#2962ff", "#787b86"
        self._up, self._down = "#26a69a", "#ef5350"

        self._strategy = QComboBox()
        self._strategy.setObjectName("StrategyBox")
        for name in FORM_STRATEGIES:
            self._strategy.addItem(name.replace("_", " "), name)
            self._strategy.setItemData(self._strategy.count() - 1, STRATEGIES[name].description,
                                       Qt.ItemDataRole.ToolTipRole)
        self._description = QLabel()
        self._description.setObjectName("Muted")
        self._description.setWordWrap(True)
        self._symbol = QComboBox()
        self._timeframe = QComboBox()
        for timeframe in BACKTEST_TIMEFRAMES:
            self._timeframe.addItem(timeframe.code, timeframe)
        self._timeframe.setCurrentIndex(BACKTEST_TIMEFRAMES.index(Timeframe.H1))
        today = datetime.now(tz=UTC).date()
        self._start = QDateEdit(QDate(*(today - timedelta(days=DEFAULT_DAYS)).timetuple()[:3]))
        self._end = QDateEdit(QDate(*today.timetuple()[:3]))
        for edit in (self._start, self._end):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self._period_error = QLabel()
        self._period_error.setObjectName("FieldError")
        self._period_error.hide()
        self._fee = _Field("0.1", "fee per fill in percent of the traded value (maker and taker)")
        self._cash = _Field("10000", "starting cash in the quote currency")
        self._form_error = QLabel()
        self._form_error.setObjectName("FieldError")
        self._form_error.setWordWrap(True)
        self._form_error.hide()
        self._run = QPushButton("Run backtest")
        self._run.setObjectName("Primary")
        self._run.clicked.connect(self._on_run)
        self._cancel = QPushButton("Cancel")
        self._cancel.setToolTip("Stop the backtest under way (Esc)")
        self._cancel.setEnabled(False)
        self._cancel.clicked.connect(self._on_cancel)
        self._progress = QProgressBar()
        self._progress.setTextVisible(False)  # the label beside it says the percentage
        self._progress.setStyleSheet("QProgressBar { max-width: 16777215px; }")
        self._progress.hide()
        self._percent = QLabel()
        self._percent.setObjectName("Muted")
        self._percent.hide()
        self._status = QLabel("Choose a strategy and press Run.")
        self._status.setObjectName("Muted")
        self._status.setWordWrap(True)

        self._params_form = QFormLayout()
        self._params_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Strategy", self._strategy)
        form.addRow("", self._description)
        form.addRow(self._params_form)
        form.addRow("Symbol", self._symbol)
        form.addRow("Timeframe", self._timeframe)
        period = QHBoxLayout()
        period.addWidget(self._start)
        period.addWidget(QLabel("to"))
        period.addWidget(self._end)
        form.addRow("Period (UTC)", period)
        form.addRow("", self._period_error)
        form.addRow("Fee %", self._fee.box)
        form.addRow("Cash", self._cash.box)
        run_row = QHBoxLayout()
        run_row.addWidget(self._run, 1)
        run_row.addWidget(self._cancel)
        # The bar gets a line of its own: beside the buttons it would widen the form.
        progress_row = QHBoxLayout()
        progress_row.addWidget(self._progress, 1)
        progress_row.addWidget(self._percent)
        form_box = QWidget()
        form_column = QVBoxLayout(form_box)
        form_column.setContentsMargins(8, 8, 8, 8)
        form_column.addLayout(form)
        form_column.addWidget(self._form_error)
        form_column.addLayout(run_row)
        form_column.addLayout(progress_row)
        form_column.addWidget(self._status)
        form_column.addStretch(1)

        self._stats = QTableWidget(0, 2)
        self._stats.setObjectName("BacktestStats")
        self._stats.setHorizontalHeaderLabels(["Strategy", "Buy & hold"])
        self._stats.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._stats.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self._stats.setShowGrid(False)
        self._stats.verticalHeader().setDefaultSectionSize(24)
        self._stats.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self._stats.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self._stats.verticalHeader().setMinimumWidth(110)
        self._stats.setMinimumWidth(320)
        self._equity = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self._equity.setObjectName("EquityCurve")
        self._equity.setMenuEnabled(False)
        self._equity.hideButtons()
        self._equity.showGrid(x=True, y=True, alpha=0.15)
        self._equity.getPlotItem().hideAxis("left")
        self._equity.getPlotItem().showAxis("right")
        self._equity.setMouseEnabled(x=True, y=False)
        self._legend = self._equity.getPlotItem().addLegend(offset=(10, 6))
        self._strategy_curve = self._equity.plot(name="strategy")
        self._hold_curve = self._equity.plot(name="buy & hold")

        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        form_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form_scroll.setWidget(form_box)
        form_scroll.setMinimumWidth(340)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(form_scroll)
        splitter.addWidget(self._stats)
        splitter.addWidget(self._equity)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 0)
        splitter.setStretchFactor(2, 1)
        splitter.setSizes([360, 320, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self._strategy.currentIndexChanged.connect(self._on_strategy_changed)
        for field in (self._fee, self._cash):
            field.edit.textChanged.connect(self.validate)
        for edit in (self._start, self._end):
            edit.dateChanged.connect(self.validate)
        self._symbol.currentIndexChanged.connect(self.validate)
        self._on_strategy_changed()
        self.set_colors(self._accent, self._muted, self._up, self._down, "#131722", "#d1d4dc")

    # -- inputs -------------------------------------------------------------------------------

    def set_symbols(self, symbols: list[str], current: str | None = None) -> None:
        """The pairs a backtest can run on; ``current`` is preselected."""
        chosen = current or self._symbol.currentData()
        self._symbol.blockSignals(True)
        self._symbol.clear()
        for symbol in symbols:
            self._symbol.addItem(symbol, symbol)
        index = self._symbol.findData(chosen)
        self._symbol.setCurrentIndex(max(0, index))
        self._symbol.blockSignals(False)
        self.validate()

    def select_strategy(self, name: str) -> None:
        index = self._strategy.findData(name)
        if index < 0:
            raise InvalidArgument(f"unknown strategy {name!r}; one of"
                                  f" {', '.join(FORM_STRATEGIES)}")
        self._strategy.setCurrentIndex(index)

    def parameter_edit(self, name: str) -> QLineEdit:
        """The line edit of parameter ``name`` of the selected strategy."""
        return self._param_fields[name][1].edit

    @property
    def fee_edit(self) -> QLineEdit:
        return self._fee.edit

    @property
    def cash_edit(self) -> QLineEdit:
        return self._cash.edit

    def set_period(self, start: QDate, end: QDate) -> None:
        self._start.setDate(start)
        self._end.setDate(end)

    @property
    def run_button(self) -> QPushButton:
        return self._run

    @property
    def cancel_button(self) -> QPushButton:
        return self._cancel

    def _on_strategy_changed(self) -> None:
        name = self._strategy.currentData()
        cls = STRATEGIES[name]
        self._description.setText(cls.description[:1].upper() + cls.description[1:] + ".")
        while self._params_form.rowCount():
            self._params_form.removeRow(0)
        self._param_fields.clear()
        for parameter in cls.parameters:
            field = _Field(_number_text(parameter.default),
                           f"{parameter.description} ({_number_text(parameter.minimum)} to"
                           f" {_number_text(parameter.maximum)})")
            field.edit.setObjectName(f"param-{parameter.name}")
            field.edit.textChanged.connect(self.validate)
            self._params_form.addRow(field_label(parameter.name), field.box)
            self._param_fields[parameter.name] = (parameter, field)
        self.validate()

    def validate(self) -> BacktestRequest | None:
        """Check every field, mark the bad ones, enable Run; the request when all are good."""
        params: dict[str, ParamValue] = {}
        valid = True
        for parameter, field in self._param_fields.values():
            try:
                params[parameter.name] = parameter.parse(field.edit.text())
                field.set_error(None)
            except InvalidArgument as error:
                field.set_error(str(error))
                valid = False
        fee = _positive_number(self._fee, "the fee", 0.0, MAX_FEE_PCT, allow_zero=True)
        cash = _positive_number(self._cash, "the cash", 0.0, 1e12, allow_zero=False)
        start = _utc_ms(self._start.date())
        end = _utc_ms(self._end.date()) + DAY_MS
        period_problem = None if start < end - DAY_MS else "the period must end after it starts"
        mark_invalid(self._end, period_problem, self._period_error)
        form_problem = None
        if valid:
            try:
                create_strategy(self._strategy.currentData(), params).validate()
            except InvalidArgument as error:
                form_problem = str(error)
        self._form_error.setText(form_problem or "")
        self._form_error.setVisible(form_problem is not None)
        symbol = self._symbol.currentData()
        ok = (valid and fee is not None and cash is not None and period_problem is None
              and form_problem is None and isinstance(symbol, str))
        self._run.setEnabled(ok and not self._running)
        if not ok or fee is None or cash is None or not isinstance(symbol, str):
            return None
        return BacktestRequest(self._strategy.currentData(), params, symbol,
                               self._timeframe.currentData(), start, end, fee / 100.0, cash)

    def _on_run(self) -> None:
        request = self.validate()
        if request is not None and not self._running:
            self.run_requested.emit(request)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Esc reaches the panel from any field that leaves it unused (line edits, dates).
        if event.key() == Qt.Key.Key_Escape and self._running:
            self._on_cancel()
            return
        super().keyPressEvent(event)

    def _on_cancel(self) -> None:
        if not (self._running and self._cancel.isEnabled()):
            return
        self._cancel.setEnabled(False)
        self._status.setText("Cancelling the backtest…")
        self.cancel_requested.emit()

    # -- progress and results -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def set_running(self, message: str) -> None:
        """A run is under way: the form stays usable, Run waits, Cancel and the bar show."""
        self._running = True
        self._counted = (0, 0)
        self._run.setEnabled(False)
        self._cancel.setEnabled(True)
        self._progress.setRange(0, 0)
        self._progress.show()
        self._percent.clear()
        self._percent.show()
        self._status.setText(message)

    def set_progress(self, done: int, total: int, message: str) -> None:
        """``done`` of ``total`` bars gone through; a total of 0 keeps the bar busy."""
        if not self._running or not self._cancel.isEnabled():
            return  # a report that crossed a cancel on its way must not undo "Cancelling"
        self._counted = (done, total)
        if total > 0:
            self._progress.setRange(0, total)
            self._progress.setValue(done)
            self._percent.setText(f"{_percent(done, total)}%")
        else:
            self._progress.setRange(0, 0)
            self._percent.clear()
        self._status.setText(message)

    def set_cancelled(self) -> None:
        """The run stopped at the user's request; say where, and what the figures are."""
        done, total = self._counted
        self._finish()
        where = (f" at {_percent(done, total)}% ({done:,} of {total:,} bars)" if total > 0
                 else " while its candles were read")
        previous = " The figures shown are from the previous run." if self._has_result else ""
        self._status.setText(f"Backtest cancelled{where}.{previous}")

    def set_failed(self, message: str) -> None:
        self._finish()
        self._status.setText(f"⚠ {message}")

    def show_result(self, result: BacktestResult, seconds: float) -> None:
        """Fill the statistics and the equity curves from ``result``."""
        self._finish()
        self._has_result = True
        rows = _stat_rows(result.metrics, result.buy_and_hold)
        self._stats.setRowCount(len(rows))
        for row, (name, mine, hold, better) in enumerate(rows):
            self._stats.setVerticalHeaderItem(row, QTableWidgetItem(name))
            for column, text in enumerate((mine, hold)):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 0 and better is not None:
                    item.setForeground(QColor(self._up if better else self._down))
                self._stats.setItem(row, column, item)
        times = result.times.astype(np.float64) / 1000.0
        self._strategy_curve.setData(times, result.equity)
        self._hold_curve.setData(times, result.buy_and_hold_equity)
        self._equity.getPlotItem().enableAutoRange()
        verdict = ("beat" if result.metrics.final_equity > result.buy_and_hold.final_equity
                   else "trailed")
        self._status.setText(
            f"{result.strategy} on {result.symbol} {result.timeframe.code}: "
            f"{result.metrics.total_return * 100:+.2f}% vs buy & hold "
            f"{result.buy_and_hold.total_return * 100:+.2f}% ({verdict} it), "
            f"{result.metrics.trades} trades, {len(result.times):,} bars in {seconds:.1f} s.")

    def stats_text(self) -> dict[str, tuple[str, str]]:
        """The statistics shown: row name → (strategy, buy & hold)."""
        shown = {}
        for row in range(self._stats.rowCount()):
            header = self._stats.verticalHeaderItem(row)
            mine, hold = self._stats.item(row, 0), self._stats.item(row, 1)
            if header is not None and mine is not None and hold is not None:
                shown[header.text()] = (mine.text(), hold.text())
        return shown

    def curve_lengths(self) -> tuple[int, int]:
        """Points of the strategy's and buy-and-hold's equity curves."""
        mine, hold = self._strategy_curve.getData()[1], self._hold_curve.getData()[1]
        return (0 if mine is None else len(mine)), (0 if hold is None else len(hold))

    @property
    def status_text(self) -> str:
        return self._status.text()

    @property
    def progress_text(self) -> str:
        """The percentage beside the bar; empty while the bars are not counted yet."""
        return self._percent.text()

    def _finish(self) -> None:
        self._running = False
        self._cancel.setEnabled(False)
        self._progress.hide()
        self._percent.hide()
        self.validate()

    def set_colors(self, accent: str, muted: str, up: str, down: str, background: str,
                   text: str) -> None:
        self._accent, self._muted, self._up, self._down = accent, muted, up, down
        self._equity.setBackground(background)
        plot = self._equity.getPlotItem()
        for name in ("right", "bottom"):
            plot.getAxis(name).setPen(muted)
            plot.getAxis(name).setTextPen(muted)
        self._strategy_curve.setPen(pg.mkPen(accent, width=1.6))
        self._hold_curve.setPen(pg.mkPen(muted, width=1.2, style=Qt.PenStyle.DashLine))
        self._legend.setLabelTextColor(text)


def _percent(done: int, total: int) -> int:
    """Whole percent, rounded down: 100 only when everything is done."""
    return done * 100 // total


def _number_text(value: float) -> str:
    return f"{value:g}"


def _utc_ms(date: QDate) -> int:
    return int(datetime(date.year(), date.month(), date.day(), tzinfo=UTC).timestamp() * 1000)


def _positive_number(field: _Field, name: str, low: float, high: float, *,
                     allow_zero: bool) -> float | None:
    text = field.edit.text().strip().replace(",", "")
    try:
        value = float(text)
    except ValueError:
        field.set_error(f"{name} must be a number")
        return None
    if not math.isfinite(value) or value < low or (value == low and not allow_zero) \
            or value > high:
        bound = "at least" if allow_zero else "above"
        field.set_error(f"{name} must be {bound} {low:g} and at most {high:g}")
        return None
    field.set_error(None)
    return value


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.2f}%"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _stat_rows(mine: Metrics, hold: Metrics) -> list[tuple[str, str, str, bool | None]]:
    """(name, strategy, buy & hold, whether the strategy did better) per statistic."""

    def better(a: float | None, b: float | None, higher: bool = True) -> bool | None:
        if a is None or b is None:
            return None
        return a > b if higher else a < b

    return [
        ("Final equity", f"{mine.final_equity:,.2f}", f"{hold.final_equity:,.2f}",
         better(mine.final_equity, hold.final_equity)),
        ("Total return", _pct(mine.total_return), _pct(hold.total_return),
         better(mine.total_return, hold.total_return)),
        ("CAGR", _pct(mine.cagr), _pct(hold.cagr), better(mine.cagr, hold.cagr)),
        ("Sharpe", _ratio(mine.sharpe), _ratio(hold.sharpe), better(mine.sharpe, hold.sharpe)),
        ("Sortino", _ratio(mine.sortino), _ratio(hold.sortino),
         better(mine.sortino, hold.sortino)),
        ("Max drawdown", _pct(-mine.max_drawdown), _pct(-hold.max_drawdown),
         better(mine.max_drawdown, hold.max_drawdown, higher=False)),
        ("Trades", f"{mine.trades}", f"{hold.trades}", None),
        ("Win rate", _pct(mine.win_rate).lstrip("+"), _pct(hold.win_rate).lstrip("+"), None),
        ("Profit factor", _ratio(mine.profit_factor), _ratio(hold.profit_factor), None),
        ("Exposure", _pct(mine.exposure).lstrip("+"), _pct(hold.exposure).lstrip("+"), None),
        ("Fees paid", f"{mine.fees_paid:,.2f}", f"{hold.fees_paid:,.2f}", None),
    ]

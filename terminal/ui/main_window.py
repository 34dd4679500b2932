"""The main window: a chart of one market, chosen in the toolbar, with the venue's state below."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from terminal import __version__
from terminal.core.bus import EventBus
from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.events import (
    CandleClosed,
    CandleUpdated,
    ConnectionChanged,
    ErrorRaised,
    HistoryProgress,
    InstrumentsLoaded,
    MarketDataReady,
)
from terminal.core.model import Instrument, Timeframe, VenueKind
from terminal.core.paths import APP_DISPLAY_NAME
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.services import MarketDataService
from terminal.ui import theme
from terminal.widgets.candle_chart import CandleChart

log = logging.getLogger(__name__)

#: The timeframes offered in the toolbar, in order; Ctrl+1 to Ctrl+6 select them.
TIMEFRAMES = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.H1, Timeframe.H4,
              Timeframe.D1)
DEFAULT_TIMEFRAME = Timeframe.M5
#: The newest bars loaded into the chart; a full quarter of 1-minute candles fits.
HISTORY_BARS = 150_000
#: How long an error stays in the status bar before the normal message returns.
ERROR_DISPLAY_MS = 15_000
_VENUE_DESCRIPTIONS = {
    VenueKind.SIMULATED: "Prices come from the built-in simulated market: no exchange, "
                         "no real money.",
    VenueKind.PAPER: "Paper trading on live prices: orders are simulated, no real money.",
    VenueKind.LIVE: "Live exchange: orders use real money.",
}
_TIMEFRAME_NAMES = {
    Timeframe.M1: "1 minute", Timeframe.M5: "5 minutes", Timeframe.M15: "15 minutes",
    Timeframe.H1: "1 hour", Timeframe.H4: "4 hours", Timeframe.D1: "1 day",
}


def _utc_text(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _decimals(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 2


class MainWindow(QMainWindow):
    """Chart of the selected symbol and timeframe, fed live by a :class:`MarketDataService`.

    The window appears at once; while the service loads history the chart says so and the
    status bar shows the progress, and the chart fills in when the history is ready.
    ``settings`` keeps the window's geometry and the last selection between runs; without it
    nothing is remembered.
    """

    #: Emitted when the window has closed (the application then shuts down).
    closed = Signal()

    def __init__(self, service: MarketDataService, bus: EventBus, *,
                 settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._settings = settings
        self._symbol: str | None = None
        self._timeframe = DEFAULT_TIMEFRAME
        self._watching: tuple[str, Timeframe] | None = None
        self._history_ready = False
        venue = service.venue
        self._kind_label = venue.kind.label

        self._chart = CandleChart(self, style=theme.chart_style())
        self._chart.set_placeholder("Loading market history…")
        self.setCentralWidget(self._chart)
        self._timeframe_actions: dict[Timeframe, QAction] = {}
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_status_bar()
        self._error_timer = QTimer(self)
        self._error_timer.setSingleShot(True)
        self._error_timer.timeout.connect(self._clear_error)

        self._unsubscribers: list[Callable[[], None]] = [
            bus.subscribe(InstrumentsLoaded, self._on_instruments_loaded),
            bus.subscribe(HistoryProgress, self._on_history_progress),
            bus.subscribe(MarketDataReady, self._on_market_data_ready),
            bus.subscribe(ConnectionChanged, self._on_connection_changed),
            bus.subscribe(CandleUpdated, self._on_candle),
            bus.subscribe(CandleClosed, self._on_candle),
            bus.subscribe(ErrorRaised, self._on_error),
        ]
        self._restore_settings()
        self._update_title()
        if service.ready:
            self._on_history_ready()

    # -- construction -------------------------------------------------------------------------

    def _build_actions(self) -> None:
        group = QActionGroup(self)
        group.setExclusive(True)
        for number, timeframe in enumerate(TIMEFRAMES, start=1):
            action = QAction(timeframe.code, self)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.setToolTip(f"{_TIMEFRAME_NAMES[timeframe]} candles (Ctrl+{number})")
            action.triggered.connect(lambda _=False, tf=timeframe: self.select(timeframe=tf))
            group.addAction(action)
            self._timeframe_actions[timeframe] = action
        self._quit_action = QAction("&Quit", self)
        self._quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self._quit_action.triggered.connect(self.close)
        self._latest_action = QAction("Go to &Latest Bar", self)
        self._latest_action.setShortcut(QKeySequence("Ctrl+End"))
        self._latest_action.triggered.connect(self._chart.scroll_to_latest)
        for action in (self._quit_action, self._latest_action):
            self.addAction(action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Market", self)
        toolbar.setObjectName("MarketToolbar")
        toolbar.setMovable(False)
        toolbar.setFloatable(False)
        toolbar.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
        self._symbol_box = QComboBox(toolbar)
        self._symbol_box.setObjectName("SymbolBox")
        self._symbol_box.setMinimumWidth(130)
        self._symbol_box.setToolTip("Market to chart")
        self._symbol_box.addItem("Loading…")
        self._symbol_box.setEnabled(False)
        self._symbol_box.activated.connect(self._on_symbol_chosen)
        toolbar.addWidget(self._symbol_box)
        toolbar.addSeparator()
        for action in self._timeframe_actions.values():
            toolbar.addAction(action)
        spacer = QWidget(toolbar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        self._venue_badge = QLabel(self._kind_label, toolbar)
        self._venue_badge.setObjectName("VenueBadge")
        self._venue_badge.setStyleSheet(theme.venue_badge_style(self._kind_label))
        self._venue_badge.setToolTip(_VENUE_DESCRIPTIONS[self._service.venue.kind])
        toolbar.addWidget(self._venue_badge)
        self.addToolBar(toolbar)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self._quit_action)
        view_menu = self.menuBar().addMenu("&View")
        for action in self._timeframe_actions.values():
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(self._latest_action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(f"&About {APP_DISPLAY_NAME}", self._show_about)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self._message = QLabel("Starting…", bar)
        self._message.setObjectName("StatusMessage")
        self._progress = QProgressBar(bar)
        self._progress.setTextVisible(False)
        self._progress.hide()
        bar.addWidget(self._message, 1)
        bar.addWidget(self._progress)
        venue = self._service.venue
        self._venue_label = QLabel(f"{self._kind_label} — {venue.display_name}", bar)
        self._venue_label.setObjectName("StatusStrong")
        self._venue_label.setToolTip(_VENUE_DESCRIPTIONS[venue.kind])
        self._connection_label = QLabel(bar)
        self._bars_label = QLabel(bar)
        self._time_label = QLabel(bar)
        self._time_label.setToolTip("Open time of the newest candle (UTC)")
        self._price_label = QLabel(bar)
        self._price_label.setObjectName("StatusStrong")
        for label in (self._venue_label, self._connection_label, self._bars_label,
                      self._time_label, self._price_label):
            bar.addPermanentWidget(label)
        self._set_connection("Connecting…", theme.WARNING)
        self._update_market_status()

    # -- selection ----------------------------------------------------------------------------

    @property
    def chart(self) -> CandleChart:
        return self._chart

    @property
    def symbol(self) -> str | None:
        return self._symbol

    @property
    def timeframe(self) -> Timeframe:
        return self._timeframe

    def select(self, symbol: str | None = None, timeframe: Timeframe | None = None) -> None:
        """Chart ``symbol`` at ``timeframe`` (either left out keeps the current one)."""
        if symbol is not None and self._service.instruments:
            self._instrument(symbol)  # rejects a symbol the venue does not trade
        if timeframe is not None and timeframe not in TIMEFRAMES:
            offered = ", ".join(tf.code for tf in TIMEFRAMES)
            raise InvalidArgument(f"the chart offers the timeframes {offered}, not {timeframe}")
        changed = (symbol not in (None, self._symbol)
                   or timeframe not in (None, self._timeframe))
        self._symbol = symbol or self._symbol
        self._timeframe = timeframe or self._timeframe
        self._timeframe_actions[self._timeframe].setChecked(True)
        if self._symbol is not None:
            index = self._symbol_box.findData(self._symbol)
            if index >= 0:
                self._symbol_box.setCurrentIndex(index)
        if changed:
            self._update_title()
            self._load_chart()

    def _instrument(self, symbol: str) -> Instrument:
        for instrument in self._service.instruments:
            if instrument.symbol == symbol:
                return instrument
        available = ", ".join(self._service.symbols)
        raise InvalidArgument(f"{symbol} is not traded on {self._service.venue.display_name}; "
                              f"available: {available}")

    def _on_symbol_chosen(self, index: int) -> None:
        symbol = self._symbol_box.itemData(index)
        if isinstance(symbol, str):
            self.select(symbol=symbol)

    def _fill_symbols(self) -> None:
        """Offer the venue's instruments once the service has loaded them."""
        symbols = self._service.symbols
        if not symbols or self._symbol_box.isEnabled():  # enabled once filled
            return
        self._symbol_box.clear()
        for symbol in symbols:
            self._symbol_box.addItem(symbol, symbol)
        self._symbol_box.setEnabled(True)
        if self._symbol not in symbols:
            self._symbol = symbols[0]
        self._symbol_box.setCurrentIndex(self._symbol_box.findData(self._symbol))
        self._update_title()

    def _load_chart(self) -> None:
        """Show the selected series' history and follow its live candles."""
        if not self._history_ready or self._symbol is None:
            return
        symbol, timeframe = self._symbol, self._timeframe
        if self._watching is not None:
            self._service.unwatch(*self._watching)
            self._watching = None
        self._chart.set_title(f"{symbol} · {timeframe.code}")
        self._chart.set_watermark(f"{symbol} · {timeframe.code}")
        self._chart.set_price_precision(_decimals(self._instrument(symbol).tick_size))
        try:
            history = self._service.history(symbol, timeframe, bars=HISTORY_BARS)
        except TerminalError as error:
            self._chart.set_history(CandleSeries.empty(timeframe))
            self._chart.set_placeholder(f"Cannot load {symbol} {timeframe.code}")
            self.show_error(str(error))
            return
        self._chart.set_placeholder(f"No {timeframe.code} candles for {symbol} yet")
        self._chart.set_history(history)
        self._service.watch(symbol, timeframe)
        self._watching = (symbol, timeframe)
        forming = self._service.forming(symbol, timeframe)
        if forming is not None:
            self._chart.update_bar(forming)
        self._update_market_status()

    @property
    def series_key(self) -> SeriesKey | None:
        """The series on the chart, None until the venue's instruments are known."""
        if self._symbol is None:
            return None
        return self._service.key(self._symbol, self._timeframe)

    # -- events -------------------------------------------------------------------------------

    def _on_instruments_loaded(self, event: InstrumentsLoaded) -> None:
        if event.venue == self._service.venue.id:
            self._fill_symbols()

    def _on_market_data_ready(self, event: MarketDataReady) -> None:
        if event.venue == self._service.venue.id:
            self._on_history_ready()

    def _on_history_progress(self, event: HistoryProgress) -> None:
        if event.venue != self._service.venue.id:
            return
        if event.done >= event.total:
            self._progress.hide()
            self._show_message(event.message)
            return
        self._progress.setRange(0, max(event.total, 1))
        self._progress.setValue(event.done)
        self._progress.show()
        self._show_message(f"{event.message}… {event.done}/{event.total}")

    def _on_history_ready(self) -> None:
        if self._history_ready:
            return
        self._history_ready = True
        self._fill_symbols()
        self._load_chart()

    def _on_connection_changed(self, event: ConnectionChanged) -> None:
        if event.venue != self._service.venue.id:
            return
        if event.connected:
            self._set_connection("Live", theme.UP)
        else:
            self._set_connection("Disconnected", theme.DOWN, event.detail)

    def _on_candle(self, event: CandleUpdated | CandleClosed) -> None:
        if event.key != self.series_key or self._watching is None:
            return
        self._chart.update_bar(event.candle)
        self._update_market_status()

    def _on_error(self, event: ErrorRaised) -> None:
        if not self._history_ready:
            self._chart.set_placeholder("Market data unavailable (see the status bar)")
        self.show_error(f"{event.source}: {event.message}")

    # -- status -------------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """Show ``message`` in the status bar's message area for a while, in the error colour."""
        log.warning("%s", message)
        self._message.setObjectName("StatusError")
        self._message.setText(f"⚠ {message}")
        self._message.setToolTip(message)
        self._restyle(self._message)
        self._error_timer.start(ERROR_DISPLAY_MS)

    @property
    def status_message(self) -> str:
        return self._message.text()

    def status_texts(self) -> list[str]:
        """Every text in the status bar, left to right (for tests and diagnostics)."""
        labels = (self._message, self._venue_label, self._connection_label, self._bars_label,
                  self._time_label, self._price_label)
        return [label.text() for label in labels]

    def _show_message(self, text: str) -> None:
        if self._error_timer.isActive():
            return  # an error stays readable until its time is up
        self._message.setText(text)

    def _clear_error(self) -> None:
        self._message.setObjectName("StatusMessage")
        self._message.setToolTip("")
        self._restyle(self._message)
        self._message.setText("Ready" if self._history_ready else "Loading market history…")

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    def _set_connection(self, state: str, color: str, detail: str = "") -> None:
        self._connection_label.setText(f'<span style="color:{color}">●</span> {state}')
        self._connection_label.setToolTip(detail or f"Market data: {state.lower()}")

    def _update_market_status(self) -> None:
        last = self._chart.last_candle
        count = self._chart.bar_count
        self._bars_label.setText(f"{count:,} bars" if count else "No bars")
        if last is None:
            self._time_label.setText("")
            self._price_label.setText("")
            return
        self._time_label.setText(_utc_text(last.open_time))
        color = theme.UP if last.close >= last.open else theme.DOWN
        self._price_label.setText(f'{self._symbol} <span style="color:{color}">'
                                  f"{self._chart.format_price(last.close)}</span>")

    def _update_title(self) -> None:
        parts = [APP_DISPLAY_NAME]
        if self._symbol is not None:
            parts.insert(0, f"{self._symbol} · {self._timeframe.code}")
        self.setWindowTitle(" — ".join(parts) + f"  [{self._kind_label}]")

    def _show_about(self) -> None:
        QMessageBox.about(
            self, f"About {APP_DISPLAY_NAME}",
            f"<b>{APP_DISPLAY_NAME}</b> {__version__}<br><br>"
            f"Market data: {self._service.venue.display_name} ({self._kind_label}).<br>"
            "Times are UTC.")

    # -- persistence --------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        settings = self._settings
        if settings is None:
            self.resize(1440, 860)
            self._timeframe_actions[self._timeframe].setChecked(True)
            return
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1440, 860)
        state = settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        symbol = settings.value("chart/symbol")
        if isinstance(symbol, str) and symbol:
            self._symbol = symbol
        code = settings.value("chart/timeframe")
        self._timeframe = next((tf for tf in TIMEFRAMES if tf.code == code), DEFAULT_TIMEFRAME)
        self._timeframe_actions[self._timeframe].setChecked(True)

    def _save_settings(self) -> None:
        settings = self._settings
        if settings is None:
            return
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        if self._symbol is not None:
            settings.setValue("chart/symbol", self._symbol)
        settings.setValue("chart/timeframe", self._timeframe.code)
        settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_settings()
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        if self._watching is not None:
            self._service.unwatch(*self._watching)
            self._watching = None
        super().closeEvent(event)
        self.closed.emit()

"""The main window: a chart of one market, chosen in the toolbar, with dockable panels around it
(watchlist, notifications, backtest) and the venue's state below.

Panels are :class:`QDockWidget` s: they can be moved, stacked, floated and closed, and their
layout is remembered in QSettings with the window's geometry (View → Reset layout puts them
back). Background events from the bus become notifications in the notification centre and, for
what matters, on the desktop.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import ValidationError
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSystemTrayIcon,
    QToolBar,
    QWidget,
)

from terminal import __version__
from terminal.core.backtest import BacktestResult
from terminal.core.bus import EventBus
from terminal.core.clock import Clock, SystemClock
from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.events import (
    CandleClosed,
    CandleUpdated,
    ConnectionChanged,
    ErrorRaised,
    HistoryProgress,
    InstrumentsLoaded,
    IntentRejected,
    MarketDataReady,
    OrderFilled,
    OrderUpdated,
)
from terminal.core.model import Candle, Instrument, OrderStatus, Timeframe, VenueKind
from terminal.core.orders import OrderManager
from terminal.core.paths import APP_DISPLAY_NAME
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.services import MarketDataService
from terminal.core.settings import (
    MAX_WATCHED_PAIRS,
    MarketSettings,
    Settings,
    SettingsFile,
    problem_text,
)
from terminal.ui import theme
from terminal.ui.backtest_runner import BacktestRunner
from terminal.ui.dialogs import FirstRunWizard, IndicatorDialog, ShortcutsDialog
from terminal.ui.import_dialog import ImportDialog
from terminal.ui.keys_dialog import KeysDialog
from terminal.ui.preferences import PreferencesDialog
from terminal.ui.trading_desk import TradingDesk
from terminal.widgets.backtest_panel import BacktestPanel, BacktestRequest
from terminal.widgets.candle_chart import CandleChart
from terminal.widgets.chart_layers import IndicatorSettings, Side, TradeMarker
from terminal.widgets.dashboard import DashboardPanel
from terminal.widgets.models_panel import ModelsPanel
from terminal.widgets.notifications import Notification, NotificationCenter, Severity
from terminal.widgets.order_ticket import OrderTicket
from terminal.widgets.positions import PositionsPanel
from terminal.widgets.prediction_panel import PredictionPanel
from terminal.widgets.trade_history import TradeHistoryPanel
from terminal.widgets.watchlist import Watchlist

log = logging.getLogger(__name__)

#: The timeframes offered in the toolbar, in order; Ctrl+1 to Ctrl+7 select them.
TIMEFRAMES = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1,
              Timeframe.H4, Timeframe.D1)
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
    Timeframe.M30: "30 minutes", Timeframe.H1: "1 hour", Timeframe.H4: "4 hours",
    Timeframe.D1: "1 day",
}
#: Bumped when the docks change, so a layout saved by an older release is not restored.
LAYOUT_VERSION = 3
#: Shortest time between two chart updates from the live stream (about 30 frames a second).
FRAME_MS = 33
#: 1-minute candles the watchlist is seeded with: its rolling 24 hours.
WATCHLIST_BARS = 1440
#: What the worker-state field says until the ML worker exists.
NO_MODELS_TEXT = "Models: no models yet"
#: Indicator toggles in the View menu: (settings field, menu text, shortcut).
INDICATOR_TOGGLES = (
    ("sma", "SMA overlay", "Alt+S"),
    ("ema", "EMA overlay", "Alt+E"),
    ("bollinger", "Bollinger bands", "Alt+B"),
    ("rsi", "RSI pane", "Alt+R"),
    ("macd", "MACD pane", "Alt+M"),
)


def _utc_text(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area, so a small dock does not force the window to
    grow (the ticket is tall, the backtest form wide)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def _market_text(market: MarketSettings) -> str:
    """``the simulated market``, ``binance (paper trading)``, ``binance testnet (live trading)``."""
    if market.simulated:
        return "the simulated market"
    testnet = " testnet" if market.sandbox else ""
    return f"{market.source}{testnet} ({'live' if market.live_trading else 'paper'} trading)"


def _decimals(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 2


class MainWindow(QMainWindow):
    """Chart of the selected symbol and timeframe, fed live by a :class:`MarketDataService`.

    The window appears at once; while the service loads history the chart says so and the
    status bar shows the progress, and the chart fills in when the history is ready.
    ``settings`` keeps the window's geometry, dock layout, indicators and the last selection
    between runs; without it nothing is remembered. ``preferences`` are the typed user settings
    and ``settings_file`` where Preferences saves them (without it, Preferences is read-only).
    """

    #: Emitted when the window has closed (the application then shuts down).
    closed = Signal()
    #: The user saved new preferences (the new :class:`Settings`).
    preferences_saved = Signal(object)
    #: The chart now shows another series (its :class:`SeriesKey`), after its history loaded.
    series_changed = Signal(object)

    def __init__(self, service: MarketDataService, bus: EventBus, *,
                 settings: QSettings | None = None, preferences: Settings | None = None,
                 settings_file: SettingsFile | None = None,
                 kind: VenueKind | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._settings = settings
        self._preferences = preferences or Settings()
        #: The settings the window opened with: the market they chose is the one running.
        self._running = self._preferences
        self._settings_file = settings_file
        self._trade_markers: dict[str, list[TradeMarker]] = {}
        self._fill_markers: dict[str, list[TradeMarker]] = {}
        self._desk: TradingDesk | None = None
        self._clock: Clock = SystemClock()
        self._imported: dict[str, SeriesKey] = {}
        self._series_loader: Callable[[SeriesKey], CandleSeries] | None = None
        self._static_key: SeriesKey | None = None
        self._tray: QSystemTrayIcon | None = None
        self._symbol: str | None = None
        self._timeframe = DEFAULT_TIMEFRAME
        self._watching: tuple[str, Timeframe] | None = None
        self._history_ready = False
        self._connection_lost = False
        self._restart_wanted = False
        self._restart_prompt: QMessageBox | None = None
        # What the trader's orders risk (the status bar's SIMULATED / PAPER / LIVE): an
        # exchange's prices with a paper account are PAPER, not the feed's LIVE.
        self._kind = kind or service.venue.kind
        self._kind_label = self._kind.label

        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        self._chart = CandleChart(self, style=theme.chart_style())
        self._chart.set_placeholder("Loading market history…")
        self.setCentralWidget(self._chart)
        self._timeframe_actions: dict[Timeframe, QAction] = {}
        self._indicator_actions: dict[str, QAction] = {}
        self._build_docks()
        self._backtests = BacktestRunner(self._backtest_history, self)
        self._backtests.progress.connect(self._backtest_panel.set_progress)
        self._backtests.finished.connect(self._on_backtest_finished)
        self._backtests.failed.connect(self._on_backtest_failed)
        self._backtests.cancelled.connect(self._backtest_panel.set_cancelled)
        self._backtest_panel.run_requested.connect(self.run_backtest)
        self._backtest_panel.cancel_requested.connect(self._backtests.cancel)
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_status_bar()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._error_timer = QTimer(self)
        self._error_timer.setSingleShot(True)
        self._error_timer.timeout.connect(self._clear_error)
        self._pending_candle: Candle | None = None
        self._frame_timer = QTimer(self)
        self._frame_timer.setSingleShot(True)
        self._frame_timer.setInterval(FRAME_MS)
        self._frame_timer.timeout.connect(self._show_pending_candle)

        self._unsubscribers: list[Callable[[], None]] = [
            bus.subscribe(InstrumentsLoaded, self._on_instruments_loaded),
            bus.subscribe(HistoryProgress, self._on_history_progress),
            bus.subscribe(MarketDataReady, self._on_market_data_ready),
            bus.subscribe(ConnectionChanged, self._on_connection_changed),
            bus.subscribe(CandleUpdated, self._on_candle),
            bus.subscribe(CandleClosed, self._on_candle),
            bus.subscribe(ErrorRaised, self._on_error),
            bus.subscribe(CandleUpdated, self._on_watchlist_candle),
            bus.subscribe(CandleClosed, self._on_watchlist_candle),
            bus.subscribe(IntentRejected, self._on_intent_rejected),
            bus.subscribe(OrderFilled, self._on_order_filled),
            bus.subscribe(OrderUpdated, self._on_order_updated),
        ]
        self._restore_settings()
        self._apply_theme(self._preferences.appearance.theme)
        self._update_title()
        if service.ready:
            self._on_history_ready()

    # -- construction -------------------------------------------------------------------------

    def _build_docks(self) -> None:
        self._watchlist = Watchlist(self)
        self._watchlist.symbol_activated.connect(self._on_watchlist_symbol)
        self._watchlist.add_requested.connect(self.watch_pair)
        self._watchlist.remove_requested.connect(self.unwatch_pair)
        self._notifications = NotificationCenter(self)
        self._notifications.unread_changed.connect(self._on_unread_changed)
        self._backtest_panel = BacktestPanel(self)
        self._ticket = OrderTicket(self)
        self._positions_panel = PositionsPanel(self)
        self._history_panel = TradeHistoryPanel(self)
        self._dashboard = DashboardPanel(self)
        self._prediction_panel = PredictionPanel(self)
        self._models_panel = ModelsPanel(self)
        self._docks: dict[str, QDockWidget] = {}
        right = Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        for name, title, widget, area, keys in (
                ("watchlist", "Watchlist", self._watchlist, right, "Ctrl+Shift+W"),
                ("predictions", "Predictions", self._prediction_panel, bottom, "Ctrl+Shift+F"),
                ("notifications", "Notifications", self._notifications, right, "Ctrl+Shift+N"),
                ("ticket", "Order Ticket", self._ticket, right, "Ctrl+Shift+O"),
                ("positions", "Positions", self._positions_panel, bottom, "Ctrl+Shift+P"),
                ("history", "Trade History", self._history_panel, bottom, "Ctrl+Shift+H"),
                ("dashboard", "Dashboard", self._dashboard, bottom, "Ctrl+Shift+D"),
                ("backtest", "Backtest", self._backtest_panel, bottom, "Ctrl+Shift+B"),
                ("models", "Models", self._models_panel, bottom, "Ctrl+Shift+M")):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"{name}Dock")
            wide = widget in (self._ticket, self._backtest_panel, self._models_panel,
                              self._prediction_panel)
            dock.setWidget(_scrolling(widget) if wide else widget)
            dock.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
            toggle = dock.toggleViewAction()
            toggle.setText(f"{title} panel")
            toggle.setShortcut(QKeySequence(keys))
            toggle.setToolTip(f"Show or hide the {title.lower()} panel")
            self.addDockWidget(area, dock)
            self._docks[name] = dock
        docks = self._docks
        # As on trading platforms: the watchlist top right, the ticket below it (with what
        # happened in a tab beside it); positions, history and the account along the bottom,
        # with the forecast of the charted pair beside them, wide enough for its four cards.
        # Models are trained now and then, next to backtests (View → Models opens them).
        # Split before tabbing: a dock split off a tabbed one would become another tab.
        self.splitDockWidget(docks["watchlist"], docks["ticket"], Qt.Orientation.Vertical)
        self.splitDockWidget(docks["positions"], docks["predictions"],
                             Qt.Orientation.Horizontal)
        self.tabifyDockWidget(docks["ticket"], docks["notifications"])
        for name in ("history", "dashboard", "backtest", "models"):
            self.tabifyDockWidget(docks["positions"], docks[name])
        docks["ticket"].raise_()
        docks["positions"].raise_()
        self.resizeDocks([docks["watchlist"]], [340], Qt.Orientation.Horizontal)
        self.resizeDocks([docks["watchlist"], docks["ticket"]], [270, 400],
                         Qt.Orientation.Vertical)
        self.resizeDocks([docks["positions"]], [320], Qt.Orientation.Vertical)
        self.resizeDocks([docks["positions"], docks["predictions"]], [820, 720],
                         Qt.Orientation.Horizontal)
        # Backtests are run now and then: the panel starts closed, View → Backtest opens it.
        docks["backtest"].hide()
        docks["models"].hide()

    @property
    def docks(self) -> dict[str, QDockWidget]:
        """The panels by name: ``watchlist``, ``predictions``, ``notifications``, ``ticket``,
        ``positions``, ``history``, ``dashboard``, ``backtest``, ``models``."""
        return dict(self._docks)

    @property
    def watchlist(self) -> Watchlist:
        return self._watchlist

    @property
    def notification_center(self) -> NotificationCenter:
        return self._notifications

    @property
    def backtest_panel(self) -> BacktestPanel:
        return self._backtest_panel

    @property
    def backtest_runner(self) -> BacktestRunner:
        return self._backtests

    @property
    def order_ticket(self) -> OrderTicket:
        return self._ticket

    @property
    def positions_panel(self) -> PositionsPanel:
        return self._positions_panel

    @property
    def history_panel(self) -> TradeHistoryPanel:
        return self._history_panel

    @property
    def dashboard(self) -> DashboardPanel:
        return self._dashboard

    @property
    def trading_desk(self) -> TradingDesk | None:
        return self._desk

    def attach_trading(self, orders: OrderManager, *, clock: Clock | None = None
                       ) -> TradingDesk:
        """Let the ticket, positions, history and dashboard panels work on ``orders``.

        ``clock`` stamps new orders (the market's clock: a simulated market may run faster
        than the wall clock).
        """
        if self._desk is not None:
            raise InvalidArgument("the window already trades on an order manager")
        self._clock = clock or SystemClock()
        self._desk = TradingDesk(self, orders, ticket=self._ticket,
                                 positions=self._positions_panel, history=self._history_panel,
                                 dashboard=self._dashboard)
        self._series_loader = orders.store.candles.load
        # Accounts store no candles: every stored series is the market's or an import.
        self._add_imported(s.key for s in orders.store.candles.summaries())
        if self._symbol is not None and self._history_ready:
            self._desk.on_chart_symbol(self._symbol)
        return self._desk

    # -- what the trading desk asks of the window -------------------------------------------

    @property
    def market_venue_id(self) -> str:
        return self._service.venue.id

    def market_now_ms(self) -> int:
        return self._clock.now_ms()

    def market_symbols(self) -> list[str]:
        return list(self._service.symbols)

    def market_history(self, symbol: str, timeframe: Timeframe, bars: int
                       ) -> CandleSeries | None:
        """The market's last ``bars`` candles of ``symbol`` (None when it has none)."""
        try:
            return self._service.history(symbol, timeframe, bars=bars)
        except TerminalError:
            return None

    def price_decimals(self, symbol: str) -> int:
        """Decimals of ``symbol``'s tick size (2 for a symbol the market does not know)."""
        for instrument in self._service.instruments:
            if instrument.symbol == symbol:
                return _decimals(instrument.tick_size)
        return 2

    def set_fill_markers(self, symbol: str, markers: list[TradeMarker]) -> None:
        """Our executions in ``symbol``, drawn with any backtest's trades."""
        self._fill_markers[symbol] = markers
        if symbol == self._symbol and self._static_key is None:
            self._chart.set_trades(self._markers_of(symbol))

    def _markers_of(self, symbol: str) -> list[TradeMarker]:
        return [*self._trade_markers.get(symbol, []), *self._fill_markers.get(symbol, [])]

    @property
    def prediction_panel(self) -> PredictionPanel:
        return self._prediction_panel

    @property
    def models_panel(self) -> ModelsPanel:
        return self._models_panel

    def _action(self, text: str, keys: str | QKeySequence.StandardKey | None,
                slot: Callable[[], object], tip: str = "") -> QAction:
        action = QAction(text, self)
        if keys is not None:
            action.setShortcut(QKeySequence(keys))
        if tip:
            action.setToolTip(tip)
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)
        return action

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
        self._zoom_in_action = self._action("Zoom &In", "Ctrl+=", lambda: self._chart.zoom(0.8),
                                            "Zoom the chart in")
        self._zoom_in_action.setShortcuts([QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])
        self._zoom_out_action = self._action("Zoom &Out", "Ctrl+-",
                                             lambda: self._chart.zoom(1.25), "Zoom the chart out")
        self._pan_back_action = self._action("Pan Back", "Ctrl+Left",
                                             lambda: self._chart.pan(-0.25),
                                             "Move the chart back in time")
        self._pan_forward_action = self._action("Pan Forward", "Ctrl+Right",
                                                lambda: self._chart.pan(0.25),
                                                "Move the chart forward in time")
        self._next_symbol_action = self._action("&Next Symbol", "Ctrl+PgDown",
                                                lambda: self.step_symbol(1),
                                                "Chart the next pair of the watchlist")
        self._previous_symbol_action = self._action("&Previous Symbol", "Ctrl+PgUp",
                                                    lambda: self.step_symbol(-1),
                                                    "Chart the previous pair of the watchlist")
        self._full_screen_action = self._action("&Full Screen", "F11", self.toggle_full_screen,
                                                "Full screen on or off")
        self._full_screen_action.setCheckable(True)
        self._reset_layout_action = self._action("&Reset Layout", None, self.reset_layout,
                                                 "Put every panel back where it started")
        self._theme_action = self._action("&Light Theme", "Ctrl+Shift+L", self.toggle_theme,
                                          "Switch between the dark and the light theme")
        self._theme_action.setCheckable(True)
        self._preferences_action = self._action("&Preferences…", "Ctrl+,",
                                                self.show_preferences,
                                                "Open the preferences")
        self._shortcuts_action = self._action("&Keyboard Shortcuts", "F1", self.show_shortcuts,
                                              "List the keyboard shortcuts")
        self._import_action = self._action("&Import Candles…", "Ctrl+I", self.show_import,
                                           "Import candles from a CSV file")
        self._keys_action = self._action("&API Keys…", None, self.show_api_keys,
                                         "Add, test or delete exchange API keys")
        self._wizard_action = self._action("&Getting Started…", None,
                                           self.show_first_run_wizard,
                                           "Show the first-run guide again")
        self._indicator_settings_action = self._action(
            "Indicator &Settings…", None, self.show_indicator_settings,
            "Periods of the moving averages, Bollinger bands, RSI and MACD")
        for field, text, keys in INDICATOR_TOGGLES:
            action = self._action(text, keys, lambda f=field: self._toggle_indicator(f),
                                  f"{text} on or off")
            action.setCheckable(True)
            self._indicator_actions[field] = action

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
        self._venue_badge.setToolTip(_VENUE_DESCRIPTIONS[self._kind])
        toolbar.addWidget(self._venue_badge)
        self.addToolBar(toolbar)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self._import_action)
        file_menu.addSeparator()
        file_menu.addAction(self._keys_action)
        file_menu.addAction(self._preferences_action)
        file_menu.addSeparator()
        file_menu.addAction(self._quit_action)
        chart_menu = self.menuBar().addMenu("&Chart")
        for action in self._timeframe_actions.values():
            chart_menu.addAction(action)
        chart_menu.addSeparator()
        for action in (self._zoom_in_action, self._zoom_out_action, self._pan_back_action,
                       self._pan_forward_action, self._latest_action):
            chart_menu.addAction(action)
        chart_menu.addSeparator()
        chart_menu.addAction(self._next_symbol_action)
        chart_menu.addAction(self._previous_symbol_action)
        indicators = self.menuBar().addMenu("&Indicators")
        for action in self._indicator_actions.values():
            indicators.addAction(action)
        indicators.addSeparator()
        indicators.addAction(self._indicator_settings_action)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self._docks.values():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addAction(self._reset_layout_action)
        view_menu.addAction(self._theme_action)
        view_menu.addAction(self._full_screen_action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._shortcuts_action)
        help_menu.addAction(self._wizard_action)
        help_menu.addSeparator()
        help_menu.addAction(f"&About {APP_DISPLAY_NAME}", self._show_about)

    def shortcut_actions(self) -> list[QAction]:
        """Every action with a keyboard shortcut, in the order Help → Shortcuts lists them."""
        actions = [*self._timeframe_actions.values(), self._zoom_in_action,
                   self._zoom_out_action, self._pan_back_action, self._pan_forward_action,
                   self._latest_action, self._next_symbol_action, self._previous_symbol_action,
                   *self._indicator_actions.values(),
                   *(dock.toggleViewAction() for dock in self._docks.values()),
                   self._theme_action, self._full_screen_action, self._import_action,
                   self._preferences_action,
                   self._shortcuts_action, self._quit_action]
        return [action for action in actions if not action.shortcut().isEmpty()]

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
        self._venue_label.setToolTip(_VENUE_DESCRIPTIONS[self._kind])
        self._worker_label = QLabel(NO_MODELS_TEXT, bar)
        self._worker_label.setToolTip("State of the background model worker: no model has been"
                                      " trained yet, so no forecasts are shown")
        self._auto_label = QLabel("Auto: off", bar)
        self._auto_label.setToolTip("Automated trading is off: only your own orders are placed"
                                    " (Preferences → Trading switches it on)")
        self._connection_label = QLabel(bar)
        self._bars_label = QLabel(bar)
        self._time_label = QLabel(bar)
        self._time_label.setToolTip("Open time of the newest candle (UTC)")
        self._price_label = QLabel(bar)
        self._price_label.setObjectName("StatusStrong")
        for label in (self._venue_label, self._connection_label, self._bars_label,
                      self._time_label, self._worker_label, self._auto_label,
                      self._price_label):
            bar.addPermanentWidget(label)
        self._set_connection("Connecting…", theme.WARNING)
        self._style_venue_label()
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
                   or timeframe not in (None, self._timeframe)
                   or self._static_key is not None)
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
        if isinstance(symbol, str) and symbol in self._imported:
            try:
                self.show_series(self._imported[symbol])
            except TerminalError as error:
                self.show_error(str(error))
        elif isinstance(symbol, str):
            self.select(symbol=symbol)

    # -- imported series --------------------------------------------------------------------

    @property
    def imported_series(self) -> list[SeriesKey]:
        """Stored series no live chart shows (imported files, pairs not followed), which
        the symbol box offers as they are stored."""
        return [key for key in self._imported.values() if not self._charted_live(key)]

    def _add_imported(self, keys: Iterable[SeriesKey]) -> None:
        for key in keys:
            self._imported[f"{key.venue}:{key.symbol}:{key.timeframe.code}"] = key
        self._list_imported()

    def _charted_live(self, key: SeriesKey) -> bool:
        """Whether ``key``'s candles are part of a followed pair's live chart (the market's
        own minutes, or a file of the market's venue imported at another timeframe)."""
        return key.venue == self._service.venue.id and key.symbol in self._service.symbols

    def _list_imported(self) -> None:
        box = self._symbol_box
        if not box.isEnabled():
            return  # listed with the venue's symbols once those are known
        for item, key in sorted(self._imported.items()):
            if self._charted_live(key):
                continue
            if box.findData(item) < 0:
                if box.count() and box.findData(None) < 0:
                    box.insertSeparator(box.count())
                box.addItem(f"{key.symbol} · {key.timeframe.code} ({key.venue})", item)

    def show_series(self, key: SeriesKey) -> None:
        """Chart a stored series that no venue streams (an imported file), as it is stored."""
        if self._series_loader is None:
            raise InvalidArgument("no store is attached to read stored candles from")
        series = self._series_loader(key)
        if self._watching is not None:
            self._service.unwatch(*self._watching)
            self._watching = None
        self._pending_candle = None
        self._static_key = key
        name = f"{key.symbol} · {key.timeframe.code} · {key.venue}"
        self._chart.set_title(name)
        self._chart.set_watermark(name)
        self._chart.set_placeholder(f"No candles stored for {name}")
        self._chart.set_history(series)
        self._chart.set_trades([])
        self._chart.set_order_lines([])
        index = self._symbol_box.findData(f"{key.venue}:{key.symbol}:{key.timeframe.code}")
        if index >= 0:
            self._symbol_box.setCurrentIndex(index)
        self.setWindowTitle(f"{name} — {APP_DISPLAY_NAME}  [{self._kind_label}]")
        self._update_market_status()

    @property
    def static_series(self) -> SeriesKey | None:
        """The stored series on the chart instead of the market's, if any."""
        return self._static_key

    def show_import(self) -> ImportDialog | None:
        """File → Import candles: pick a CSV file and import it in the background."""
        if self._desk is None:
            self.show_error("importing needs the store, which is not open")
            return None
        dialog = ImportDialog(self._desk.store, self)
        dialog.imported.connect(self._on_imported)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _on_imported(self, key: SeriesKey) -> None:
        self.notify(Severity.SUCCESS, "Candles imported",
                    f"{key.symbol} {key.timeframe.code} stored under {key.venue}.",
                    desktop=False)
        if self._charted_live(key):
            if key.symbol == self._symbol and self._static_key is None:
                self._load_chart()
            return
        self._add_imported([key])
        try:
            self.show_series(key)
        except TerminalError as error:
            self.show_error(str(error))

    def show_api_keys(self) -> KeysDialog:
        """File → API keys: add, edit, test and delete exchange keys (OS keyring)."""
        dialog = KeysDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _fill_symbols(self) -> None:
        """Offer the venue's instruments once the service has loaded them, and again when
        the followed pairs change (charting another pair when the charted one went)."""
        symbols = self._service.symbols
        box = self._symbol_box
        listed = [box.itemData(i) for i in range(box.count())
                  if isinstance(box.itemData(i), str) and box.itemData(i) not in self._imported]
        if not symbols or (box.isEnabled() and listed == symbols):
            return
        box.blockSignals(True)
        box.clear()
        for symbol in symbols:
            box.addItem(symbol, symbol)
        box.setEnabled(True)
        self._list_imported()
        box.blockSignals(False)
        moved = self._static_key is None and self._symbol not in symbols
        if moved:
            self._symbol = symbols[0]
        key = self._static_key
        box.setCurrentIndex(box.findData(self._symbol) if key is None else
                            box.findData(f"{key.venue}:{key.symbol}:{key.timeframe.code}"))
        self._backtest_panel.set_symbols(symbols, self._symbol)
        self._update_title()
        if moved and self._watching is not None:
            self._load_chart()  # the charted pair is no longer followed

    def _load_chart(self) -> None:
        """Show the selected series' history and follow its live candles."""
        if not self._history_ready or self._symbol is None:
            return
        symbol, timeframe = self._symbol, self._timeframe
        self._pending_candle = None  # a tick of the previous series
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
            self.series_changed.emit(self.series_key)
            return
        self._chart.set_placeholder(f"No {timeframe.code} candles for {symbol} yet")
        self._chart.set_history(history)
        self._service.watch(symbol, timeframe)
        self._watching = (symbol, timeframe)
        forming = self._service.forming(symbol, timeframe)
        if forming is not None:
            self._chart.update_bar(forming)
        self._static_key = None
        self._chart.set_trades(self._markers_of(symbol))
        self._watchlist.select_symbol(symbol)
        self._update_market_status()
        if self._desk is not None:
            self._desk.on_chart_symbol(symbol)
        self.series_changed.emit(self.series_key)

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
            # The followed pairs changed (Preferences, the watchlist): offer the new ones.
            self._fill_symbols()
            self._fill_watchlist()
            return
        self._history_ready = True
        self._fill_symbols()
        self._fill_watchlist()
        self._load_chart()

    def _on_connection_changed(self, event: ConnectionChanged) -> None:
        if event.venue != self._service.venue.id:
            return
        was_lost = self._connection_lost
        self._connection_lost = not event.connected
        if event.connected:
            self._set_connection("Live", theme.UP)
            if was_lost:
                self.notify(Severity.SUCCESS, "Market data reconnected",
                            f"{self._service.venue.display_name} is streaming again.")
        else:
            self._set_connection("Disconnected", theme.DOWN, event.detail)
            self.notify(Severity.WARNING, "Market data disconnected",
                        event.detail or f"{self._service.venue.display_name} stopped streaming;"
                                        " reconnecting.")

    def _on_candle(self, event: CandleUpdated | CandleClosed) -> None:
        if event.key != self.series_key or self._watching is None:
            return
        if isinstance(event, CandleUpdated) and self._frame_timer.isActive():
            # A fast stream repaints at most once a frame: the newest tick waits for it.
            self._pending_candle = event.candle
            return
        self._pending_candle = None
        self._chart.update_bar(event.candle)
        self._update_market_status()
        self._frame_timer.start()

    def _show_pending_candle(self) -> None:
        candle, self._pending_candle = self._pending_candle, None
        if candle is not None and self._watching is not None:
            self._chart.update_bar(candle)
            self._update_market_status()
            self._frame_timer.start()

    def _on_error(self, event: ErrorRaised) -> None:
        if not self._history_ready:
            self._chart.set_placeholder("Market data unavailable (see the status bar)")
        self.show_error(f"{event.source}: {event.message}")
        self.notify(Severity.ERROR, event.source, event.message)

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
                  self._time_label, self._worker_label, self._auto_label, self._price_label)
        return [html.unescape(re.sub(r"<[^>]+>", "", label.text())) for label in labels]

    def show_message(self, text: str) -> None:
        """Show ``text`` in the status bar's message area (an error on show stays)."""
        self._show_message(text)

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

    def set_auto_trading(self, text: str, tooltip: str, *, active: bool) -> None:
        """Whether automated trading is placing orders, and on what (the app's hook)."""
        color = theme.current().accent if active else theme.current().text_muted
        self._auto_label.setText(f'<span style="color:{color}">{html.escape(text)}</span>')
        self._auto_label.setToolTip(tooltip)

    def set_worker_state(self, text: str, tooltip: str = "") -> None:
        """What the model worker is doing, e.g. ``Models: training 42%`` (the ML worker's hook)."""
        self._worker_label.setText(text)
        self._worker_label.setToolTip(tooltip)

    def _set_connection(self, state: str, color: str, detail: str = "") -> None:
        self._connection_label.setText(f'<span style="color:{color}">●</span> {state}')
        self._connection_label.setToolTip(detail or f"Market data: {state.lower()}")

    def _style_venue_label(self) -> None:
        color = theme.VENUE_COLORS.get(self._kind_label, theme.current().text_muted)
        self._venue_label.setText(
            f'<span style="color:{color}; font-weight:700">{self._kind_label}</span>'
            f" — {self._service.venue.display_name}")

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

    # -- panels, theme, dialogs ---------------------------------------------------------------

    def step_symbol(self, step: int) -> None:
        """Chart the pair ``step`` places after the current one in the watchlist (wrapping)."""
        symbols = self._watchlist.model.symbols or self._service.symbols
        if not symbols:
            return
        position = symbols.index(self._symbol) if self._symbol in symbols else -step
        self.select(symbol=symbols[(position + step) % len(symbols)])

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self._full_screen_action.setChecked(self.isFullScreen())

    def reset_layout(self) -> None:
        """Put every panel back where it was on the first start."""
        for dock in self._docks.values():
            dock.setFloating(False)
        self.restoreState(self._default_state, LAYOUT_VERSION)
        self.show_message("Layout reset")

    @property
    def theme_name(self) -> str:
        return theme.current().name

    def toggle_theme(self) -> None:
        self._apply_theme("light" if theme.current().name == "dark" else "dark")

    def _apply_theme(self, name: str) -> None:
        chosen = theme.theme_named(name)
        app = QApplication.instance()
        if isinstance(app, QApplication):  # always, while a window exists
            theme.apply_theme(app, chosen)
        self._chart.set_style(theme.chart_style(chosen))
        self._watchlist.model.set_colors(chosen.up, chosen.down, chosen.text_muted)
        self._notifications.set_colors(chosen.text_muted, chosen.up, chosen.warning, chosen.down,
                                       chosen.text_muted)
        self._backtest_panel.set_colors(chosen.accent, chosen.text_muted, chosen.up, chosen.down,
                                        chosen.background, chosen.text)
        self._positions_panel.set_colors(chosen.up, chosen.down, chosen.text_muted)
        self._history_panel.set_colors(chosen.up, chosen.down, chosen.text_muted)
        self._dashboard.set_colors(chosen.up, chosen.down, chosen.text_muted, chosen.accent,
                                   chosen.background, chosen.text)
        self._prediction_panel.set_colors(chosen.up, chosen.down, chosen.warning,
                                          chosen.text_muted, chosen.text, chosen.surface,
                                          chosen.border)
        self._models_panel.set_colors(chosen.accent, chosen.up, chosen.down, chosen.warning,
                                      chosen.text_muted, chosen.background, chosen.text)
        self._theme_action.setChecked(chosen.name == "light")
        self._style_venue_label()
        self._update_market_status()

    def _toggle_indicator(self, name: str) -> None:
        settings = self._chart.indicator_settings
        self.set_indicators(replace(settings, **{name: not getattr(settings, name)}))

    def set_indicators(self, settings: IndicatorSettings) -> None:
        """Show the chart indicators ``settings`` switch on (remembered between runs)."""
        self._chart.set_indicators(settings)
        for name, action in self._indicator_actions.items():
            action.setChecked(bool(getattr(settings, name)))

    def show_preferences(self) -> PreferencesDialog:
        """Open the preferences (non-blocking: a nested event loop would stall asyncio)."""
        settings_file = self._settings_file or SettingsFile()
        dialog = PreferencesDialog(self._preferences, settings_file, self)
        dialog.saved.connect(self._on_preferences_saved)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_indicator_settings(self) -> IndicatorDialog:
        dialog = IndicatorDialog(self._chart.indicator_settings, self)
        dialog.applied.connect(self.set_indicators)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.shortcut_actions(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_first_run_wizard(self) -> FirstRunWizard:
        """The first-run guide; finishing or closing it remembers that it was shown."""
        wizard = FirstRunWizard(self)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wizard.finished.connect(lambda _result: self._remember_first_run())
        wizard.open()
        return wizard

    @property
    def preferences(self) -> Settings:
        return self._preferences

    def _remember_first_run(self) -> None:
        if self._preferences.first_run_done:
            return
        self._preferences = self._preferences.model_copy(update={"first_run_done": True})
        problem = self._write_settings(self._preferences)
        if problem is not None:
            self.show_error(problem)

    def _write_settings(self, settings: Settings) -> str | None:
        """Save ``settings`` to the settings file; why they could not be written, or None."""
        if self._settings_file is not None:
            try:
                self._settings_file.save(settings)
            except OSError as error:
                return f"cannot save the settings: {error}"
        return None

    def _on_preferences_saved(self, settings: Settings) -> None:
        previous = self._preferences
        self._preferences = settings
        if settings.appearance.theme != previous.appearance.theme:
            self._apply_theme(settings.appearance.theme)
        # Against the market running now, not the last save: saving twice ("Later", then
        # back again) must not offer to switch to the market already running.
        running, after = self._running.market, settings.market
        market_changed = ((after.source, after.sandbox, after.live_trading)
                          != (running.source, running.sandbox, running.live_trading))
        simulated_changed = after.simulated and settings.simulated != self._running.simulated
        note = ""
        if market_changed or simulated_changed:
            # Where orders go never changes under open orders and positions: a restart opens
            # the new market and account and reconciles them before anything is traded.
            note = " The new market takes effect when the terminal restarts."
        self.notify(Severity.SUCCESS, "Preferences saved", f"Settings were saved.{note}",
                    desktop=False)
        self.preferences_saved.emit(settings)
        if note:
            self._offer_restart(_market_text(after))

    def _offer_restart(self, market: str) -> None:
        prompt = QMessageBox(QMessageBox.Icon.Question, "Restart the terminal?",
                             f"Restart now to switch to {market}?", parent=self)
        prompt.setInformativeText(
            "Open orders and positions stay where they are: the account they belong to is"
            " picked up again whenever its market is chosen.")
        restart = prompt.addButton("Restart now", QMessageBox.ButtonRole.AcceptRole)
        prompt.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        prompt.setDefaultButton(restart)
        prompt.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        restart.clicked.connect(self.restart)
        self._restart_prompt = prompt
        prompt.open()  # never exec(): a nested loop would run asyncio steps inside a slot

    @property
    def restart_prompt(self) -> QMessageBox | None:
        """The last "Restart now?" question (for tests)."""
        return self._restart_prompt

    def restart(self) -> None:
        """Close, and have the application open the window again on the saved settings."""
        self._restart_wanted = True
        self.close()

    @property
    def restart_wanted(self) -> bool:
        return self._restart_wanted

    # -- notifications ------------------------------------------------------------------------

    def set_tray_icon(self, tray: QSystemTrayIcon | None) -> None:
        """Where desktop notifications go (None: in-app only, e.g. no system tray)."""
        self._tray = tray

    def notify(self, severity: Severity, title: str, text: str, *, desktop: bool = True) -> None:
        """Add a notification to the centre; warnings, errors and fills also go to the desktop
        when the platform has a system tray."""
        now = int(datetime.now(tz=UTC).timestamp() * 1000)
        self._notifications.add(Notification(now, severity, title, text))
        if desktop and self._tray is not None and severity is not Severity.INFO:
            icon = (QSystemTrayIcon.MessageIcon.Critical if severity is Severity.ERROR
                    else QSystemTrayIcon.MessageIcon.Warning if severity is Severity.WARNING
                    else QSystemTrayIcon.MessageIcon.Information)
            self._tray.showMessage(title, text, icon, 8000)

    def _on_unread_changed(self, unread: int) -> None:
        dock = self._docks["notifications"]
        dock.setWindowTitle(f"Notifications ({unread})" if unread else "Notifications")

    def _on_intent_rejected(self, event: IntentRejected) -> None:
        intent = event.intent
        self.notify(Severity.WARNING, f"Order refused: {intent.side.value} {intent.symbol}",
                    event.reason)

    def _on_order_filled(self, event: OrderFilled) -> None:
        fill = event.fill
        self.notify(Severity.SUCCESS, f"Filled: {fill.side.value} {fill.symbol}",
                    f"{fill.amount} at {fill.price} (fee {fill.fee} {fill.fee_currency})")

    def _on_order_updated(self, event: OrderUpdated) -> None:
        order = event.order
        if order.status is OrderStatus.REJECTED:
            self.notify(Severity.ERROR, f"Order rejected: {order.side.value} {order.symbol}",
                        order.reject_reason or "the venue rejected the order")

    # -- watchlist ----------------------------------------------------------------------------

    def _fill_watchlist(self) -> None:
        symbols = self._service.symbols
        self._watchlist.set_editable(self._service.limited)
        decimals = {i.symbol: _decimals(i.tick_size) for i in self._service.instruments}
        self._watchlist.model.set_symbols(symbols, decimals)
        for symbol in symbols:
            try:
                history = self._service.history(symbol, Timeframe.M1, bars=WATCHLIST_BARS)
            except TerminalError as error:
                self.show_error(str(error))
                continue
            self._watchlist.model.set_history(symbol, history)
        if self._symbol is not None:
            self._watchlist.select_symbol(self._symbol)

    def _on_watchlist_candle(self, event: CandleUpdated | CandleClosed) -> None:
        key = event.key
        if key.venue == self._service.venue.id and key.timeframe is Timeframe.M1:
            self._watchlist.model.update_candle(key.symbol, event.candle,
                                                closed=isinstance(event, CandleClosed))

    def _on_watchlist_symbol(self, symbol: str) -> None:
        if symbol != self._symbol:
            self.select(symbol=symbol)

    def watch_pair(self, pair: str) -> None:
        """Add ``pair`` to the watchlist setting (on an exchange): saved, then downloaded and
        streamed by the application (:attr:`preferences_saved`). A pair that cannot be added
        is refused at the watchlist's field with the reason, and nothing is saved."""
        market = self._preferences.market
        service = self._service
        if pair in service.symbols or pair in market.watchlist:
            self._watchlist.set_entry_error(f"{pair} is in the watchlist already")
        elif len(market.watchlist) >= MAX_WATCHED_PAIRS:
            self._watchlist.set_entry_error(
                f"the watchlist holds at most {MAX_WATCHED_PAIRS} pairs besides the traded"
                " ones; remove one first")
        elif (settings := self._with_watchlist((*market.watchlist, pair))) is None:
            return  # not a pair: the settings' own check said why, at the field
        elif service.listed and pair not in service.listed:
            self._watchlist.set_entry_error(
                f"{pair} is not listed on {service.venue.display_name} (spot)")
        elif self._save_watchlist(settings):
            self._watchlist.entry_done()
            self.show_message(f"Watching {pair}: loading its history…")

    def unwatch_pair(self, pair: str) -> None:
        """Take ``pair`` off the watchlist setting; traded pairs and pairs the account still
        holds or has orders in stay (the reason is shown)."""
        market = self._preferences.market
        if pair in self._preferences.trading.pairs:
            self._watchlist.set_entry_error(
                f"{pair} is traded: remove it in Preferences → Trading")
        elif pair not in market.watchlist:
            self._watchlist.set_entry_error(
                f"{pair} stays while the account holds it or has orders in it")
        elif ((settings := self._with_watchlist(tuple(p for p in market.watchlist
                                                      if p != pair))) is not None
              and self._save_watchlist(settings)):
            self._watchlist.set_entry_error(None)

    def _with_watchlist(self, pairs: tuple[str, ...]) -> Settings | None:
        """The preferences with ``pairs`` watched, checked as the settings file is read (a
        file this writes always loads again); None, with the reason shown, when they fail."""
        try:
            market = MarketSettings.model_validate(
                {**self._preferences.market.model_dump(), "watchlist": pairs})
        except ValidationError as error:
            self._watchlist.set_entry_error("; ".join(map(problem_text, error.errors())))
            return None
        return self._preferences.model_copy(update={"market": market})

    def _save_watchlist(self, settings: Settings) -> bool:
        problem = self._write_settings(settings)
        if problem is not None:
            self._watchlist.set_entry_error(problem)
            return False
        self._preferences = settings
        self.preferences_saved.emit(settings)
        return True

    # -- backtests ----------------------------------------------------------------------------

    def _backtest_history(self, symbol: str, timeframe: Timeframe) -> CandleSeries:
        return self._service.history(symbol, timeframe)

    def run_backtest(self, request: BacktestRequest) -> None:
        """Start ``request`` in the background; the panel shows progress and then the result."""
        if self._backtests.busy:
            self._backtest_panel.set_failed("a backtest is already running")
            return
        self._backtest_panel.set_running(f"Starting {request.strategy} on {request.symbol}…")
        self._backtests.start(request)

    def _on_backtest_finished(self, result: BacktestResult, seconds: float) -> None:
        self._backtest_panel.show_result(result, seconds)
        markers = []
        for trade in result.trades:
            markers.append(TradeMarker(trade.entry_time, trade.entry_price, Side.BUY, "entry"))
            if trade.exit_reason != "end_of_test":
                markers.append(TradeMarker(trade.exit_time, trade.exit_price, Side.SELL,
                                           trade.exit_reason))
        self._trade_markers[result.symbol] = markers
        if result.timeframe in TIMEFRAMES:
            self.select(symbol=result.symbol, timeframe=result.timeframe)
        if result.symbol == self._symbol:
            self._chart.set_trades(self._markers_of(result.symbol))
            if markers:
                self._chart.scroll_to_time(markers[-1].time)
        self.notify(Severity.INFO, "Backtest finished", self._backtest_panel.status_text,
                    desktop=False)

    def _on_backtest_failed(self, message: str) -> None:
        self._backtest_panel.set_failed(message)
        self.notify(Severity.ERROR, "Backtest failed", message, desktop=False)

    # -- persistence --------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        settings = self._settings
        self.set_indicators(self._chart.indicator_settings)
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
            self.restoreState(state, LAYOUT_VERSION)
        indicators = settings.value("chart/indicators")
        if isinstance(indicators, str) and indicators:
            try:
                self.set_indicators(IndicatorSettings(**json.loads(indicators)))
            except (ValueError, TypeError, TerminalError) as error:
                log.warning("ignoring the saved chart indicators: %s", error)
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
        settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        settings.setValue("chart/indicators", json.dumps(asdict(self._chart.indicator_settings)))
        if self._symbol is not None:
            settings.setValue("chart/symbol", self._symbol)
        settings.setValue("chart/timeframe", self._timeframe.code)
        settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        # Open dialogs are separate windows: they close with the window they belong to.
        for dialog in self.findChildren(QDialog):
            dialog.close()
        self._save_settings()
        # A long backtest would hold up the exit: it stops at its next check.
        self._backtests.cancel()
        if self._desk is not None:
            self._desk.close()
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        if self._watching is not None:
            self._service.unwatch(*self._watching)
            self._watching = None
        super().closeEvent(event)
        self.closed.emit()

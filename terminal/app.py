"""Composition root: the one module that knows every part and wires them together.

:func:`run_window` is ``python -m terminal``: it opens the store, builds the venue (the embedded
simulated market), the event bus, the market-data service and the main window, and runs them on
one asyncio loop that is Qt's event loop (qasync), so bus handlers may touch widgets directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import PySide6
import qasync
from PySide6.QtCore import QEvent, QSettings, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QImage
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from terminal.core.autotrader import AutoTrader
from terminal.core.bus import EventBus
from terminal.core.clock import SystemClock
from terminal.core.errors import InvalidArgument, TerminalError, VenueError
from terminal.core.events import (
    CandleUpdated,
    ErrorRaised,
    PredictionMade,
    TrainingFinished,
    WorkerStateChanged,
)
from terminal.core.fills import FillModel
from terminal.core.intents import OrderIntent
from terminal.core.model import OrderSide, OrderType, Timeframe, VenueKind
from terminal.core.orders import OrderManager
from terminal.core.paths import APP_DISPLAY_NAME, APP_NAME, resolve_data_dir
from terminal.core.ports import MarketDataVenue
from terminal.core.risk import RiskManager
from terminal.core.secrets import KeyStore, install_log_redaction
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.services import MarketDataService
from terminal.core.settings import (
    MarketSettings,
    Settings,
    SettingsFile,
    SimulatedMarketSettings,
    TradingSettings,
)
from terminal.core.storage import Store
from terminal.exchange.paper import PaperVenue
from terminal.exchange.setup import Venues, describe, exchange_pairs, open_venues
from terminal.ml.service import ForecastService
from terminal.resources import resource_path
from terminal.ui import theme
from terminal.ui.collector import GuiThreadCollector
from terminal.ui.forecasting import QUICK_MODEL, ForecastController
from terminal.ui.main_window import MainWindow
from terminal.widgets.notifications import Severity

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
#: What the window's run returns when the user asked for a restart (never an exit status).
_RESTART = -1
#: Platforms that draw into memory only: nothing can be shown to the user there.
_HEADLESS_PLATFORMS = ("offscreen", "minimal")
#: The longest a screenshot waits for the first live update of its chart.
_SCREENSHOT_LIVE_WAIT_S = 4.0
_SCREENSHOT_SETTLE_S = 0.1
#: The longest a screenshot waits for the forecasting worker to start, for the ridge model it
#: trains when the charted series has none, and for that model's forecast.
_SCREENSHOT_WORKER_WAIT_S = 120.0
_SCREENSHOT_TRAIN_WAIT_S = 180.0
_SCREENSHOT_FORECAST_WAIT_S = 30.0
#: Pauses between tries to reach an exchange at start-up.
_START_RETRY_DELAYS_S = (2.0, 5.0, 10.0, 30.0, 60.0)
#: How often a live account's open orders are checked on the exchange.
LIVE_SYNC_INTERVAL_S = 5.0

_T = TypeVar("_T")


@dataclass
class Terminal:
    """The running application's parts, as :func:`build_terminal` wires them.

    ``venues`` holds the market the window shows and the account orders go to (a paper
    account unless live trading is on); ``orders`` is the order manager that owns those
    orders, judged by ``risk`` (whose limits follow the saved preferences). ``trading``
    chooses what automated trading trades; it places orders only while the user has switched
    it on.
    ``forecasts`` runs the forecasting worker process; ``forecasting`` shows its results in the
    window.
    """

    store: Store
    venues: Venues
    bus: EventBus
    service: MarketDataService
    window: MainWindow
    orders: OrderManager
    forecasts: ForecastService
    forecasting: ForecastController
    risk: RiskManager
    trading: TradingSettings = field(default_factory=TradingSettings)
    fee_rate: float = 0.001
    auto_trader: AutoTrader | None = field(init=False, default=None)
    #: Preferences saved before trading started, applied once it has.
    _saved: Settings | None = field(init=False, default=None)
    _trading_started: bool = field(init=False, default=False)
    #: One change of automated trading or of the followed pairs at a time.
    _changing: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    _auto_watches: list[tuple[str, Timeframe]] = field(init=False, default_factory=list)
    _syncs: set[asyncio.Task[Any]] = field(init=False, default_factory=set)
    _unfollow: Callable[[], None] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # From the start, not once trading runs: a save while an exchange is still being
        # reached must not be lost (automated trading switched off, above all).
        self.window.preferences_saved.connect(self._apply_preferences)

    @property
    def venue(self) -> MarketDataVenue:
        """Where the prices come from."""
        return self.venues.market

    @property
    def paper(self) -> PaperVenue | None:
        """The paper account orders go to; None when trading live."""
        return self.venues.paper

    async def start_service(self) -> None:
        """Run the service's start-up; a failure is reported in the window, not raised.

        An exchange that cannot be reached is tried again (with growing pauses) until it
        answers or the window closes: the window is usable meanwhile, and the notice says so.
        """
        await self.start_forecasting()
        try:
            await self._until_reachable(self.service.start, "load market data")
            await self._until_reachable(self.start_trading, "open the account")
        except TerminalError as error:
            self.bus.publish(ErrorRaised(self.venue.display_name, str(error)))
        except Exception as error:
            log.exception("market data service failed to start")
            self.bus.publish(ErrorRaised(self.venue.display_name, f"cannot start: {error!r}"))

    async def _until_reachable(self, step: Callable[[], Awaitable[None]], what: str) -> None:
        failures = 0
        while True:
            try:
                await step()
                return
            except VenueError as error:
                if not error.retryable:
                    raise
                delay = _START_RETRY_DELAYS_S[min(failures, len(_START_RETRY_DELAYS_S) - 1)]
                failures += 1
                self.bus.publish(ErrorRaised(
                    self.venue.display_name,
                    f"cannot {what}: {error}; trying again in {delay:.0f} s"))
                await asyncio.sleep(delay)

    async def start_trading(self) -> None:
        """Open the account and reconcile it, then keep it current.

        A paper account first works its orders on the minutes that closed while the app was
        not running, then follows the live minutes. A live account is asked about its open
        orders every few seconds (fills happen on the exchange, not here).
        """
        symbols = self.service.symbols
        paper = self.paper
        if paper is not None:
            await paper.catch_up(symbols)
            for symbol in symbols:
                # The minute forming now, which the stream showed before the account
                # followed it: orders placed from here on meet this price at once.
                forming = self.service.forming(symbol, Timeframe.M1)
                if forming is not None:
                    paper.observe(symbol, forming, closed=False)
        await self.orders.start()
        desk = self.window.trading_desk
        for symbol in symbols:
            price = self._last_price(symbol)
            if price is not None:
                self.orders.update_price(symbol, price)
                if desk is not None:
                    desk.set_mark(symbol, price)
        if paper is not None:
            self._unfollow = paper.follow(self.bus, self._filled)
        else:
            self._keep(asyncio.create_task(self._poll_live_orders(), name="live-orders"))
        self.bus.subscribe(CandleUpdated, self._mark)
        if desk is not None:
            desk.start()
        self._trading_started = True
        saved, self._saved = self._saved, None
        if saved is not None:
            await self._apply_trading(saved)
        else:
            await self.start_auto_trading(self.trading)

    def _last_price(self, symbol: str) -> float | None:
        if self.paper is not None:
            price = self.paper.last_price(symbol)
            if price is not None:
                return float(price)
        forming = self.service.forming(symbol, Timeframe.M1)
        if forming is not None:
            return forming.close
        closed = self.service.history(symbol, Timeframe.M1, 1)
        return float(closed.close[-1]) if len(closed) else None

    async def _poll_live_orders(self) -> None:
        """Ask the exchange about open orders now and then; a failure is shown, then the
        next round tries again (the order manager never guesses an order's fate)."""
        while True:
            await asyncio.sleep(LIVE_SYNC_INTERVAL_S)
            if not self.orders.open_orders():
                continue
            try:
                await self.orders.sync()
            except TerminalError as error:
                self.bus.publish(ErrorRaised(self.venue.display_name,
                                             f"cannot check open orders: {error}"))
            except Exception as error:
                # A bug must not end the checks: live orders would go unwatched.
                log.exception("checking open orders failed")
                self.bus.publish(ErrorRaised(self.venue.display_name,
                                             f"cannot check open orders: {error!r}"))

    async def start_auto_trading(self, trading: TradingSettings) -> None:
        """(Re)start automated trading on ``trading``'s pairs, timeframe and strategy."""
        async with self._changing:
            await self._start_auto_trading(trading)

    async def _start_auto_trading(self, trading: TradingSettings) -> None:
        await self._stop_auto_trading()
        self.trading = trading
        timeframe = Timeframe(trading.timeframe)
        listed = set(self.service.symbols)
        pairs = [pair for pair in trading.pairs if pair in listed]
        if not pairs:
            self.bus.publish(ErrorRaised(
                "automated trading", f"none of the traded pairs ({', '.join(trading.pairs)})"
                                     f" is listed by {self.venue.display_name}"))
            return
        auto = AutoTrader(self.orders, self.bus, self._history, venue=self.venue.id,
                          timeframe=timeframe, pairs=pairs, strategy=trading.strategy,
                          fee=self.fee_rate)
        for pair in pairs:
            self.service.watch(pair, timeframe)
        self._auto_watches = [(pair, timeframe) for pair in pairs]
        auto.start()
        auto.enabled = trading.automated_trading
        self.auto_trader = auto
        what = f"{trading.strategy} on {', '.join(pairs)} at {timeframe.code}"
        money = ("with real money" if self.venues.kind is VenueKind.LIVE
                 else "on the paper account")
        if auto.enabled:
            self.window.set_auto_trading(
                f"Auto: {trading.strategy} {timeframe.code}",
                f"Automated trading is on: {what}, {money}; every order passes the risk"
                " manager", active=True)
        else:
            self.window.set_auto_trading(
                "Auto: off", f"Automated trading is off (it would trade {what});"
                             " Preferences → Trading switches it on", active=False)

    async def _stop_auto_trading(self) -> None:
        auto, self.auto_trader = self.auto_trader, None
        if auto is not None:
            await auto.stop()
        for pair, timeframe in self._auto_watches:
            self.service.unwatch(pair, timeframe)
        self._auto_watches = []

    def _history(self, key: SeriesKey, bars: int) -> CandleSeries:
        return self.service.history(key.symbol, key.timeframe, bars)

    def _apply_preferences(self, settings: Settings) -> None:
        """Saved preferences take effect at once: risk limits (a latched drawdown breaker
        stays latched), automated trading and the pairs followed on an exchange. Before
        trading has started they wait for it. A new market waits for a restart (the window
        offers one): where orders go never changes under open orders and positions."""
        self.risk.limits = settings.risk
        self.trading = settings.trading
        if not self._trading_started:
            self._saved = settings
            return
        self._keep(asyncio.ensure_future(self._apply_trading(settings)))

    async def _apply_trading(self, settings: Settings) -> None:
        """Automated trading stops first: switched off, it must not trade on through a
        download of new pairs. It starts again on the new settings afterwards."""
        async with self._changing:
            await self._stop_auto_trading()
            if self.venues.pairs is not None:
                wanted = exchange_pairs(settings)
                held = [s for s in self.service.symbols if s in self._held_symbols()]
                try:
                    await self.service.follow_pairs(tuple(dict.fromkeys((*wanted, *held))))
                except TerminalError as error:
                    self.bus.publish(ErrorRaised(self.venue.display_name,
                                                 f"the watchlist did not change: {error}"))
                except Exception as error:
                    log.exception("following the new pairs failed")
                    self.bus.publish(ErrorRaised(self.venue.display_name,
                                                 f"the watchlist did not change: {error!r}"))
            await self._start_auto_trading(settings.trading)

    def _held_symbols(self) -> set[str]:
        return ({p.symbol for p in self.orders.positions()
                 if p.amount > 0 and not self.orders.is_dust(p)}
                | {o.symbol for o in self.orders.open_orders()})

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._syncs.add(task)
        task.add_done_callback(self._syncs.discard)

    async def start_forecasting(self) -> None:
        """Spawn the forecasting worker (it loads torch in its own process, so the window
        never waits for it); a failure is reported in the window, not raised."""
        try:
            await self.forecasts.start()
        except Exception as error:
            log.exception("the forecasting worker failed to start")
            self.bus.publish(ErrorRaised("forecasting", f"cannot start the worker: {error!r}"))

    def _filled(self, symbol: str, _fills: object) -> None:
        self._keep(asyncio.create_task(self.orders.sync([symbol]), name=f"orders-sync-{symbol}"))

    def _mark(self, event: CandleUpdated) -> None:
        if event.key.venue == self.venue.id and event.key.timeframe is Timeframe.M1:
            self.orders.update_price(event.key.symbol, event.candle.close)

    async def shutdown(self) -> None:
        """Stop the live data and close the store; the window is left to its owner."""
        try:
            # First: the worker process is joined off the loop, and no forecast or retrain
            # is asked for while the market data stops.
            await self.forecasts.stop()
            if self._unfollow is not None:
                self._unfollow()
            for task in list(self._syncs):
                task.cancel()
            await asyncio.gather(*self._syncs, return_exceptions=True)
            await self._stop_auto_trading()
            await self.service.stop()
        finally:
            self.store.close()


def display_available() -> bool:
    """Whether Qt can open windows here (a desktop session, or a platform chosen explicitly)."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


#: What Qt's X11 plugin needs beyond a desktop's usual libraries (Debian/Ubuntu package names).
X11_PACKAGES = ("libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 "
                "libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 "
                "libxkbcommon-x11-0")


def x11_problem() -> str | None:
    """Why Qt could not open an X11 window here, or None.

    Without this check a missing system library makes Qt abort the process with a message
    that names neither the library nor the package to install.
    """
    if (not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM")
            or os.environ.get("WAYLAND_DISPLAY") or not os.environ.get("DISPLAY")):
        return None
    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    missing = None
    if plugin.is_file():
        try:
            ctypes.CDLL(str(plugin))
        except OSError as error:
            missing = str(error).split(":")[0]
    # Qt opens libxcb-cursor itself at run time, so loading the plugin does not reveal it.
    if missing is None and ctypes.util.find_library("xcb-cursor") is None:
        missing = "libxcb-cursor.so.0"
    if missing is None:
        return None
    return (f"cannot open a window: Qt's X11 support needs the system library {missing}, "
            f"which is not installed. On Debian or Ubuntu: sudo apt install {X11_PACKAGES}")


def application() -> QApplication:
    """The process's QApplication, created and themed on first use."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        app = QApplication([sys.argv[0] if sys.argv else APP_NAME])
    if app.property("terminal-themed") is not True:
        app.setOrganizationName(APP_NAME)
        app.setApplicationName(APP_NAME)
        app.setWindowIcon(QIcon(str(resource_path("icons", "app.svg"))))
        theme.apply_theme(app)
        app.setProperty("terminal-themed", True)
    return app


def build_terminal(data_dir: str | None, sim_speed: float | None, *,
                   settings: QSettings | None = None,
                   market: SimulatedMarketSettings | None = None,
                   preferences: Settings | None = None,
                   settings_file: SettingsFile | None = None,
                   keys: KeyStore | None = None,
                   exchange_api_url: str | None = None) -> Terminal:
    """Wire every part and create the window, without showing it or running the loop.

    The market and the account come from ``preferences`` (see :mod:`terminal.exchange.setup`);
    ``market`` replaces its simulated-market settings and ``sim_speed`` their speed. Every
    order is checked against the risk limits in ``preferences``. ``settings_file`` is where
    Preferences saves. ``keys`` holds the API key live trading uses; ``exchange_api_url``
    sends an exchange's REST requests to another host.
    Needs a QApplication (see :func:`application`). Raises :class:`TerminalError` when the
    data folder or the database cannot be used.
    """
    preferences = preferences or Settings()
    if market is not None:
        preferences = preferences.model_copy(update={"simulated": market})
    folder = resolve_data_dir(data_dir)
    store = Store.open(folder)
    try:
        fill_model = FillModel()
        venues = open_venues(preferences, store, keys=keys or KeyStore(),
                             fill_model=fill_model, sim_speed=sim_speed,
                             api_url=exchange_api_url)
        log.info("starting on %s", describe(venues))
        bus = EventBus()
        service = MarketDataService(store, venues.market, bus, venues.clock,
                                    history_days=venues.history_days, pairs=venues.pairs)
        window = MainWindow(service, bus, settings=settings, preferences=preferences,
                            settings_file=settings_file, kind=venues.kind)
        risk = RiskManager(preferences.risk, fee_rate=fill_model.fees.taker)
        orders = OrderManager(venues.account, store, bus, risk, mode=venues.mode,
                              clock=venues.clock)
        window.attach_trading(orders, clock=venues.clock)
        if venues.notice is not None:
            window.show_error(venues.notice)
            window.notify(Severity.WARNING, "Not on the market the settings ask for",
                          venues.notice)

        def history(key: SeriesKey, bars: int | None) -> CandleSeries:
            return service.history(key.symbol, key.timeframe, bars)

        # Models and their timestamps live in wall-clock time, whatever the market's speed.
        # The market-data service stores every closed minute as it streams (and fetches the
        # ones it missed), so a scheduled retrain finds the history current: refresh=None.
        forecasts = ForecastService(store, bus, SystemClock(), folder, history)
        forecasting = ForecastController(window, forecasts, bus, history)
    except BaseException:
        store.close()
        raise
    return Terminal(store, venues, bus, service, window, orders, forecasts, forecasting, risk,
                    trading=preferences.trading, fee_rate=fill_model.fees.taker)


def run_window(data_dir: str | None, sim_speed: float | None, *,
               keys_from_env: bool = False) -> int:
    """Open the main window and run until it is closed; returns the exit status.

    ``keys_from_env`` reads live trading's API key from the environment (``--keys-from-env``).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    if not display_available():
        print("error: no display found (DISPLAY is not set); run the terminal in a desktop "
              "session, or use the command line commands (see --help)", file=sys.stderr)
        return EXIT_FAILED
    problem = x11_problem()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    app = application()
    app.setQuitOnLastWindowClosed(False)  # the loop ends when the window says it closed
    settings_file = SettingsFile()
    while True:
        try:
            preferences = settings_file.load()
            terminal = build_terminal(data_dir, sim_speed, settings=QSettings(),
                                      preferences=preferences, settings_file=settings_file,
                                      keys=KeyStore(from_env=keys_from_env))
        except TerminalError as error:
            _report_startup_error(str(error))
            return EXIT_FAILED
        if settings_file.problem is not None:
            terminal.window.show_error(settings_file.problem)
        outcome = _run_on_qt_loop(app, _serve(terminal), terminal.window)
        if outcome != _RESTART:
            return int(outcome)
        # Everything was shut down as on quitting; the same process opens the new market.
        log.info("restarting on the saved settings")


def _run_on_qt_loop(app: QApplication, main: Coroutine[Any, Any, _T], window: MainWindow) -> _T:
    """Run ``main`` on a new qasync loop over Qt's, then close the loop and delete ``window``.

    The lifecycle rule of the GUI: every worker thread is done before the loop closes (the
    services wait for their threads' work in their ``stop``/``close``; closing the loop then
    joins its executor's threads), and Qt objects are destroyed on the GUI thread only. While
    the loop runs, Python's cycle collector runs on a GUI-thread timer; when it has closed, the
    window is deleted and what it and the loop leave in reference cycles is collected here.
    """
    with GuiThreadCollector():
        return _run_and_close(app, main, window)


def _run_and_close(app: QApplication, main: Coroutine[Any, Any, _T], window: MainWindow) -> _T:
    # A function of its own: once it returns, nothing references the closed loop, so the
    # collector's last collection frees its timers and threads on this thread.
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            return loop.run_until_complete(main)
    finally:
        asyncio.set_event_loop(None)
        _delete_now(window)


def _delete_now(window: MainWindow) -> None:
    """Close the window and delete it and its children now: the event loop that would have
    done it is gone, and a half-alive window would still be restyled (and crash) by a later
    theme change."""
    if window.isVisible():
        window.close()
    window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


async def _serve(terminal: Terminal) -> int:
    loop = asyncio.get_running_loop()
    terminal.bus.bind_loop(loop)
    closed = asyncio.Event()
    terminal.window.closed.connect(closed.set)
    restore_hooks = install_exception_hooks(terminal.bus)
    loop.set_exception_handler(_loop_exception_handler(terminal.bus))
    # Ctrl+C in the shell closes the window like File > Quit, so the shutdown stays clean.
    # The handler may run between any two bytecodes, even inside a paint: close from the loop.
    previous_sigint = signal.signal(
        signal.SIGINT, lambda *_: loop.call_soon_threadsafe(terminal.window.close))
    terminal.window.show()
    tray = _tray_icon(terminal.window)
    terminal.window.set_tray_icon(tray)
    if not terminal.window.preferences.first_run_done:
        terminal.window.show_first_run_wizard()
    starting = asyncio.create_task(terminal.start_service(), name="market-data-start")
    try:
        await closed.wait()
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await terminal.shutdown()
        restore_hooks()
        signal.signal(signal.SIGINT, previous_sigint)
        if tray is not None:
            tray.hide()
    return _RESTART if terminal.window.restart_wanted else EXIT_OK


async def _place_demo_orders(terminal: Terminal, symbol: str) -> None:
    """A market buy, a sell of part of it (one closed trade) and a resting limit buy below
    the market, on the paper account: what the README picture shows."""
    paper = terminal.paper
    price = None if paper is None else paper.last_price(symbol)
    if price is None:
        return
    orders = terminal.orders

    async def market(side: OrderSide, amount: float) -> None:
        placed = await orders.submit(OrderIntent(symbol, side, terminal.venues.clock.now_ms(),
                                                 amount=amount))
        order = placed.order
        for _ in range(150):  # a market order fills on the next live minute at the latest
            record = None if order is None else terminal.store.orders.get(
                order.client_order_id)
            if record is None or record.order.status.is_final:
                return
            await asyncio.sleep(0.02)

    await market(OrderSide.BUY, 0.05)
    await market(OrderSide.SELL, 0.02)
    await market(OrderSide.BUY, 0.03)
    await orders.submit(OrderIntent(symbol, OrderSide.BUY, terminal.venues.clock.now_ms(),
                                    type=OrderType.LIMIT, amount=0.02,
                                    price=float(price) * 0.985))


def _tray_icon(window: MainWindow) -> QSystemTrayIcon | None:
    """A system-tray icon for desktop notifications, where the desktop has a tray."""
    if not QSystemTrayIcon.isSystemTrayAvailable() or not QSystemTrayIcon.supportsMessages():
        return None
    tray = QSystemTrayIcon(QIcon(str(resource_path("icons", "app.svg"))), window)
    tray.setToolTip(APP_DISPLAY_NAME)
    tray.activated.connect(lambda _reason: (window.showNormal(), window.activateWindow()))
    tray.show()
    return tray


def _report_startup_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    if QGuiApplication.platformName() not in _HEADLESS_PLATFORMS:
        QMessageBox.critical(None, f"{APP_DISPLAY_NAME} cannot start", message)


def install_exception_hooks(bus: EventBus) -> Callable[[], None]:
    """Route uncaught exceptions (main thread and others) to the log and the window.

    A bug in one slot or thread then shows up in the status bar instead of ending the app.
    Returns a function that puts the previous hooks back.
    """
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook

    def report(kind: type[BaseException], error: BaseException,
               trace: TracebackType | None) -> None:
        log.error("unhandled exception", exc_info=(kind, error, trace))
        bus.publish_threadsafe(ErrorRaised("Internal error", _describe(error)))

    def on_exception(kind: type[BaseException], error: BaseException,
                     trace: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous_hook(kind, error, trace)
            return
        report(kind, error, trace)

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            previous_thread_hook(args)
            return
        report(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception

    def restore() -> None:
        sys.excepthook, threading.excepthook = previous_hook, previous_thread_hook

    return restore


def _loop_exception_handler(
        bus: EventBus) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        log.error("asyncio: %s", context.get("message"),
                  exc_info=error if isinstance(error, BaseException) else None)
        text = _describe(error) if isinstance(error, BaseException) else context["message"]
        bus.publish(ErrorRaised("Internal error", text))

    return handle


def _describe(error: BaseException) -> str:
    if isinstance(error, TerminalError):
        return str(error)
    return f"{type(error).__name__}: {error} (details in the log)"


def save_screenshot(output: Path, *, data_dir: str | None, sim_speed: float | None,
                    size: tuple[int, int], symbol: str | None = None,
                    timeframe: Timeframe | None = None, demo_orders: bool = False) -> Path:
    """Render the main window with its history loaded into a PNG of ``size`` pixels.

    Works without a display when the offscreen platform is chosen before the first Qt call.
    The window is laid out but never shown on screen, and nothing is remembered.
    ``demo_orders`` places a few paper orders first (see :func:`_place_demo_orders`).
    """
    if output.suffix.lower() != ".png":
        raise InvalidArgument(f"the screenshot must be a .png file, not {output.name}")
    if not output.parent.is_dir():
        raise InvalidArgument(f"the folder {output.parent} does not exist")
    app = application()
    # Always the simulated market: a picture that needs no network and shows the same
    # market on every machine, whatever market the window is set to.
    preferences = SettingsFile().load().model_copy(update={"market": MarketSettings()})
    terminal = build_terminal(data_dir, sim_speed, preferences=preferences)
    image = _run_on_qt_loop(app, _render(terminal, size, symbol, timeframe, demo_orders),
                            terminal.window)
    if not image.save(str(output), "PNG"):
        raise TerminalError(f"cannot write the screenshot {output}")
    return output


async def _forecast_shown(terminal: Terminal, key: SeriesKey) -> None:
    """Wait until the window shows a forecast of ``key``, first training (and activating) a
    ridge model on its history when it has no active model. A screenshot without a forecast
    is still taken when the worker cannot deliver one in time."""
    made, settled, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    bus = terminal.bus
    unsubscribers = [
        bus.subscribe(PredictionMade, lambda e: made.set() if e.key == key else None),
        bus.subscribe(WorkerStateChanged,
                      lambda e: settled.set() if e.state in ("idle", "stopped") else None),
        bus.subscribe(TrainingFinished, lambda e: finished.set() if e.key == key else None),
    ]
    try:
        if terminal.forecasts.worker.state not in ("idle", "stopped"):
            await asyncio.wait_for(settled.wait(), _SCREENSHOT_WORKER_WAIT_S)
        if terminal.forecasts.worker.state == "stopped":
            log.warning("the screenshot shows no forecast: the forecasting worker is not"
                        " running")
            return
        if terminal.forecasts.store.forecasts.active(key) is None:
            if terminal.forecasting.train(QUICK_MODEL, 0, True) is None:
                return
            await asyncio.wait_for(finished.wait(), _SCREENSHOT_TRAIN_WAIT_S)
        else:
            terminal.forecasts.forecast_now(key)
        await asyncio.wait_for(made.wait(), _SCREENSHOT_FORECAST_WAIT_S)
    except TimeoutError:
        log.warning("the screenshot shows no forecast: the worker did not deliver one in time")
    finally:
        for unsubscribe in unsubscribers:
            unsubscribe()


async def _render(terminal: Terminal, size: tuple[int, int], symbol: str | None,
                  timeframe: Timeframe | None, demo_orders: bool = False) -> QImage:
    terminal.bus.bind_loop(asyncio.get_running_loop())
    window = terminal.window
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    window.resize(*size)
    window.show()
    try:
        await terminal.start_forecasting()  # the worker loads while the history does
        await terminal.service.start()
        window.select(symbol=symbol, timeframe=timeframe)
        live = asyncio.Event()
        key = window.series_key
        unsubscribe = terminal.bus.subscribe(
            CandleUpdated, lambda event: live.set() if event.key == key else None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.wait(), _SCREENSHOT_LIVE_WAIT_S)
        unsubscribe()
        await terminal.start_trading()
        if demo_orders:
            await _place_demo_orders(terminal, window.symbol or "")
        trading = window.trading_desk
        if trading is not None:
            trading.refresh()
            for _ in range(100):  # the panels refresh on the loop, off this task
                await asyncio.sleep(0.02)
                if not trading.busy and not trading.refresh_pending:
                    break
        if key is not None:
            await _forecast_shown(terminal, key)
        # Let the loop run pending layout and paint events (processEvents() here would run
        # other tasks' steps inside this one, which asyncio does not survive).
        await asyncio.sleep(_SCREENSHOT_SETTLE_S)
        image = window.grab().toImage()
        # A high-density screen renders more pixels than asked for; the file has the size asked.
        wanted = QSize(*size)
        if image.size() != wanted:
            image = image.scaled(wanted, Qt.AspectRatioMode.IgnoreAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        return image
    finally:
        await terminal.shutdown()

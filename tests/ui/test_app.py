import asyncio
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from terminal import app as app_module
from terminal import cli
from terminal.app import build_terminal, install_exception_hooks, run_window
from terminal.core.bus import EventBus
from terminal.core.events import CandleUpdated, ErrorRaised, OrderFilled
from terminal.core.intents import OrderIntent
from terminal.core.model import OrderSide, OrderStatus, OrderType
from terminal.core.settings import Settings, SettingsFile, SimulatedMarketSettings
from terminal.core.storage import Store
from terminal.ui.main_window import MainWindow
from terminal.ui.theme import UP

pytestmark = pytest.mark.qt

#: Simulated seconds per real second: a new 1-minute candle every 0.1 s.
FAST = 600.0


def run_on_qt_loop(app: QApplication, coroutine, timeout_s: float = 30.0):
    import qasync

    loop = qasync.QEventLoop(app)
    try:
        with loop:
            return loop.run_until_complete(asyncio.wait_for(coroutine, timeout_s))
    finally:
        asyncio.set_event_loop(None)


def test_the_built_app_loads_history_and_follows_the_live_market(qapp, data_dir: Path) -> None:
    terminal = build_terminal(str(data_dir), FAST, market=SimulatedMarketSettings(history_days=1))
    window = terminal.window
    window.show()

    async def scenario() -> list[CandleUpdated]:
        terminal.bus.bind_loop(asyncio.get_running_loop())
        updates: list[CandleUpdated] = []
        terminal.bus.subscribe(
            CandleUpdated, lambda e: updates.append(e) if e.key == window.series_key else None)
        starting = asyncio.create_task(terminal.start_service())
        while not (window.chart.bar_count and len(updates) >= 3):
            await asyncio.sleep(0.02)
        # The window repaints a fast stream at most once a frame, so the chart may be one
        # tick behind the bus; it must still reach every candle the stream announced.
        while window.chart.last_candle.open_time < updates[2].candle.open_time:
            await asyncio.sleep(0.02)
        await starting
        await terminal.shutdown()
        return updates

    try:
        run_on_qt_loop(qapp, scenario())
    finally:
        window.close()
    assert window.chart.bar_count >= 1440 // 5 - 1  # a day of 5-minute candles
    texts = window.status_texts()
    assert "SIMULATED — Simulated market (600× speed)" in texts
    assert "Live" in texts[2]
    assert window.symbol == "BTC/USDT"


def test_the_app_trades_on_paper_and_resting_orders_fill_on_live_minutes(
        qapp, data_dir: Path) -> None:
    terminal = build_terminal(str(data_dir), FAST, market=SimulatedMarketSettings(history_days=1))

    async def scenario() -> tuple[OrderStatus, OrderStatus, list[OrderFilled]]:
        terminal.bus.bind_loop(asyncio.get_running_loop())
        filled: list[OrderFilled] = []
        terminal.bus.subscribe(OrderFilled, filled.append)
        await terminal.start_service()
        now = terminal.venue.now_ms()
        market = await terminal.orders.submit(OrderIntent("ETH/USDT", OrderSide.BUY, now,
                                                          amount=0.1))
        # Both fill on later live minutes: the market order at the next minute's open (or
        # at once when a forming minute was already seen), the stop when the price rises.
        price = float(terminal.paper.last_price("ETH/USDT") or 0)
        stop = await terminal.orders.submit(OrderIntent(
            "ETH/USDT", OrderSide.BUY, now, type=OrderType.STOP, amount=0.1,
            stop_price=price * 1.0001))
        assert market.order is not None and stop.order is not None
        ids = (market.order.client_order_id, stop.order.client_order_id)

        def statuses() -> list[OrderStatus]:
            records = [terminal.store.orders.get(i) for i in ids]
            return [r.order.status if r else OrderStatus.PENDING for r in records]

        # An order's status is stored before its fill (the sync awaits the venue's fills in
        # between): wait for both fills' events too, or shutdown may cancel the second.
        for _ in range(400):
            if all(s.is_final for s in statuses()) and len(filled) >= 2:
                break
            await asyncio.sleep(0.05)
        first, second = statuses()
        await terminal.shutdown()
        return first, second, filled

    try:
        first, second, filled = run_on_qt_loop(qapp, scenario(), timeout_s=60)
    finally:
        terminal.window.close()
    assert first is OrderStatus.FILLED
    assert second is OrderStatus.FILLED
    assert len(filled) == 2
    assert {e.fill.symbol for e in filled} == {"ETH/USDT"}


def test_run_window_runs_until_the_window_closes_then_shuts_down(qapp, data_dir: Path) -> None:
    seen: dict[str, object] = {}

    def watch() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if not windows:
            return
        window = windows[0]
        if window.chart.bar_count and "Live" in window.status_texts()[2]:
            first = seen.setdefault("first", window.chart.last_candle)
            if window.chart.last_candle != first:  # a live update reached the chart
                seen["title"] = window.windowTitle()
                window.close()

    def give_up() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow):
                widget.close()

    poll = QTimer()
    poll.timeout.connect(watch)
    poll.start(20)
    # A timer we can stop: a pending QTimer.singleShot would close a later test's window.
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(give_up)
    deadline.start(40_000)
    try:
        status = run_window(str(data_dir), FAST)
    finally:
        poll.stop()
        deadline.stop()
    assert status == 0
    assert "title" in seen, "no live update reached the chart"
    assert "SIMULATED" in str(seen["title"])
    with Store.open(data_dir) as store:  # closed cleanly: it opens again
        assert store.candles.summaries()


def test_restart_now_opens_the_window_again_on_the_saved_market(qapp, data_dir: Path) -> None:
    seen: list[str] = []
    reseeded = Settings(simulated=SimulatedMarketSettings(seed=3, history_days=1),
                        first_run_done=True)
    SettingsFile().save(Settings(simulated=SimulatedMarketSettings(history_days=1),
                                 first_run_done=True))

    def watch() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if not windows or not windows[0].chart.bar_count:
            return
        window = windows[0]
        if window.market_venue_id in seen:
            return
        seen.append(window.market_venue_id)
        if len(seen) == 1:
            SettingsFile().save(reseeded)  # what Preferences → Save does
            window._on_preferences_saved(reseeded)
            prompt = window.restart_prompt
            assert prompt is not None and "the simulated market" in prompt.text()
            [restart] = [b for b in prompt.buttons() if b.text() == "Restart now"]
            restart.click()
        else:
            window.close()

    poll = QTimer()
    poll.timeout.connect(watch)
    poll.start(20)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(lambda: [w.close() for w in QApplication.topLevelWidgets()
                                      if isinstance(w, MainWindow)])
    deadline.start(60_000)
    try:
        status = run_window(str(data_dir), FAST)
    finally:
        poll.stop()
        deadline.stop()
    assert status == 0
    assert seen == ["simulated", "simulated-3"]


def test_a_bad_data_dir_is_one_clear_error(qapp, tmp_path: Path, capsys) -> None:
    status = run_window(str(tmp_path / "missing"), None)
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the data directory")
    assert "Traceback" not in err


def test_uncaught_exceptions_are_logged_and_published(caplog) -> None:
    bus = EventBus()
    loop = asyncio.new_event_loop()
    bus.bind_loop(loop)
    errors: list[ErrorRaised] = []
    bus.subscribe(ErrorRaised, errors.append)
    previous = sys.excepthook
    restore = install_exception_hooks(bus)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            sys.excepthook(*sys.exc_info())
        thread = threading.Thread(target=lambda: 1 / 0)
        thread.start()
        thread.join()
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        restore()
        loop.close()
    assert sys.excepthook is previous
    assert [e.message for e in errors] == [
        "ValueError: boom (details in the log)",
        "ZeroDivisionError: division by zero (details in the log)",
    ]
    assert caplog.text.count("unhandled exception") == 2


def test_screenshot_command_writes_a_png_of_the_requested_size(qapp, data_dir: Path,
                                                               tmp_path: Path, capsys) -> None:
    out = tmp_path / "window.png"
    status = cli.main(["--data-dir", str(data_dir), "--sim-speed", str(FAST), "screenshot",
                       str(out), "--size", "960x600", "--symbol", "ethusdt",
                       "--timeframe", "15m"])
    assert status == 0
    assert capsys.readouterr().out.strip() == str(out)
    image = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB32)
    assert (image.width(), image.height()) == (960, 600)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(600, 960, 4)
    teal = tuple(int(UP[i:i + 2], 16) for i in (5, 3, 1))  # BGR, as RGB32 stores it
    assert (pixels[:, :, :3] == teal).all(axis=2).sum() > 100  # rising candles are drawn


def test_screenshot_of_an_unknown_symbol_fails_with_a_message(qapp, data_dir: Path,
                                                              tmp_path: Path, capsys) -> None:
    status = cli.main(["--data-dir", str(data_dir), "--sim-speed", str(FAST), "screenshot",
                       str(tmp_path / "x.png"), "--symbol", "DOGE/USDT"])
    assert status == 1
    assert "DOGE/USDT is not traded" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_missing_x11_libraries_are_named_before_qt_aborts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")

    def cannot_load(path: str) -> None:
        raise OSError("libxcb-icccm.so.4: cannot open shared object file")

    monkeypatch.setattr(app_module.ctypes, "CDLL", cannot_load)
    monkeypatch.setattr(app_module.Path, "is_file", lambda self: True)
    problem = app_module.x11_problem()
    assert problem is not None
    assert "libxcb-icccm.so.4, which is not installed" in problem
    assert "sudo apt install libxcb-cursor0" in problem

    monkeypatch.setattr(app_module.ctypes, "CDLL", lambda path: None)
    monkeypatch.setattr(app_module.ctypes.util, "find_library", lambda name: None)
    assert "libxcb-cursor.so.0" in (app_module.x11_problem() or "")

    monkeypatch.setattr(app_module.ctypes.util, "find_library", lambda name: f"lib{name}.so")
    assert app_module.x11_problem() is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(app_module.ctypes.util, "find_library", lambda name: None)
    assert app_module.x11_problem() is None


def test_automated_trading_follows_the_saved_preferences(qapp, data_dir: Path) -> None:
    from terminal.core.risk import RiskLimits
    from terminal.core.settings import Settings, TradingSettings

    terminal = build_terminal(str(data_dir), FAST, market=SimulatedMarketSettings(history_days=1))

    async def scenario() -> list[tuple]:
        terminal.bus.bind_loop(asyncio.get_running_loop())
        await terminal.start_service()
        seen = []
        auto = terminal.auto_trader
        assert auto is not None
        seen.append((auto.strategy_name, auto.enabled))
        chosen = Settings(trading=TradingSettings(pairs=("ETH/USDT", "DOGE/USDT"), timeframe="5m",
                                                  strategy="rsi_mean_reversion",
                                                  automated_trading=True),
                          risk=RiskLimits(max_open_trades=1))
        terminal.window.preferences_saved.emit(chosen)
        for _ in range(100):
            if terminal.auto_trader is not None and terminal.auto_trader is not auto:
                break
            await asyncio.sleep(0.02)
        auto = terminal.auto_trader
        assert auto is not None
        seen.append((auto.strategy_name, auto.enabled))
        seen.append((terminal.orders.risk.limits.max_open_trades,))
        seen.append((terminal.window.status_texts()[6],))
        await terminal.shutdown()
        seen.append((terminal.auto_trader,))
        return seen

    try:
        seen = run_on_qt_loop(qapp, scenario())
    finally:
        terminal.window.close()
    assert seen == [("sma_crossover", False), ("rsi_mean_reversion", True), (1,),
                    ("Auto: rsi_mean_reversion 5m",), (None,)]

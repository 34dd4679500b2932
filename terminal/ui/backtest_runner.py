"""Runs backtests off the GUI thread and hands the result back to it.

The candles are read and the engine runs on a worker thread of Qt's pool; the result comes
back through a queued signal, so the window keeps painting and streaming meanwhile. Reading
the store from a worker thread is safe: its engine opens one SQLite connection per thread, and
readers never block (WAL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from terminal.core.backtest import BacktestResult, run_backtest
from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from terminal.core.strategies import create_strategy
from terminal.widgets.backtest_panel import BacktestRequest

log = logging.getLogger(__name__)

HistorySource = Callable[[str, Timeframe], CandleSeries]
#: Steps reported while a run is under way: load, run, done.
STEPS = 3


class _Signals(QObject):
    progress = Signal(int, int, str)
    finished = Signal(object, float)
    failed = Signal(str)


class _Job(QRunnable):
    def __init__(self, request: BacktestRequest, history: HistorySource,
                 signals: _Signals) -> None:
        super().__init__()
        self._request = request
        self._history = history
        self._signals = signals

    def run(self) -> None:
        started = time.perf_counter()
        request = self._request
        try:
            self._signals.progress.emit(0, STEPS, f"Loading {request.symbol}"
                                                  f" {request.timeframe.code} candles…")
            strategy = create_strategy(request.strategy, request.params)
            candles = self._history(request.symbol, request.timeframe)
            # The warm-up bars before the period belong to the run: signals start on day one.
            first = int(candles.open_time.searchsorted(request.start_ms))
            candles = candles.take(max(0, first - strategy.warmup_bars()), len(candles))
            candles = candles.between(None, request.end_ms)
            if not len(candles):
                raise InvalidArgument(f"no {request.timeframe.code} candles of {request.symbol}"
                                      f" in the chosen period")
            self._signals.progress.emit(1, STEPS, f"Running {request.strategy} over"
                                                  f" {len(candles):,} bars…")
            fees = FeeSchedule(maker=request.fee_rate, taker=request.fee_rate)
            result = run_backtest(candles, strategy, symbol=request.symbol, cash=request.cash,
                                  fill_model=FillModel(fees))
            self._signals.finished.emit(result, time.perf_counter() - started)
        except TerminalError as error:
            self._signals.failed.emit(str(error))
        except Exception as error:
            log.exception("backtest failed")
            self._signals.failed.emit(f"the backtest failed: {error!r} (details in the log)")


class BacktestRunner(QObject):
    """Starts one backtest at a time; emits ``progress``, then ``finished`` or ``failed``."""

    progress = Signal(int, int, str)
    #: (BacktestResult, seconds taken)
    finished = Signal(object, float)
    failed = Signal(str)

    def __init__(self, history: HistorySource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._history = history
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.progress.connect(self.progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._busy = False
        self.last_result: BacktestResult | None = None

    @property
    def busy(self) -> bool:
        return self._busy

    def start(self, request: BacktestRequest) -> None:
        if self._busy:
            raise InvalidArgument("a backtest is already running; wait for it to finish")
        self._busy = True
        self._pool.start(_Job(request, self._history, self._signals))

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the worker is idle (shutdown and tests only)."""
        return self._pool.waitForDone(timeout_ms)

    def _on_finished(self, result: BacktestResult, seconds: float) -> None:
        self._busy = False
        self.last_result = result
        self.finished.emit(result, seconds)

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self.failed.emit(message)

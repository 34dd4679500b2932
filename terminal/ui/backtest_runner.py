"""Runs backtests off the GUI thread and hands the result back to it.

The candles are read and the engine runs on a worker thread of Qt's pool; the result comes
back through a queued signal, so the window keeps painting and streaming meanwhile. Reading
the store from a worker thread is safe: its engine opens one SQLite connection per thread, and
readers never block (WAL).

A run can be cancelled: the job's cancel flag is looked at after the candles are read and by
the engine about every hundredth of the bars, and the job then ends with ``cancelled``. Every
signal of a job carries its number, and only the current job's are passed on; once a run was
cancelled, whatever it still sends (a result it finished before it saw the flag, an error)
ends it as ``cancelled`` too, so a cancelled run's result is never shown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from terminal.core.backtest import BacktestResult, run_backtest
from terminal.core.errors import Cancelled, InvalidArgument, TerminalError
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from terminal.core.strategies import create_strategy
from terminal.widgets.backtest_panel import BacktestRequest

log = logging.getLogger(__name__)

HistorySource = Callable[[str, Timeframe], CandleSeries]


class _Signals(QObject):
    """What a job sends back, each signal led by the job's number."""

    progress = Signal(int, int, int, str)
    finished = Signal(int, object, float)
    failed = Signal(int, str)
    cancelled = Signal(int, str)


class _Job(QRunnable):
    def __init__(self, number: int, request: BacktestRequest, history: HistorySource,
                 signals: _Signals, cancel: threading.Event) -> None:
        super().__init__()
        self._number = number
        self._request = request
        self._history = history
        self._signals = signals
        self._cancel = cancel

    def run(self) -> None:
        started = time.perf_counter()
        request, number = self._request, self._number
        try:
            # A total of 0 means "no count yet": the bar stays busy while the store is read.
            self._signals.progress.emit(number, 0, 0, f"Loading {request.symbol}"
                                                      f" {request.timeframe.code} candles…")
            strategy = create_strategy(request.strategy, request.params)
            candles = self._history(request.symbol, request.timeframe)
            if self._cancel.is_set():
                raise Cancelled("the backtest was cancelled while its candles were read")
            # The warm-up bars before the period belong to the run: signals start on day one.
            first = int(candles.open_time.searchsorted(request.start_ms))
            candles = candles.take(max(0, first - strategy.warmup_bars()), len(candles))
            candles = candles.between(None, request.end_ms)
            if not len(candles):
                raise InvalidArgument(f"no {request.timeframe.code} candles of {request.symbol}"
                                      f" in the chosen period")
            running = f"Running {request.strategy} over {len(candles):,} bars…"

            def progress(done: int, total: int) -> None:
                self._signals.progress.emit(number, done, total, running)

            fees = FeeSchedule(maker=request.fee_rate, taker=request.fee_rate)
            result = run_backtest(candles, strategy, symbol=request.symbol, cash=request.cash,
                                  fill_model=FillModel(fees), progress=progress,
                                  cancel=self._cancel)
            self._signals.finished.emit(number, result, time.perf_counter() - started)
        except Cancelled as error:
            self._signals.cancelled.emit(number, str(error))
        except TerminalError as error:
            self._signals.failed.emit(number, str(error))
        except Exception as error:
            log.exception("backtest failed")
            self._signals.failed.emit(number, f"the backtest failed: {error!r} (details in the"
                                              f" log)")


class BacktestRunner(QObject):
    """Starts one backtest at a time; emits ``progress``, then one of ``finished``,
    ``failed`` or ``cancelled``. ``progress`` is (bars done, bars in all, what it is doing);
    a total of 0 means the count is not known yet."""

    progress = Signal(int, int, str)
    #: (BacktestResult, seconds taken)
    finished = Signal(object, float)
    failed = Signal(str)
    #: Why it stopped, e.g. "the backtest was cancelled after 1,200 of 8,000 bars".
    cancelled = Signal(str)

    def __init__(self, history: HistorySource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._history = history
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._signals.cancelled.connect(self._on_cancelled)
        self._jobs = 0
        # The running job's number and cancel flag.
        self._current: tuple[int, threading.Event] | None = None
        self.last_result: BacktestResult | None = None

    @property
    def busy(self) -> bool:
        """A run is under way (cancelled ones too, until their job has stopped)."""
        return self._current is not None

    @property
    def cancelling(self) -> bool:
        """The running job was asked to stop and has not yet."""
        return self._current is not None and self._current[1].is_set()

    def start(self, request: BacktestRequest) -> None:
        if self._current is not None:
            raise InvalidArgument("a backtest is already running; wait for it to finish or"
                                  " cancel it")
        self._jobs += 1
        cancel = threading.Event()
        self._current = (self._jobs, cancel)
        self._pool.start(_Job(self._jobs, request, self._history, self._signals, cancel))

    def cancel(self) -> bool:
        """Ask the running job to stop at its next check; False if nothing runs."""
        if self._current is None:
            return False
        self._current[1].set()
        return True

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the worker is idle (shutdown and tests only)."""
        return self._pool.waitForDone(timeout_ms)

    def _is_current(self, number: int) -> bool:
        return self._current is not None and self._current[0] == number

    def _close(self, number: int) -> bool:
        """End job ``number``; True when its outcome is to be passed on. A stale job's is
        dropped, and a cancelled job's becomes ``cancelled``."""
        if not self._is_current(number):
            return False
        cancelled = self.cancelling
        self._current = None
        if cancelled:
            self.cancelled.emit("the backtest was cancelled")
        return not cancelled

    def _on_progress(self, number: int, done: int, total: int, message: str) -> None:
        if self._is_current(number) and not self.cancelling:
            self.progress.emit(done, total, message)

    def _on_finished(self, number: int, result: BacktestResult, seconds: float) -> None:
        if self._close(number):
            self.last_result = result
            self.finished.emit(result, seconds)

    def _on_failed(self, number: int, message: str) -> None:
        if self._close(number):
            self.failed.emit(message)

    def _on_cancelled(self, number: int, message: str) -> None:
        if self._is_current(number):
            self._current = None
            self.cancelled.emit(message)

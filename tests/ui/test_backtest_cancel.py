"""Cancelling a backtest: the runner's signals and the panel's buttons, bar and status."""

from __future__ import annotations

import itertools
import threading

import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import QApplication

from terminal.core.backtest import BacktestResult
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from terminal.ui.backtest_runner import BacktestRunner
from terminal.widgets.backtest_panel import BacktestPanel, BacktestRequest
from tests.factories import make_series

pytestmark = pytest.mark.qt

#: How long a test waits for the worker thread before it fails (never a timing assertion).
WAIT_MS = 20_000


class GatedHistory:
    """A candle source that holds the worker inside the read until the test lets it go."""

    def __init__(self, series: CandleSeries) -> None:
        self.series = series
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, symbol: str, timeframe: Timeframe) -> CandleSeries:
        self.entered.set()
        if not self.release.wait(WAIT_MS / 1000):
            raise RuntimeError("the test never released the candle read")
        return self.series


class Outcomes:
    """Every ending a runner announced, in order."""

    def __init__(self, runner: BacktestRunner) -> None:
        self.seen: list[tuple[str, object]] = []
        runner.finished.connect(lambda result, seconds: self.seen.append(("finished", result)))
        runner.failed.connect(lambda message: self.seen.append(("failed", message)))
        runner.cancelled.connect(lambda message: self.seen.append(("cancelled", message)))


@pytest.fixture
def panel(qtbot) -> BacktestPanel:
    widget = BacktestPanel()
    qtbot.addWidget(widget)
    widget.set_symbols(["BTC/USDT", "ETH/USDT"], "BTC/USDT")
    widget.set_period(QDate(2023, 11, 14), QDate(2024, 3, 1))
    return widget


def wire(panel: BacktestPanel, runner: BacktestRunner) -> None:
    """What the window does: the panel asks, the runner runs, the panel shows."""
    panel.run_requested.connect(lambda request: (panel.set_running("Starting…"),
                                                 runner.start(request)))
    panel.cancel_requested.connect(runner.cancel)
    runner.progress.connect(panel.set_progress)
    runner.finished.connect(panel.show_result)
    runner.failed.connect(panel.set_failed)
    runner.cancelled.connect(panel.set_cancelled)


def request_of(panel: BacktestPanel) -> BacktestRequest:
    request = panel.validate()
    assert request is not None
    return request


def test_cancel_stops_the_run_and_a_new_run_completes(panel: BacktestPanel, qtbot) -> None:
    history = GatedHistory(make_series(3_000, Timeframe.H1))
    runner = BacktestRunner(history)
    outcomes = Outcomes(runner)
    wire(panel, runner)
    panel.run_button.click()
    assert history.entered.wait(WAIT_MS / 1000)
    assert runner.busy and panel.cancel_button.isEnabled()
    with qtbot.waitSignal(runner.cancelled, timeout=WAIT_MS) as stopped:
        panel.cancel_button.click()
        assert runner.cancelling and not panel.cancel_button.isEnabled()
        assert panel.status_text == "Cancelling the backtest…"
        history.release.set()
    assert stopped.args == ["the backtest was cancelled while its candles were read"]
    assert outcomes.seen == [("cancelled", stopped.args[0])]
    assert not runner.busy and runner.last_result is None
    assert panel.status_text == "Backtest cancelled while its candles were read."
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()

    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS) as done:
        panel.run_button.click()
    result = done.args[0]
    assert isinstance(result, BacktestResult) and runner.last_result is result
    assert [kind for kind, _ in outcomes.seen] == ["cancelled", "finished"]
    assert panel.stats_text()["Trades"][0] == str(result.metrics.trades)
    assert "vs buy & hold" in panel.status_text


def test_a_result_that_crosses_the_cancel_is_never_shown(panel: BacktestPanel, qtbot) -> None:
    """Cancel at the first count of bars: the job may stop at a later check or may already
    have finished by then; either way the run ends as cancelled and shows nothing."""
    runner = BacktestRunner(lambda symbol, timeframe: make_series(2_600, Timeframe.H1))
    outcomes = Outcomes(runner)
    wire(panel, runner)
    counted: list[tuple[int, int]] = []

    def cancel_once_counted(done: int, total: int, message: str) -> None:
        counted.append((done, total))
        if total > 0:
            panel.cancel_button.click()

    runner.progress.connect(cancel_once_counted)
    with qtbot.waitSignal(runner.cancelled, timeout=WAIT_MS):
        panel.run_button.click()
    assert runner.wait(WAIT_MS)
    QApplication.processEvents()  # whatever the job sent before it stopped arrives now
    assert [kind for kind, _ in outcomes.seen] == ["cancelled"]
    assert runner.last_result is None and panel.stats_text() == {}
    assert panel.curve_lengths() == (0, 0)
    # Nothing the job reported after the cancel reached the panel.
    assert counted[-1][1] > 0 and counted[-1][0] < counted[-1][1]
    assert panel.status_text.startswith("Backtest cancelled at ")
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_progress_counts_bars_and_ends_at_all_of_them(panel: BacktestPanel, qtbot) -> None:
    runner = BacktestRunner(lambda symbol, timeframe: make_series(3_000, Timeframe.H1))
    wire(panel, runner)
    reports: list[tuple[int, int]] = []
    runner.progress.connect(lambda done, total, message: reports.append((done, total)))
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        panel.run_button.click()
    assert reports[0] == (0, 0), "the read comes first, with no count yet"
    counted = reports[1:]
    assert len(counted) > 10
    totals = {total for _, total in counted}
    assert len(totals) == 1 and counted[-1][0] == totals.pop()
    assert all(b[0] > a[0] for a, b in itertools.pairwise(counted))


def test_the_panel_buttons_follow_the_run(panel: BacktestPanel, qtbot) -> None:
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    with qtbot.assertNotEmitted(panel.cancel_requested):
        panel.cancel_button.click()  # disabled: nothing to cancel
    panel.set_running("Starting sma_crossover on BTC/USDT…")
    assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    assert panel.progress_text == ""
    panel.set_progress(0, 0, "Loading BTC/USDT 1h candles…")
    assert panel.progress_text == ""
    panel.set_progress(1_234, 4_000, "Running sma_crossover over 4,000 bars…")
    assert panel.progress_text == "30%"
    with qtbot.waitSignal(panel.cancel_requested, timeout=1_000):
        panel.cancel_button.click()
    assert not panel.cancel_button.isEnabled() and not panel.run_button.isEnabled()
    # A report already on its way when Cancel was pressed changes nothing.
    panel.set_progress(2_000, 4_000, "Running sma_crossover over 4,000 bars…")
    assert panel.status_text == "Cancelling the backtest…" and panel.progress_text == "30%"
    panel.set_cancelled()
    assert panel.status_text == "Backtest cancelled at 30% (1,234 of 4,000 bars)."
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert not panel.running


def test_escape_cancels_a_run_and_only_a_run(panel: BacktestPanel, qtbot) -> None:
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    panel.fee_edit.setFocus()
    with qtbot.assertNotEmitted(panel.cancel_requested):
        qtbot.keyClick(panel.fee_edit, Qt.Key.Key_Escape)
    panel.set_running("Starting…")
    with qtbot.waitSignal(panel.cancel_requested, timeout=1_000):
        qtbot.keyClick(panel.fee_edit, Qt.Key.Key_Escape)
    assert panel.status_text == "Cancelling the backtest…"


def test_after_a_cancel_the_status_says_the_figures_are_older(panel: BacktestPanel,
                                                              qtbot) -> None:
    runner = BacktestRunner(lambda symbol, timeframe: make_series(3_000, Timeframe.H1))
    wire(panel, runner)
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS):
        panel.run_button.click()
    shown = panel.stats_text()
    panel.set_running("Starting…")
    panel.set_progress(500, 2_000, "Running…")
    panel.cancel_button.click()
    panel.set_cancelled()
    assert panel.status_text == ("Backtest cancelled at 25% (500 of 2,000 bars). The figures"
                                 " shown are from the previous run.")
    assert panel.stats_text() == shown

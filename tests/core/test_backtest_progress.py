"""Watching a backtest's progress and cancelling it."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from terminal.core.backtest import PROGRESS_REPORTS, BacktestResult, Progress, run_backtest
from terminal.core.errors import Cancelled, TerminalError
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.model import Timeframe
from terminal.core.optimize import OptimizationCancelled
from terminal.core.series import CandleSeries
from terminal.core.strategies import SmaCrossover
from tests.factories import make_series

BARS = 20_000
STRATEGY = {"fast": 5, "slow": 12}
#: Bars after the warm-up: what progress counts.
TOTAL = BARS - SmaCrossover(STRATEGY).warmup_bars()


@pytest.fixture(scope="module")
def candles() -> CandleSeries:
    return make_series(BARS, Timeframe.H1, seed=3)


def backtest(candles: CandleSeries, progress: Progress | None = None,
             cancel: threading.Event | None = None) -> BacktestResult:
    return run_backtest(candles, SmaCrossover(STRATEGY),
                        fill_model=FillModel(FeeSchedule(0.001, 0.001)), progress=progress,
                        cancel=cancel)


def test_progress_rises_to_the_bar_count_and_changes_nothing(candles: CandleSeries) -> None:
    reports: list[tuple[int, int]] = []
    watched = backtest(candles, progress=lambda done, total: reports.append((done, total)),
                       cancel=threading.Event())
    plain = backtest(candles)
    assert {report[1] for report in reports} == {TOTAL}
    done = [report[0] for report in reports]
    assert done[0] == 0 and done[-1] == TOTAL
    assert all(later > earlier for earlier, later in itertools.pairwise(done))
    # About one report per hundredth of the bars: enough for a smooth bar, few enough to cost
    # nothing.
    assert PROGRESS_REPORTS // 2 <= len(reports) <= PROGRESS_REPORTS + 2
    assert plain.trades and watched.trades == plain.trades
    assert watched.fills == plain.fills
    assert np.array_equal(watched.equity, plain.equity)
    assert watched.metrics == plain.metrics and watched.lookahead_bar == plain.lookahead_bar


def test_a_set_cancel_flag_stops_the_engine_at_its_next_check(candles: CandleSeries) -> None:
    cancel = threading.Event()
    reports: list[int] = []

    def progress(done: int, total: int) -> None:
        reports.append(done)
        if done >= total // 3:
            cancel.set()

    with pytest.raises(Cancelled, match=rf"the backtest was cancelled after [\d,]+ of"
                                         rf" {TOTAL:,} bars") as caught:
        backtest(candles, progress=progress, cancel=cancel)
    assert isinstance(caught.value, TerminalError)
    stopped_at = int(str(caught.value).split("after ")[1].split(" of")[0].replace(",", ""))
    # The check right after the flag was set stopped it: nothing was reported past it.
    assert reports[-1] < stopped_at < BARS // 2
    assert all(done < BARS // 2 for done in reports)


def test_a_cancel_before_the_start_runs_nothing(candles: CandleSeries) -> None:
    cancel = threading.Event()
    cancel.set()
    reports: list[int] = []
    with pytest.raises(Cancelled, match="after 0 of"):
        backtest(candles, progress=lambda done, total: reports.append(done), cancel=cancel)
    assert reports == []


def test_a_cancel_after_the_last_bar_still_returns_no_result(candles: CandleSeries) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == total:
            cancel.set()

    with pytest.raises(Cancelled, match=f"after {TOTAL:,} of {TOTAL:,} bars"):
        backtest(candles, progress=progress, cancel=cancel)


def test_every_cancelled_job_is_one_kind_of_error() -> None:
    assert issubclass(OptimizationCancelled, Cancelled)

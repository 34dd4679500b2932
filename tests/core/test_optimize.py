import json
import math
import threading
from dataclasses import replace

import numpy as np
import pytest

from terminal.core.backtest import run_backtest
from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe
from terminal.core.optimize import (
    MAX_POINTS,
    PROFIT_FACTOR_CAP,
    Evaluation,
    Objective,
    OptimizationCancelled,
    RunSettings,
    Window,
    _ranked,
    grid_points,
    random_points,
    search,
    walk_forward,
    walk_forward_windows,
)
from terminal.core.series import CandleSeries
from terminal.core.strategies import SmaCrossover
from terminal.core.strategy import ParamValue
from tests.factories import START_MS

SMA = "sma_crossover"
GRID = {"fast": [3, 5, 8], "slow": [12, 20]}


def hourly(count: int, seed: int = 5) -> CandleSeries:
    """A trending-then-choppy hourly random walk with wicks, so crossovers come and go."""
    rng = np.random.default_rng(seed)
    times = START_MS + np.arange(count, dtype=np.int64) * Timeframe.H1.ms
    drift = np.where(np.arange(count) % 300 < 150, 0.0008, -0.0006)
    close = 100 * np.exp(np.cumsum(rng.normal(drift, 0.006, count)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, count)))
    return CandleSeries(Timeframe.H1, times, open_, high, low, close, rng.gamma(2, 50, count))


CANDLES = hourly(900)


def direct(candles: CandleSeries, params: dict[str, ParamValue], start: int, stop: int,
           settings: RunSettings | None = None):  # type: ignore[no-untyped-def]
    """What one evaluation must equal: a plain backtest over the span, warmed up on the bars
    before it."""
    run = settings or RunSettings()
    strategy = SmaCrossover(params)
    first = max(0, start - strategy.warmup_bars())
    return run_backtest(candles.take(first, stop), strategy, symbol=run.symbol, cash=run.cash,
                        fill_model=run.fill_model(), risk=run.risk_check(), lookahead_cuts=0)


# --- parameter sets -------------------------------------------------------------------------

def test_grid_is_every_combination_with_defaults_for_the_rest() -> None:
    points = grid_points(SMA, {"fast": ["10", "20", "20"], "slow": [50.0, 100]})
    assert points == [{"fast": 10, "slow": 50}, {"fast": 10, "slow": 100},
                      {"fast": 20, "slow": 50}, {"fast": 20, "slow": 100}]
    assert all(isinstance(p["fast"], int) for p in points)
    assert grid_points(SMA, {"stop_loss_pct": ["1.5"]}) == [{"stop_loss_pct": 1.5}]


@pytest.mark.parametrize(("grid", "message"), [
    ({"speed": [1]}, r"no parameter 'speed'; valid parameters: fast, slow"),
    ({"fast": []}, "the grid for fast has no values"),
    ({"fast": ["1"]}, "fast must be between 2 and 1000, got 1"),
    ({"fast": ["2.5"]}, "fast must be a whole number"),
    ({"fast": ["ten"]}, "fast must be a number, got 'ten'"),
    ({"fast": list(range(2, 202)), "slow": list(range(3, 103))}, "20,000 parameter sets"),
])
def test_bad_grids_are_refused(grid: dict[str, list[object]], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        grid_points(SMA, grid)  # type: ignore[arg-type]


def test_unknown_and_unsearchable_strategies_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown strategy 'nope'"):
        grid_points("nope", {"fast": [2]})
    with pytest.raises(InvalidArgument, match="predictions"):
        grid_points("model_signal", {"margin": [0.0]})


def test_random_points_stay_in_range_keep_kinds_and_repeat_with_the_seed() -> None:
    ranges = {"fast": (5.0, 9.0), "width": (1.0, 1.5)}
    with pytest.raises(InvalidArgument, match="no parameter 'width'"):
        random_points(SMA, ranges, 5)
    points = random_points("bollinger_breakout", {"period": (5, 9), "width": (1.0, 1.5)}, 200,
                           seed=3)
    assert len(points) == 200
    periods = {p["period"] for p in points}
    assert periods == {5, 6, 7, 8, 9}  # both ends included
    assert all(isinstance(p["period"], int) for p in points)
    assert all(1.0 <= p["width"] <= 1.5 and isinstance(p["width"], float) for p in points)
    again = random_points("bollinger_breakout", {"period": (5, 9), "width": (1.0, 1.5)}, 200,
                          seed=3)
    other = random_points("bollinger_breakout", {"period": (5, 9), "width": (1.0, 1.5)}, 200,
                          seed=4)
    assert again == points and other != points


@pytest.mark.parametrize(("ranges", "count", "message"), [
    ({}, 5, "at least one parameter range"),
    ({"fast": (5, 9)}, 0, "at least one draw"),
    ({"fast": (9, 5)}, 5, "runs from 9 down to 5; give the low end first"),
    ({"fast": (1, 5)}, 5, "fast must be between 2 and 1000"),
    ({"fast": (2, 5)}, MAX_POINTS + 1, "more than the 10,000"),
])
def test_bad_random_ranges_are_refused(ranges: dict[str, tuple[float, float]], count: int,
                                       message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        random_points(SMA, ranges, count)


# --- walk-forward windows -------------------------------------------------------------------

def test_rolling_windows_step_by_the_out_of_sample_length() -> None:
    assert walk_forward_windows(100, 40, 20) == (
        Window(0, (0, 40), (40, 60)), Window(1, (20, 60), (60, 80)),
        Window(2, (40, 80), (80, 100)))
    # Bars after the last whole out-of-sample window are left out.
    assert walk_forward_windows(119, 40, 20)[-1].out_of_sample == (80, 100)


def test_anchored_windows_always_start_at_the_first_bar() -> None:
    windows = walk_forward_windows(100, 40, 20, anchored=True)
    assert [w.in_sample for w in windows] == [(0, 40), (0, 60), (0, 80)]
    assert [w.out_of_sample for w in windows] == [(40, 60), (60, 80), (80, 100)]


def test_windows_that_do_not_fit_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="59 candles are too few for one walk-forward"
                                              " window of 40 in-sample and 20"):
        walk_forward_windows(59, 40, 20)
    with pytest.raises(InvalidArgument, match="at least 2 in-sample and 2 out-of-sample"):
        walk_forward_windows(100, 1, 20)


# --- search ---------------------------------------------------------------------------------

def test_search_ranks_every_set_by_the_objective_and_matches_plain_backtests() -> None:
    points = grid_points(SMA, GRID)
    result = search(CANDLES, SMA, points, objective=Objective.TOTAL_RETURN)
    assert len(result.evaluations) == len(points) == 6 and result.skipped == ()
    returns = [e.metrics.total_return for e in result.evaluations if e.metrics is not None]
    assert returns == sorted(returns, reverse=True) and len(set(returns)) > 1
    for evaluation in result.evaluations:
        expected = direct(CANDLES, evaluation.params, 0, len(CANDLES)).metrics
        assert evaluation.metrics == expected
        assert (evaluation.start, evaluation.stop) == (evaluation.params["slow"], len(CANDLES))
    assert result.best is result.evaluations[0] and result.lookahead_bar is None
    payload = json.loads(json.dumps(result.to_json(top=2), allow_nan=False))
    assert payload["tried"] == 6 and len(payload["ranking"]) == 2
    assert payload["best"]["params"]["fast"] == result.evaluations[0].params["fast"]


def test_search_by_sharpe_and_profit_factor_orders_by_those_figures() -> None:
    points = grid_points(SMA, GRID)
    for objective in (Objective.SHARPE, Objective.PROFIT_FACTOR):
        result = search(CANDLES, SMA, points, objective=objective)
        scores = [e.score(objective) for e in result.evaluations]
        assert scores == sorted(scores, reverse=True)


def test_refused_sets_are_skipped_with_their_reason_and_duplicates_run_once() -> None:
    points = [{"fast": 30, "slow": 20}, {"fast": 5, "slow": 20}, {"fast": 5, "slow": 20},
              {"fast": 5}]
    result = search(CANDLES, SMA, points)
    assert [e.params["fast"] for e in result.evaluations] == [5, 5]
    assert {e.params["slow"] for e in result.evaluations} == {20, 50}
    ((params, reason),) = result.skipped
    assert params == {"fast": 30, "slow": 20} and "fast (30) must be below slow (20)" in reason
    with pytest.raises(InvalidArgument, match=r"no parameter set to try: .*must be below slow"):
        search(CANDLES, SMA, [{"fast": 30, "slow": 20}])


def test_a_set_needing_more_history_than_there_is_ranks_last_with_its_reason() -> None:
    short = CANDLES.take(0, 120)
    result = search(short, SMA, [{"fast": 5, "slow": 200}, {"fast": 5, "slow": 20}])
    assert result.evaluations[0].params["slow"] == 20
    last = result.evaluations[-1]
    assert last.metrics is None and last.error is not None and "needs at least 202" in last.error
    assert last.score(Objective.SHARPE) == -math.inf
    json.dumps(result.to_json(), allow_nan=False)


def test_objective_parse_and_scores_of_degenerate_runs() -> None:
    assert Objective.parse(" Total-Return ") is Objective.TOTAL_RETURN
    with pytest.raises(InvalidArgument, match="unknown objective 'calmar'; use one of: sharpe"):
        Objective.parse("calmar")
    flat = run_backtest(CANDLES.take(0, 60), SmaCrossover({"fast": 5, "slow": 57}),
                        lookahead_cuts=0).metrics
    assert flat.trades == 0
    assert Objective.SHARPE.score(flat) == 0.0
    assert Objective.PROFIT_FACTOR.score(flat) == -math.inf


def test_a_profit_factor_beyond_the_cap_ranks_by_total_return() -> None:
    lucky = run_backtest(CANDLES.take(0, 60), SmaCrossover({"fast": 5, "slow": 57}),
                         lookahead_cuts=0).metrics
    one_win = replace(lucky, trades=1, profit_factor=None, total_return=0.01)
    steady = replace(lucky, trades=80, profit_factor=25.0, total_return=0.4)
    modest = replace(lucky, trades=80, profit_factor=2.0, total_return=0.9)
    assert Objective.PROFIT_FACTOR.score(one_win) == PROFIT_FACTOR_CAP
    assert Objective.PROFIT_FACTOR.score(steady) == PROFIT_FACTOR_CAP
    assert Objective.PROFIT_FACTOR.score(modest) == 2.0
    ranked = _ranked([Evaluation({"n": 1}, 0, 60, one_win), Evaluation({"n": 2}, 0, 60, modest),
                      Evaluation({"n": 3}, 0, 60, steady)], Objective.PROFIT_FACTOR)
    assert [e.params["n"] for e in ranked] == [3, 1, 2]


def test_bad_run_settings_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="starting cash"):
        RunSettings(cash=-5)
    with pytest.raises(InvalidArgument, match=r"fee is a fraction between 0 and 1, got 1\.5"):
        RunSettings(fee=1.5)
    with pytest.raises(InvalidArgument, match="worker processes must be at least 1"):
        search(CANDLES, SMA, [{"fast": 5, "slow": 20}], workers=0)


# --- walk-forward ---------------------------------------------------------------------------

def walk(candles: CandleSeries = CANDLES, **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {"in_sample_bars": 300, "out_of_sample_bars": 150,
                                  "objective": Objective.TOTAL_RETURN}
    options.update(kwargs)
    return walk_forward(candles, SMA, grid_points(SMA, GRID), **options)  # type: ignore[arg-type]


def test_each_window_chooses_the_best_in_sample_set_and_trades_it_out_of_sample() -> None:
    result = walk()
    assert [w.window for w in result.windows] == list(walk_forward_windows(900, 300, 150))
    for window in result.windows:
        start, stop = window.window.in_sample
        runs = {(p["fast"], p["slow"]): direct(CANDLES, p, start, stop).metrics.total_return
                for p in grid_points(SMA, GRID)}
        assert window.params is not None and window.candidates == 6
        assert runs[window.params["fast"], window.params["slow"]] == max(runs.values())
        assert window.in_sample == direct(CANDLES, window.params, start, stop).metrics
        oos = direct(CANDLES, window.params, *window.window.out_of_sample)
        assert window.out_of_sample == oos.metrics
        assert window.out_of_sample_ms == (int(CANDLES.open_time[window.window.out_of_sample[0]]),
                                           int(CANDLES.open_time[window.window.out_of_sample[1]
                                                                 - 1]))


def test_the_out_of_sample_runs_chain_into_one_equity_curve() -> None:
    result = walk()
    assert np.array_equal(result.times, CANDLES.open_time[300:900])
    assert len(result.equity) == len(result.returns) == 600 and result.returns[0] == 0.0
    capital, pieces, trades, held_bars = 10_000.0, [], 0, 0.0
    for window in result.windows:
        assert window.params is not None
        run = direct(CANDLES, window.params, *window.window.out_of_sample)
        pieces.append(run.equity * capital / 10_000.0)
        capital *= run.metrics.final_equity / 10_000.0
        trades += run.metrics.trades
        # No run holds at its first close (its first decision fills a bar later).
        held_bars += run.metrics.exposure * (len(run.equity) - 1)
    assert result.equity == pytest.approx(np.concatenate(pieces), rel=1e-12)
    assert result.metrics.exposure == pytest.approx(held_bars / 599)
    assert result.metrics.final_equity == pytest.approx(capital, rel=1e-12)
    assert result.metrics.trades == trades > 0
    assert result.metrics.initial_equity == 10_000.0
    payload = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert payload["out_of_sample"]["bars"] == 600
    assert payload["out_of_sample"]["final_equity"] == pytest.approx(capital)
    assert len(payload["windows"]) == 4 and payload["peeking"] == []
    assert payload["degradation"]["measure"] == "annualised_log_return"


def test_selection_never_sees_an_out_of_sample_bar() -> None:
    # Two histories that agree up to bar 600 and then part ways completely.
    later = hourly(900, seed=99)
    scale = CANDLES.close[599] / later.open[600]
    other = CandleSeries(Timeframe.H1, CANDLES.open_time,
                         *(np.r_[getattr(CANDLES, f)[:600], getattr(later, f)[600:] * scale]
                           for f in ("open", "high", "low", "close")),
                         np.r_[CANDLES.volume[:600], later.volume[600:]])
    ours, theirs = walk(), walk(other)
    for mine, changed in zip(ours.windows, theirs.windows, strict=True):
        if mine.window.in_sample[1] <= 600:
            assert (mine.params, mine.in_sample) == (changed.params, changed.in_sample)
        if mine.window.out_of_sample[1] <= 600:
            assert mine.out_of_sample == changed.out_of_sample
    assert ours.equity[:300] == pytest.approx(theirs.equity[:300], rel=0, abs=0)
    assert not np.array_equal(ours.equity, theirs.equity)


def test_anchored_walk_forward_grows_its_in_sample_window() -> None:
    result = walk(anchored=True)
    assert result.anchored and [w.window.in_sample for w in result.windows] == [
        (0, 300), (0, 450), (0, 600), (0, 750)]
    for window in result.windows:
        assert window.params is not None
        assert window.in_sample == direct(CANDLES, window.params, 0,
                                          window.window.in_sample[1]).metrics


def test_degradation_compares_window_by_window() -> None:
    result = walk(objective=Objective.SHARPE)
    pairs = [(w.in_sample.sharpe, w.out_of_sample.sharpe) for w in result.windows
             if w.in_sample is not None and w.out_of_sample is not None]
    pairs = [(a or 0.0, b or 0.0) for a, b in pairs]
    degradation = result.degradation
    assert degradation.windows == len(pairs) == 4
    assert degradation.in_sample == pytest.approx(np.mean([a for a, _ in pairs]))
    assert degradation.out_of_sample == pytest.approx(np.mean([b for _, b in pairs]))
    if degradation.in_sample and degradation.in_sample > 0:
        assert degradation.ratio == pytest.approx(degradation.out_of_sample
                                                  / degradation.in_sample)


def test_a_window_too_short_for_any_set_stays_flat() -> None:
    # 60 in-sample bars cannot warm up slow=50 plus decide and fill in the first window.
    points = [{"fast": 5, "slow": 59}]
    result = walk_forward(CANDLES.take(0, 200), SMA, points, in_sample_bars=60,
                          out_of_sample_bars=70)
    first = result.windows[0]
    assert first.params is None and first.out_of_sample is None
    assert "no parameter set" in first.note
    assert result.equity[:70] == pytest.approx(np.full(70, 10_000.0))
    assert result.windows[1].params == {"fast": 5, "slow": 59, "stop_loss_pct": 0.0,
                                        "take_profit_pct": 0.0, "trailing_stop_pct": 0.0}


# --- processes, progress, cancel ------------------------------------------------------------

def test_a_pool_of_two_workers_gives_the_same_results_as_one() -> None:
    points = grid_points(SMA, GRID)
    seen: list[tuple[int, int]] = []
    alone = search(CANDLES, SMA, points)
    pooled = search(CANDLES, SMA, points, workers=2, progress=lambda d, t: seen.append((d, t)))
    assert pooled.evaluations == alone.evaluations
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    walked_alone = walk()
    walked = walk(workers=2)
    assert np.array_equal(walked.equity, walked_alone.equity)
    assert [w.params for w in walked.windows] == [w.params for w in walked_alone.windows]
    assert walked.metrics == walked_alone.metrics


def test_progress_counts_every_backtest_once() -> None:
    seen: list[tuple[int, int]] = []
    walk(progress=lambda done, total: seen.append((done, total)))
    # Six sets in each of four windows, then one out-of-sample run per window.
    assert seen[-1] == (28, 28)
    assert all(total == 28 for _, total in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and len(set(done)) == len(done)


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_stops_between_chunks(workers: int) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()

    points = grid_points(SMA, {"fast": [3, 4, 5, 6, 7, 8, 9, 10], "slow": [12, 20, 30]})
    with pytest.raises(OptimizationCancelled, match=r"cancelled after \d+ of 24 backtests"):
        search(CANDLES, SMA, points, workers=workers, progress=progress, cancel=cancel)
    assert seen and seen[-1] < 24


def test_a_cancel_set_before_the_start_runs_nothing() -> None:
    cancel = threading.Event()
    cancel.set()
    seen: list[int] = []
    with pytest.raises(OptimizationCancelled, match="after 0 of"):
        walk(cancel=cancel, progress=lambda d, t: seen.append(d))
    assert seen == []


def test_run_settings_carry_costs_into_every_backtest() -> None:
    costly = RunSettings(fee=0.002, slippage_bps=3, volume_slippage_bps=40)
    model = costly.fill_model()
    assert (model.fees.maker, model.fees.taker, model.slippage.fixed_bps,
            model.slippage.volume_bps) == (0.002, 0.002, 3, 40)
    assert RunSettings(fee=0.002, maker_fee=0.0).fill_model().fees.maker == 0.0
    point = [{"fast": 5, "slow": 20}]
    cheap = search(CANDLES, SMA, point).evaluations[0]
    dear = search(CANDLES, SMA, point, settings=costly).evaluations[0]
    assert dear.metrics == direct(CANDLES, point[0], 0, len(CANDLES), costly).metrics
    assert dear.metrics is not None and cheap.metrics is not None
    assert dear.metrics.final_equity < cheap.metrics.final_equity

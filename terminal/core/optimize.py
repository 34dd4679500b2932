"""Parameter search for a strategy: grid or random sampling, optionally walked forward.

A **search** backtests every parameter set over the whole history and ranks them by an
:class:`Objective` (Sharpe by default). Its best set has seen all the data it is judged on,
so its figures are optimistic; a **walk-forward** run measures how much.

**Walk-forward.** The history is cut into windows: ``in_sample_bars`` to choose on, then the
next ``out_of_sample_bars`` to trade on; the next window starts ``out_of_sample_bars`` later.
Rolling windows keep the in-sample length fixed; anchored ones always start at the first bar.
Only whole windows are used: bars after the last full out-of-sample window are left out. On
each window every parameter set is backtested on the in-sample bars alone; the best one is
then backtested on the out-of-sample bars that follow. Selection never sees an out-of-sample
bar. Every run may warm its indicators up on the bars before its span (an out-of-sample run
on the end of the in-sample window, which is past data at that point), but signals, trades
and figures count only bars inside the span: the engine ignores signals during the warm-up
and starts its equity curve at the end of it. Each run starts flat with the configured cash,
and a position still open at the end of a span is marked to its last close without an exit
fee, as in any backtest.

The out-of-sample runs are chained into one equity curve, each scaled as if it had started
with the capital the previous one ended with; its figures are the walk-forward result. Bars
of a window where no parameter set could be judged count as flat. The IS-vs-OOS degradation
compares, window by window, a figure that does not depend on the span's length: the Sharpe
ratio, the profit factor, or for total return the annualised log return.

**Processes.** Backtests run in a pool of spawned processes (``workers``; 1 runs them in the
calling process). Each worker receives the candles and the run settings once, when it starts;
tasks then carry only parameter sets and bar ranges, in chunks. ``progress(done, total)`` is
called in the calling thread after each chunk, and ``cancel`` (a ``threading.Event`` or
anything with ``is_set()``) is checked between chunks: when set, no further chunk starts and
:class:`OptimizationCancelled` is raised.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import signal
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from enum import Enum, unique
from types import TracebackType
from typing import Any

import numpy as np

from terminal.core.backtest import (
    DEFAULT_LOOKAHEAD_CUTS,
    BacktestResult,
    CancelFlag,
    Progress,
    run_backtest,
)
from terminal.core.errors import Cancelled, InvalidArgument
from terminal.core.fills import ExitReason, FeeSchedule, FillModel, Slippage
from terminal.core.metrics import Metrics, Trade, compute_metrics
from terminal.core.risk import RiskLimits, RiskManager
from terminal.core.series import CandleSeries, FloatArray, TimeArray
from terminal.core.strategies import STRATEGIES, ModelSignal, create_strategy
from terminal.core.strategy import (
    BoolArray,
    Parameter,
    ParamValue,
    Strategy,
    check_lookahead,
)
from terminal.core.timefmt import format_ms

#: Most parameter sets one search may try; a bigger grid is almost always a typo.
MAX_POINTS = 10_000
#: The profit factor above which parameter sets rank by total return instead.
PROFIT_FACTOR_CAP = 10.0
#: Chunks per worker: small enough for smooth progress and quick cancellation, big enough
#: that the cost of sending a task stays negligible.
CHUNKS_PER_WORKER = 4

Params = dict[str, ParamValue]


class OptimizationCancelled(Cancelled):
    """The search was stopped through its cancel flag before it finished."""


@unique
class Objective(Enum):
    """What "best" means when choosing a parameter set; higher is better for each."""

    SHARPE = "sharpe"
    TOTAL_RETURN = "total_return"
    PROFIT_FACTOR = "profit_factor"

    @classmethod
    def parse(cls, text: str) -> Objective:
        cleaned = text.strip().lower().replace("-", "_")
        for member in cls:
            if member.value == cleaned:
                return member
        known = ", ".join(m.value for m in cls)
        raise InvalidArgument(f"unknown objective {text!r}; use one of: {known}")

    def score(self, metrics: Metrics) -> float:
        """The figure parameter sets are ranked by.

        A flat equity curve has no Sharpe ratio; it scores 0 (no excess return). The profit
        factor counts up to :data:`PROFIT_FACTOR_CAP`: beyond it (and for a run without losing
        trades, which has none) sets tie and the higher total return wins, so that one lucky
        trade does not beat a hundred good ones. A run without any trade scores lowest.
        """
        if self is Objective.SHARPE:
            value = metrics.sharpe if metrics.sharpe is not None else 0.0
        elif self is Objective.TOTAL_RETURN:
            value = metrics.total_return
        elif metrics.profit_factor is not None:
            value = min(metrics.profit_factor, PROFIT_FACTOR_CAP)
        else:
            value = PROFIT_FACTOR_CAP if metrics.trades else -math.inf
        return value if not math.isnan(value) else -math.inf

    def comparable(self, metrics: Metrics) -> float | None:
        """The figure that compares spans of different lengths (None: it does not exist)."""
        if self is Objective.SHARPE:
            return metrics.sharpe if metrics.sharpe is not None else 0.0
        if self is Objective.PROFIT_FACTOR:
            return metrics.profit_factor
        if metrics.cagr is None or metrics.cagr <= -1:
            return None
        return math.log1p(metrics.cagr)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How every backtest of a search runs: the same for each parameter set and window."""

    symbol: str = "BTC/USDT"
    cash: float = 10_000.0
    fee: float = 0.001
    slippage_bps: float = 0.0
    risk: RiskLimits | None = None
    volume_slippage_bps: float = 0.0
    #: The fee of limit fills reached inside a candle; None: ``fee``.
    maker_fee: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cash) and self.cash > 0):
            raise InvalidArgument(f"the starting cash must be a positive amount, got {self.cash}")
        self.fill_model()

    def fill_model(self) -> FillModel:
        maker = self.fee if self.maker_fee is None else self.maker_fee
        return FillModel(FeeSchedule(maker=maker, taker=self.fee),
                         Slippage(fixed_bps=self.slippage_bps,
                                  volume_bps=self.volume_slippage_bps))

    def risk_check(self) -> RiskManager | None:
        """A fresh manager per run, so a tripped circuit breaker never leaks into the next."""
        return None if self.risk is None else RiskManager(self.risk, fee_rate=self.fee)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One parameter set backtested over bars ``start`` to ``stop`` (positions, stop excluded).

    ``start`` is the first bar the figures count; it lies after the span's first bar only when
    there were not enough earlier bars for the strategy's warm-up. ``metrics`` is None when the
    run was impossible, with the reason in ``error``.
    """

    params: Params
    start: int
    stop: int
    metrics: Metrics | None
    error: str | None = None

    def score(self, objective: Objective) -> float:
        return -math.inf if self.metrics is None else objective.score(self.metrics)


@dataclass(frozen=True, slots=True)
class Window:
    """One walk-forward step, as bar positions ``[start, stop)``."""

    index: int
    in_sample: tuple[int, int]
    out_of_sample: tuple[int, int]


@dataclass(frozen=True, eq=False)
class SearchResult:
    """Every parameter set tried over the whole history, best first.

    ``skipped`` holds the sets the strategy refused, with the reason. ``lookahead_bar`` is
    the first bar whose signals change when later candles are removed, for the best set
    (None: it does not peek).
    """

    strategy: str
    objective: Objective
    evaluations: tuple[Evaluation, ...]
    skipped: tuple[tuple[Params, str], ...]
    lookahead_bar: int | None

    @property
    def best(self) -> Evaluation | None:
        first = self.evaluations[0] if self.evaluations else None
        return first if first is not None and first.metrics is not None else None

    def to_json(self, *, top: int | None = None) -> dict[str, Any]:
        shown = self.evaluations if top is None else self.evaluations[:top]
        return {
            "mode": "search",
            "strategy": self.strategy,
            "objective": self.objective.value,
            "tried": len(self.evaluations),
            "best": None if self.best is None else _evaluation_json(self.best, self.objective),
            "lookahead_bar": self.lookahead_bar,
            "ranking": [_evaluation_json(e, self.objective) for e in shown],
            "skipped": [{"params": p, "reason": r} for p, r in self.skipped],
        }


@dataclass(frozen=True, eq=False)
class WindowResult:
    """One walk-forward window: the set chosen in sample and how both runs went.

    ``params`` is None when no parameter set could be judged in sample (``note`` says why);
    the window then counts as flat out of sample.
    """

    window: Window
    in_sample_ms: tuple[int, int]
    out_of_sample_ms: tuple[int, int]
    candidates: int
    params: Params | None
    in_sample: Metrics | None
    out_of_sample: Metrics | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Degradation:
    """How the objective held up out of sample, averaged over windows with both figures.

    ``ratio`` is out-of-sample over in-sample (the walk-forward efficiency), given only when
    the in-sample figure is positive.
    """

    measure: str
    in_sample: float | None
    out_of_sample: float | None
    ratio: float | None
    windows: int


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """Per-window results and the chained out-of-sample run.

    ``times`` / ``equity`` / ``returns`` cover every out-of-sample bar once, in order
    (``returns[0]`` is 0: the first bar's close is where the curve starts). ``peeking`` lists
    chosen parameter sets whose signals change when later candles are removed, with the first
    bar that differs.
    """

    strategy: str
    objective: Objective
    anchored: bool
    in_sample_bars: int
    out_of_sample_bars: int
    windows: tuple[WindowResult, ...]
    times: TimeArray
    equity: FloatArray
    returns: FloatArray
    metrics: Metrics
    degradation: Degradation
    skipped: tuple[tuple[Params, str], ...]
    peeking: tuple[tuple[Params, int], ...]

    def to_json(self) -> dict[str, Any]:
        degradation = self.degradation
        return {
            "mode": "walk_forward",
            "strategy": self.strategy,
            "objective": self.objective.value,
            "anchored": self.anchored,
            "in_sample_bars": self.in_sample_bars,
            "out_of_sample_bars": self.out_of_sample_bars,
            "windows": [_window_json(w, self.objective) for w in self.windows],
            "out_of_sample": {
                "first_utc": format_ms(int(self.times[0])),
                "last_utc": format_ms(int(self.times[-1])),
                "bars": len(self.times),
                **self.metrics.to_json(),
            },
            "degradation": {
                "measure": degradation.measure,
                "in_sample": _number(degradation.in_sample),
                "out_of_sample": _number(degradation.out_of_sample),
                "ratio": _number(degradation.ratio),
                "windows": degradation.windows,
            },
            "peeking": [{"params": p, "first_bar": bar} for p, bar in self.peeking],
            "skipped": [{"params": p, "reason": r} for p, r in self.skipped],
        }


# --- parameter sets -------------------------------------------------------------------------


def strategy_parameters(strategy: str) -> tuple[Parameter, ...]:
    """The tunable parameters of the strategy called ``strategy``."""
    return _strategy_class(strategy).parameters


def grid_points(strategy: str, grid: Mapping[str, Sequence[str | float]]) -> list[Params]:
    """Every combination of the values in ``grid``; parameters not named keep their default.

    Values are checked against each parameter's kind and range (text is parsed as typed on the
    command line).
    """
    names: list[str] = []
    axes: list[list[ParamValue]] = []
    for name, values in grid.items():
        parameter = _parameter(strategy, name)
        if not values:
            raise InvalidArgument(f"the grid for {name} has no values")
        parsed = [parameter.parse(v) if isinstance(v, str) else parameter.check(float(v))
                  for v in values]
        names.append(name)
        axes.append(list(dict.fromkeys(parsed)))
    _check_count(math.prod(len(axis) for axis in axes))
    return [dict(zip(names, combination, strict=True))
            for combination in itertools.product(*axes)]


def random_points(strategy: str, ranges: Mapping[str, tuple[float, float]], count: int, *,
                  seed: int = 0) -> list[Params]:
    """``count`` parameter sets drawn uniformly from ``ranges`` (both ends included).

    Whole-number parameters draw whole numbers. Parameters without a range keep their default;
    at least one range is needed. The same seed draws the same sets.
    """
    if not ranges:
        raise InvalidArgument("random sampling needs at least one parameter range")
    if count < 1:
        raise InvalidArgument(f"random sampling needs at least one draw, got {count}")
    _check_count(count)
    bounds: list[tuple[Parameter, ParamValue, ParamValue]] = []
    for name, (low, high) in ranges.items():
        parameter = _parameter(strategy, name)
        low_value, high_value = parameter.check(low), parameter.check(high)
        if low_value > high_value:
            raise InvalidArgument(f"the range of {name} runs from {low:g} down to {high:g};"
                                  " give the low end first")
        bounds.append((parameter, low_value, high_value))
    rng = np.random.default_rng(seed)
    return [
        {p.name: int(rng.integers(int(lo), int(hi), endpoint=True)) if p.kind is int
         else float(rng.uniform(lo, hi)) for p, lo, hi in bounds}
        for _ in range(count)
    ]


def walk_forward_windows(bars: int, in_sample_bars: int, out_of_sample_bars: int, *,
                         anchored: bool = False) -> tuple[Window, ...]:
    """The whole walk-forward windows that fit in ``bars`` candles."""
    if in_sample_bars < 2 or out_of_sample_bars < 2:
        raise InvalidArgument("walk-forward windows need at least 2 in-sample and 2"
                              f" out-of-sample bars, got {in_sample_bars}:{out_of_sample_bars}")
    windows: list[Window] = []
    split = in_sample_bars
    while split + out_of_sample_bars <= bars:
        first = 0 if anchored else split - in_sample_bars
        windows.append(Window(len(windows), (first, split),
                              (split, split + out_of_sample_bars)))
        split += out_of_sample_bars
    if not windows:
        raise InvalidArgument(
            f"{bars} candles are too few for one walk-forward window of {in_sample_bars}"
            f" in-sample and {out_of_sample_bars} out-of-sample bars")
    return tuple(windows)


# --- searches -------------------------------------------------------------------------------


def search(candles: CandleSeries, strategy: str, points: Sequence[Mapping[str, ParamValue]], *,
           objective: Objective = Objective.SHARPE, settings: RunSettings | None = None,
           workers: int = 1, progress: Progress | None = None,
           cancel: CancelFlag | None = None) -> SearchResult:
    """Backtest every parameter set in ``points`` over all of ``candles`` and rank them."""
    run_settings = settings or RunSettings()
    valid, skipped = _prepare(strategy, points)
    jobs = [_Job(params, 0, len(candles), keep_curve=False) for params in valid]
    with _Runner(candles, strategy, run_settings, workers, progress, cancel,
                 total=len(jobs)) as runner:
        outcomes = runner.run(jobs)
    ranked = _ranked([o.evaluation for o in outcomes], objective)
    best = ranked[0]
    peeks = None if best.metrics is None else _lookahead(strategy, best.params, candles)
    return SearchResult(strategy, objective, tuple(ranked), tuple(skipped), peeks)


def walk_forward(candles: CandleSeries, strategy: str,
                 points: Sequence[Mapping[str, ParamValue]], *, in_sample_bars: int,
                 out_of_sample_bars: int, anchored: bool = False,
                 objective: Objective = Objective.SHARPE, settings: RunSettings | None = None,
                 workers: int = 1, progress: Progress | None = None,
                 cancel: CancelFlag | None = None) -> WalkForwardResult:
    """Choose in sample, trade out of sample, window after window (see the module docs)."""
    run_settings = settings or RunSettings()
    valid, skipped = _prepare(strategy, points)
    windows = walk_forward_windows(len(candles), in_sample_bars, out_of_sample_bars,
                                   anchored=anchored)
    in_sample_jobs = [_Job(params, *w.in_sample, keep_curve=False)
                      for w in windows for params in valid]
    with _Runner(candles, strategy, run_settings, workers, progress, cancel,
                 total=len(in_sample_jobs) + len(windows)) as runner:
        chosen_runs = runner.run(in_sample_jobs)
        choices: list[Evaluation | None] = []
        for index in range(len(windows)):
            ranked = _ranked([o.evaluation for o in
                              chosen_runs[index * len(valid):(index + 1) * len(valid)]],
                             objective)
            choices.append(ranked[0] if ranked[0].metrics is not None else None)
        trading_jobs = [_Job(choice.params, *w.out_of_sample, keep_curve=True)
                        for w, choice in zip(windows, choices, strict=True)
                        if choice is not None]
        traded = iter(runner.run(trading_jobs))
        runner.advance(len(windows) - len(trading_jobs))
    outcomes = [None if choice is None else next(traded) for choice in choices]
    return _assemble(candles, strategy, objective, run_settings, windows, valid, choices,
                     outcomes, skipped, anchored=anchored)


# --- running backtests ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    params: Params
    start: int
    stop: int
    keep_curve: bool


@dataclass(frozen=True, eq=False)
class _Curve:
    """A run's equity at each close from its first counted bar, positions held, trades."""

    equity: FloatArray
    held: BoolArray
    trades: tuple[Trade, ...]


@dataclass(frozen=True, eq=False)
class _Outcome:
    """An evaluation and, when the job asked for it, the run's curve."""

    evaluation: Evaluation
    curve: _Curve | None = None


def _run_job(candles: CandleSeries, strategy_name: str, settings: RunSettings,
             job: _Job) -> _Outcome:
    strategy = create_strategy(strategy_name, job.params)
    first = max(0, job.start - strategy.warmup_bars())
    try:
        result = run_backtest(candles.take(first, job.stop), strategy, symbol=settings.symbol,
                              cash=settings.cash, fill_model=settings.fill_model(),
                              risk=settings.risk_check(), lookahead_cuts=0)
    except InvalidArgument as error:
        return _Outcome(Evaluation(job.params, job.start, job.stop, None, str(error)))
    evaluation = Evaluation(job.params, first + result.warmup_bars, job.stop, result.metrics)
    if not job.keep_curve:
        return _Outcome(evaluation)
    return _Outcome(evaluation, _Curve(result.equity, _held(result), result.trades))


def _held(result: BacktestResult) -> BoolArray:
    """Whether a position was open at each close of ``result``'s equity curve.

    The engine's state changes at a fill's bar: held from the entry bar, flat from the exit
    bar on, except that a position still open at the end stays held through the last bar.
    """
    held = np.zeros(result.warmup_bars + len(result.equity), dtype=bool)
    for trade in result.trades:
        end = trade.exit_bar + (trade.exit_reason == ExitReason.END_OF_TEST.value)
        held[trade.entry_bar:end] = True
    return held[result.warmup_bars:]


#: Set in each worker process by :func:`_start_worker`: the candles, strategy and settings
#: every task of the pool uses, so tasks need not carry them.
_worker_context: tuple[CandleSeries, str, RunSettings] | None = None


def _start_worker(candles: CandleSeries, strategy: str, settings: RunSettings) -> None:
    global _worker_context
    # Ctrl+C is the parent's to handle; workers dying of it would only add tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_context = (candles, strategy, settings)


def _run_chunk(jobs: tuple[_Job, ...]) -> list[_Outcome]:
    """The pool's task: one chunk of jobs, run in a worker process."""
    if _worker_context is None:
        raise RuntimeError("the optimiser's worker was not started with its candles")
    candles, strategy, settings = _worker_context
    return [_run_job(candles, strategy, settings, job) for job in jobs]


class _Runner:
    """Runs jobs in chunks, in the calling process or a spawned pool, reporting progress."""

    def __init__(self, candles: CandleSeries, strategy: str, settings: RunSettings,
                 workers: int, progress: Progress | None, cancel: CancelFlag | None, *,
                 total: int) -> None:
        if workers < 1:
            raise InvalidArgument(f"the number of worker processes must be at least 1, got"
                                  f" {workers}")
        self.candles, self.strategy, self.settings = candles, strategy, settings
        # Starting a process costs more than a backtest; never start more than there is work.
        self.workers = min(workers, max(total, 1))
        self.progress, self.cancel = progress, cancel
        self.total, self.done = total, 0
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Runner:
        if self.workers > 1:
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self.candles, self.strategy, self.settings))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: Sequence[_Job]) -> list[_Outcome]:
        chunks = list(_chunks(jobs, max(1, math.ceil(
            len(jobs) / (self.workers * CHUNKS_PER_WORKER)))))
        if self.pool is None:
            outcomes: list[_Outcome] = []
            for chunk in chunks:
                self._check_cancel()
                outcomes.extend(_run_job(self.candles, self.strategy, self.settings, job)
                                for job in chunk)
                self.advance(len(chunk))
            return outcomes
        return self._run_in_pool(self.pool, chunks)

    def _run_in_pool(self, pool: ProcessPoolExecutor,
                     chunks: list[tuple[_Job, ...]]) -> list[_Outcome]:
        results: list[list[_Outcome]] = [[] for _ in chunks]
        pending: dict[Future[list[_Outcome]], int] = {}
        submitted = 0
        while submitted < len(chunks) or pending:
            # A bounded queue, so that cancelling leaves little already started.
            while submitted < len(chunks) and len(pending) < 2 * self.workers:
                self._check_cancel()
                pending[pool.submit(_run_chunk, chunks[submitted])] = submitted
                submitted += 1
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                results[index] = future.result()
                self.advance(len(chunks[index]))
            self._check_cancel()
        return [outcome for chunk in results for outcome in chunk]

    def advance(self, count: int) -> None:
        if count <= 0:
            return
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise OptimizationCancelled(
                f"optimisation cancelled after {self.done} of {self.total} backtests")


def _chunks(jobs: Sequence[_Job], size: int) -> Iterator[tuple[_Job, ...]]:
    for start in range(0, len(jobs), size):
        yield tuple(jobs[start:start + size])


# --- helpers --------------------------------------------------------------------------------


def _strategy_class(name: str) -> type[Strategy]:
    cls = STRATEGIES.get(name.strip().lower())
    if cls is None:
        raise InvalidArgument(f"unknown strategy {name!r}; choose one of:"
                              f" {', '.join(STRATEGIES)}")
    if cls is ModelSignal:
        raise InvalidArgument(f"{cls.name} trades on a model's predictions; its parameters"
                              " cannot be searched here")
    return cls


def _parameter(strategy: str, name: str) -> Parameter:
    parameters = strategy_parameters(strategy)
    for parameter in parameters:
        if parameter.name == name:
            return parameter
    valid = ", ".join(p.name for p in parameters)
    raise InvalidArgument(f"{strategy} has no parameter {name!r}; valid parameters: {valid}")


def _check_count(count: int) -> None:
    if count > MAX_POINTS:
        raise InvalidArgument(f"{count:,} parameter sets are more than the {MAX_POINTS:,} one"
                              " search may try; use fewer values or random sampling")


def _prepare(strategy: str, points: Sequence[Mapping[str, ParamValue]]
             ) -> tuple[list[Params], list[tuple[Params, str]]]:
    """The distinct parameter sets the strategy accepts, completed with defaults, and the
    ones it refuses (such as a fast average slower than the slow one) with the reason."""
    _strategy_class(strategy)
    valid: list[Params] = []
    skipped: list[tuple[Params, str]] = []
    seen: set[tuple[tuple[str, ParamValue], ...]] = set()
    for point in points:
        try:
            params = dict(create_strategy(strategy, point).params)
        except InvalidArgument as error:
            skipped.append((dict(point), str(error)))
            continue
        key = tuple(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            valid.append(params)
    if not valid:
        reason = f": {skipped[0][1]}" if skipped else ""
        raise InvalidArgument(f"no parameter set to try{reason}")
    return valid, skipped


def _ranked(evaluations: Sequence[Evaluation], objective: Objective) -> list[Evaluation]:
    """Best first; ties go to the higher total return, then to the earlier set."""
    def key(evaluation: Evaluation) -> tuple[float, float]:
        total = evaluation.metrics.total_return if evaluation.metrics is not None else -math.inf
        return (-evaluation.score(objective), -total)

    return sorted(evaluations, key=key)


def _lookahead(strategy: str, params: Params, candles: CandleSeries) -> int | None:
    return check_lookahead(create_strategy(strategy, params), candles, DEFAULT_LOOKAHEAD_CUTS)


def _assemble(candles: CandleSeries, strategy: str, objective: Objective,
              settings: RunSettings, windows: Sequence[Window], valid: Sequence[Params],
              choices: Sequence[Evaluation | None], outcomes: Sequence[_Outcome | None],
              skipped: Sequence[tuple[Params, str]], *, anchored: bool) -> WalkForwardResult:
    capital = settings.cash
    equities: list[FloatArray] = []
    helds: list[BoolArray] = []
    trades: list[Trade] = []
    results: list[WindowResult] = []
    for window, choice, outcome in zip(windows, choices, outcomes, strict=True):
        start, stop = window.out_of_sample
        curve = None if outcome is None else outcome.curve
        # Bars no run covered (no choice, or too little history for the warm-up) are flat:
        # the capital waits in cash.
        covered = stop if curve is None or outcome is None else outcome.evaluation.start
        equities.append(np.full(covered - start, capital))
        helds.append(np.zeros(covered - start, dtype=bool))
        if curve is not None:
            scale = capital / settings.cash
            equities.append(curve.equity * scale)
            helds.append(curve.held)
            trades.extend(replace(t, amount=t.amount * scale, entry_fee=t.entry_fee * scale,
                                  exit_fee=t.exit_fee * scale) for t in curve.trades)
        capital = float(equities[-1][-1])
        results.append(_window_result(candles, window, len(valid), choice, outcome))
    first, last = windows[0].out_of_sample[0], windows[-1].out_of_sample[1]
    equity = np.concatenate(equities)
    returns = np.zeros(len(equity))
    returns[1:] = equity[1:] / equity[:-1] - 1.0
    chosen = list({tuple(sorted(c.params.items())): c.params
                   for c in choices if c is not None}.values())
    peeking = tuple((params, bar) for params in chosen
                    if (bar := _lookahead(strategy, params, candles)) is not None)
    return WalkForwardResult(
        strategy=strategy,
        objective=objective,
        anchored=anchored,
        in_sample_bars=windows[0].in_sample[1] - windows[0].in_sample[0],
        out_of_sample_bars=windows[0].out_of_sample[1] - windows[0].out_of_sample[0],
        windows=tuple(results),
        times=candles.open_time[first:last],
        equity=equity,
        returns=returns,
        metrics=compute_metrics(equity, np.concatenate(helds), trades, candles.timeframe),
        degradation=_degradation(results, objective),
        skipped=tuple(skipped),
        peeking=peeking,
    )


def _window_result(candles: CandleSeries, window: Window, candidates: int,
                   choice: Evaluation | None, outcome: _Outcome | None) -> WindowResult:
    times = candles.open_time
    note = ""
    if choice is None:
        note = "no parameter set could be backtested in sample"
    elif outcome is not None and outcome.evaluation.metrics is None:
        note = f"out-of-sample run impossible: {outcome.evaluation.error}"
    return WindowResult(
        window=window,
        in_sample_ms=(int(times[window.in_sample[0]]), int(times[window.in_sample[1] - 1])),
        out_of_sample_ms=(int(times[window.out_of_sample[0]]),
                          int(times[window.out_of_sample[1] - 1])),
        candidates=candidates,
        params=None if choice is None else choice.params,
        in_sample=None if choice is None else choice.metrics,
        out_of_sample=None if outcome is None else outcome.evaluation.metrics,
        note=note,
    )


def _degradation(windows: Sequence[WindowResult], objective: Objective) -> Degradation:
    pairs: list[tuple[float, float]] = []
    for result in windows:
        if result.in_sample is None or result.out_of_sample is None:
            continue
        inside = objective.comparable(result.in_sample)
        outside = objective.comparable(result.out_of_sample)
        if inside is not None and outside is not None:
            pairs.append((inside, outside))
    measure = {Objective.SHARPE: "sharpe", Objective.PROFIT_FACTOR: "profit_factor",
               Objective.TOTAL_RETURN: "annualised_log_return"}[objective]
    if not pairs:
        return Degradation(measure, None, None, None, 0)
    inside_mean = float(np.mean([p[0] for p in pairs]))
    outside_mean = float(np.mean([p[1] for p in pairs]))
    ratio = outside_mean / inside_mean if inside_mean > 0 else None
    return Degradation(measure, inside_mean, outside_mean, ratio, len(pairs))


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _evaluation_json(evaluation: Evaluation, objective: Objective) -> dict[str, Any]:
    return {
        "params": evaluation.params,
        "score": _number(evaluation.score(objective)),
        "metrics": None if evaluation.metrics is None else evaluation.metrics.to_json(),
        "error": evaluation.error,
    }


def _window_json(result: WindowResult, objective: Objective) -> dict[str, Any]:
    def score(metrics: Metrics | None) -> float | None:
        return None if metrics is None else _number(objective.score(metrics))

    return {
        "index": result.window.index,
        "in_sample": {"first_utc": format_ms(result.in_sample_ms[0]),
                      "last_utc": format_ms(result.in_sample_ms[1]),
                      "bars": result.window.in_sample[1] - result.window.in_sample[0]},
        "out_of_sample": {"first_utc": format_ms(result.out_of_sample_ms[0]),
                          "last_utc": format_ms(result.out_of_sample_ms[1]),
                          "bars": result.window.out_of_sample[1] - result.window.out_of_sample[0]},
        "candidates": result.candidates,
        "params": result.params,
        "in_sample_score": score(result.in_sample),
        "out_of_sample_score": score(result.out_of_sample),
        "in_sample_metrics": None if result.in_sample is None else result.in_sample.to_json(),
        "out_of_sample_metrics": (None if result.out_of_sample is None
                                  else result.out_of_sample.to_json()),
        "note": result.note,
    }

"""``optimize``: search a strategy's parameters over a grid or a random sample, optionally
walked forward, in a pool of worker processes.

Candles and costs are read exactly as ``backtest`` reads them (the shared
:mod:`terminal.commands.candle_source`). Progress goes to stderr; stdout gets the report
(one JSON object with ``--json``). Every option is checked before the first backtest runs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from terminal.cli import EXIT_OK, print_json
from terminal.commands.candle_source import (
    CandleData,
    Pricing,
    add_pricing_arguments,
    add_source_arguments,
    data_json,
    describe,
    load_candles,
    parse_assignments,
    parse_pricing,
)
from terminal.core.errors import InvalidArgument
from terminal.core.metrics import Metrics
from terminal.core.optimize import (
    MAX_POINTS,
    Objective,
    Params,
    SearchResult,
    WalkForwardResult,
    grid_points,
    random_points,
    search,
    strategy_parameters,
    walk_forward,
)
from terminal.core.strategies import STRATEGIES, ModelSignal
from terminal.core.strategy import ParamValue
from terminal.core.timefmt import format_ms

DEFAULT_TOP = 10
#: Most values one ``--grid LOW:HIGH:STEP`` may expand to.
MAX_AXIS = 1000


def register(commands: Any) -> None:
    """Add the ``optimize`` command to the CLI's subparsers."""
    names = ", ".join(name for name in STRATEGIES if name != ModelSignal.name)
    objectives = ", ".join(o.value for o in Objective)
    parser = commands.add_parser(
        "optimize", help="search a strategy's parameters, optionally walked forward",
        description="Backtest a strategy with every parameter set of a grid (--grid) or a"
                    " random sample (--random with --range) and rank the sets; with"
                    " --walk-forward, choose in sample and trade out of sample, window after"
                    f" window. Strategies: {names}.")
    add_source_arguments(parser)
    parser.add_argument("--strategy", required=True, metavar="NAME", help=f"one of: {names}")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="values to try for one parameter, as a list (10,20,30) or a"
                             " range with a step (10:50:10, both ends included); repeat for"
                             " several parameters")
    parser.add_argument("--random", metavar="N", help="try N parameter sets drawn uniformly"
                        " from the --range options")
    parser.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH",
                        help="range to draw one parameter from with --random (both ends"
                             " included); repeat for several")
    parser.add_argument("--seed", default="0", help="random seed for --random (default 0)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="fixed value of a parameter that is not searched")
    parser.add_argument("--objective", default=Objective.SHARPE.value,
                        help=f"what best means: {objectives} (default sharpe)")
    parser.add_argument("--walk-forward", action="store_true",
                        help="walk forward: choose on --in-sample bars, trade the next"
                             " --out-of-sample bars, then move on by --out-of-sample bars")
    parser.add_argument("--in-sample", metavar="BARS", help="bars each choice is made on")
    parser.add_argument("--out-of-sample", metavar="BARS",
                        help="bars each choice is traded on")
    parser.add_argument("--anchored", action="store_true", help="in-sample windows all start"
                        " at the first bar instead of rolling")
    parser.add_argument("--workers", default=str(os.cpu_count() or 1), metavar="N",
                        help="worker processes (default: one per CPU core; 1 runs in this"
                             " process)")
    parser.add_argument("--top", default=str(DEFAULT_TOP), metavar="N",
                        help=f"ranked sets to show (default {DEFAULT_TOP}; 0 shows all)")
    add_pricing_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_optimize_command)


def run_optimize_command(args: argparse.Namespace) -> int:
    pricing = parse_pricing(args)
    strategy = args.strategy.strip().lower()
    searched, fixed, points = _points(args, strategy)
    objective = Objective.parse(args.objective)
    workers = _whole(args.workers, "--workers", 1, 256)
    top = _whole(args.top, "--top", 0, MAX_POINTS)
    windows = _walk_forward_options(args)
    data = load_candles(args)
    settings = pricing.settings(data.symbol)
    progress = _Progress(sys.stderr)
    result: SearchResult | WalkForwardResult
    try:
        if windows is None:
            result = search(data.series, strategy, points, objective=objective,
                            settings=settings, workers=workers, progress=progress)
        else:
            result = walk_forward(data.series, strategy, points, in_sample_bars=windows[0],
                                  out_of_sample_bars=windows[1], anchored=args.anchored,
                                  objective=objective, settings=settings, workers=workers,
                                  progress=progress)
    finally:
        progress.finish()
    _check_usable(result)
    if args.json:
        payload = result.to_json(top=top or None) if isinstance(result, SearchResult) else (
            result.to_json())
        print_json({**data_json(data), **payload, "searched": searched, "fixed": fixed,
                    **pricing.to_json(), "workers": workers})
    elif isinstance(result, SearchResult):
        _print_search(data, pricing, result, searched, fixed, top)
    else:
        _print_walk_forward(data, pricing, result, searched, fixed)
    return EXIT_OK


# --- inputs ---------------------------------------------------------------------------------

def _points(args: argparse.Namespace,
            strategy: str) -> tuple[list[str], Params, list[Params]]:
    """The names searched, the fixed ``--param`` values and the parameter sets to try (the
    fixed values merged in)."""
    strategy_parameters(strategy)  # an unknown or unsearchable strategy fails first
    fixed_text = parse_assignments(args.param, "--param")
    fixed = grid_points(strategy, {k: [v] for k, v in fixed_text.items()})[0] if fixed_text \
        else {}
    if args.grid and args.random is not None:
        raise InvalidArgument("use either --grid or --random, not both")
    if args.range and args.random is None:
        raise InvalidArgument("--range goes with --random N")
    if args.grid:
        grid = {name: _grid_values(name, text)
                for name, text in parse_assignments(args.grid, "--grid").items()}
        _no_overlap(fixed, grid)
        points = grid_points(strategy, grid)
    elif args.random is not None:
        count = _whole(args.random, "--random", 1, MAX_POINTS)
        seed = _whole(args.seed, "--seed", 0, 2**32 - 1)
        ranges = {name: _range(name, text)
                  for name, text in parse_assignments(args.range, "--range").items()}
        _no_overlap(fixed, ranges)
        points = random_points(strategy, ranges, count, seed=seed)
    else:
        raise InvalidArgument("say what to search: --grid NAME=V1,V2,... or --random N with"
                              " --range NAME=LOW:HIGH")
    searched = list(points[0]) if points else []
    return searched, fixed, [{**fixed, **point} for point in points]


def _no_overlap(fixed: Params, searched: dict[str, Any]) -> None:
    both = sorted(set(fixed) & set(searched))
    if both:
        raise InvalidArgument(f"{both[0]} is both fixed with --param and searched")


def _grid_values(name: str, text: str) -> list[str | float]:
    """``10,20,30`` as its items, ``10:50:10`` as the values from 10 to 50 in steps of 10."""
    if ":" not in text:
        items = [item.strip() for item in text.split(",")]
        if not all(items):
            raise InvalidArgument(f"--grid {name}={text}: an empty value between commas")
        return list(items)
    parts = text.split(":")
    if len(parts) != 3:
        raise InvalidArgument(f"--grid {name}={text}: a range is LOW:HIGH:STEP, such as"
                              " 10:50:10")
    low, high, step = (_float(part, f"--grid {name}") for part in parts)
    if not step > 0:
        raise InvalidArgument(f"--grid {name}={text}: the step must be positive")
    if high < low:
        raise InvalidArgument(f"--grid {name}={text}: the range runs downwards; give the low"
                              " end first")
    count = int((high - low) / step + 1e-9) + 1
    if count > MAX_AXIS:
        raise InvalidArgument(f"--grid {name}={text} makes {count:,} values; at most"
                              f" {MAX_AXIS:,}")
    # Multiplying rather than adding keeps 0.1-steps from drifting off their round values.
    return [round(low + index * step, 12) for index in range(count)]


def _range(name: str, text: str) -> tuple[float, float]:
    low, separator, high = text.partition(":")
    if not separator or ":" in high:
        raise InvalidArgument(f"--range {name}={text}: a range is LOW:HIGH, such as 5:50")
    return _float(low, f"--range {name}"), _float(high, f"--range {name}")


def _float(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidArgument(f"{option}: {text.strip()!r} is not a number") from None


def _whole(text: str, option: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{option} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise InvalidArgument(f"{option} must be between {low} and {high:,}, got {value}")
    return value


def _walk_forward_options(args: argparse.Namespace) -> tuple[int, int] | None:
    given = args.in_sample is not None or args.out_of_sample is not None
    if not args.walk_forward:
        if given or args.anchored:
            raise InvalidArgument("--in-sample, --out-of-sample and --anchored go with"
                                  " --walk-forward")
        return None
    if args.in_sample is None or args.out_of_sample is None:
        raise InvalidArgument("--walk-forward needs --in-sample BARS and --out-of-sample BARS")
    return (_whole(args.in_sample, "--in-sample", 2, 100_000_000),
            _whole(args.out_of_sample, "--out-of-sample", 2, 100_000_000))


def _check_usable(result: SearchResult | WalkForwardResult) -> None:
    """Refuse a run in which no parameter set could be backtested at all."""
    if isinstance(result, SearchResult):
        if result.best is None:
            reason = result.evaluations[0].error if result.evaluations else None
            raise InvalidArgument(f"no parameter set could be backtested: {reason}")
    elif all(window.params is None for window in result.windows):
        raise InvalidArgument("no parameter set could be backtested in any in-sample window;"
                              " use longer --in-sample windows or more history")


# --- progress -------------------------------------------------------------------------------

class _Progress:
    """Counts backtests on stderr: one updating line on a terminal, else a line per tenth."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.shown = -1
        self.started = False

    def __call__(self, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if self.live:
            self.stream.write(f"\rbacktests: {done:,} of {total:,}")
        elif tenth != self.shown:
            self.stream.write(f"backtests: {done:,} of {total:,}\n")
        else:
            return
        self.shown, self.started = tenth, True
        self.stream.flush()

    def finish(self) -> None:
        if self.live and self.started:
            self.stream.write("\n")
            self.stream.flush()


# --- outputs --------------------------------------------------------------------------------

def _print_header(data: CandleData, pricing: Pricing, strategy: str, objective: Objective,
                  fixed: Params) -> None:
    print("\n".join(describe(data)))
    held = f" with {_params(fixed, list(fixed))}" if fixed else ""
    print(f"strategy {strategy}{held}, objective {objective.value}; fee"
          f" {pricing.fee * 100:g} %; cash {pricing.cash:,.2f}")


def _print_search(data: CandleData, pricing: Pricing, result: SearchResult,
                  searched: Sequence[str], fixed: Params, top: int) -> None:
    _print_header(data, pricing, result.strategy, result.objective, fixed)
    shown = result.evaluations if top == 0 else result.evaluations[:top]
    print(f"{len(result.evaluations):,} parameter sets backtested over the whole history;"
          f" the {len(shown)} best:")
    print(f"{'rank':>4}  {'parameters':<28}{'score':>9}{'return':>11}{'sharpe':>8}"
          f"{'max dd':>9}{'trades':>8}")
    for rank, evaluation in enumerate(shown, start=1):
        figures = _figures(evaluation.metrics)
        score = evaluation.score(result.objective)
        print(f"{rank:>4}  {_params(evaluation.params, searched):<28}"
              f"{_score(result.objective, score):>9}{figures}")
        if evaluation.error:
            print(f"{'':>6}not run: {evaluation.error}")
    if result.skipped:
        print(f"{len(result.skipped)} sets refused by the strategy; first:"
              f" {result.skipped[0][1]}")
    best = result.best
    assert best is not None
    defaults = {p.name: p.default for p in strategy_parameters(result.strategy)}
    print("best: " + _params(best.params, [name for name, value in best.params.items()
                                          if name in searched or value != defaults[name]]))
    if result.lookahead_bar is None:
        print("look-ahead check of the best set: passed")
    else:
        print(f"look-ahead check of the best set: FAILED at bar {result.lookahead_bar}; the"
              " strategy peeks at the future")
    print("These figures are in-sample: the best set was chosen on the bars it is judged on."
          " --walk-forward measures how it holds up on bars it has not seen.")


def _print_walk_forward(data: CandleData, pricing: Pricing, result: WalkForwardResult,
                        searched: Sequence[str], fixed: Params) -> None:
    _print_header(data, pricing, result.strategy, result.objective, fixed)
    kind = "anchored" if result.anchored else "rolling"
    print(f"walk-forward ({kind}): {len(result.windows)} windows of {result.in_sample_bars:,}"
          f" in-sample and {result.out_of_sample_bars:,} out-of-sample bars,"
          f" {result.windows[0].candidates:,} parameter sets each")
    print(f"{'win':>3}  {'out of sample':<23}  {'chosen':<28}{'IS score':>9}{'OOS score':>10}")
    for window in result.windows:
        start, end = window.out_of_sample_ms
        span = f"{format_ms(start)[:10]} to {format_ms(end)[:10]}"
        chosen = "-" if window.params is None else _params(window.params, searched)
        inside = None if window.in_sample is None else result.objective.score(window.in_sample)
        outside = (None if window.out_of_sample is None
                   else result.objective.score(window.out_of_sample))
        print(f"{window.window.index:>3}  {span:<23}  {chosen:<28}"
              f"{_score(result.objective, inside):>9}{_score(result.objective, outside):>10}")
        if window.note:
            print(f"{'':>5}{window.note}")
    metrics = result.metrics
    print(f"out of sample, chained ({len(result.times):,} bars,"
          f" {format_ms(int(result.times[0]))} to {format_ms(int(result.times[-1]))}):")
    print(f"  final equity {metrics.final_equity:,.2f}, total return"
          f" {metrics.total_return * 100:.2f} %, Sharpe {_num(metrics.sharpe)}, max drawdown"
          f" {metrics.max_drawdown * 100:.2f} %, {metrics.trades} trades, fees"
          f" {metrics.fees_paid:,.2f}")
    degradation = result.degradation
    if degradation.windows:
        ratio = "" if degradation.ratio is None else f", ratio {degradation.ratio:.2f}"
        measure = degradation.measure.replace("_", " ")
        print(f"  {measure} in sample {_num(degradation.in_sample)}, out of sample"
              f" {_num(degradation.out_of_sample)}{ratio} (mean of {degradation.windows}"
              " windows)")
    for params, bar in result.peeking:
        print(f"  look-ahead check FAILED for {_params(params, searched)} at bar {bar}")
    if result.skipped:
        print(f"  {len(result.skipped)} sets refused by the strategy; first:"
              f" {result.skipped[0][1]}")


def _figures(metrics: Metrics | None) -> str:
    if metrics is None:
        return f"{'-':>11}{'-':>8}{'-':>9}{'-':>8}"
    return (f"{metrics.total_return * 100:>10.2f}%{_num(metrics.sharpe):>8}"
            f"{metrics.max_drawdown * 100:>8.2f}%{metrics.trades:>8}")


def _params(params: Params, names: Sequence[str]) -> str:
    return " ".join(f"{name}={_value(params[name])}" for name in names if name in params)


def _value(value: ParamValue) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _score(objective: Objective, value: float | None) -> str:
    """A score as users read that objective: total return in percent, ratios plain."""
    if objective is Objective.TOTAL_RETURN and value is not None and math.isfinite(value):
        return f"{value * 100:.2f}%"
    return _num(value)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return f"{value:.2f}"

"""``evaluate``: walk-forward evaluation of forecasting models against the naive baselines.

Candles come from a CSV file or the store exactly as for ``backtest``. Persistence is always
evaluated, because every other figure is measured against it. ``--report`` writes a Markdown
report with one PNG per model (predicted against realised returns, calibration, equity net of
fees against buy-and-hold).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminal.cli import EXIT_OK, as_path, print_json
from terminal.commands.candle_source import (
    CandleData,
    add_source_arguments,
    data_json,
    load_candles,
)
from terminal.core.errors import InvalidArgument
from terminal.core.timefmt import format_ms

if TYPE_CHECKING:
    from terminal.ml.evaluate import Evaluation

DEFAULT_MODELS = "persistence,drift,always_up,ridge"
DEFAULT_HORIZONS = "1,4,12,24"


def register(commands: Any) -> None:
    """Add the ``evaluate`` command to the CLI's subparsers."""
    parser = commands.add_parser(
        "evaluate", help="walk-forward evaluation of forecasting models",
        description="Refit each model every K bars over the last part of the history and"
                    " measure its out-of-sample forecasts against persistence (zero return):"
                    " MASE, MSE skill with a Diebold-Mariano p-value, directional accuracy"
                    " with its interval, Brier skill, and a long/flat strategy net of fees.")
    add_source_arguments(parser)
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated models"
                        f" (default: {DEFAULT_MODELS}); persistence, drift, always_up, ridge,"
                        " lstm, gru, bilstm, cnn_lstm, transformer")
    add_training_arguments(parser)
    parser.add_argument("--test-fraction", default="0.3", help="share of the history tested"
                        " out of sample (default 0.3)")
    parser.add_argument("--refit-every", default="720", metavar="K",
                        help="refit every K bars of the test span (default 720)")
    parser.add_argument("--fee", default="0.001", help="fee per side for the strategy"
                        " (default 0.001)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--report", metavar="OUT_DIR", help="write report.md and PNG plots"
                        " into this folder")
    parser.set_defaults(run=run_evaluate_command)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``evaluate`` and ``train``: horizons, epochs, threads."""
    parser.add_argument("--horizons", default=DEFAULT_HORIZONS, help="forecast horizons in"
                        f" bars (default {DEFAULT_HORIZONS})")
    parser.add_argument("--epochs", default=None, help="training epochs of neural models"
                        " (default 20, with early stopping)")
    parser.add_argument("--threads", default="2", help="CPU threads torch may use (default 2)")


def model_options(args: argparse.Namespace) -> tuple[int | None, int]:
    """(epochs or None for the default, threads) from :func:`add_training_arguments`'
    options."""
    epochs = (None if args.epochs is None
              else parse_whole(args.epochs, "--epochs", 1, 10_000))
    return epochs, parse_whole(args.threads, "--threads", 1, 256)


def run_evaluate_command(args: argparse.Namespace) -> int:
    from terminal.ml.catalog import NEURAL, model_factory, parse_horizons, parse_model_names
    from terminal.ml.evaluate import walk_forward

    names = parse_model_names(args.models)
    horizons = parse_horizons(args.horizons)
    epochs, threads = model_options(args)
    test_fraction = parse_fraction(args.test_fraction, "--test-fraction")
    refit_every = parse_whole(args.refit_every, "--refit-every", 1, 10_000_000)
    fee = parse_fraction(args.fee, "--fee", upper=0.1, zero=True)
    report_dir = _report_dir(args.report)
    data = load_candles(args)
    if any(name in NEURAL for name in names):
        limit_threads(threads)
    factories = {name: model_factory(name, epochs=epochs) for name in names
                 if name != "persistence"}
    evaluation = walk_forward(data.series, factories, horizons=horizons,
                              test_fraction=test_fraction, refit_every=refit_every, fee=fee)
    if report_dir is not None:
        from terminal.commands.evaluate_report import write_report

        write_report(evaluation, data, report_dir)
    if args.json:
        print_json({**data_json(data), "symbol": data.symbol,
                    "timeframe": data.series.timeframe.code, **evaluation.to_json()})
    else:
        _print_table(data, evaluation)
    return EXIT_OK


def limit_threads(threads: int) -> None:
    """Let torch use at most ``threads`` CPU threads."""
    import torch

    torch.set_num_threads(threads)


def _print_table(data: CandleData, evaluation: Evaluation) -> None:
    series = data.series
    rows = evaluation.test_rows
    print(f"{data.symbol} {series.timeframe}: {len(series):,} candles; tested out of sample"
          f" {format_ms(int(series.open_time[rows[0]]))} to"
          f" {format_ms(int(series.open_time[rows[-1]]))} ({len(rows):,} bars,"
          f" {evaluation.folds} refits every {evaluation.refit_every} bars, fee"
          f" {evaluation.fee * 100:g} %)")
    print(f"{'model':<12}{'h':>4}{'MASE':>8}{'MSE skill':>11}{'DM p':>8}{'dir acc':>9}"
          f"{'95% CI':>15}{'vs up':>8}{'Brier sk':>10}{'strategy':>10}{'B&H':>9}"
          f"{'exposure':>10}  verdict")
    for run in evaluation.runs:
        for m in run.metrics:
            p = "-" if m.dm_pvalue is None else f"{m.dm_pvalue:.3f}"
            ci = f"{m.dir_acc_ci[0] * 100:.1f}-{m.dir_acc_ci[1] * 100:.1f}%"
            print(f"{run.name:<12}{m.horizon:>4}{m.mase:>8.4f}{m.mse_skill * 100:>10.2f}%"
                  f"{p:>8}{m.dir_acc * 100:>8.1f}%{ci:>15}{m.dir_edge * 100:>+7.1f}%"
                  f"{m.brier_skill * 100:>+9.2f}%{m.strategy_return * 100:>+9.1f}%"
                  f"{m.buy_and_hold_return * 100:>+8.1f}%{m.strategy_exposure * 100:>9.1f}%"
                  f"  {m.verdict}")
    first = evaluation.run("persistence").metrics[0]
    print(f"price-level R² at {first.horizon} bar(s): persistence {first.r2_price_persistence:.4f}"
          " (a high R² on prices says nothing about skill; compare models to this)")


def parse_whole(text: str, option: str, low: int, high: int) -> int:
    """``text`` as a whole number in ``[low, high]``, or an error naming ``option``."""
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"{option} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise InvalidArgument(f"{option} must be between {low} and {high}, got {value}")
    return value


def parse_fraction(text: str, option: str, *, upper: float = 1.0, zero: bool = False) -> float:
    """``text`` as a number above 0 (or from 0 with ``zero``) and below ``upper``."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"{option} must be a number, got {text!r}") from None
    if not (value >= 0.0 if zero else value > 0.0) or not value < upper:
        low = "0" if zero else "above 0"
        raise InvalidArgument(f"{option} must be {low} and below {upper:g}, got {text}")
    return value


def _report_dir(text: str | None) -> Path | None:
    if text is None:
        return None
    path = as_path(text)
    if path.exists() and not path.is_dir():
        raise InvalidArgument(f"--report {path}: a file of that name exists; name a folder")
    if not path.parent.is_dir():
        raise InvalidArgument(f"--report {path}: the folder {path.parent} does not exist")
    return path

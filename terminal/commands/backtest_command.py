"""``backtest``: run a strategy over a candle file or the stored history and report on it.

Candles come from a CSV file or the store (see :mod:`terminal.commands.candle_source`); the
report says what was done to them. Every input is checked before anything runs, and nothing
is written unless the run succeeds.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

from terminal.cli import EXIT_OK, as_path, print_json
from terminal.commands.candle_source import (
    CandleData,
    Pricing,
    add_pricing_arguments,
    add_source_arguments,
    data_json,
    describe,
    load_candles,
    output_path,
    parse_assignments,
    parse_pricing,
)
from terminal.core.backtest import BacktestResult, run_backtest
from terminal.core.errors import InvalidArgument
from terminal.core.series import CandleSeries
from terminal.core.strategies import STRATEGIES, ModelSignal, create_strategy
from terminal.core.strategy import Strategy
from terminal.core.timefmt import format_ms, parse_user_time


def register(commands: Any) -> None:
    """Add the ``backtest`` command to the CLI's subparsers."""
    names = ", ".join(STRATEGIES)
    parser = commands.add_parser(
        "backtest", help="run a strategy over historical candles",
        description="Run a strategy over candles from a CSV file (--csv) or from the store"
                    " (--symbol/--timeframe) and report its figures next to buy-and-hold."
                    f" Strategies: {names}.")
    add_source_arguments(parser)
    parser.add_argument("--strategy", required=True, metavar="NAME", help=f"one of: {names}")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="strategy parameter; repeat for several")
    add_pricing_arguments(parser)
    parser.add_argument("--predictions", metavar="PATH",
                        help="CSV with open_time and expected_return columns, for model_signal")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trades-csv", metavar="OUT", help="write the trade list as CSV")
    parser.add_argument("--plot", metavar="OUT.png", help="draw the equity curve against"
                        " buy-and-hold and the price with the trades as a PNG")
    parser.set_defaults(run=run_backtest_command)


def run_backtest_command(args: argparse.Namespace) -> int:
    pricing = parse_pricing(args)
    params = parse_assignments(args.param, "--param")
    trades_path = output_path(args.trades_csv, None)
    plot_path = output_path(args.plot, ".png")
    data = load_candles(args)
    strategy = _strategy(args, params, pricing.fee, data.series)
    result = run_backtest(data.series, strategy, symbol=data.symbol, cash=pricing.cash,
                          fill_model=pricing.settings(data.symbol).fill_model())
    if plot_path is not None:
        from terminal.ui.report_plot import render_report

        render_report(result, plot_path)
    if trades_path is not None:
        _write_trades(trades_path, result)
    report = {**data_json(data), **result.to_json(), **pricing.to_json()}
    if args.json:
        print_json(report)
    else:
        _print_summary(data, result, pricing)
    return EXIT_OK


# --- inputs ---------------------------------------------------------------------------------

def _strategy(args: argparse.Namespace, params: dict[str, str], fee: float,
              candles: CandleSeries) -> Strategy:
    name = args.strategy.strip().lower()
    if name != ModelSignal.name:
        if args.predictions:
            raise InvalidArgument(f"--predictions is only for {ModelSignal.name}")
        return create_strategy(name, params)
    if not args.predictions:
        raise InvalidArgument(f"{ModelSignal.name} trades on predictions: give --predictions"
                              " FILE (columns open_time, expected_return)")
    # The entry threshold covers the fee the run charges unless told otherwise.
    with_fee = {"fee": str(fee), **params}
    return create_strategy(name, with_fee, predictions=_read_predictions(
        as_path(args.predictions), candles))


def _read_predictions(path: Path, candles: CandleSeries) -> np.ndarray:
    """Expected returns aligned with ``candles`` by open time (NaN where none is given)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise InvalidArgument(f"cannot read {path}: {error.strerror}") from error
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "open_time" not in header or "expected_return" not in header:
        raise InvalidArgument(f"{path}: the first line must name the columns open_time and"
                              " expected_return")
    time_col, value_col = header.index("open_time"), header.index("expected_return")
    aligned = np.full(len(candles), np.nan)
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            cell = row[time_col].strip()
            time_ms = int(cell) if cell.isdigit() else parse_user_time(cell)
            value = float(row[value_col])
        except (IndexError, ValueError, InvalidArgument):
            raise InvalidArgument(f"{path}, line {line}: cannot read an open time and an"
                                  " expected return") from None
        at = int(np.searchsorted(candles.open_time, time_ms))
        if at < len(candles) and candles.open_time[at] == time_ms:
            aligned[at] = value
    return aligned


# --- outputs --------------------------------------------------------------------------------

def _write_trades(path: Path, result: BacktestResult) -> None:
    columns = ["entry_utc", "exit_utc", "entry_price", "exit_price", "amount", "fees", "pnl",
               "return", "bars_held", "exit_reason"]
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            for trade in result.trades:
                row = trade.to_json()
                writer.writerow([row[name] for name in columns])
    except OSError as error:
        raise InvalidArgument(f"cannot write {path}: {error.strerror}") from error


def _print_summary(data: CandleData, result: BacktestResult, pricing: Pricing) -> None:
    print("\n".join(describe(data)))
    params = " ".join(f"{k}={v:g}" for k, v in result.params.items())
    slippage = "".join(
        f"; {label} slippage {bps:g} bps" for label, bps in
        (("fixed", pricing.slippage_bps), ("volume-aware", pricing.volume_slippage_bps)) if bps)
    maker = "" if pricing.maker == pricing.fee else f" (maker {pricing.maker * 100:g} %)"
    print(f"strategy {result.strategy} {params}; warm-up {result.warmup_bars} bars;"
          f" fee {pricing.fee * 100:g} %{maker}{slippage}; cash {result.initial_cash:,.2f}")
    ours, hold = result.metrics.to_json(), result.buy_and_hold.to_json()
    print(f"{'':<18}{'strategy':>16}{'buy & hold':>16}")
    rows = [("final equity", "final_equity", _money), ("total return", "total_return", _pct),
            ("CAGR", "cagr", _pct), ("Sharpe", "sharpe", _ratio), ("Sortino", "sortino", _ratio),
            ("max drawdown", "max_drawdown", _pct), ("trades", "trades", str),
            ("win rate", "win_rate", _pct), ("profit factor", "profit_factor", _ratio),
            ("average trade", "avg_trade_return", _pct), ("exposure", "exposure", _pct),
            ("fees paid", "fees_paid", _money)]
    for label, key, show in rows:
        print(f"{label:<18}{_cell(ours[key], show):>16}{_cell(hold[key], show):>16}")
    if result.lookahead_bar is None:
        print(f"look-ahead check: passed ({result.lookahead_cuts} truncated re-runs)")
    else:
        moment = format_ms(int(result.times[result.lookahead_bar - result.warmup_bars]))
        print(f"look-ahead check: FAILED: signals at bar {result.lookahead_bar} ({moment})"
              " change when later candles are removed; the strategy peeks at the future")
    if result.rejections:
        print(f"{len(result.rejections)} intents rejected by the risk check;"
              f" first: {result.rejections[0].reason}")


def _cell(value: Any, show: Any) -> str:
    return "-" if value is None else str(show(value))


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %"


def _ratio(value: float) -> str:
    return f"{value:.2f}"


"""``backtest``: run a strategy over a candle file or the stored history and report on it.

Candles come from a CSV file (read by the importers: duplicates keep their first occurrence)
or from the store (resampled from a finer stored timeframe when needed). Missing bars are
filled flat at the previous close with zero volume before the run, as freqtrade does; the
report says how many there were. Every input is checked before anything runs, and nothing is
written unless the run succeeds.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terminal.cli import EXIT_OK, as_path, print_json
from terminal.core.backtest import BacktestResult, fill_missing_bars, run_backtest
from terminal.core.errors import InvalidArgument
from terminal.core.fills import FeeSchedule, FillModel, Slippage
from terminal.core.marketdata import find_gaps
from terminal.core.model import Timeframe, normalize_symbol
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.strategies import STRATEGIES, ModelSignal, create_strategy
from terminal.core.strategy import Strategy
from terminal.core.timefmt import format_ms, parse_user_time

DEFAULT_SYMBOL = "BTC/USDT"
DEFAULT_VENUE = "simulated"
MAX_FEE = 0.1
MAX_CASH = 1e12
_NAME_TOKENS = re.compile(r"[^A-Za-z0-9]+")


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
    parser.add_argument("--fee", default="0.001", help="maker and taker fee as a fraction"
                        " (default 0.001, i.e. 0.1 %%)")
    parser.add_argument("--slippage-bps", default="0", metavar="BPS",
                        help="fixed slippage of taker fills in basis points (default 0)")
    parser.add_argument("--cash", default="10000", help="starting cash in the quote currency"
                        " (default 10000)")
    parser.add_argument("--predictions", metavar="PATH",
                        help="CSV with open_time and expected_return columns, for model_signal")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trades-csv", metavar="OUT", help="write the trade list as CSV")
    parser.add_argument("--plot", metavar="OUT.png", help="draw the equity curve against"
                        " buy-and-hold and the price with the trades as a PNG")
    parser.set_defaults(run=run_backtest_command)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the candles: a CSV file, or a stored series."""
    parser.add_argument("--csv", metavar="PATH", help="candle file to read (any format"
                        " `import` reads); nothing is stored")
    parser.add_argument("--symbol", help="pair such as BTC/USDT (with --csv: default from the"
                        f" file name, else {DEFAULT_SYMBOL})")
    parser.add_argument("--timeframe", required=True, help="candle length such as 1h")
    parser.add_argument("--venue", help=f"stored venue to read (default: {DEFAULT_VENUE})")


@dataclass(frozen=True)
class LoadedCandles:
    """The candles a run uses and what was done to them on the way."""

    series: CandleSeries
    symbol: str
    source: dict[str, Any]
    duplicates: int
    gaps: int
    filled_bars: int


def run_backtest_command(args: argparse.Namespace) -> int:
    fee = _number(args.fee, "--fee", 0.0, MAX_FEE,
                  "a fraction of the notional (0.001 is 0.1 %)")
    slippage = _number(args.slippage_bps, "--slippage-bps", 0.0, 1000.0, "basis points")
    cash = _number(args.cash, "--cash", 0.0, MAX_CASH, "an amount of quote currency",
                   positive=True)
    params = _parse_params(args.param)
    trades_path = _output_path(args.trades_csv, None)
    plot_path = _output_path(args.plot, ".png")
    data = load_candles(args)
    strategy = _strategy(args, params, fee, data.series)
    model = FillModel(FeeSchedule(maker=fee, taker=fee), Slippage(fixed_bps=slippage))
    result = run_backtest(data.series, strategy, symbol=data.symbol, cash=cash,
                          fill_model=model)
    if plot_path is not None:
        from terminal.ui.report_plot import render_report

        render_report(result, plot_path)
    if trades_path is not None:
        _write_trades(trades_path, result)
    report = {**data_json(data), **result.to_json(), "fee": fee, "slippage_bps": slippage}
    if args.json:
        print_json(report)
    else:
        _print_summary(data, result, fee)
    return EXIT_OK


# --- inputs ---------------------------------------------------------------------------------

def _number(text: str, option: str, low: float, high: float, unit: str, *,
            positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"{option} must be a number, got {text!r}") from None
    too_low = value <= low if positive else value < low
    if not math.isfinite(value) or too_low or value >= high:
        lower = f"above {low:g}" if positive else f"at least {low:g}"
        raise InvalidArgument(f"{option} is {unit}, {lower} and below {high:g}; got {text}")
    return value


def _parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name.strip() or not value.strip():
            raise InvalidArgument(f"--param expects NAME=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    return params


def _output_path(text: str | None, suffix: str | None) -> Path | None:
    if text is None:
        return None
    path = as_path(text)
    if suffix is not None and path.suffix.lower() != suffix:
        raise InvalidArgument(f"{path} must be a {suffix} file")
    if not path.parent.is_dir():
        raise InvalidArgument(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise InvalidArgument(f"cannot write {path}: it is a folder")
    return path


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


def load_candles(args: argparse.Namespace) -> LoadedCandles:
    """The candles :func:`add_source_arguments`' options name, missing bars filled flat."""
    timeframe = Timeframe.parse(args.timeframe)
    if args.csv:
        if args.venue:
            raise InvalidArgument("--venue names a stored series; it does not go with --csv")
        return _load_csv(as_path(args.csv), args.symbol, timeframe)
    if not args.symbol:
        raise InvalidArgument("give --csv PATH, or --symbol and --timeframe of a stored series")
    return _load_store(args, normalize_symbol(args.symbol), timeframe)


def _load_csv(path: Path, symbol_text: str | None, timeframe: Timeframe) -> LoadedCandles:
    from terminal.exchange.importers import read_candle_file

    symbol = normalize_symbol(symbol_text) if symbol_text else _symbol_from_name(path)
    parsed = read_candle_file(path, symbol=symbol, timeframe=timeframe)
    series, filled = fill_missing_bars(parsed.series)
    return LoadedCandles(series, symbol, {"csv": str(path), "format": parsed.format},
                 len(parsed.duplicates), len(parsed.gaps), filled)


def _symbol_from_name(path: Path) -> str:
    for token in _NAME_TOKENS.split(path.stem):
        try:
            return normalize_symbol(token)
        except InvalidArgument:
            continue
    return DEFAULT_SYMBOL


def _load_store(args: argparse.Namespace, symbol: str, timeframe: Timeframe) -> LoadedCandles:
    from terminal.commands.data_commands import load_any_timeframe
    from terminal.core.paths import resolve_data_dir
    from terminal.core.storage import Store

    venue = (args.venue or DEFAULT_VENUE).strip().lower()
    key = SeriesKey(venue, symbol, timeframe)
    with Store.open(resolve_data_dir(args.data_dir)) as store:
        stored = load_any_timeframe(store, key, None, None)
    if not len(stored):
        raise InvalidArgument(f"no {symbol} {timeframe} candles stored for {venue} (nor a finer"
                              " timeframe to build them from); `data list` shows what is"
                              " stored")
    series, filled = fill_missing_bars(stored)
    return LoadedCandles(series, symbol, {"venue": venue}, 0, len(find_gaps(stored)), filled)


# --- outputs --------------------------------------------------------------------------------

def data_json(data: LoadedCandles) -> dict[str, Any]:
    series = data.series
    return {"data": {**data.source, "candles": len(series) - data.filled_bars,
                     "first_utc": format_ms(int(series.open_time[0])),
                     "last_utc": format_ms(int(series.open_time[-1])),
                     "duplicates": data.duplicates, "gaps": data.gaps,
                     "filled_bars": data.filled_bars}}


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


def _print_summary(data: LoadedCandles, result: BacktestResult, fee: float) -> None:
    series = data.series
    origin = data.source.get("csv") or f"the store ({data.source['venue']})"
    print(f"{data.symbol} {series.timeframe}, {format_ms(int(series.open_time[0]))} to"
          f" {format_ms(int(series.open_time[-1]))}: {len(series) - data.filled_bars:,}"
          f" candles from {origin}")
    if data.duplicates:
        print(f"  {data.duplicates:,} duplicated open times dropped (first occurrence kept)")
    if data.filled_bars:
        print(f"  {data.gaps} gaps: {data.filled_bars} missing bars filled flat at the previous"
              " close with zero volume")
    params = " ".join(f"{k}={v:g}" for k, v in result.params.items())
    print(f"strategy {result.strategy} {params}; warm-up {result.warmup_bars} bars;"
          f" fee {fee * 100:g} %; cash {result.initial_cash:,.2f}")
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


"""What ``backtest`` and ``optimize`` share: where candles come from and how a run is priced.

Candles come from a CSV file (read by the importers: duplicates keep their first occurrence;
the timeframe is inferred from the candle spacing when not given) or from the store (resampled
from a finer stored timeframe when needed). Missing bars are filled flat at the previous close
with zero volume, as freqtrade does; :class:`CandleData` says how many there were.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal.cli import as_path
from terminal.core.backtest import fill_missing_bars
from terminal.core.errors import InvalidArgument
from terminal.core.marketdata import find_gaps
from terminal.core.model import Timeframe, normalize_symbol
from terminal.core.optimize import RunSettings
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.timefmt import format_ms

DEFAULT_SYMBOL = "BTC/USDT"
DEFAULT_VENUE = "simulated"
MAX_FEE = 0.1
MAX_SLIPPAGE_BPS = 1000.0
MAX_CASH = 1e12
_NAME_TOKENS = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class CandleData:
    """The candles a run uses and what was done to them on the way.

    ``timeframe_inferred`` says the timeframe was read from a CSV file's candle spacing.
    """

    series: CandleSeries
    symbol: str
    source: dict[str, Any]
    duplicates: int
    gaps: int
    filled_bars: int
    timeframe_inferred: bool = False


@dataclass(frozen=True, slots=True)
class Pricing:
    """The costs and capital of a run, as typed on the command line and checked."""

    fee: float
    slippage_bps: float
    cash: float
    volume_slippage_bps: float = 0.0
    maker_fee: float | None = None

    @property
    def maker(self) -> float:
        """The fee of limit fills reached inside a candle (take profits, resting limits)."""
        return self.fee if self.maker_fee is None else self.maker_fee

    def settings(self, symbol: str) -> RunSettings:
        """These costs as the settings every backtest of a run uses."""
        return RunSettings(symbol=symbol, cash=self.cash, fee=self.fee,
                           slippage_bps=self.slippage_bps,
                           volume_slippage_bps=self.volume_slippage_bps,
                           maker_fee=self.maker_fee)

    def to_json(self) -> dict[str, float]:
        return {"fee": self.fee, "maker_fee": self.maker, "slippage_bps": self.slippage_bps,
                "volume_slippage_bps": self.volume_slippage_bps, "cash": self.cash}


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--csv`` or ``--symbol``/``--timeframe``/``--venue``."""
    parser.add_argument("--csv", metavar="PATH", help="candle file to read (any format"
                        " `import` reads); nothing is stored")
    parser.add_argument("--symbol", help="pair such as BTC/USDT (with --csv: default from the"
                        f" file name, else {DEFAULT_SYMBOL})")
    parser.add_argument("--timeframe", help="candle length such as 1h; with --csv, inferred"
                        " from the candle spacing when left out")
    parser.add_argument("--venue", help=f"stored venue to read (default: {DEFAULT_VENUE})")


def add_pricing_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fee``, ``--maker-fee``, ``--slippage-bps``, ``--volume-slippage-bps``, ``--cash``."""
    parser.add_argument("--fee", default="0.001", help="taker fee (and maker fee unless"
                        " --maker-fee says otherwise) as a fraction (default 0.001, i.e. 0.1 %%)")
    parser.add_argument("--maker-fee", metavar="FEE", help="fee of limit fills reached inside"
                        " a candle, such as take profits (default: --fee)")
    parser.add_argument("--slippage-bps", default="0", metavar="BPS",
                        help="fixed slippage of taker fills in basis points (default 0)")
    parser.add_argument("--volume-slippage-bps", default="0", metavar="BPS",
                        help="volume-aware slippage added to taker fills: BPS for an order as"
                             " large as the candle's volume, growing with the square root of"
                             " the share taken; at most 100 bps in all (default 0)")
    parser.add_argument("--cash", default="10000", help="starting cash in the quote currency"
                        " (default 10000)")


def parse_pricing(args: argparse.Namespace) -> Pricing:
    return Pricing(
        fee=parse_number(args.fee, "--fee", 0.0, MAX_FEE,
                         "a fraction of the notional (0.001 is 0.1 %)"),
        slippage_bps=parse_number(args.slippage_bps, "--slippage-bps", 0.0, MAX_SLIPPAGE_BPS,
                                  "basis points"),
        cash=parse_number(args.cash, "--cash", 0.0, MAX_CASH, "an amount of quote currency",
                          positive=True),
        volume_slippage_bps=parse_number(args.volume_slippage_bps, "--volume-slippage-bps",
                                         0.0, MAX_SLIPPAGE_BPS, "basis points"),
        maker_fee=None if args.maker_fee is None else parse_number(
            args.maker_fee, "--maker-fee", 0.0, MAX_FEE,
            "a fraction of the notional (0.0002 is 0.02 %)"),
    )


def parse_number(text: str, option: str, low: float, high: float, unit: str, *,
                 positive: bool = False) -> float:
    """``text`` as a finite number in ``[low, high)`` (``(low, high)`` when ``positive``)."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"{option} must be a number, got {text!r}") from None
    too_low = value <= low if positive else value < low
    if not math.isfinite(value) or too_low or value >= high:
        lower = f"above {low:g}" if positive else f"at least {low:g}"
        raise InvalidArgument(f"{option} is {unit}, {lower} and below {high:g}; got {text}")
    return value


def parse_assignments(items: list[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` items as a dict (a later name wins)."""
    values: dict[str, str] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name.strip() or not value.strip():
            raise InvalidArgument(f"{option} expects NAME=VALUE, got {item!r}")
        values[name.strip()] = value.strip()
    return values


def output_path(text: str | None, suffix: str | None) -> Path | None:
    """Where to write an output file, checked before any work starts."""
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


def load_candles(args: argparse.Namespace) -> CandleData:
    """The candles ``add_source_arguments`` options name, gaps filled."""
    timeframe = None if args.timeframe is None else Timeframe.parse(args.timeframe)
    if args.csv:
        if args.venue:
            raise InvalidArgument("--venue names a stored series; it does not go with --csv")
        return _load_csv(as_path(args.csv), args.symbol, timeframe)
    if not args.symbol:
        raise InvalidArgument("give --csv PATH, or --symbol and --timeframe of a stored series")
    if timeframe is None:
        raise InvalidArgument("--symbol needs --timeframe: which stored candles to read")
    return _load_store(args, normalize_symbol(args.symbol), timeframe)


def _load_csv(path: Path, symbol_text: str | None, timeframe: Timeframe | None) -> CandleData:
    from terminal.exchange.importers import read_candle_file

    symbol = normalize_symbol(symbol_text) if symbol_text else _symbol_from_name(path)
    parsed = read_candle_file(path, symbol=symbol, timeframe=timeframe)
    series, filled = fill_missing_bars(parsed.series)
    return CandleData(series, symbol, {"csv": str(path), "format": parsed.format},
                      len(parsed.duplicates), len(parsed.gaps), filled,
                      timeframe_inferred=timeframe is None)


def _symbol_from_name(path: Path) -> str:
    for token in _NAME_TOKENS.split(path.stem):
        try:
            return normalize_symbol(token)
        except InvalidArgument:
            continue
    return DEFAULT_SYMBOL


def _load_store(args: argparse.Namespace, symbol: str, timeframe: Timeframe) -> CandleData:
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
    return CandleData(series, symbol, {"venue": venue}, 0, len(find_gaps(stored)), filled)


def data_json(data: CandleData) -> dict[str, Any]:
    """The ``data`` member of a command's JSON report."""
    series = data.series
    return {"data": {**data.source, "candles": len(series) - data.filled_bars,
                     "timeframe": series.timeframe.code,
                     "timeframe_inferred": data.timeframe_inferred,
                     "first_utc": format_ms(int(series.open_time[0])),
                     "last_utc": format_ms(int(series.open_time[-1])),
                     "duplicates": data.duplicates, "gaps": data.gaps,
                     "filled_bars": data.filled_bars}}


def describe(data: CandleData) -> list[str]:
    """Lines telling the user which candles a run uses and what was done to them."""
    series = data.series
    origin = data.source.get("csv") or f"the store ({data.source['venue']})"
    lines = [f"{data.symbol} {series.timeframe}, {format_ms(int(series.open_time[0]))} to"
             f" {format_ms(int(series.open_time[-1]))}: {len(series) - data.filled_bars:,}"
             f" candles from {origin}"]
    if data.timeframe_inferred:
        lines.append(f"  timeframe {series.timeframe} inferred from the candle spacing"
                     " (--timeframe to set it)")
    if data.duplicates:
        lines.append(f"  {data.duplicates:,} duplicated open times dropped (first occurrence"
                     " kept)")
    if data.filled_bars:
        lines.append(f"  {data.gaps} gaps: {data.filled_bars} missing bars filled flat at the"
                     " previous close with zero volume")
    return lines

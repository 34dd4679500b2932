"""``data list``, ``data export`` and ``data resample``: looking after the stored history."""

from __future__ import annotations

import argparse
import csv
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TextIO

from terminal.cli import EXIT_OK, print_json
from terminal.core.errors import InvalidArgument, StoreError
from terminal.core.marketdata import find_gaps, resample_for_storage
from terminal.core.model import Timeframe, normalize_symbol
from terminal.core.paths import resolve_data_dir
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.core.timefmt import format_ms, parse_user_time
from terminal.exchange.simulated import VENUE_ID as SIMULATED_VENUE
from terminal.exchange.simulated import is_simulated_venue

RESAMPLE_TARGETS = "5m,15m,1h,4h,1d"


def register(commands: Any) -> None:
    data = commands.add_parser("data", help="list, export and resample stored candles")
    actions = data.add_subparsers(title="data commands", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every stored series with its range and size")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(run=run_list)

    export = actions.add_parser("export", help="write stored candles to CSV")
    _add_series_arguments(export)
    export.add_argument("--start", help="first open time to include (UTC), e.g. 2021-01-01")
    export.add_argument("--end", help="open time to stop before (UTC)")
    export.add_argument("--out", default="-", metavar="PATH",
                        help="CSV file to write (default: standard output)")
    export.set_defaults(run=run_export)

    resampling = actions.add_parser(
        "resample", help="build and store coarser timeframes from a stored series")
    _add_series_arguments(resampling)
    resampling.add_argument("--to", default=RESAMPLE_TARGETS, metavar="TFS",
                            help=f"comma-separated target timeframes (default {RESAMPLE_TARGETS})")
    resampling.add_argument("--complete-only", action="store_true",
                            help="also leave out candles with missing source bars inside them")
    resampling.add_argument("--json", action="store_true", help="print one JSON object")
    resampling.set_defaults(run=run_resample)


def _add_series_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", default=SIMULATED_VENUE, help="venue id (default: simulated)")
    parser.add_argument("--symbol", required=True, help="pair such as BTC/USDT")
    parser.add_argument("--timeframe", required=True, help="stored timeframe such as 1m or 1h")


def _series_key(args: argparse.Namespace) -> SeriesKey:
    return SeriesKey(args.venue.strip().lower(), normalize_symbol(args.symbol),
                     Timeframe.parse(args.timeframe))


def _open_store(args: argparse.Namespace) -> Store:
    return Store.open(resolve_data_dir(args.data_dir))


def run_list(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        summaries = store.candles.summaries()
        rows = [
            {
                "venue": s.key.venue,
                "simulated": is_simulated_venue(s.key.venue),
                "symbol": s.key.symbol,
                "timeframe": s.key.timeframe.code,
                "candles": s.count,
                "first": s.first_time,
                "last": s.last_time,
                "first_utc": format_ms(s.first_time),
                "last_utc": format_ms(s.last_time),
                "missing_bars": (s.last_time - s.first_time) // s.key.timeframe.ms + 1 - s.count,
            }
            for s in summaries
        ]
        path = str(store.path)
    if args.json:
        print_json({"database": path, "series": rows})
        return EXIT_OK
    print(f"database: {path}")
    if not rows:
        print("no candles stored yet; `python -m terminal import FILE ...` adds some")
        return EXIT_OK
    print(f"{'venue':<20}{'symbol':<12}{'tf':<5}{'candles':>10}  {'first (UTC)':<21}"
          f"{'last (UTC)':<21}{'missing':>8}")
    for row in rows:
        venue = f"{row['venue']} (SIM)" if row["simulated"] else row["venue"]
        print(f"{venue:<20}{row['symbol']:<12}{row['timeframe']:<5}{row['candles']:>10}  "
              f"{row['first_utc']:<21}{row['last_utc']:<21}{row['missing_bars']:>8}")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    key = _series_key(args)
    start = parse_user_time(args.start) if args.start else None
    end = parse_user_time(args.end) if args.end else None
    if start is not None and end is not None and end <= start:
        raise InvalidArgument("--end must be after --start")
    with _open_store(args) as store:
        candles = load_any_timeframe(store, key, start, end)
    if not len(candles):
        raise InvalidArgument(f"no {key.symbol} {key.timeframe} candles from {key.venue} in the"
                              " requested range; `data list` shows what is stored")
    target: Any = nullcontext(sys.stdout) if args.out == "-" else _open_for_writing(args.out)
    with target as handle:
        _write_csv(handle, candles)
    if args.out != "-":
        print(f"wrote {len(candles)} candles to {args.out}", file=sys.stderr)
    return EXIT_OK


def load_any_timeframe(store: Store, key: SeriesKey, start: int | None,
                        end: int | None) -> CandleSeries:
    """The stored series for ``key``, or else one resampled from a finer stored timeframe."""
    if store.candles.summary(key) is not None:
        return store.candles.load(key, start, end)
    finer = [
        s.key for s in store.candles.summaries()
        if (s.key.venue, s.key.symbol) == (key.venue, key.symbol)
        and s.key.timeframe.divides(key.timeframe)
    ]
    if not finer:
        return CandleSeries.empty(key.timeframe)
    source = max(finer, key=lambda k: k.timeframe.ms)
    candles = store.candles.load(source, start, end)
    if not len(candles):
        return CandleSeries.empty(key.timeframe)
    return resample_for_storage(candles, key.timeframe).series


def _open_for_writing(path_text: str) -> TextIO:
    path = Path(path_text).expanduser()
    if not path.parent.is_dir():
        raise InvalidArgument(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        return path.open("w", newline="", encoding="utf-8")
    except OSError as error:
        raise InvalidArgument(f"cannot write {path}: {error.strerror}") from error


def _write_csv(handle: TextIO, candles: CandleSeries) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["open_time", "date", "open", "high", "low", "close", "volume"])
    for candle in candles:
        writer.writerow([candle.open_time, format_ms(candle.open_time), repr(candle.open),
                         repr(candle.high), repr(candle.low), repr(candle.close),
                         repr(candle.volume)])


def run_resample(args: argparse.Namespace) -> int:
    key = _series_key(args)
    targets = [Timeframe.parse(code) for code in args.to.split(",") if code.strip()]
    if not targets:
        raise InvalidArgument("--to needs at least one timeframe")
    for target in targets:
        if target is key.timeframe or not key.timeframe.divides(target):
            raise InvalidArgument(
                f"cannot resample {key.timeframe} to {target}: the target must be a whole"
                f" multiple of {key.timeframe}")
    results = []
    with _open_store(args) as store:
        source = store.candles.load(key)
        if not len(source):
            raise StoreError(f"nothing stored for {key}; `data list` shows what is stored")
        with store.transaction() as tx:
            for target in targets:
                built = resample_for_storage(source, target, complete_only=args.complete_only)
                stored = tx.candles.upsert(SeriesKey(key.venue, key.symbol, target), built.series)
                results.append({
                    "timeframe": target.code,
                    "candles": len(built.series),
                    "stored": stored.changed,
                    "unchanged": stored.unchanged,
                    "with_missing_source_bars": len(built.with_gaps),
                    "dropped_incomplete": built.dropped,
                })
    report = {"venue": key.venue, "symbol": key.symbol, "source": key.timeframe.code,
              "source_candles": len(source), "source_gaps": len(find_gaps(source)),
              "targets": results}
    if args.json:
        print_json(report)
        return EXIT_OK
    print(f"{key}: {len(source)} source candles, {report['source_gaps']} gaps")
    for row in results:
        print(f"  {row['timeframe']:>4}: {row['candles']} candles ({row['stored']} new or changed),"
              f" {row['with_missing_source_bars']} built over missing bars,"
              f" {row['dropped_incomplete']} incomplete left out")
    return EXIT_OK


"""``import PATH``: read a candle CSV file into the store, or check it with ``--dry-run``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from terminal.cli import EXIT_OK, as_path, fail, print_json
from terminal.core.model import Timeframe, normalize_symbol
from terminal.core.paths import resolve_data_dir
from terminal.core.storage import Store
from terminal.core.timefmt import format_ms
from terminal.exchange.importers import ImportFailed, ImportReport, import_file, venue_id

#: Duplicates and rejected rows listed in the text summary; ``--json`` lists all of them.
SHOWN_DETAILS = 20


def register(commands: Any) -> None:
    """Add the ``import`` command to the CLI's subparsers."""
    parser = commands.add_parser(
        "import", help="import candles from a CSV file",
        description="Import candles from a CryptoDataDownload export, a Binance kline file"
                    " (data.binance.vision) or a CSV with time, open, high, low, close and volume"
                    " columns. The format is recognised from the content. A file with any bad"
                    " row is rejected as a whole unless --skip-bad-rows is given.")
    parser.add_argument("path", metavar="PATH", help="the CSV file")
    parser.add_argument("--symbol", required=True, help="pair such as BTC/USDT or BTCUSDT")
    parser.add_argument("--timeframe", required=True, help="candle length such as 1m, 1h or 1d")
    parser.add_argument("--venue", metavar="NAME",
                        help="venue id to store under (default: binance for Binance files,"
                             " otherwise imported)")
    parser.add_argument("--dry-run", action="store_true",
                        help="read and check the file, store nothing")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="import the valid rows of a file that has bad ones (they are"
                             " reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    """Run ``import``; 0 when the file was imported (or checked), 1 when it was rejected."""
    symbol = normalize_symbol(args.symbol)
    timeframe = Timeframe.parse(args.timeframe)
    venue = None if args.venue is None else venue_id(args.venue)
    with Store.open(resolve_data_dir(args.data_dir)) as store:
        try:
            report = import_file(store, as_path(args.path), symbol=symbol, timeframe=timeframe,
                                 venue=venue, dry_run=args.dry_run,
                                 skip_bad_rows=args.skip_bad_rows)
        except ImportFailed as failure:
            _show(failure.report, as_json=args.json)
            return fail(str(failure))
    _show(report, as_json=args.json)
    return EXIT_OK


def _show(report: ImportReport, *, as_json: bool) -> None:
    if as_json:
        print_json(report.to_json())
    else:
        sys.stdout.write("".join(f"{line}\n" for line in summary_lines(report)))


def summary_lines(report: ImportReport, shown: int = SHOWN_DETAILS) -> list[str]:
    """The human-readable report, one string per line, listing up to ``shown`` duplicates and
    rejected rows."""
    if report.error is not None:
        head = "rejected, nothing stored"
    elif report.dry_run:
        head = "dry run, nothing stored"
    else:
        head = "imported"
    lines = [
        f"{report.path}: {head}",
        f"  format:      {report.format}",
        f"  series:      {report.venue} {report.symbol} {report.timeframe}",
        f"  rows read:   {report.rows_read:,}",
    ]
    if report.first_time is not None and report.last_time is not None:
        lines.append(f"  candles:     {report.candles:,} from {format_ms(report.first_time)}"
                     f" to {format_ms(report.last_time)}")
    if report.error is None and not report.dry_run:
        lines.append(f"  stored:      {report.stored:,} new or changed,"
                     f" {report.unchanged:,} unchanged")
    lines.append(f"  duplicates:  {len(report.duplicates):,} ({report.conflicting_duplicates:,}"
                 " with different values; the first row in the file was kept)")
    for dup in report.duplicates[:shown]:
        kind = "different values" if dup.conflicting else "identical"
        lines.append(f"    {format_ms(dup.open_time)}: kept line {dup.kept_line}, dropped line"
                     f" {dup.dropped_line} ({kind})")
    lines.extend(_more(len(report.duplicates), shown))
    lines.append(f"  gaps:        {len(report.gaps):,} ({report.missing_bars:,} missing bars,"
                 " not filled)")
    for gap in report.gaps:
        lines.append(f"    {format_ms(gap.start_ms)} to {format_ms(gap.end_ms)}:"
                     f" {gap.missing:,} missing")
    lines.append(f"  rejected:    {len(report.rejected):,} rows")
    for row in report.rejected[:shown]:
        lines.append(f"    line {row.line}: {row.reason}")
    lines.extend(_more(len(report.rejected), shown))
    if report.notes:
        lines.append("  notes:")
        lines.extend(f"    {note}" for note in report.notes)
    return lines


def _more(count: int, shown: int) -> list[str]:
    hidden = count - shown
    return [f"    ... and {hidden:,} more (--json lists all)"] if hidden > 0 else []

"""``download``: fill the store with an exchange's candle history, resumably."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from terminal.cli import EXIT_OK, print_json
from terminal.core.clock import SystemClock
from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe, normalize_symbol
from terminal.core.paths import resolve_data_dir
from terminal.core.ports import MarketDataVenue
from terminal.core.settings import SettingsFile
from terminal.core.storage import Store
from terminal.core.timefmt import format_ms, parse_user_time
from terminal.exchange.feeds import DownloadProgress, DownloadReport, download_history
from terminal.exchange.simulated import VENUE_ID as SIMULATED_VENUE
from terminal.exchange.simulated import SimulatedMarket

#: Seconds between progress lines on a terminal that is not interactive (logs, pipes).
_PROGRESS_EVERY_S = 5.0
_SHOWN_OUTAGES = 20


def register(commands: Any) -> None:
    """Add the ``download`` command to the CLI's subparsers."""
    parser = commands.add_parser(
        "download", help="download candle history from an exchange into the store",
        description="Download candles from an exchange (any ccxt exchange id, or 'simulated')"
                    " into the store. Asks only for what the store lacks in the range:"
                    " continues where it ends and re-requests holes inside it. Safe to"
                    " interrupt with Ctrl-C and run again. No API key is needed.")
    parser.add_argument("--exchange", required=True, metavar="ID",
                        help="ccxt exchange id such as binance, bybit, okx, kraken; or"
                             f" {SIMULATED_VENUE}")
    parser.add_argument("--symbol", required=True, help="pair such as BTC/USDT")
    parser.add_argument("--timeframe", required=True, help="candle length such as 1m or 1h")
    parser.add_argument("--since", required=True, metavar="DATE",
                        help="first candle to download (UTC), e.g. 2024-01-01")
    parser.add_argument("--until", metavar="DATE",
                        help="open time to stop before (UTC; default: now)")
    parser.add_argument("--sandbox", action="store_true",
                        help="use the exchange's testnet (stored as ID-testnet)")
    parser.add_argument("--api-url", metavar="URL",
                        help="send the exchange's REST requests to this host instead (a local"
                             " mirror or proxy), keeping each endpoint's path")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_download)


def run_download(args: argparse.Namespace) -> int:
    symbol = normalize_symbol(args.symbol)
    timeframe = Timeframe.parse(args.timeframe)
    start = parse_user_time(args.since)
    end = None if args.until is None else parse_user_time(args.until)
    if end is not None and end <= start:
        raise InvalidArgument(f"--until {args.until} is not after --since {args.since}")
    venue = _venue(args)
    progress = _ProgressPrinter(f"{venue.id} {symbol} {timeframe.code}")
    with Store.open(resolve_data_dir(args.data_dir)) as store:
        report = asyncio.run(_download(store, venue, symbol, timeframe, start, end, progress))
    progress.finish()
    if args.json:
        print_json(report.to_json())
    else:
        sys.stdout.write("".join(f"{line}\n" for line in summary_lines(report)))
    return EXIT_OK


def _venue(args: argparse.Namespace) -> MarketDataVenue:
    exchange = args.exchange.strip().lower()
    if exchange == SIMULATED_VENUE:
        if args.sandbox or args.api_url:
            raise InvalidArgument("--sandbox and --api-url apply to real exchanges only")
        # The user's simulated market: the one the window shows (its seed is a setting).
        seed = SettingsFile().load().simulated.seed
        return SimulatedMarket() if seed is None else SimulatedMarket(seed=seed)
    # Imported here: ccxt takes a noticeable time to import, and other commands never need it.
    from terminal.exchange.ccxt_venue import CcxtVenue

    return CcxtVenue(exchange, sandbox=args.sandbox, websocket=False,
                     api_base_url=args.api_url)


async def _download(store: Store, venue: MarketDataVenue, symbol: str, timeframe: Timeframe,
                    start: int, end: int | None,
                    progress: _ProgressPrinter) -> DownloadReport:
    try:
        return await download_history(store, venue, symbol, timeframe, start, end,
                                      clock=SystemClock(), progress=progress)
    finally:
        await venue.close()


class _ProgressPrinter:
    """Progress on stderr: one updating line on a terminal, a line every few seconds else."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._interactive = sys.stderr.isatty()
        self._last_line = 0.0
        self._shown = False

    def __call__(self, progress: DownloadProgress) -> None:
        now = time.monotonic()
        last = progress.done >= progress.total
        if not last and now - self._last_line < (0.2 if self._interactive else
                                                  _PROGRESS_EVERY_S):
            return
        self._last_line = now
        share = 100 * progress.done / progress.total if progress.total else 100.0
        text = (f"{self._label}: {progress.done:,} of {progress.total:,} missing candles"
                f" requested ({share:.0f}%), {progress.stored:,} stored")
        end = "\r" if self._interactive else "\n"
        sys.stderr.write(f"{text}{end}")
        sys.stderr.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown and self._interactive:
            sys.stderr.write("\n")


def summary_lines(report: DownloadReport) -> list[str]:
    """The human-readable report, one string per line."""
    key = report.key
    lines = [
        f"{key.venue} {key.symbol} {key.timeframe.code}: {format_ms(report.start_ms)} to"
        f" {format_ms(report.end_ms)}",
        f"  already stored:  {report.already_stored:,} candles",
        f"  missing:         {report.missing_before:,} candles"
        f" ({report.holes_found:,} holes inside the stored range)",
        f"  downloaded:      {report.stored:,} new candles in {report.pages:,} requests",
        f"  holes repaired:  {report.holes_repaired:,}",
        f"  not at exchange: {report.unavailable:,} candles in"
        f" {len(report.empty_at_venue):,} ranges (exchange outages; not retried)",
    ]
    for gap in report.empty_at_venue[:_SHOWN_OUTAGES]:
        lines.append(f"    {format_ms(gap.start_ms)} to {format_ms(gap.end_ms)}:"
                     f" {gap.missing:,} candles")
    hidden = len(report.empty_at_venue) - _SHOWN_OUTAGES
    if hidden > 0:
        lines.append(f"    ... and {hidden:,} more (--json lists all)")
    return lines

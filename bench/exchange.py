"""Exchange benchmarks: history download from the local Binance emulator.

ccxt's real ``binance`` class talks HTTP to the emulator (tests/exchange/emulator.py), which
runs in this process; each download runs in a child process, so its wall time includes the
interpreter start and its peak resident set size is the download's own. Two figures for the
year of 1-minute candles: through the ``download`` command as a user runs it, paced by ccxt's
rate limiter for Binance (what a real download costs, whatever the network), and the same
download with the limiter off, which is the cost of the terminal's own pipeline (HTTP, ccxt
parsing, conversion, store).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, Row, peak_rss_mb
from terminal.core.clock import SystemClock
from terminal.core.model import MINUTE_MS, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.core.timefmt import format_ms
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.exchange.feeds import download_history
from tests.exchange.emulator import ExchangeEmulator

YEAR_START = 1_672_531_200_000  # 2023-01-01
YEAR_BARS = 525_600
YEAR_END = YEAR_START + YEAR_BARS * MINUTE_MS
HOLES = 100
KEY = SeriesKey("binance", "BTC/USDT", Timeframe.M1)


def year_of_candles() -> CandleSeries:
    rng = np.random.default_rng(3)
    times = YEAR_START + np.arange(YEAR_BARS, dtype=np.int64) * MINUTE_MS
    close = np.round(20_000 * np.exp(np.cumsum(rng.normal(0, 0.0007, YEAR_BARS))), 2)
    open_ = np.r_[20_000.0, close[:-1]]
    wick = np.round(np.abs(rng.normal(0, 0.0003, YEAR_BARS)) * close, 2)
    return CandleSeries(Timeframe.M1, times, open_, np.maximum(open_, close) + wick,
                        np.minimum(open_, close) - wick, close,
                        np.round(rng.gamma(2.0, 3.0, YEAR_BARS), 5))


def _child(argv: list[str]) -> dict[str, float]:
    started = time.perf_counter()
    output = subprocess.run([sys.executable, "-m", "bench.exchange", *argv], check=True,
                            capture_output=True, text=True, cwd=ROOT).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def _cli_argv(folder: Path, url: str) -> list[str]:
    return ["cli", "--data-dir", str(folder), "download", "--exchange", "binance", "--symbol",
            "BTC/USDT", "--timeframe", "1m", "--since", format_ms(YEAR_START), "--until",
            format_ms(YEAR_END), "--api-url", url, "--json"]


def _with_holes(candles: CandleSeries) -> CandleSeries:
    """The year with 100 holes of 1 to 30 candles at random places inside it."""
    rng = np.random.default_rng(5)
    keep = np.ones(len(candles), dtype=bool)
    for start in rng.choice(np.arange(1_000, YEAR_BARS - 1_000, 4_000), HOLES, replace=False):
        keep[start:start + int(rng.integers(1, 31))] = False
    return CandleSeries(Timeframe.M1, *(getattr(candles, name)[keep] for name in
                                        ("open_time", "open", "high", "low", "close",
                                         "volume")))


def rows(data: Path) -> list[Row]:
    candles = year_of_candles()
    emulator = ExchangeEmulator()
    emulator.start()
    emulator.set_candles("BTCUSDT", "1m", candles)
    result: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            cli = _child(_cli_argv(Path(folder), emulator.base_url))
            assert cli["stored"] == YEAR_BARS, cli
        result.append((f"download {YEAR_BARS:,} 1m candles (one year) from the local Binance"
                       " emulator through the CLI, paced by ccxt's Binance rate limit",
                       f"{cli['wall_s']:.1f} s ({YEAR_BARS / cli['wall_s']:,.0f} candles/s)",
                       "-"))
        result.append(("peak RSS of that download", f"{cli['peak_rss_mb']:.0f} MB", "-"))
        with tempfile.TemporaryDirectory() as folder:
            free = _child(["unthrottled", emulator.base_url, folder])
        result.append(("the same download with the rate limiter off (own pipeline cost)",
                       f"{free['seconds']:.1f} s ({YEAR_BARS / free['seconds']:,.0f}"
                       " candles/s)", "-"))
        result.append(("peak RSS of the unthrottled download",
                       f"{free['peak_rss_mb']:.0f} MB", "-"))
        with tempfile.TemporaryDirectory() as folder:
            holed = _with_holes(candles)
            with Store.open(Path(folder)) as store:
                store.candles.upsert(KEY, holed)
            before = emulator.calls["GET /api/v3/klines"]
            repair = _child(_cli_argv(Path(folder), emulator.base_url))
            requests = emulator.calls["GET /api/v3/klines"] - before
            assert repair["holes_repaired"] == HOLES, repair
            with Store.open(Path(folder)) as store:
                assert len(store.candles.load(KEY)) == YEAR_BARS
        result.append((f"repair {HOLES} holes ({YEAR_BARS - len(holed):,} candles) in the"
                       " stored year through the CLI",
                       f"{repair['wall_s']:.1f} s, {requests} requests", "-"))
    finally:
        emulator.stop()
    return result


def _run_cli(argv: list[str]) -> None:
    """Child: the download command exactly as a user runs it, then its peak memory."""
    import contextlib
    import io

    from terminal.cli import main

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        status = main(argv)
    if status != 0:
        raise SystemExit(status)
    report = json.loads(captured.getvalue())
    report["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(report))


def _run_unthrottled(url: str, folder: str) -> None:
    """Child: the same download with ccxt's rate limiter off."""
    async def download() -> int:
        venue = CcxtVenue("binance", websocket=False, rate_limit_ms=0, api_base_url=url)
        try:
            with Store.open(Path(folder)) as store:
                report = await download_history(store, venue, "BTC/USDT", Timeframe.M1,
                                                YEAR_START, YEAR_END, clock=SystemClock())
            return report.stored
        finally:
            await venue.close()

    started = time.perf_counter()
    stored = asyncio.run(download())
    seconds = time.perf_counter() - started
    assert stored == YEAR_BARS, stored
    print(json.dumps({"seconds": seconds,
                      "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    if sys.argv[1] == "cli":
        _run_cli(sys.argv[2:])
    else:
        _run_unthrottled(sys.argv[2], sys.argv[3])

"""Store, importer and simulated-market benchmarks (the foundation's targets).

Peak memory is measured in a child process that does nothing but the 1M-candle insert and
load, so the figure is that workload's own peak resident set size, interpreter included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, Row, median_seconds, million_candles, peak_rss_mb
from terminal.core.model import DAY_MS, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.exchange.importers import import_file
from terminal.exchange.simulated import MarketGenerator

MILLION = 1_000_000
KEY = SeriesKey("bench", "BTC/USDT", Timeframe.M1)


def bench_insert(candles: CandleSeries) -> float:
    def insert(folder: Path, _: object) -> None:
        with Store.open(folder) as store:
            store.candles.upsert(KEY, candles)

    return median_seconds(5, lambda folder: None, insert)


def bench_load(candles: CandleSeries) -> float:
    def fill(folder: Path) -> Store:
        store = Store.open(folder)
        store.candles.upsert(KEY, candles)
        return store

    def load(_folder: Path, store: object) -> None:
        assert isinstance(store, Store)
        loaded = store.candles.load(KEY)
        assert len(loaded) == MILLION
        store.close()

    return median_seconds(5, fill, load)


def bench_import(path: Path) -> float:
    def run(folder: Path, _: object) -> None:
        with Store.open(folder) as store:
            report = import_file(store, path, symbol="BTC/USDT", timeframe=Timeframe.H1)
            assert report.stored > 30_000

    return median_seconds(7, lambda folder: None, run)


def bench_import_cli(path: Path) -> float:
    """The same import as a user runs it: a new process, interpreter start-up included."""
    def run(folder: Path, _: object) -> None:
        subprocess.run([sys.executable, "-m", "terminal", "--data-dir", str(folder), "import",
                        str(path), "--symbol", "BTC/USDT", "--timeframe", "1h", "--json"],
                       check=True, capture_output=True)

    return median_seconds(5, lambda folder: None, run)


def peak_rss_child() -> None:
    """The workload whose peak memory is reported: build, insert and load 1M candles."""
    candles = million_candles()
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder)) as store:
        store.candles.upsert(KEY, candles)
        del candles
        loaded = store.candles.load(KEY)
        assert len(loaded) == MILLION
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def bench_peak_rss() -> float:
    output = subprocess.run(
        [sys.executable, "-m", "bench.store"], check=True, capture_output=True, text=True,
        cwd=ROOT,
    ).stdout
    return float(json.loads(output.strip().splitlines()[-1])["peak_rss_mb"])


def bench_simulated_history() -> float:
    now = 1_735_689_600_000  # 2025-01-01

    def generate(_folder: Path, _: object) -> None:
        history = MarketGenerator().history(now - 90 * DAY_MS, now)
        assert sum(len(series) for series in history.values()) == 5 * 90 * 1440

    return median_seconds(3, lambda folder: None, generate)


def rows(data: Path) -> list[Row]:
    candles = million_candles()
    result: list[Row] = []
    csv_path = data / "Binance_BTCUSDT_1h.csv"
    if csv_path.exists():
        result.append(("import Binance_BTCUSDT_1h.csv (37,550 rows): parse, check, store",
                       f"{bench_import(csv_path):.3f} s", "<= 0.5 s"))
        result.append(("the same through the CLI, new process included",
                       f"{bench_import_cli(csv_path):.3f} s", "-"))
    else:
        print(f"skipping the import benchmark: {csv_path} not found", file=sys.stderr)
    result.append(("bulk insert 1,000,000 1m candles", f"{bench_insert(candles):.3f} s",
                   "<= 3 s"))
    result.append(("range load 1,000,000 candles into arrays", f"{bench_load(candles):.3f} s",
                   "<= 0.5 s"))
    result.append(("peak RSS, insert + load of 1M candles", f"{bench_peak_rss():.0f} MB",
                   "<= 300 MB"))
    result.append(("simulated market: 90 days of 1m history, 5 pairs",
                   f"{bench_simulated_history():.3f} s", "-"))
    return result


if __name__ == "__main__":
    peak_rss_child()

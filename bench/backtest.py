"""Backtest benchmarks (issue 4's targets), with backtesting.py side by side in the same run.

The case is the correctness anchor: long-only SMA crossover fast=20 slow=50 on the 1h BTC
series, all-in at the next open, 0.1 % fee. A "backtest call" is ``run_backtest`` as the CLI
calls it after loading: signals, engine, metrics of the strategy and of buy-and-hold, trade
list, equity curve and the look-ahead check. The 10x series is the BTC series repeated ten
times end to end (each copy continuing from the previous one's last price). Peak memory is
measured in a child process that does nothing but build the 350k-bar series and backtest it.

backtesting.py is optional (``pip install -e ".[bench]"``); without it the row says so.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import ROOT, Row, peak_rss_mb, random_walk
from terminal.core.backtest import BacktestResult, fill_missing_bars, run_backtest
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from terminal.core.strategies import SmaCrossover

FILE = "Binance_BTCUSDT_1h.csv"
FEE = 0.001
CASH = 10_000.0
FAST, SLOW = 20, 50
REPEAT = 10


def btc_series(data: Path) -> CandleSeries | None:
    """The anchor's candles as the CLI reads them (duplicates dropped, gaps filled)."""
    from terminal.exchange.importers import read_candle_file

    path = data / FILE
    if not path.exists():
        return None
    parsed = read_candle_file(path, symbol="BTC/USDT", timeframe=Timeframe.H1)
    return fill_missing_bars(parsed.series)[0]


def synthetic_series(count: int) -> CandleSeries:
    """A random walk with BTC-like hourly statistics, when the real file is not at hand."""
    return random_walk(count, Timeframe.H1, start_ms=1_500_000_000_000, price=4_000,
                       volatility=0.009, wick=0.004, volume=300.0, seed=4)


def repeated(series: CandleSeries, times: int) -> CandleSeries:
    """``series`` ``times`` times end to end, each copy scaled to start where the last ended."""
    count = len(series)
    step = series.timeframe.ms
    factors = (series.close[-1] / series.open[0]) ** np.arange(times)
    scale = np.repeat(factors, count)

    def column(values: np.ndarray) -> np.ndarray:
        return np.tile(values, times) * scale

    return CandleSeries(
        series.timeframe,
        series.open_time[0] + np.arange(count * times, dtype=np.int64) * step,
        column(series.open), column(series.high), column(series.low), column(series.close),
        np.tile(series.volume, times))


def backtest_call(candles: CandleSeries) -> BacktestResult:
    """What ``Backtest.run`` is to backtesting.py: every result computed (metrics of the
    strategy and of buy-and-hold, trade list, equity curve) plus the look-ahead check; the
    JSON printing is the CLI row's."""
    return run_backtest(candles, SmaCrossover({"fast": FAST, "slow": SLOW}), cash=CASH,
                        fill_model=FillModel(FeeSchedule(FEE, FEE)))


def timings(runs: int, action: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def median_time(runs: int, action: Callable[[], object]) -> float:
    return statistics.median(timings(runs, action))


def bench_cli(data: Path) -> float:
    command = [sys.executable, "-m", "terminal", "backtest", "--csv", str(data / FILE),
               "--timeframe", "1h", "--strategy", "sma_crossover", "--param", f"fast={FAST}",
               "--param", f"slow={SLOW}", "--json"]
    return median_time(5, lambda: subprocess.run(command, check=True, capture_output=True,
                                                  cwd=ROOT))


def peak_rss_child(data: Path) -> None:
    """The workload whose peak memory is reported: the 350k-bar series and its backtest."""
    base = btc_series(data)
    candles = repeated(base if base is not None else synthetic_series(35_000), REPEAT)
    del base
    result = backtest_call(candles)
    assert result.metrics.trades > 0
    print(json.dumps({"bars": len(candles), "peak_rss_mb": peak_rss_mb()}))


def bench_peak_rss(data: Path) -> tuple[int, float]:
    output = subprocess.run([sys.executable, "-m", "bench.backtest", str(data)], check=True,
                            capture_output=True, text=True, cwd=ROOT).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return int(figures["bars"]), float(figures["peak_rss_mb"])


def backtesting_py(candles: CandleSeries) -> tuple[Callable[[], object], int, float] | None:
    """backtesting.py set up on the same case: its ``Backtest.run``, trades, final equity."""
    try:
        import pandas as pd
        from backtesting import Strategy
        from backtesting.lib import FractionalBacktest
    except ImportError:
        return None

    def average(values: np.ndarray, length: int) -> np.ndarray:
        return np.asarray(pd.Series(values).rolling(length).mean())

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(average, self.data.Close, FAST)
            self.slow = self.I(average, self.data.Close, SLOW)

        def next(self) -> None:
            fast, slow = self.fast, self.slow
            if fast[-1] > slow[-1] and fast[-2] <= slow[-2]:
                if not self.position:
                    self.buy()
            elif slow[-1] > fast[-1] and slow[-2] <= fast[-2] and self.position:
                self.position.close()

    frame = pd.DataFrame({"Open": candles.open, "High": candles.high, "Low": candles.low,
                          "Close": candles.close, "Volume": candles.volume},
                         index=pd.to_datetime(candles.open_time, unit="ms"))
    # Whole units of a satoshi, so that all-in buys are not rounded to whole bitcoins.
    test = FractionalBacktest(frame, SmaCross, cash=CASH, commission=FEE)

    def run() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return test.run()

    stats = run()
    return run, int(stats["# Trades"]), float(stats["Equity Final [$]"])


def interleaved(rounds: int, actions: list[Callable[[], object]]) -> list[list[float]]:
    """Seconds of each action over ``rounds`` rounds, the actions taking turns, so that other
    processes on the machine weigh on all of them alike."""
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(rounds):
        for action, spent in zip(actions, times, strict=True):
            spent += timings(1, action)
    return times


def rows(data: Path) -> list[Row]:
    base = btc_series(data)
    label = f"{FILE} ({{bars:,}} 1h bars)"
    if base is None:
        print(f"{data / FILE} not found: timing a synthetic 35,000-bar series instead; the CLI"
              " row is skipped", file=sys.stderr)
        base = synthetic_series(35_000)
        label = "a synthetic series ({bars:,} 1h bars)"
    result: list[Row] = []
    anchor = backtest_call(base)
    single = median_time(21, lambda: backtest_call(base))
    result.append((f"backtest call, SMA 20/50 on {label.format(bars=len(base))}, results and"
                   f" look-ahead check included ({anchor.metrics.trades} trades, final equity"
                   f" {anchor.metrics.final_equity:,.2f})", f"{single * 1000:.1f} ms",
                   "<= 30 ms"))
    longer, longest = repeated(base, REPEAT), repeated(base, 2 * REPEAT)
    short_runs, long_runs, longest_runs = interleaved(5, [
        lambda: backtest_call(base), lambda: backtest_call(longer),
        lambda: backtest_call(longest)])
    # Other processes on the machine stretch some runs; the fastest run of each size shows
    # how the work itself grows, per bar.
    per_bar = [min(runs) / bars * 1e6 for runs, bars in (
        (short_runs, len(base)), (long_runs, len(longer)), (longest_runs, len(longest)))]
    result.append((f"the same on the series repeated {REPEAT}x ({len(longer):,} bars); cost per"
                   f" bar at 1x, {REPEAT}x and {2 * REPEAT}x (fastest runs)",
                   f"{statistics.median(long_runs) * 1000:.1f} ms ("
                   + " / ".join(f"{cost:.2f}" for cost in per_bar) + " µs)",
                   "linear (~10x)"))
    if (data / FILE).exists():
        result.append(("the whole `backtest` CLI process, same case", f"{bench_cli(data):.2f} s",
                       "<= 1.5 s"))
    bars, rss = bench_peak_rss(data)
    result.append((f"peak RSS, backtest of {bars:,} bars (child process)", f"{rss:.0f} MB",
                   "<= 150 MB"))
    theirs = backtesting_py(base)
    if theirs is None:
        print("backtesting.py is not installed (pip install -e '.[bench]'): its row is"
              " skipped", file=sys.stderr)
        result.append(("backtesting.py, same case", "not installed", "-"))
    else:
        run, trades, final = theirs
        their_runs, our_runs = interleaved(5, [run, lambda: backtest_call(base)])
        ratios = [a / b for a, b in zip(their_runs, our_runs, strict=True)]
        result.append((f"backtesting.py {_version()}, same case, per `Backtest.run` ({trades}"
                       f" trades, final equity {final:,.2f})",
                       f"{statistics.median(their_runs) * 1000:.0f} ms", "-"))
        result.append(("speed-up over backtesting.py (median of its run / our backtest call,"
                       " taking turns)", f"{statistics.median(ratios):.0f}x", ">= 10x"))
    return result


def _version() -> str:
    from importlib.metadata import version

    return version("backtesting")


if __name__ == "__main__":
    peak_rss_child(Path(sys.argv[1]))

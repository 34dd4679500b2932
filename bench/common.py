"""What every benchmark suite shares: timing, the shared data folder, the README table."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"

#: One line of the README table: what was measured, the figure, the target ("-" if none).
Row = tuple[str, str, str]


def median_seconds(runs: int, setup: Callable[[Path], object],
                   action: Callable[[Path, object], object]) -> float:
    """Median wall time of ``action`` over ``runs`` runs, each in a fresh temporary folder."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            prepared = setup(Path(folder))
            start = time.perf_counter()
            action(Path(folder), prepared)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def million_candles(count: int = 1_000_000) -> CandleSeries:
    """A seeded random walk of ``count`` 1-minute candles (the large-history workload)."""
    return random_walk(count, Timeframe.M1, start_ms=1_600_000_000_000, price=30_000,
                       volatility=0.0008, wick=0.0004, volume=3.0, seed=1)


def random_walk(count: int, timeframe: Timeframe, *, start_ms: int, price: float,
                volatility: float, wick: float, volume: float, seed: int) -> CandleSeries:
    """``count`` valid candles of a seeded log-normal walk from ``price``: ``volatility`` and
    ``wick`` are the scales of the close-to-close moves and of the wicks, ``volume`` that of
    the gamma-distributed volumes."""
    rng = np.random.default_rng(seed)
    times = start_ms - start_ms % timeframe.ms + np.arange(count) * timeframe.ms
    close = price * np.exp(np.cumsum(rng.normal(0, volatility, count)))
    open_ = np.r_[float(price), close[:-1]]
    wicks = np.abs(rng.normal(0, wick, count)) * close
    return CandleSeries(timeframe, times.astype(np.int64), open_,
                        np.maximum(open_, close) + wicks, np.minimum(open_, close) - wicks,
                        close, rng.gamma(2.0, volume, count))


def peak_rss_mb() -> float:
    """This process's own peak resident set size.

    Linux keeps ``ru_maxrss`` across exec, so a child started from a big parent reports the
    parent's peak; ``VmHWM`` belongs to the current address space alone.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

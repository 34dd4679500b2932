"""What every benchmark suite shares: timing, the shared data folder, the README table."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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

"""``selfcheck``: prove that this installation works, headless, from a checkout or a bundle.

Each check uses one part the way the application does, in a temporary folder, so a frozen
bundle that lacks a module, a shared library or a resource file fails here with the reason
instead of on a user's desktop. Without ``--gui`` nothing loads Qt, so the command also runs
where Qt cannot.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.metadata
import os
import platform
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from terminal import __version__
from terminal.cli import EXIT_FAILED, EXIT_OK, print_json
from terminal.core.marketdata import find_gaps
from terminal.core.model import DAY_MS, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.exchange.importers import FORMAT_GENERIC, read_candle_file
from terminal.exchange.simulated import MarketGenerator
from terminal.resources import resource_path

#: Modules the terminal needs at run time. Checked by name, and listed as hidden imports in
#: ``build/terminal.spec``, because some are not imported by any module yet (the ccxt venue,
#: the keyring secrets and the scheduler come later) and a bundle must carry them all already.
REQUIRED_PACKAGES = (
    "numpy",
    "pandas",
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "platformdirs",
    "keyring",
    "apscheduler",
    "ccxt",
)
#: How long the worker check waits for a spawned forecasting worker to report ready (it loads
#: torch first, which takes seconds on a cold disk).
_WORKER_START_TIMEOUT_S = 120.0

#: A fixed UTC day (2024-01-01) for the simulated-market check, so every run checks the same
#: candles.
_SIMULATED_DAY_MS = 1_704_067_200_000
_SCREENSHOT_SIZE = (1280, 800)
#: Simulated seconds per real second in the screenshot check: the first live candle update
#: then comes at once instead of after a 3-second sub-step.
_SCREENSHOT_SPEED = 60.0

CheckFunction = Callable[[Path], str]


class CheckFailed(Exception):
    """A check ran but found something wrong; the message is the check's detail."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``detail`` says what was found, or why it failed."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def register(commands: Any) -> None:
    """Add the ``selfcheck`` command to the CLI's subparsers."""
    parser = commands.add_parser(
        "selfcheck", help="check that this installation works (no display needed)",
        description="Run headless checks of the installation: Python and packages, shipped"
                    " resources, the database, the simulated market and the importers; with"
                    " --gui also Qt and the main window. Exit status 0 only if all pass.")
    parser.add_argument("--gui", action="store_true",
                        help="also start Qt (offscreen without a display) and render the window")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_selfcheck)


def run_selfcheck(args: argparse.Namespace) -> int:
    checks = core_checks() + (gui_checks() if args.gui else [])
    with tempfile.TemporaryDirectory(prefix="crypto-terminal-selfcheck-",
                                     ignore_cleanup_errors=True) as scratch:
        results = run_checks(checks, Path(scratch))
    ok = all(result.ok for result in results)
    if args.json:
        print_json({"checks": [result.to_json() for result in results], "ok": ok})
    else:
        for result in results:
            print(f"{'ok' if result.ok else 'FAILED':<7} {result.name}: {result.detail}")
        failed = sum(not result.ok for result in results)
        print(f"selfcheck: all {len(results)} checks passed" if ok
              else f"selfcheck: {failed} of {len(results)} checks FAILED")
        sys.stdout.flush()
    return EXIT_OK if ok else EXIT_FAILED


def run_checks(checks: Sequence[tuple[str, CheckFunction]], scratch: Path) -> list[CheckResult]:
    """Run every check in its own empty folder under ``scratch``; one failure stops none."""
    results = []
    for number, (name, check) in enumerate(checks):
        folder = scratch / f"check-{number}"
        folder.mkdir()
        try:
            results.append(CheckResult(name, True, check(folder)))
        except CheckFailed as problem:
            results.append(CheckResult(name, False, str(problem)))
        except Exception as error:
            results.append(CheckResult(name, False, f"{type(error).__name__}: {error}"))
    return results


def core_checks() -> list[tuple[str, CheckFunction]]:
    """The checks that need no Qt, in the order they run."""
    return [
        ("python", _check_python),
        *((f"import {name}", _import_check(name)) for name in REQUIRED_PACKAGES),
        ("torch model", _check_torch_model),
        ("forecasting worker", _check_worker),
        ("resources", _check_resources),
        ("store", _check_store),
        ("simulated market", _check_simulated_market),
        ("importers", _check_importers),
    ]


def gui_checks() -> list[tuple[str, CheckFunction]]:
    """The checks that start Qt; they load it only when they run."""
    return [
        ("qt", _check_qt),
        ("app icon", _check_icon),
        ("main window", _check_main_window),
    ]


def _check_python(_folder: Path) -> str:
    frozen = getattr(sys, "frozen", False)
    return (f"Python {platform.python_version()} ({platform.python_implementation()}) on"
            f" {platform.platform()}; terminal {__version__}; "
            f"{'frozen bundle' if frozen else 'running from source'} ({sys.executable})")


def _import_check(name: str) -> CheckFunction:
    def check(_folder: Path) -> str:
        return _version(importlib.import_module(name), name)

    return check


def _check_torch_model(_folder: Path) -> str:
    """torch loads, and a tiny network trains for one epoch and forecasts, as the worker's."""
    import torch

    from terminal.ml.catalog import model_factory
    from terminal.ml.datasets import Dataset

    torch.set_num_threads(1)
    candles = _sample_series(600, Timeframe.H1, _SIMULATED_DAY_MS)
    data = Dataset.from_candles(candles, (1, 4))
    model = model_factory("gru", epochs=1)()
    rows = data.labelled_rows(data.feature_rows())
    model.fit(data, rows)
    forecast = model.predict(data, rows[-1:])
    if not np.isfinite(forecast.expected).all() or not (forecast.prob_up >= 0).all():
        raise CheckFailed("the trained network forecast values that are not numbers")
    device = "CUDA" if torch.cuda.is_available() else "CPU"
    return (f"torch {torch.__version__} ({device}): a GRU trained one epoch on {len(rows)}"
            " samples and forecast 2 horizons")


def _check_worker(folder: Path) -> str:
    """A forecasting worker process starts (spawned, as the window starts it) and stops."""
    import asyncio
    import time

    from terminal.core.bus import EventBus
    from terminal.ml.client import WorkerClient

    async def start_and_stop() -> float:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        client = WorkerClient(bus, folder, threads=1, max_restarts=0)
        started = time.perf_counter()
        await client.start()
        try:
            while client.state != "idle":
                if client.state == "stopped" or time.perf_counter() - started > \
                        _WORKER_START_TIMEOUT_S:
                    raise CheckFailed(f"the worker did not become ready (state {client.state})")
                await asyncio.sleep(0.05)
            return time.perf_counter() - started
        finally:
            await client.stop()

    seconds = asyncio.run(start_and_stop())
    return f"a spawned worker process was ready after {seconds:.1f} s and stopped cleanly"


def _version(module: ModuleType, name: str) -> str:
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    # Some packages (keyring) only record their version in the distribution's metadata, which
    # a bundle carries only when its PyInstaller hook copies it.
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "loaded (version not recorded)"


def _check_resources(_folder: Path) -> str:
    path = resource_path("icons", "app.svg")
    size = path.stat().st_size
    if size == 0:
        raise CheckFailed(f"{path} is empty")
    return f"{path} ({size} bytes)"


def _sample_series(count: int, timeframe: Timeframe, start_ms: int) -> CandleSeries:
    """Valid, gap-free candles with prices that need every digit of a float to round-trip."""
    steps = np.arange(count, dtype=np.float64)
    close = 100.0 + np.sin(steps / 7.0) * 3.0 + steps / 1000.0
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) + 0.25 + np.cos(steps) ** 2 / 3.0
    low = np.minimum(open_, close) - 0.25 - np.sin(steps) ** 2 / 3.0
    volume = 10.0 + steps % 17 / 3.0
    times = start_ms + np.arange(count, dtype=np.int64) * timeframe.ms
    return CandleSeries(timeframe, times, open_, high, low, close, volume)


def _check_store(folder: Path) -> str:
    key = SeriesKey("selfcheck", "BTC/USDT", Timeframe.M1)
    series = _sample_series(3000, Timeframe.M1, _SIMULATED_DAY_MS)
    with Store.open(folder) as store:
        written = store.candles.upsert(key, series)
        if written.inserted != len(series):
            raise CheckFailed(f"stored {written.inserted} of {len(series)} new candles")
        if store.candles.load(key) != series:
            raise CheckFailed("candles read back differ from those written")
    # Opening an existing database runs the migration check a returning user goes through.
    with Store.open(folder) as store:
        if store.candles.load(key) != series:
            raise CheckFailed("candles differ after the database was re-opened")
        schema = store.schema_version
    return (f"wrote, read back and re-opened {len(series)} candles (schema {schema},"
            f" SQLite {sqlite3.sqlite_version})")


def _check_simulated_market(_folder: Path) -> str:
    end = _SIMULATED_DAY_MS + DAY_MS
    history = MarketGenerator().history(_SIMULATED_DAY_MS, end)
    for symbol, series in history.items():
        problem = _candle_problem(series, _SIMULATED_DAY_MS, end)
        if problem:
            raise CheckFailed(f"{symbol}: {problem}")
    # The market is a pure function of seed and time; a second generator must agree exactly.
    again = MarketGenerator().history(_SIMULATED_DAY_MS, end)
    if any(again[symbol] != series for symbol, series in history.items()):
        raise CheckFailed("a second generator produced different candles for the same day")
    count = len(next(iter(history.values())))
    return f"{len(history)} pairs x {count} one-minute candles, valid and reproducible"


def _candle_problem(series: CandleSeries, start_ms: int, end_ms: int) -> str | None:
    expected = (end_ms - start_ms) // series.timeframe.ms
    if len(series) != expected or series.first_time != start_ms or find_gaps(series):
        return f"{len(series)} candles with gaps or off range, expected {expected}"
    prices = np.stack([series.open, series.high, series.low, series.close])
    if not (np.isfinite(prices).all() and np.isfinite(series.volume).all()):
        return "non-finite prices or volumes"
    if (prices <= 0).any() or (series.volume < 0).any():
        return "non-positive prices or negative volumes"
    body_top = np.maximum(series.open, series.close)
    body_bottom = np.minimum(series.open, series.close)
    if (series.high < body_top).any() or (series.low > body_bottom).any():
        return "a high below the open or close, or a low above them"
    return None


def _check_importers(folder: Path) -> str:
    series = _sample_series(48, Timeframe.H1, _SIMULATED_DAY_MS)
    path = folder / "candles.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for candle in series:
            writer.writerow([candle.open_time, repr(candle.open), repr(candle.high),
                             repr(candle.low), repr(candle.close), repr(candle.volume)])
    parsed = read_candle_file(path, symbol="BTC/USDT", timeframe=Timeframe.H1)
    if parsed.format != FORMAT_GENERIC:
        raise CheckFailed(f"the file was read as {parsed.format}, not {FORMAT_GENERIC}")
    if parsed.series != series:
        raise CheckFailed(f"read {len(parsed.series)} candles that differ from the"
                          f" {len(series)} written")
    return f"{len(parsed.series)} candles read back exactly from a {parsed.format} file"


def _qt_application() -> str:
    """Start Qt as the application does; returns the platform plugin it runs on.

    Raises :class:`CheckFailed` instead of letting Qt abort the process when its X11 plugin
    cannot load.
    """
    from PySide6.QtGui import QGuiApplication

    from terminal.app import application, display_available, x11_problem

    # Qt reads the platform once, when the application is created: choose it before that.
    if not display_available():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    problem = x11_problem()
    if problem is not None:
        raise CheckFailed(problem)
    application()
    return QGuiApplication.platformName()


def _check_qt(_folder: Path) -> str:
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    platform_name = _qt_application()
    return f"PySide6 {pyside_version}, Qt {qVersion()}, platform {platform_name}"


def _check_icon(_folder: Path) -> str:
    from PySide6.QtGui import QIcon

    _qt_application()
    # SVG icons load through Qt plugins, which a bundle can miss while everything else works.
    pixmap = QIcon(str(resource_path("icons", "app.svg"))).pixmap(64, 64)
    if pixmap.isNull():
        raise CheckFailed("Qt cannot render icons/app.svg (the SVG plugins are missing)")
    return f"app.svg rendered at {pixmap.width()}x{pixmap.height()}"


def _check_main_window(folder: Path) -> str:
    from PySide6.QtGui import QImage

    from terminal.app import save_screenshot

    _qt_application()
    data = folder / "data"
    data.mkdir()
    output = save_screenshot(folder / "window.png", data_dir=str(data),
                             sim_speed=_SCREENSHOT_SPEED, size=_SCREENSHOT_SIZE)
    size = output.stat().st_size if output.is_file() else 0
    image = QImage(str(output))
    if size == 0 or image.isNull():
        raise CheckFailed(f"the screenshot {output} is empty or unreadable")
    if (image.width(), image.height()) != _SCREENSHOT_SIZE:
        raise CheckFailed(f"the screenshot is {image.width()}x{image.height()},"
                          f" not {_SCREENSHOT_SIZE[0]}x{_SCREENSHOT_SIZE[1]}")
    return f"rendered the window to a {image.width()}x{image.height()} PNG ({size} bytes)"

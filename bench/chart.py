"""Chart and event-loop benchmarks (the terminal window's targets).

Both run in child processes, offscreen, so peak memory is the workload's own and no display
is needed:

* chart: a 1,000,000-candle 1-minute history with the default overlays (SMA 20, EMA 50) in
  a 1600x900 chart rendered to an image. Hand-over to first frame is ``set_history`` plus the
  first complete render; panning moves a 200-candle view by 5 bars per frame; the zoomed-out
  frames show all 1M candles (decimated) with the view nudged every frame so nothing is reused
  from the previous picture.
* event loop: the real window on the built-in simulated market at 600x speed, which closes 10
  one-minute candles per second on the charted pair (and on each other pair, for the
  watchlist); a 10 ms asyncio timer measures how late the loop runs it. Measured twice: with
  the stream alone, and while the forecasting worker (a spawned process, as in the app)
  trains an LSTM on another pair's 1-minute history; only the timers that ran while it
  trained count, and the forecasts of the closed candles are part of the load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, Row, million_candles, peak_rss_mb

MILLION = 1_000_000
SIZE = (1600, 900)
PAN_VIEW_BARS = 200
STALL_SECONDS = 12.0
STALL_SPEED = 600.0
TIMER_S = 0.010


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def chart_child() -> None:
    """Only the chart's own modules are imported: the figure is the chart's footprint."""
    import gc

    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtWidgets import QApplication

    from terminal.ui import theme
    from terminal.widgets.candle_chart import CandleChart

    app = QApplication([])
    theme.apply_theme(app)
    candles = million_candles()

    def new_chart() -> CandleChart:
        chart = CandleChart(style=theme.chart_style())
        chart.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        chart.resize(*SIZE)
        chart.show()
        QApplication.processEvents()
        return chart

    first_frames = []
    for _ in range(5):
        chart = new_chart()
        start = time.perf_counter()
        chart.set_history(candles)
        chart.grab().toImage()
        first_frames.append(time.perf_counter() - start)
        chart.close()
        chart.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        del chart
        gc.collect()

    chart = new_chart()
    chart.set_history(candles)
    chart.grab()
    right = float(MILLION - 1_000)
    chart.set_visible_range(right - PAN_VIEW_BARS, right)
    chart.grab()
    pan_frames, pan_cpu = [], []
    for step in range(300):
        left = right - PAN_VIEW_BARS - 5 * (step + 1)
        start, cpu = time.perf_counter(), time.thread_time()
        chart.set_visible_range(left, left + PAN_VIEW_BARS)
        chart.grab().toImage()
        pan_frames.append(time.perf_counter() - start)
        pan_cpu.append(time.thread_time() - cpu)

    chart.set_visible_range(-0.5, MILLION + 8)
    chart.grab()
    zoomed_frames, zoomed_cpu = [], []
    for step in range(100):
        start, cpu = time.perf_counter(), time.thread_time()
        chart.set_visible_range(-0.5 - step % 2, MILLION + 8 + step % 3)
        chart.grab().toImage()
        zoomed_frames.append(time.perf_counter() - start)
        zoomed_cpu.append(time.thread_time() - cpu)
    drawn = chart.drawn_bars
    app.processEvents()
    print(json.dumps({
        "first_frame_s": statistics.median(first_frames),
        "pan_p50_ms": _percentile(pan_frames, 50) * 1000,
        "pan_p90_ms": _percentile(pan_frames, 90) * 1000,
        "zoomed_p50_ms": _percentile(zoomed_frames, 50) * 1000,
        "zoomed_p90_ms": _percentile(zoomed_frames, 90) * 1000,
        "pan_cpu_p90_ms": _percentile(pan_cpu, 90) * 1000,
        "zoomed_cpu_p90_ms": _percentile(zoomed_cpu, 90) * 1000,
        "zoomed_drawn_bars": drawn,
        "peak_rss_mb": peak_rss_mb(),
    }))


#: The network the training stall figure trains, on the second pair's 1-minute history.
STALL_TRAIN_MODEL = "lstm"
STALL_TRAIN_EPOCHS = 30


def stall_child(train: bool = False) -> None:
    import asyncio
    import tempfile

    import qasync
    from PySide6.QtCore import Qt

    from terminal.app import application, build_terminal
    from terminal.core.events import CandleClosed, TrainingFinished, TrainingProgress
    from terminal.core.model import Timeframe
    from terminal.core.settings import SimulatedMarketSettings

    app = application()
    with tempfile.TemporaryDirectory() as folder:
        terminal = build_terminal(folder, STALL_SPEED,
                                  market=SimulatedMarketSettings(history_days=2))
        window = terminal.window
        window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        window.resize(*SIZE)
        window.show()
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)

        async def measure() -> dict[str, float]:
            terminal.bus.bind_loop(asyncio.get_running_loop())
            if train:
                await terminal.start_forecasting()
            await terminal.service.start()
            window.select(timeframe=Timeframe.M1)
            key = window.series_key
            assert key is not None
            closed = []
            terminal.bus.subscribe(
                CandleClosed, lambda event: closed.append(1) if event.key == key else None)
            epochs: list[int] = []
            finished: list[TrainingFinished] = []
            terminal.bus.subscribe(TrainingProgress, lambda e: epochs.append(e.epoch))
            terminal.bus.subscribe(TrainingFinished, finished.append)
            running = asyncio.get_running_loop()
            if train:
                while terminal.forecasts.worker.state != "idle":
                    await asyncio.sleep(0.05)
                other = terminal.service.key(terminal.service.symbols[1], Timeframe.M1)
                terminal.forecasts.train_now(other, STALL_TRAIN_MODEL, (1, 4),
                                             epochs=STALL_TRAIN_EPOCHS)
                while not any(epochs) and not finished:  # measure once epochs are running
                    await asyncio.sleep(0.01)
            closed.clear()
            lateness: list[float] = []
            started = running.time()
            end = started + STALL_SECONDS
            while running.time() < end and not (train and finished):
                due = running.time() + TIMER_S
                await asyncio.sleep(TIMER_S)
                lateness.append(max(0.0, running.time() - due))
            measured = running.time() - started
            count = len(closed)
            await terminal.shutdown()
            if train and finished and finished[0].error and not finished[0].cancelled:
                raise RuntimeError(f"the benchmark's training failed: {finished[0].error}")
            return {"p50_ms": _percentile(lateness, 50) * 1000,
                    "p99_ms": _percentile(lateness, 99) * 1000,
                    "max_ms": max(lateness) * 1000,
                    "candles_per_s": count / max(measured, 1e-9),
                    "seconds": measured,
                    "epochs": float(max(epochs, default=0))}

        try:
            with loop:
                figures = loop.run_until_complete(measure())
        finally:
            asyncio.set_event_loop(None)
            window.close()
    print(json.dumps(figures))


def _child(kind: str) -> dict[str, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    output = subprocess.run([sys.executable, "-m", "bench.chart", kind], check=True,
                            capture_output=True, text=True, cwd=ROOT, env=env).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def rows(data: Path) -> list[Row]:
    chart = _child("chart")
    stall = _child("stall")
    training = _child("stall_training")
    return [
        ("chart, 1M candles: hand-over to first frame (set_history + render)",
         f"{chart['first_frame_s'] * 1000:.0f} ms", "<= 200 ms"),
        ("chart, 1M candles: frame while panning a 200-candle view, wall p50 / p90 (GUI"
         " thread CPU p90)",
         f"{chart['pan_p50_ms']:.1f} / {chart['pan_p90_ms']:.1f} ms"
         f" ({chart['pan_cpu_p90_ms']:.1f} ms)", "p90 <= 16 ms"),
        (f"chart, 1M candles: fully zoomed-out frame, {chart['zoomed_drawn_bars']:.0f} drawn"
         f" bars, wall p50 / p90 (GUI thread CPU p90)",
         f"{chart['zoomed_p50_ms']:.1f} / {chart['zoomed_p90_ms']:.1f} ms"
         f" ({chart['zoomed_cpu_p90_ms']:.1f} ms)", "p90 <= 16 ms"),
        ("chart, 1M candles: peak RSS of the process", f"{chart['peak_rss_mb']:.0f} MB",
         "<= 250 MB"),
        (f"event loop: 10 ms timer lateness while {stall['candles_per_s']:.0f} candles/s close"
         f" on the chart (no training) p50 / p99 / max",
         f"{stall['p50_ms']:.1f} / {stall['p99_ms']:.1f} / {stall['max_ms']:.0f} ms",
         "p99 <= 50 ms"),
        (f"event loop: 10 ms timer lateness while the worker trains an LSTM"
         f" ({training['seconds']:.0f} s, {training['epochs']:.0f} epochs) and"
         f" {training['candles_per_s']:.0f} candles/s close on the chart p50 / p99 / max",
         f"{training['p50_ms']:.1f} / {training['p99_ms']:.1f} / {training['max_ms']:.0f} ms",
         "p99 <= 50 ms"),
    ]


if __name__ == "__main__":
    {"chart": chart_child, "stall": stall_child,
     "stall_training": lambda: stall_child(train=True)}[sys.argv[1]]()

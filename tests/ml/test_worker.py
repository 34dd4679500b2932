"""The worker runs in a real spawned process here: these are the slowest ML tests (seconds)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminal.core.bus import EventBus
from terminal.core.events import (
    PredictionMade,
    TrainingFinished,
    TrainingProgress,
    WorkerStateChanged,
)
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.ml.client import WorkerClient

KEY = SeriesKey("simulated", "BTC/USDT", Timeframe.H1)


class Recorder:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[Any] = []
        for kind in (PredictionMade, TrainingFinished, TrainingProgress, WorkerStateChanged):
            bus.subscribe(kind, self.events.append)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, test: Callable[[], bool], seconds: float = 60.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if test():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out; events: {self.events}")


def test_train_predict_cancel_and_survive_a_crash(data_dir: Path, hourly: CandleSeries) -> None:
    async def scenario() -> None:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        seen = Recorder(bus)
        client = WorkerClient(bus, data_dir, threads=1)
        await client.start()
        try:
            await seen.wait_for(lambda: client.state == "idle")
            job = client.train(KEY, hourly, "ridge", [1, 4], refit_every=300, activate=True)
            await seen.wait_for(lambda: bool(seen.of(TrainingFinished)))
            finished = seen.of(TrainingFinished)[0]
            assert finished.job_id == job and finished.model_id is not None, finished
            assert any(p.stage.startswith("fold") for p in seen.of(TrainingProgress))

            client.predict(KEY, hourly.take(0, 1_900))
            await seen.wait_for(lambda: bool(seen.of(PredictionMade)))
            made = seen.of(PredictionMade)[0]
            assert [p.horizon_bars for p in made.predictions] == [1, 4]
            assert made.predictions[0].made_from == hourly.open_time[1_899]
            assert len(made.verdicts) == 2 and not made.usable_for_trading
            assert made.model_id == finished.model_id and made.trained_at > 0
            with Store.open(data_dir) as store:
                assert len(store.forecasts.predictions(KEY)) == 2

            slow = client.train(KEY, hourly, "gru", [1], epochs=50, refit_every=10_000)
            await seen.wait_for(lambda: any(p.job_id == slow and p.epoch
                                            for p in seen.of(TrainingProgress)))
            assert client.cancel(slow)
            await seen.wait_for(lambda: len(seen.of(TrainingFinished)) == 2)
            assert seen.of(TrainingFinished)[1].cancelled
            with Store.open(data_dir) as store:  # the cancelled model was not registered
                assert [m.architecture for m in store.forecasts.models()] == ["ridge"]

            pid = client.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await seen.wait_for(lambda: any(e.state == "crashed"
                                            for e in seen.of(WorkerStateChanged)))
            await seen.wait_for(lambda: client.state == "idle" and client.pid != pid)
        finally:
            await client.stop()
        assert client.state == "stopped"

    asyncio.run(scenario())


def test_a_job_running_when_the_worker_dies_is_reported_failed(
        data_dir: Path, hourly: CandleSeries) -> None:
    async def scenario() -> None:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        seen = Recorder(bus)
        client = WorkerClient(bus, data_dir, threads=1, max_restarts=0)
        await client.start()
        try:
            await seen.wait_for(lambda: client.state == "idle")
            client.train(KEY, hourly, "lstm", [1], epochs=50, refit_every=10_000)
            await seen.wait_for(lambda: bool(seen.of(TrainingProgress)))
            os.kill(client.pid or 0, signal.SIGKILL)
            await seen.wait_for(lambda: bool(seen.of(TrainingFinished)))
            failed = seen.of(TrainingFinished)[0]
            assert failed.model_id is None and "stopped unexpectedly" in failed.error
            await seen.wait_for(lambda: client.state == "stopped")
        finally:
            await client.stop()

    asyncio.run(scenario())


"""The main process's side of the forecasting worker: asyncio, no Qt, never blocking.

:class:`WorkerClient` spawns :func:`terminal.ml.worker.worker_main` (multiprocessing's spawn
context, so the child starts clean whatever the parent has loaded), sends it requests through
a queue, and polls the reply queue from an asyncio task, turning replies into events on the
:class:`EventBus`. A worker that dies is noticed on the next poll: the running training is
reported as failed, :class:`WorkerStateChanged` says ``crashed``, and a fresh worker is started
(up to ``max_restarts`` times in a row without a healthy start in between).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from terminal.core.bus import EventBus
from terminal.core.errors import InvalidArgument
from terminal.core.events import TrainingFinished, WorkerStateChanged
from terminal.core.series import CandleSeries, SeriesKey
from terminal.ml.catalog import NEURAL
from terminal.ml.forecasters import BASELINES
from terminal.ml.worker import PredictRequest, StopRequest, TrainRequest, worker_main

POLL_SECONDS = 0.05
STOP_TIMEOUT_SECONDS = 10.0


class WorkerClient:
    """Runs the worker process and publishes what it reports (see the module docstring)."""

    def __init__(self, bus: EventBus, data_dir: Path, *, threads: int = 2,
                 max_restarts: int = 3) -> None:
        self._bus = bus
        self._data_dir = data_dir
        self._threads = threads
        self._max_restarts = max_restarts
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._requests: Any = None
        self._responses: Any = None
        self._cancel: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._jobs: dict[int, tuple[SeriesKey, str]] = {}
        self._next_job = 1
        self._restarts = 0
        self._stopping = False
        self.state = "stopped"

    async def start(self) -> None:
        """Spawn the worker and start listening to it."""
        if self._pump is not None:
            return
        self._stopping = False
        self._spawn()
        self._pump = asyncio.create_task(self._listen(), name="ml-worker-client")

    async def stop(self) -> None:
        """Ask the worker to finish (cancelling a training) and wait for it off the loop."""
        self._stopping = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        process = self._process
        if process is not None:
            self._cancel.set()
            self._requests.put(StopRequest())
            await asyncio.get_running_loop().run_in_executor(
                None, process.join, STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                await asyncio.get_running_loop().run_in_executor(None, process.join, 1.0)
            self._drain()
            self._process = None
        self._fail_jobs("the worker was stopped")
        self._set_state("stopped")

    def train(self, key: SeriesKey, candles: CandleSeries, architecture: str,
              horizons: Sequence[int], *, epochs: int | None = None, activate: bool = False,
              refit_every: int = 2_880, test_fraction: float = 0.3) -> int:
        """Queue a training; returns its job id for :meth:`cancel` and the events."""
        if architecture not in (*BASELINES, *NEURAL):
            raise InvalidArgument(f"unknown model {architecture!r}")
        self._require_running()
        job_id = self._next_job
        self._next_job += 1
        self._jobs[job_id] = (key, architecture)
        self._requests.put(TrainRequest(job_id, key, candles, architecture, tuple(horizons),
                                        epochs, activate, refit_every, test_fraction))
        return job_id

    def cancel(self, job_id: int) -> bool:
        """Cancel the training ``job_id`` at its next epoch or stage; False if not running."""
        if job_id not in self._jobs or self._cancel is None:
            return False
        self._cancel.set()
        return True

    def predict(self, key: SeriesKey, candles: CandleSeries) -> None:
        """Forecast from the last (closed) candle with ``key``'s active model, if it has one;
        the result arrives as :class:`PredictionMade`."""
        self._require_running()
        self._requests.put(PredictRequest(key, candles))

    @property
    def training_jobs(self) -> list[int]:
        return sorted(self._jobs)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def _require_running(self) -> None:
        if self._process is None or self._stopping:
            raise InvalidArgument("the forecasting worker is not running")

    def _spawn(self) -> None:
        self._requests = self._context.Queue()
        self._responses = self._context.Queue()
        self._cancel = self._context.Event()
        self._process = self._context.Process(
            target=worker_main, name="terminal-ml-worker", daemon=True,
            args=(self._requests, self._responses, self._cancel, str(self._data_dir),
                  self._threads))
        self._process.start()
        self._set_state("starting")

    async def _listen(self) -> None:
        while True:
            self._drain()
            process = self._process
            if process is not None and not process.is_alive() and not self._stopping:
                self._drain()
                self._crashed()
            await asyncio.sleep(POLL_SECONDS)

    def _drain(self) -> None:
        while True:
            try:
                message = self._responses.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            self._handle(message)

    def _crashed(self) -> None:
        code = self._process.exitcode
        self._fail_jobs(f"the forecasting worker stopped unexpectedly (exit code {code});"
                        " the training was lost")
        self._set_state("crashed", f"exit code {code}")
        if self._restarts >= self._max_restarts:
            self._stopping = True
            self._process = None
            self._set_state("stopped", f"the worker crashed {self._restarts + 1} times in a"
                                       " row; restart the terminal")
            return
        self._restarts += 1
        self._spawn()

    def _fail_jobs(self, reason: str) -> None:
        for job_id, (key, architecture) in sorted(self._jobs.items()):
            self._bus.publish(TrainingFinished(job_id, key, architecture, None, error=reason))
        self._jobs.clear()

    def _handle(self, event: object) -> None:
        """Publish what the worker reported, keeping track of the training jobs."""
        if isinstance(event, WorkerStateChanged):
            if event.state == "idle":
                self._restarts = 0
            self._set_state(event.state, event.detail)
            return
        if isinstance(event, TrainingFinished) and self._jobs.pop(event.job_id, None) is None:
            return  # already reported as lost when its worker died
        self._bus.publish(event)

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self.state or detail:
            self.state = state
            self._bus.publish(WorkerStateChanged(state, detail))

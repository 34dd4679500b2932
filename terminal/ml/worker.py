"""The forecasting worker: a spawned process that trains models and forecasts closed candles.

It talks to :class:`terminal.ml.client.WorkerClient` through two queues: requests (the
classes below) in, bus events (:mod:`terminal.core.events`) out, and a shared event that
cancels the running training. Training runs on a thread
of the worker so that forecasts for new candles are still answered while a model trains; one
training runs at a time. Everything the worker learns goes to the store (registered models,
predictions, outcomes) before the message that announces it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal.core.errors import TerminalError
from terminal.core.events import (
    ErrorRaised,
    PredictionMade,
    TrainingFinished,
    TrainingProgress,
    WorkerStateChanged,
)
from terminal.core.series import CandleSeries, SeriesKey

#: How much lower than the window's the worker's scheduling priority is (Unix ``nice``).
WORKER_NICENESS = 10


@dataclass(frozen=True)
class TrainRequest:
    job_id: int
    key: SeriesKey
    candles: CandleSeries
    architecture: str
    horizons: tuple[int, ...]
    epochs: int | None
    activate: bool
    refit_every: int
    test_fraction: float


@dataclass(frozen=True)
class PredictRequest:
    """Forecast from the last candle of ``candles`` (closed) with ``key``'s active model."""

    key: SeriesKey
    candles: CandleSeries


@dataclass(frozen=True)
class StopRequest:
    pass


def worker_main(requests: Any, responses: Any, cancel: Any, data_dir: str,
                threads: int) -> None:
    """The worker process's entry point (a spawn target: module level, picklable args)."""
    import torch

    from terminal.core.storage import Store
    from terminal.ml.registry import ModelRegistry

    # Ctrl+C in a terminal reaches the whole process group; the window owns the shutdown and
    # stops the worker through its queue, so the worker must not die half-way on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    if hasattr(os, "nice"):
        # Training may take every core it is given; below the window's priority it never
        # makes the window late to paint a candle.
        os.nice(WORKER_NICENESS)
    folder = Path(data_dir)
    with Store.open(folder) as store:
        worker = _Worker(ModelRegistry(store, folder), responses, cancel)
        responses.put(WorkerStateChanged("idle"))
        while True:
            request = requests.get()
            if isinstance(request, StopRequest):
                break
            if isinstance(request, TrainRequest):
                worker.start_training(request)
            elif isinstance(request, PredictRequest):
                worker.predict(request)
        worker.join()
    responses.put(WorkerStateChanged("stopped"))


class _Worker:
    def __init__(self, registry: Any, responses: Any, cancel: Any) -> None:
        from terminal.ml.forecasters import Forecaster

        self.registry = registry
        self.responses = responses
        self.cancel = cancel
        self.training: threading.Thread | None = None
        self.models: dict[int, Forecaster] = {}

    def start_training(self, request: TrainRequest) -> None:
        if self.training is not None and self.training.is_alive():
            self.responses.put(TrainingFinished(
                request.job_id, request.key, request.architecture, None,
                error="a model is already training; wait for it or cancel it first"))
            return
        self.cancel.clear()
        self.training = threading.Thread(target=self._train, args=(request,), daemon=True)
        self.training.start()

    def join(self) -> None:
        if self.training is not None:
            self.cancel.set()
            self.training.join()

    def _train(self, request: TrainRequest) -> None:
        from terminal.ml.models import EpochProgress, TrainingCancelled
        from terminal.ml.training import train_and_register

        job, key, architecture = request.job_id, request.key, request.architecture
        self.responses.put(WorkerStateChanged("training", f"{architecture} for {key}"))

        def on_epoch(progress: EpochProgress) -> bool:
            self.responses.put(TrainingProgress(
                job, key, architecture, "training", progress.epoch, progress.epochs,
                progress.train_loss, progress.validation_loss, progress.eta_seconds))
            return not self.cancel.is_set()

        def on_stage(stage: str) -> None:
            if self.cancel.is_set():
                raise TrainingCancelled(f"training {architecture} was cancelled")
            self.responses.put(TrainingProgress(job, key, architecture, stage))

        try:
            outcome = train_and_register(
                self.registry, request.key, request.candles, request.architecture,
                request.horizons, epochs=request.epochs, test_fraction=request.test_fraction,
                refit_every=request.refit_every, activate=request.activate, on_epoch=on_epoch,
                on_stage=on_stage)
            finished = TrainingFinished(job, key, architecture, outcome.record.id,
                                        outcome.record.verdict)
        except TrainingCancelled as error:
            finished = TrainingFinished(job, key, architecture, None, error=str(error),
                                        cancelled=True)
        except TerminalError as error:
            finished = TrainingFinished(job, key, architecture, None, error=str(error))
        except Exception as error:  # the client must hear of every end, whatever it was
            finished = TrainingFinished(job, key, architecture, None,
                                        error=f"training failed unexpectedly: {error!r}")
        self.responses.put(finished)
        self.responses.put(WorkerStateChanged("idle"))

    def predict(self, request: PredictRequest) -> None:
        from terminal.ml.inference import predict_latest, resolve_outcomes

        store = self.registry.store
        try:
            record = store.forecasts.active(request.key)
            if record is None:
                return
            model = self.models.get(record.id)
            if model is None:
                model = self.registry.load(record)
                self.models[record.id] = model
            predictions = predict_latest(model, record, request.candles,
                                         created_at=int(time.time() * 1000))
            store.forecasts.add_predictions(predictions)
            resolve_outcomes(store, record, request.candles)
        except TerminalError as error:
            self.responses.put(ErrorRaised("forecasting",
                                           f"forecast for {request.key} failed: {error}"))
            return
        verdicts = tuple(str(record.metrics.get(str(h), {}).get("verdict", "not evaluated"))
                         for h in record.horizons)
        self.responses.put(PredictionMade(request.key, tuple(predictions), record.architecture,
                                          verdicts, record.usable_for_trading, record.id,
                                          record.created_at))

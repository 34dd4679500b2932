"""What the window calls for forecasting: one object over the worker, registry and schedules.

:class:`ForecastService` asks the worker for a forecast whenever a candle of a series with an
active model closes, trains on demand or on schedule, and manages the registry. It never
blocks the loop: candles are read from the store (fast, block-packed) and handed to the worker;
everything slow happens there. Results arrive on the bus as :class:`PredictionMade`,
:class:`TrainingProgress`, :class:`TrainingFinished` and :class:`WorkerStateChanged`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from terminal.core.bus import EventBus
from terminal.core.clock import Clock
from terminal.core.errors import TerminalError
from terminal.core.events import CandleClosed, ErrorRaised
from terminal.core.forecasts import ModelRecord, PredictionRecord, RetrainSchedule
from terminal.core.scheduler import RetrainScheduler
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.ml.client import WorkerClient
from terminal.ml.features import DEFAULT_HORIZONS
from terminal.ml.inference import INFERENCE_BARS
from terminal.ml.registry import ModelRegistry

log = logging.getLogger(__name__)

#: Closed candles of ``key``, the newest ``bars`` of them (all when None).
HistorySource = Callable[[SeriesKey, int | None], CandleSeries]
#: Brings ``key``'s stored history up to date (a venue fetch); run before a scheduled retrain
#: whose schedule asks for it.
RefreshData = Callable[[SeriesKey], Awaitable[None]]


class ForecastService:
    """Forecasts, training and the model registry for the window (see the module docstring)."""

    def __init__(self, store: Store, bus: EventBus, clock: Clock, data_dir: Path,
                 history: HistorySource, *, refresh: RefreshData | None = None,
                 threads: int = 2) -> None:
        self.store = store
        self.registry = ModelRegistry(store, data_dir)
        self.worker = WorkerClient(bus, data_dir, threads=threads)
        self.scheduler = RetrainScheduler(store, bus, clock, self._scheduled)
        self._bus = bus
        self._clock = clock
        self._history = history
        self._refresh = refresh
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        await self.worker.start()
        self.scheduler.start()
        self._unsubscribe = self._bus.subscribe(CandleClosed, self._on_candle)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.scheduler.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.worker.stop()

    # --- forecasting ------------------------------------------------------------------------

    def forecast_now(self, key: SeriesKey) -> bool:
        """Ask for a forecast from ``key``'s last closed candle; False without an active
        model (the answer comes as :class:`PredictionMade`)."""
        if self.store.forecasts.active(key) is None:
            return False
        self.worker.predict(key, self._history(key, INFERENCE_BARS))
        return True

    def prediction_history(self, key: SeriesKey, limit: int = 500) -> list[PredictionRecord]:
        """Stored forecasts of ``key``, newest first, with outcomes where known."""
        return self.store.forecasts.predictions(key, limit=limit)

    def _on_candle(self, event: CandleClosed) -> None:
        if self.worker.state in ("stopped", "crashed"):
            return  # WorkerStateChanged has told the user; forecasts resume with the worker
        self.forecast_now(event.key)

    # --- training and the registry ------------------------------------------------------

    def train_now(self, key: SeriesKey, architecture: str,
                  horizons: Sequence[int] = DEFAULT_HORIZONS, *, epochs: int | None = None,
                  activate: bool = False) -> int:
        """Queue a training on ``key``'s whole stored history; returns the job id."""
        return self.worker.train(key, self._history(key, None), architecture, horizons,
                                 epochs=epochs, activate=activate)

    def cancel(self, job_id: int) -> bool:
        return self.worker.cancel(job_id)

    def models(self, key: SeriesKey | None = None) -> list[ModelRecord]:
        return self.store.forecasts.models(key)

    def activate(self, model_id: int) -> ModelRecord:
        return self.registry.activate(model_id, self._clock.now_ms())

    def rollback(self, key: SeriesKey) -> ModelRecord:
        return self.store.forecasts.rollback(key)

    def set_trading_override(self, model_id: int, allowed: bool) -> ModelRecord:
        return self.store.forecasts.set_trading_override(model_id, allowed)

    def trading_model(self, key: SeriesKey) -> ModelRecord | None:
        """The model automated trading may use for ``key`` (skill shown, or overridden)."""
        return self.registry.trading_model(key)

    # --- schedules ----------------------------------------------------------------------

    def schedule(self, key: SeriesKey, architecture: str, *, daily_at: str | None = None,
                 every_candles: int | None = None,
                 refresh_data: bool = False) -> RetrainSchedule:
        """Retrain ``architecture`` on ``key`` daily at ``daily_at`` (HH:MM UTC) or after
        every ``every_candles`` closed candles; stored, so it survives restarts."""
        return self.scheduler.save(key, architecture, daily_at=daily_at,
                                   every_candles=every_candles, refresh_data=refresh_data)

    def _scheduled(self, schedule: RetrainSchedule) -> None:
        if schedule.refresh_data and self._refresh is not None:
            task = asyncio.get_running_loop().create_task(self._refresh_then_train(schedule))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._retrain(schedule)

    async def _refresh_then_train(self, schedule: RetrainSchedule) -> None:
        assert self._refresh is not None
        try:
            await self._refresh(schedule.key)
        except TerminalError as error:
            self._bus.publish(ErrorRaised("forecasting", f"data refresh for {schedule.key}"
                                          f" failed, retraining on the stored history: {error}"))
        except Exception:
            log.exception("data refresh for %s failed", schedule.key)
        self._retrain(schedule)

    def _retrain(self, schedule: RetrainSchedule) -> None:
        # A scheduled retrain refreshes the model in use: it becomes active when the series'
        # active model is of the same architecture, and is only registered otherwise.
        active = self.store.forecasts.active(schedule.key)
        refresh = active is not None and active.architecture == schedule.architecture
        self.train_now(schedule.key, schedule.architecture,
                       active.horizons if refresh and active else DEFAULT_HORIZONS,
                       activate=refresh)

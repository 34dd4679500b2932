"""Retraining schedules: daily at a UTC clock time, or after every N closed candles.

Schedules live in the store, so they survive restarts; :meth:`RetrainScheduler.start` loads
them. Daily schedules are apscheduler cron jobs on the running asyncio loop (this module is
the only one that imports apscheduler); candle-count schedules listen to
:class:`CandleClosed` of their series. When one is due, the scheduler records the run and calls
the ``run`` callback the composition root gave it, which refreshes data when the schedule asks
for it and queues the training with the worker; the callback must not block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from terminal.core.bus import EventBus
from terminal.core.clock import Clock
from terminal.core.events import CandleClosed
from terminal.core.forecasts import RetrainSchedule
from terminal.core.series import SeriesKey
from terminal.core.storage import Store

log = logging.getLogger(__name__)

RunCallback = Callable[[RetrainSchedule], None]


class RetrainScheduler:
    """Runs the stored retraining schedules (see the module docstring)."""

    def __init__(self, store: Store, bus: EventBus, clock: Clock, run: RunCallback) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._run = run
        self._scheduler: AsyncIOScheduler | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # Candle-count schedules first seen without a previous run count from the first close.
        self._baseline: dict[int, int] = {}

    def start(self) -> None:
        """Load the stored schedules and start them; call on the running asyncio loop."""
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.start()
        for schedule in self._store.forecasts.schedules():
            self._arm(schedule)
        self._unsubscribe = self._bus.subscribe(CandleClosed, self._on_candle)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def save(self, key: SeriesKey, architecture: str, *, daily_at: str | None = None,
             every_candles: int | None = None, refresh_data: bool = False,
             enabled: bool = True) -> RetrainSchedule:
        """Create or replace (and start) the schedule of ``architecture`` on ``key``."""
        schedule = self._store.forecasts.save_schedule(
            key, architecture, daily_at=daily_at, every_candles=every_candles,
            refresh_data=refresh_data, enabled=enabled)
        self._baseline.pop(schedule.id, None)
        self._arm(schedule)
        return schedule

    def remove(self, schedule_id: int) -> None:
        self._store.forecasts.delete_schedule(schedule_id)
        self._baseline.pop(schedule_id, None)
        if self._scheduler is not None and self._scheduler.get_job(_job_id(schedule_id)):
            self._scheduler.remove_job(_job_id(schedule_id))

    def schedules(self) -> list[RetrainSchedule]:
        return self._store.forecasts.schedules()

    def next_run_ms(self, schedule_id: int) -> int | None:
        """When a daily schedule runs next (epoch ms); None for candle counts or disabled."""
        job = None if self._scheduler is None else self._scheduler.get_job(_job_id(schedule_id))
        if job is None or job.next_run_time is None:
            return None
        return int(job.next_run_time.timestamp() * 1000)

    def candles_until_run(self, schedule: RetrainSchedule, last_close_ms: int) -> int | None:
        """Closed candles still needed before a candle-count schedule runs."""
        if schedule.every_candles is None:
            return None
        return max(0, schedule.every_candles - self._candles_since(schedule, last_close_ms))

    def _arm(self, schedule: RetrainSchedule) -> None:
        if self._scheduler is None:
            return
        job_id = _job_id(schedule.id)
        if self._scheduler.get_job(job_id):
            self._scheduler.remove_job(job_id)
        if schedule.enabled and schedule.daily_at is not None:
            hour, minute = (int(part) for part in schedule.daily_at.split(":"))
            self._scheduler.add_job(self._fire, CronTrigger(hour=hour, minute=minute,
                                                            timezone=UTC),
                                    args=(schedule.id,), id=job_id, coalesce=True,
                                    misfire_grace_time=3600)

    def _on_candle(self, event: CandleClosed) -> None:
        close_ms = event.candle.open_time + event.key.timeframe.ms
        for schedule in self._store.forecasts.schedules():
            if (schedule.enabled and schedule.every_candles is not None
                    and schedule.key == event.key):
                if schedule.last_run_at is None and schedule.id not in self._baseline:
                    self._baseline[schedule.id] = close_ms - event.key.timeframe.ms
                if self._candles_since(schedule, close_ms) >= schedule.every_candles:
                    self._fire(schedule.id, at=close_ms)

    def _candles_since(self, schedule: RetrainSchedule, close_ms: int) -> int:
        since = schedule.last_run_at
        if since is None:
            since = self._baseline.get(schedule.id, close_ms)
        return max(0, (close_ms - since) // schedule.key.timeframe.ms)

    def _fire(self, schedule_id: int, at: int | None = None) -> None:
        schedules = {s.id: s for s in self._store.forecasts.schedules()}
        schedule = schedules.get(schedule_id)
        if schedule is None or not schedule.enabled:
            return
        when = self._clock.now_ms() if at is None else at
        self._store.forecasts.mark_schedule_run(schedule_id, when)
        self._baseline.pop(schedule_id, None)
        log.info("retraining %s on %s (schedule %d) at %s", schedule.architecture,
                 schedule.key, schedule_id, datetime.fromtimestamp(when / 1000, UTC))
        try:
            self._run(schedule)
        except Exception:
            log.exception("the retraining of schedule %d could not be started", schedule_id)


def _job_id(schedule_id: int) -> str:
    return f"retrain-{schedule_id}"

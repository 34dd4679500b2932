from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminal.core.bus import EventBus
from terminal.core.clock import SystemClock
from terminal.core.errors import InvalidArgument
from terminal.core.events import CandleClosed
from terminal.core.forecasts import RetrainSchedule
from terminal.core.model import HOUR_MS, Timeframe
from terminal.core.scheduler import RetrainScheduler
from terminal.core.series import SeriesKey
from terminal.core.storage import Store
from tests.factories import make_series

KEY = SeriesKey("simulated", "BTC/USDT", Timeframe.H1)


def test_schedules_persist_and_daily_ones_run_on_time(data_dir: Path) -> None:
    async def scenario() -> None:
        ran: list[RetrainSchedule] = []
        with Store.open(data_dir) as store:
            scheduler = RetrainScheduler(store, EventBus(), SystemClock(), ran.append)
            scheduler.start()
            saved = scheduler.save(KEY, "lstm", daily_at="03:00", refresh_data=True)
            scheduler.stop()
        with Store.open(data_dir) as store:  # as after a restart
            scheduler = RetrainScheduler(store, EventBus(), SystemClock(), ran.append)
            scheduler.start()
            try:
                (loaded,) = scheduler.schedules()
                assert loaded == saved and loaded.refresh_data
                next_run = scheduler.next_run_ms(saved.id)
                assert next_run is not None
                moment = datetime.fromtimestamp(next_run / 1000, UTC)
                assert (moment.hour, moment.minute) == (3, 0)
                # Bring the job forward to now: the real apscheduler path fires it.
                assert scheduler._scheduler is not None
                scheduler._scheduler.get_job(f"retrain-{saved.id}").modify(
                    next_run_time=datetime.now(UTC))
                for _ in range(100):
                    if ran:
                        break
                    await asyncio.sleep(0.02)
                assert [s.id for s in ran] == [saved.id]
                assert scheduler.schedules()[0].last_run_at is not None
                scheduler.remove(saved.id)
                assert scheduler.schedules() == [] and scheduler.next_run_ms(saved.id) is None
            finally:
                scheduler.stop()

    asyncio.run(scenario())


def test_candle_count_schedules_run_every_n_closed_candles(data_dir: Path) -> None:
    async def scenario() -> None:
        ran: list[RetrainSchedule] = []
        bus = EventBus()
        with Store.open(data_dir) as store:
            scheduler = RetrainScheduler(store, bus, SystemClock(), ran.append)
            scheduler.start()
            try:
                schedule = scheduler.save(KEY, "ridge", every_candles=3)
                other = SeriesKey("simulated", "ETH/USDT", Timeframe.H1)
                for candle in make_series(7, Timeframe.H1):
                    bus.publish(CandleClosed(KEY, candle))
                    bus.publish(CandleClosed(other, candle))
                assert len(ran) == 2 and ran[0].id == schedule.id
                last = make_series(7, Timeframe.H1)[6]
                assert scheduler.candles_until_run(scheduler.schedules()[0],
                                                   last.open_time + HOUR_MS) == 2
            finally:
                scheduler.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(("daily_at", "every"), [("25:00", None), ("3pm", None), (None, None),
                                                 ("03:00", 5), (None, 0)])
def test_bad_schedules_are_refused_and_not_stored(data_dir: Path, daily_at: str | None,
                                                  every: int | None) -> None:
    with Store.open(data_dir) as store:
        scheduler = RetrainScheduler(store, EventBus(), SystemClock(), lambda s: None)
        with pytest.raises(InvalidArgument):
            scheduler.save(KEY, "lstm", daily_at=daily_at, every_candles=every)
        assert scheduler.schedules() == []

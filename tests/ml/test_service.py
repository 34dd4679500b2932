"""The forecasting service end to end, with a real spawned worker (a few seconds)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from terminal.core.bus import EventBus
from terminal.core.clock import SystemClock
from terminal.core.events import CandleClosed, PredictionMade, TrainingFinished
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.ml.service import ForecastService
from tests.ml.test_worker import Recorder

KEY = SeriesKey("simulated", "ETH/USDT", Timeframe.H1)


def test_forecasts_follow_closed_candles_and_schedules_retrain(data_dir: Path,
                                                              hourly: CandleSeries) -> None:
    async def scenario() -> None:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        seen = Recorder(bus)
        visible = {"bars": 1_800}
        refreshed: list[SeriesKey] = []

        def history(key: SeriesKey, bars: int | None) -> CandleSeries:
            candles = hourly.take(0, visible["bars"])
            return candles if bars is None else candles.tail(bars)

        async def refresh(key: SeriesKey) -> None:
            refreshed.append(key)

        with Store.open(data_dir) as store:
            service = ForecastService(store, bus, SystemClock(), data_dir, history,
                                      refresh=refresh, threads=1)
            await service.start()
            try:
                assert not service.forecast_now(KEY)  # no model yet
                service.train_now(KEY, "ridge", [1, 4], activate=True)
                await seen.wait_for(lambda: bool(seen.of(TrainingFinished)))
                first = seen.of(TrainingFinished)[0].model_id
                assert first is not None and service.models(KEY)[0].active
                assert service.trading_model(KEY) is None  # random walk: no skill

                service.schedule(KEY, "ridge", every_candles=2, refresh_data=True)
                for bar in (1_800, 1_801):
                    visible["bars"] = bar + 1
                    bus.publish(CandleClosed(KEY, hourly[bar]))
                await seen.wait_for(lambda: len(seen.of(PredictionMade)) == 2)
                made = seen.of(PredictionMade)[-1]
                assert made.predictions[0].made_from == hourly.open_time[1_801]
                await seen.wait_for(lambda: len(seen.of(TrainingFinished)) == 2)
                assert refreshed == [KEY]
                second = seen.of(TrainingFinished)[1].model_id
                assert service.models(KEY)[0].id == second and service.models(KEY)[0].active
                assert service.rollback(KEY).id == first
                made_from = {p.prediction.made_from for p in service.prediction_history(KEY)}
                assert made_from == set(hourly.open_time[1_800:1_802])
            finally:
                await service.stop()

    asyncio.run(scenario())

"""Forecasting in the window: the prediction and models panels, forecast candles and the
worker's state, with a real spawned worker training ridge models (a few seconds)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from terminal.core.bus import EventBus
from terminal.core.clock import SystemClock
from terminal.core.events import TrainingFinished, TrainingProgress
from terminal.core.model import Prediction, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.ml.service import ForecastService
from terminal.ui.forecasting import ForecastController, chart_forecast, forecast_horizons
from terminal.ui.main_window import MainWindow
from terminal.widgets.models_panel import ModelsPanel
from terminal.widgets.prediction_panel import PanelForecast, PredictionPanel, age_text, span_text
from tests.factories import make_series
from tests.ui.conftest import FakeService
from tests.ui.test_app import run_on_qt_loop

pytestmark = pytest.mark.qt

HOURLY = make_series(2_000, Timeframe.H1, seed=11, price=3_000.0)


def _prediction(horizon: int, expected: float, low: float, high: float,
                prob_up: float = 0.55) -> Prediction:
    return Prediction("simulated", "ETH/USDT", Timeframe.H1, int(HOURLY.open_time[-1]), horizon,
                      expected, low, (low + high) / 2, high, prob_up, "7", 0)


def test_card_horizons_are_hours_in_bars_of_the_charted_timeframe() -> None:
    assert forecast_horizons(Timeframe.M5) == (12, 48, 144, 288)
    assert forecast_horizons(Timeframe.H1) == (1, 4, 12, 24)
    assert forecast_horizons(Timeframe.D1) == (1, 4, 12, 24)
    assert span_text(12 * 300_000) == "1 h" and span_text(15 * 60_000) == "15 min"
    assert span_text(2 * 86_400_000) == "2 d"
    assert age_text(0, 3 * 3_600_000) == "3 h ago" and age_text(0, 30_000) == "just now"


def test_the_chart_path_interpolates_between_horizons_and_stops_at_the_cap() -> None:
    predictions = [_prediction(1, 0.001, -0.01, 0.01), _prediction(4, 0.004, -0.02, 0.03),
                   _prediction(24, 0.01, -0.05, 0.06)]
    forecast = chart_forecast(predictions, 100.0, Timeframe.H1.ms, "ridge", max_bars=12)
    assert forecast.steps == 12
    assert forecast.first_time == HOURLY.open_time[-1] + Timeframe.H1.ms
    assert forecast.expected[0] == pytest.approx(100.0 * 2.718281828 ** 0.001)
    assert forecast.expected[1] == pytest.approx(100.0 * 2.718281828 ** 0.002)
    assert all(low <= mid <= high for low, mid, high in
               zip(forecast.low, forecast.expected, forecast.high, strict=True))
    # A mean outside its quantile band widens the band rather than breaking the path.
    skewed = chart_forecast([_prediction(1, 0.02, -0.01, 0.01)], 100.0, 3_600_000, "x")
    assert skewed.high[0] == pytest.approx(skewed.expected[0])


def test_every_card_carries_its_skill_verdict(qtbot) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    assert panel.is_empty and panel.train_button.isVisibleTo(panel)
    with qtbot.waitSignal(panel.train_requested):
        panel.train_button.click()
    panel.show_forecast(PanelForecast(
        "ridge v2 (#7)", 0, False, 3_000.0, Timeframe.H1.ms,
        (_prediction(4, -0.004, -0.02, 0.01, 0.4), _prediction(1, 0.001, -0.01, 0.01)),
        ("no skill", "beats persistence by 0.6%, p=0.03")))
    assert not panel.is_empty
    first, second = (card.texts() for card in panel.cards)
    assert first[0] == "1 h · 1 bar" and first[1] == "▲ Up" and first[3] == "P(up) 55%"
    assert first[-1] == "Out of sample: beats persistence by 0.6%, p=0.03"
    assert second[1] == "▼ Down" and second[2].startswith("-0.40% → 2,988.02")
    assert second[-1] == "Out of sample: no skill"
    assert "ridge v2 (#7)" in panel.header_text and "not used for automated" in panel.header_text


def test_the_override_asks_for_confirmation(qtbot) -> None:
    from terminal.core.forecasts import ModelRecord

    panel = ModelsPanel()
    qtbot.addWidget(panel)
    key = SeriesKey("simulated", "ETH/USDT", Timeframe.H1)
    record = ModelRecord(3, key, "ridge", {}, "f1", (1, 4), 0, 3_600_000, "2000:ab", {
        "1": {"mse_skill": -0.001, "dm_pvalue": 0.4, "dir_acc": 0.51, "verdict": "no skill"}},
        "no skill", False, "w.pt", 0, True, False)
    panel.set_series("ETH/USDT · 1h")
    panel.set_models([record])
    assert panel.model.data(panel.model.index(0, 4)) == "-0.10%"
    assert panel.model.data(panel.model.index(0, 9)) == "off (no skill)"
    asked: list[tuple[int, bool]] = []
    panel.override_requested.connect(lambda model_id, on: asked.append((model_id, on)))
    panel.override_box.click()
    box = panel.confirmation
    assert box is not None and "has not beaten persistence" in box.text()
    assert not panel.override_box.isChecked()  # not before the answer
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert asked == []
    panel.override_box.click()
    panel.confirmation.button(QMessageBox.StandardButton.Yes).click()
    assert asked == [(3, True)]


class _HourlyService(FakeService):
    """The window's market data: one hourly history for every pair."""

    def history(self, symbol: str, timeframe: Timeframe, bars: int | None = None) -> CandleSeries:
        self.calls.append(("history", symbol, timeframe))
        return HOURLY if bars is None else HOURLY.tail(bars)


async def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout_s)


def _hourly_window(qtbot, bus: EventBus) -> tuple[MainWindow, Callable[..., CandleSeries]]:
    """A window charting ETH/USDT 1h, and the history function the forecasts read."""
    service = _HourlyService()
    service.load()
    service.ready = True
    window = MainWindow(service, bus)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    window.select(symbol="ETH/USDT", timeframe=Timeframe.H1)

    def history(series: SeriesKey, bars: int | None) -> CandleSeries:
        return service.history(series.symbol, series.timeframe, bars)

    return window, history


def test_train_forecast_activate_roll_back_cancel_and_survive_a_crash(
        qtbot, qapp, data_dir: Path) -> None:
    bus = EventBus()
    window, history = _hourly_window(qtbot, bus)
    key = window.series_key
    assert key is not None
    finished: list[TrainingFinished] = []
    progress: list[TrainingProgress] = []
    bus.subscribe(TrainingFinished, finished.append)
    bus.subscribe(TrainingProgress, progress.append)
    store = Store.open(data_dir)
    forecasts = ForecastService(store, bus, SystemClock(), data_dir, history, threads=1)
    controller = ForecastController(window, forecasts, bus, history)
    predictions, models = window.prediction_panel, window.models_panel
    assert predictions.is_empty and "No model for ETH/USDT · 1h yet" in \
        predictions._empty_title.text()

    async def scenario() -> None:
        bus.bind_loop(asyncio.get_running_loop())
        await forecasts.start()
        try:
            await _until(lambda: "Models: idle" in window.status_texts())
            # The empty state's button trains a ridge model and activates it.
            predictions.train_button.click()
            assert window.docks["models"].isVisibleTo(window)
            await _until(lambda: len(finished) == 1)
            assert finished[0].model_id is not None, finished[0].error
            await _until(lambda: len(predictions.cards) == 4)
            badges = [card.texts()[-1] for card in predictions.cards]
            assert all(badge.startswith("Out of sample: ") for badge in badges)
            assert "no skill" in badges[0]  # a random walk: nothing to forecast
            drawn = window.chart.forecast
            assert drawn is not None and drawn.steps == 24 and "no skill" in drawn.label
            assert predictions.history_model.rowCount() == 4
            first = finished[0].model_id
            assert [r.id for r in models.model.records] == [first]
            assert "Trained ridge" in models.status_text

            # A second model, activated; roll back to the first; activate the second again.
            models.choose_training("ridge", activate=True)
            models.buttons["train"].click()
            await _until(lambda: len(finished) == 2)
            second = finished[1].model_id
            assert models.model.records[0].id == second and models.model.records[0].active
            models.buttons["rollback"].click()
            assert [r.active for r in models.model.records] == [False, True]
            models.select_model(second)
            models.buttons["activate"].click()
            assert models.model.records[0].active
            assert models.model.data(models.model.index(0, 1)) == "ridge v2"

            # A schedule is saved and shown with when it runs next.
            models.choose_schedule(every=6)
            models.buttons["save_schedule"].click()
            assert models.next_run_text.startswith("Retrains ridge every 6 candles")

            # Cancel a network's training after its first epoch.
            models.choose_training("lstm", epochs=50, activate=False)
            models.buttons["train"].click()
            assert models.buttons["cancel"].isEnabled()
            await _until(lambda: any(p.epochs for p in progress), 120.0)
            models.buttons["cancel"].click()
            await _until(lambda: len(finished) == 3, 120.0)
            assert finished[2].cancelled and "cancelled" in models.status_text
            assert len(models.model.records) == 2  # nothing registered
            await _until(lambda: "Models: idle" in window.status_texts())

            # A crashed worker is shown, restarted, and forecasts again.
            pid = forecasts.worker.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await _until(lambda: "Models: crashed → restarting" in window.status_texts(), 20.0)
            assert any(n.title == "Forecasting worker crashed"
                       for n in window.notification_center.notifications)
            await _until(lambda: "Models: idle" in window.status_texts())
        finally:
            await forecasts.stop()

    try:
        run_on_qt_loop(qapp, scenario(), timeout_s=240.0)
    finally:
        controller.detach()
        window.close()
        store.close()
    assert forecasts.worker.pid is None


def test_switching_to_a_series_without_a_model_clears_the_forecast(
        qtbot, data_dir: Path) -> None:
    bus = EventBus()
    window, history = _hourly_window(qtbot, bus)
    with Store.open(data_dir) as store:
        forecasts = ForecastService(store, bus, SystemClock(), data_dir, history, threads=1)
        controller = ForecastController(window, forecasts, bus, history)
        key = window.series_key
        assert key is not None
        from terminal.ml.registry import ModelRegistry
        from terminal.ml.training import train_and_register

        outcome = train_and_register(ModelRegistry(store, data_dir), key, HOURLY, "ridge",
                                     (1, 4), refit_every=600, activate=True)
        from terminal.ml.inference import predict_latest

        made = predict_latest(ModelRegistry(store, data_dir).load(outcome.record), outcome.record,
                              HOURLY, created_at=0)
        store.forecasts.add_predictions(made)
        window.select(timeframe=Timeframe.M5)  # no model there
        assert window.chart.forecast is None and window.prediction_panel.is_empty
        window.select(timeframe=Timeframe.H1)  # the stored forecast comes back at once
        assert len(window.prediction_panel.cards) == 2
        assert window.chart.forecast is not None and window.chart.forecast.steps == 4
        assert "Waiting" not in window.prediction_panel.header_text
        controller.detach()
        window.close()


def test_the_active_model_gaining_or_losing_skill_is_a_notification(
        qtbot, data_dir: Path) -> None:
    bus = EventBus()
    window, history = _hourly_window(qtbot, bus)
    key = window.series_key
    assert key is not None
    with Store.open(data_dir) as store:
        forecasts = ForecastService(store, bus, SystemClock(), data_dir, history, threads=1)
        controller = ForecastController(window, forecasts, bus, history)

        def register(verdict: str, skill: bool) -> int:
            record = store.forecasts.add_model(
                key, architecture="ridge", hyperparameters={}, feature_set="f", horizons=(1,),
                train_start=0, train_end=1, data_fingerprint="2:ab",
                metrics={"1": {"verdict": verdict}}, verdict=verdict, has_skill=skill,
                weights_file="absent.pt", created_at=0)
            store.forecasts.activate(record.id, record.id)
            bus.publish(TrainingFinished(record.id, key, "ridge", record.id, verdict))
            return record.id

        def titles() -> list[str]:
            return [n.title for n in window.notification_center.notifications]

        register("no skill", False)
        assert "Model skill: ETH/USDT 1h" not in titles()  # no skill from the start: no news
        skilled = register("1 bars: beats persistence by 0.6%, p=0.03", True)
        assert titles()[0] == "Model skill: ETH/USDT 1h"
        assert [r.active for r in window.models_panel.model.records] == [True, False]
        assert window.models_panel.model.data(window.models_panel.model.index(0, 9)) == "allowed"
        register("no skill", False)
        assert titles()[0] == "Model skill lost: ETH/USDT 1h"
        assert skilled in [r.id for r in window.models_panel.model.records]
        controller.detach()
        window.close()

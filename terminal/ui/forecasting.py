"""Forecasting in the window: connects :class:`~terminal.ml.service.ForecastService` to the
prediction and models panels, the chart's forecast candles, the status bar and notifications.

Everything here runs on the GUI thread (the asyncio loop is Qt's): the worker's results come as
bus events polled on the loop, and the only blocking calls are short store reads. Whatever the
controller shows about a forecast carries the model's out-of-sample verdict.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
from PySide6.QtCore import QObject

from terminal.core.bus import EventBus
from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.events import (
    CandleClosed,
    PredictionMade,
    TrainingFinished,
    TrainingProgress,
    WorkerStateChanged,
)
from terminal.core.forecasts import ModelRecord, RetrainSchedule
from terminal.core.model import Prediction, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.ml.catalog import MODEL_NAMES, NEURAL, YARDSTICKS
from terminal.ml.service import ForecastService
from terminal.ui.main_window import MainWindow
from terminal.widgets.chart_layers import Forecast
from terminal.widgets.models_panel import model_versions
from terminal.widgets.notifications import Severity
from terminal.widgets.prediction_panel import PanelForecast, span_text

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
#: The horizons the cards show, in hours, converted to bars of the charted timeframe.
CARD_HOURS = (1, 4, 12, 24)
#: The most forecast bars drawn on the chart ahead of the last candle.
CHART_FORECAST_BARS = 48
#: The model the empty state's button trains: seconds on a CPU, and the honest yardstick.
QUICK_MODEL = "ridge"
TRAINABLE = tuple(name for name in MODEL_NAMES if name not in YARDSTICKS)

#: Closed candles of ``key``, the newest ``bars`` of them (all when None).
History = Callable[[SeriesKey, int | None], CandleSeries]


def forecast_horizons(timeframe: Timeframe) -> tuple[int, ...]:
    """The card horizons (1 h, 4 h, 12 h, 24 h) in bars of ``timeframe``; timeframes longer
    than an hour forecast 1, 4, 12 and 24 of their own bars."""
    if timeframe.ms > HOUR_MS or HOUR_MS % timeframe.ms:
        return (1, 4, 12, 24)
    return tuple(hours * HOUR_MS // timeframe.ms for hours in CARD_HOURS)


def chart_forecast(predictions: Sequence[Prediction], last_close: float, bar_ms: int,
                   label: str, *, max_bars: int = CHART_FORECAST_BARS) -> Forecast:
    """The predicted path bar by bar: log returns and their 10-90 % band interpolated between
    the horizons (zero at the last close), up to the longest horizon or ``max_bars``."""
    ordered = sorted(predictions, key=lambda p: p.horizon_bars)
    horizons = [0.0, *(float(p.horizon_bars) for p in ordered)]
    steps = np.arange(1, min(ordered[-1].horizon_bars, max_bars) + 1, dtype=np.float64)

    def path(values: list[float]) -> list[float]:
        returns = np.interp(steps, horizons, [0.0, *values])
        return [float(last_close * math.exp(r)) for r in returns]

    expected = path([p.expected_return for p in ordered])
    low = path([p.quantile_10 for p in ordered])
    high = path([p.quantile_90 for p in ordered])
    # The mean may fall outside the quantile band of a skewed forecast; the band holds it.
    low = [min(a, b) for a, b in zip(low, expected, strict=True)]
    high = [max(a, b) for a, b in zip(high, expected, strict=True)]
    return Forecast(ordered[0].made_from + bar_ms, tuple(expected), tuple(low), tuple(high),
                    label)


def _utc(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


class ForecastController(QObject):
    """Keeps the window's forecasting views in step with the service (see the module
    docstring)."""

    def __init__(self, window: MainWindow, forecasts: ForecastService, bus: EventBus,
                 history: History) -> None:
        super().__init__(window)
        self._window = window
        self._forecasts = forecasts
        self._history = history
        self._predictions = window.prediction_panel
        self._models = window.models_panel
        self._key: SeriesKey | None = None
        self._job: tuple[int, SeriesKey, str] | None = None
        self._worker_state = "stopped"
        self._skill: dict[SeriesKey, tuple[int, bool] | None] = {}
        self._models.set_architectures(TRAINABLE, NEURAL, QUICK_MODEL)
        self._models.train_requested.connect(self.train)
        self._models.cancel_requested.connect(self.cancel)
        self._models.activate_requested.connect(self.activate)
        self._models.rollback_requested.connect(self.rollback)
        self._models.override_requested.connect(self.set_override)
        self._models.schedule_requested.connect(self.save_schedule)
        self._models.unschedule_requested.connect(self.remove_schedule)
        self._predictions.train_requested.connect(self._train_from_empty_state)
        window.series_changed.connect(self._on_series_changed)
        self._unsubscribers = [
            bus.subscribe(WorkerStateChanged, self._on_worker_state),
            bus.subscribe(TrainingProgress, self._on_progress),
            bus.subscribe(TrainingFinished, self._on_finished),
            bus.subscribe(PredictionMade, self._on_prediction),
            bus.subscribe(CandleClosed, self._on_candle_closed),
        ]
        window.closed.connect(self.detach)
        window.set_worker_state("Models: starting…", "The forecasting worker is starting")
        self._on_series_changed(window.series_key)

    def detach(self) -> None:
        """Stop listening to the bus (the window has closed)."""
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()

    @property
    def training_job(self) -> int | None:
        return None if self._job is None else self._job[0]

    # -- actions from the panels --------------------------------------------------------------

    def train(self, architecture: str, epochs: int = 0, activate: bool = True) -> int | None:
        """Train ``architecture`` on the charted series; returns the job id (None: refused,
        and the panel says why)."""
        key = self._key
        if key is None:
            return None
        if self._job is not None:
            self._models.training_ended("A model is already training: wait or cancel it.")
            return None
        try:
            job = self._forecasts.train_now(key, architecture, forecast_horizons(key.timeframe),
                                            epochs=epochs or None, activate=activate)
        except TerminalError as error:
            self._models.training_ended(f"Cannot train {architecture}: {error}")
            self._window.notify(Severity.ERROR, "Training not started", str(error),
                                desktop=False)
            return None
        self._job = (job, key, architecture)
        self._models.training_started(architecture)
        return job

    def cancel(self) -> None:
        if self._job is not None and not self._forecasts.cancel(self._job[0]):
            self._models.training_ended("Nothing to cancel: the training had already ended.")

    def activate(self, model_id: int) -> None:
        self._registry_change(lambda: self._forecasts.activate(model_id), "Model activated")

    def rollback(self) -> None:
        key = self._key
        if key is not None:
            self._registry_change(lambda: self._forecasts.rollback(key), "Rolled back")

    def set_override(self, model_id: int, allowed: bool) -> None:
        try:
            record = self._forecasts.set_trading_override(model_id, allowed)
        except TerminalError as error:
            self._window.notify(Severity.ERROR, "Override not changed", str(error),
                                desktop=False)
            return
        if allowed:
            self._window.notify(
                Severity.WARNING, "Trading on a model without skill",
                f"Automated trading may now use {record.architecture} #{record.id} on"
                f" {record.key.symbol} although it has not beaten persistence"
                f" ({record.verdict}).")
        else:
            self._window.notify(Severity.INFO, "Override removed",
                                f"{record.architecture} #{record.id} is no longer used for"
                                " automated trading without skill.", desktop=False)
        self._refresh_models()

    def save_schedule(self, architecture: str, kind: str, value: str, refresh: bool) -> None:
        key = self._key
        if key is None:
            return
        try:
            if kind == "daily":
                self._forecasts.schedule(key, architecture, daily_at=value,
                                         refresh_data=refresh)
            else:
                self._forecasts.schedule(key, architecture, every_candles=int(value),
                                         refresh_data=refresh)
        except (TerminalError, ValueError) as error:
            self._models.set_schedule(self._schedule(key), f"— not saved: {error}")
            self._window.notify(Severity.ERROR, "Schedule not saved", str(error),
                                desktop=False)
            return
        self._refresh_schedule()

    def remove_schedule(self, schedule_id: int) -> None:
        self._forecasts.scheduler.remove(schedule_id)
        self._refresh_schedule()

    def _train_from_empty_state(self) -> None:
        dock = self._window.docks.get("models")
        if dock is not None:
            dock.show()
            dock.raise_()
        self._models.choose_training(QUICK_MODEL, activate=True)
        self.train(QUICK_MODEL, 0, True)

    def _registry_change(self, change: Callable[[], ModelRecord], title: str) -> None:
        try:
            record = change()
        except TerminalError as error:
            self._window.notify(Severity.ERROR, f"{title}: failed", str(error), desktop=False)
            return
        self._window.notify(Severity.INFO, title,
                            f"{record.architecture} #{record.id} now forecasts"
                            f" {record.key.symbol} {record.key.timeframe.code}"
                            f" ({record.verdict}).", desktop=False)
        self._after_registry_change(record.key)

    def _after_registry_change(self, key: SeriesKey) -> None:
        self._check_skill(key)
        if key == self._key:
            self._refresh_models()
            self._show_stored_forecast()
            self._request_forecast()

    # -- the charted series -------------------------------------------------------------------

    def _on_series_changed(self, key: SeriesKey | None) -> None:
        self._key = key
        self._window.chart.set_forecast(None)
        if key is None:
            self._models.set_series(None)
            self._models.set_models([])
            self._predictions.show_empty("", reason="Waiting for the market's instruments…")
            return
        self._models.set_series(self._series_text(key))
        self._refresh_models()
        self._refresh_schedule()
        self._check_skill(key, notify=False)
        self._show_stored_forecast()
        self._request_forecast()

    def _series_text(self, key: SeriesKey) -> str:
        return f"{key.symbol} · {key.timeframe.code}"

    def _refresh_models(self) -> None:
        if self._key is not None:
            self._models.set_models(self._forecasts.models(self._key))

    def _schedule(self, key: SeriesKey) -> RetrainSchedule | None:
        mine = [s for s in self._forecasts.scheduler.schedules() if s.key == key]
        active = self._forecasts.store.forecasts.active(key)
        preferred = [s for s in mine if active is not None
                     and s.architecture == active.architecture]
        return (preferred or mine or [None])[0]

    def _refresh_schedule(self) -> None:
        key = self._key
        if key is None:
            return
        schedule = self._schedule(key)
        if schedule is None:
            self._models.set_schedule(None, "")
            return
        fetch = ", fetching new data first" if schedule.refresh_data else ""
        if schedule.daily_at is not None:
            next_ms = self._forecasts.scheduler.next_run_ms(schedule.id)
            when = f"next at {_utc(next_ms)}" if next_ms is not None else "(not armed)"
            text = f"daily at {schedule.daily_at} UTC{fetch}: {when}"
        else:
            last = self._last_closed(key)
            left = (None if last is None else self._forecasts.scheduler.candles_until_run(
                schedule, last.open_time[-1] + key.timeframe.ms))
            after = "" if left is None else f": next after {left} more closed candle" + (
                "s" if left != 1 else "")
            text = f"every {schedule.every_candles} candles{fetch}{after}"
        self._models.set_schedule(schedule, text)

    def _last_closed(self, key: SeriesKey, bars: int = 1) -> CandleSeries | None:
        try:
            candles = self._history(key, bars)
        except TerminalError:
            return None
        return candles if len(candles) else None

    def _model_text(self, record: ModelRecord) -> str:
        versions = model_versions(self._forecasts.models(record.key))
        return f"{record.architecture} v{versions.get(record.id, 1)} (#{record.id})"

    def _show_stored_forecast(self) -> None:
        """The active model's latest stored forecast of the charted series, or the right
        empty state."""
        key = self._key
        if key is None:
            return
        active = self._forecasts.store.forecasts.active(key)
        records = self._forecasts.prediction_history(key)
        self._predictions.set_history(records, key.timeframe.ms)
        if active is None:
            count = len(self._forecasts.models(key))
            reason = (f"{count} model{'s' if count > 1 else ''} registered for"
                      f" {self._series_text(key)}, none active: activate one in the Models"
                      " panel, or train a new one." if count else "")
            self._predictions.show_empty(self._series_text(key), reason=reason)
            self._window.chart.set_forecast(None)
            return
        mine = [r.prediction for r in records if r.model_id == active.id]
        if not mine:
            self._predictions.show_waiting(self._model_text(active), active.created_at,
                                           f"verdict: {active.verdict}")
            return
        latest = max(p.made_from for p in mine)
        predictions = tuple(sorted((p for p in mine if p.made_from == latest),
                                   key=lambda p: p.horizon_bars))
        verdicts = tuple(_verdict(active, p.horizon_bars) for p in predictions)
        self._show(key, active, predictions, verdicts)

    def _request_forecast(self) -> None:
        key = self._key
        if key is None or self._worker_state not in ("idle", "training"):
            return
        try:
            self._forecasts.forecast_now(key)
        except TerminalError as error:
            log.info("no forecast for %s now: %s", key, error)

    # -- events -------------------------------------------------------------------------------

    def _on_worker_state(self, event: WorkerStateChanged) -> None:
        previous, self._worker_state = self._worker_state, event.state
        if event.state == "idle":
            self._window.set_worker_state("Models: idle", "The forecasting worker is ready:"
                                          " it forecasts every closed candle of a series with"
                                          " an active model")
            if previous in ("starting", "crashed"):
                self._request_forecast()
        elif event.state == "starting":
            if previous == "crashed":
                self._window.set_worker_state("Models: crashed → restarting",
                                              "The forecasting worker stopped unexpectedly"
                                              " and is being restarted")
            else:
                self._window.set_worker_state("Models: starting…",
                                              "The forecasting worker is starting")
        elif event.state == "training":
            self._window.set_worker_state("Models: training…", event.detail)
        elif event.state == "crashed":
            self._window.set_worker_state("Models: crashed → restarting", event.detail)
            self._window.notify(Severity.WARNING, "Forecasting worker crashed",
                                f"The model worker stopped unexpectedly ({event.detail});"
                                " it is being restarted.")
        else:
            self._window.set_worker_state("Models: stopped", event.detail or
                                          "The forecasting worker is not running")
            if event.detail:
                self._window.notify(Severity.ERROR, "Forecasting worker stopped",
                                    event.detail)

    def _on_progress(self, event: TrainingProgress) -> None:
        if event.epochs:
            eta = "" if event.eta_seconds is None else f", ETA {event.eta_seconds:.0f} s"
            text = f"Models: training {event.epoch}/{event.epochs} epochs{eta}"
        else:
            text = f"Models: training {event.architecture} ({event.stage})"
        self._window.set_worker_state(text, f"{event.architecture} for {event.key}")
        if self._job is None and event.key == self._key:
            # A scheduled retrain of the charted series: show it like one started here.
            self._job = (event.job_id, event.key, event.architecture)
            self._models.training_started(event.architecture)
        if self._job is not None and event.job_id == self._job[0]:
            self._models.training_progress(event.stage, event.epoch, event.epochs,
                                           event.train_loss, event.validation_loss,
                                           event.eta_seconds)

    def _on_finished(self, event: TrainingFinished) -> None:
        mine = self._job is not None and event.job_id == self._job[0]
        if mine:
            self._job = None
        where = f"{event.key.symbol} {event.key.timeframe.code}"
        if event.model_id is None:
            text = (f"Training {event.architecture} was cancelled." if event.cancelled else
                    f"Training {event.architecture} failed: {event.error}")
            if mine:
                self._models.training_ended(text)
            if not event.cancelled:
                self._window.notify(Severity.ERROR, f"Training failed: {where}", event.error)
            return
        good = event.verdict.startswith("beats")
        if mine:
            self._models.training_ended(f"Trained {event.architecture} #{event.model_id}:"
                                        f" {event.verdict}")
        self._window.notify(Severity.SUCCESS if good else Severity.INFO,
                            f"Model trained: {event.architecture} for {where}",
                            f"#{event.model_id}, out of sample: {event.verdict}", desktop=False)
        self._after_registry_change(event.key)

    def _on_prediction(self, event: PredictionMade) -> None:
        if event.key != self._key:
            return
        active = self._forecasts.store.forecasts.active(event.key)
        if active is None or active.id != event.model_id:
            return  # made by a model that was replaced while the request waited
        self._predictions.set_history(self._forecasts.prediction_history(event.key),
                                      event.key.timeframe.ms)
        self._show(event.key, active, event.predictions, event.verdicts)

    def _on_candle_closed(self, event: CandleClosed) -> None:
        if event.key == self._key:
            self._refresh_schedule()

    # -- showing ------------------------------------------------------------------------------

    def _show(self, key: SeriesKey, record: ModelRecord, predictions: Sequence[Prediction],
              verdicts: Sequence[str]) -> None:
        made_from = predictions[0].made_from
        recent = self._last_closed(key, bars=2)
        if recent is None:
            return
        at = np.flatnonzero(recent.open_time == made_from)
        last_close = float(recent.close[at[0]] if len(at) else recent.close[-1])
        self._predictions.set_price_decimals(
            len(self._window.chart.format_price(last_close).partition(".")[2]))
        self._predictions.show_forecast(PanelForecast(
            self._model_text(record), record.created_at, record.usable_for_trading,
            last_close, key.timeframe.ms, tuple(predictions), tuple(verdicts)))
        ordered = sorted(zip(predictions, verdicts, strict=True),
                         key=lambda pair: pair[0].horizon_bars)
        if made_from < int(recent.open_time[-1]):
            self._window.chart.set_forecast(None)  # a stale forecast: the next one is coming
            return
        first, verdict = ordered[0]
        label = (f"{record.architecture} #{record.id} · "
                 f"{span_text(first.horizon_bars * key.timeframe.ms)}: {verdict}")
        try:
            self._window.chart.set_forecast(chart_forecast(
                predictions, last_close, key.timeframe.ms, label))
        except InvalidArgument as error:
            log.warning("forecast of %s not drawn: %s", key, error)

    def _check_skill(self, key: SeriesKey, *, notify: bool = True) -> None:
        """Tell the user when the active model of ``key`` gains or loses skill."""
        active = self._forecasts.store.forecasts.active(key)
        now = None if active is None else (active.id, active.has_skill)
        before = self._skill.get(key)
        self._skill[key] = now
        if not notify or now is None or before == now or (before is None and not now[1]):
            return
        where = f"{key.symbol} {key.timeframe.code}"
        assert active is not None
        if active.has_skill:
            self._window.notify(Severity.SUCCESS, f"Model skill: {where}",
                                f"The active model ({active.architecture} #{active.id}) beats"
                                f" persistence out of sample: {active.verdict}.")
        elif before is not None and before[1]:
            self._window.notify(Severity.WARNING, f"Model skill lost: {where}",
                                f"The active model ({active.architecture} #{active.id}) has"
                                " no out-of-sample skill; automated trading will not use it"
                                " unless you override.")


def _verdict(record: ModelRecord, horizon: int) -> str:
    metrics = record.metrics.get(str(horizon), {})
    return str(metrics.get("verdict", "not evaluated")) if isinstance(metrics, dict) else \
        "not evaluated"


"""Events published on the bus. Named in the past tense: each says what already happened."""

from __future__ import annotations

from dataclasses import dataclass

from terminal.core.intents import OrderIntent
from terminal.core.model import Candle, Fill, Instrument, Order, Prediction
from terminal.core.series import SeriesKey


@dataclass(frozen=True, slots=True)
class CandleUpdated:
    """The forming candle of ``key`` changed (it is not closed yet)."""

    key: SeriesKey
    candle: Candle


@dataclass(frozen=True, slots=True)
class CandleClosed:
    """A candle of ``key`` closed and has been stored. Published once per candle."""

    key: SeriesKey
    candle: Candle


@dataclass(frozen=True, slots=True)
class InstrumentsLoaded:
    """The pairs ``venue`` offers are known (the first step of starting its market data)."""

    venue: str
    instruments: tuple[Instrument, ...]


@dataclass(frozen=True, slots=True)
class MarketDataReady:
    """``venue``'s history is stored up to its present; live candles follow from here."""

    venue: str


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The market-data connection to ``venue`` went up or down."""

    venue: str
    connected: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HistoryProgress:
    """Background history loading for ``venue``: ``done`` of ``total`` steps."""

    venue: str
    done: int
    total: int
    message: str


@dataclass(frozen=True, slots=True)
class ErrorRaised:
    """Something failed in the background; ``message`` is written for the user."""

    source: str
    message: str


@dataclass(frozen=True, slots=True)
class IntentRejected:
    """The risk manager refused ``intent``; nothing was sent. ``reason`` is for the user."""

    intent: OrderIntent
    reason: str


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    """An order changed state (acknowledged, partly filled, filled, canceled, rejected)."""

    order: Order


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """An execution happened; the order's new state was published before this event."""

    fill: Fill


@dataclass(frozen=True, slots=True)
class WorkerStateChanged:
    """The forecasting worker process is ``starting``, ``idle``, ``training``, ``crashed``
    (it will be restarted) or ``stopped``; ``detail`` says why, for the user."""

    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """Training job ``job_id`` moved on: a stage (``epoch`` 0) or a finished epoch with its
    losses and the estimated seconds left."""

    job_id: int
    key: SeriesKey
    architecture: str
    stage: str
    epoch: int = 0
    epochs: int = 0
    train_loss: float | None = None
    validation_loss: float | None = None
    eta_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class TrainingFinished:
    """Training job ``job_id`` ended: ``model_id`` is the registered model, or None when it
    failed (``error`` says why) or was ``cancelled``; ``verdict`` is the skill summary."""

    job_id: int
    key: SeriesKey
    architecture: str
    model_id: int | None
    verdict: str = ""
    error: str = ""
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class PredictionMade:
    """The active model of ``key`` forecast every horizon from the candle that just closed;
    ``verdicts`` holds its out-of-sample skill verdict per horizon, in the same order;
    ``trained_at`` is when the model was registered (its age in the prediction cards)."""

    key: SeriesKey
    predictions: tuple[Prediction, ...]
    architecture: str
    verdicts: tuple[str, ...]
    usable_for_trading: bool
    model_id: int
    trained_at: int

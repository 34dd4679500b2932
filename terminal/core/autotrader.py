"""Automated trading: the user's strategy acting on every closed candle of the traded pairs.

The auto-trader is off until the user switches it on (``Settings.trading.automated_trading``).
It listens on the bus and hands each decision to a :class:`StrategyRunner`, so every order
goes through the order manager and its risk check, exactly as in the backtest.

**When it decides.** Rule-based strategies act when a candle of the trading timeframe closes.
The model strategy (``model_signal``) acts when the forecast made from that candle arrives
(:class:`PredictionMade`, a moment later from the worker process), using the expected return
of the model's shortest horizon. A forecast from a model without out-of-sample skill is not
traded unless the user overrode that for the model (``usable_for_trading``); the first such
forecast of each model is reported once, so the user knows why nothing happens.

**One decision at a time.** Decisions run one after another in a single task, in the order
their candles closed, so two candles can never race for the same position. A failed decision
is reported as an :class:`ErrorRaised` and the next one still runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from terminal.core.bus import EventBus
from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.events import CandleClosed, ErrorRaised, PredictionMade
from terminal.core.model import Timeframe
from terminal.core.orders import OrderManager
from terminal.core.runner import StrategyRunner
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.strategies import ModelSignal, create_strategy
from terminal.core.strategy import ParamValue, Strategy

log = logging.getLogger(__name__)

#: Closed candles handed to a strategy at each decision: enough for any built-in warm-up.
HISTORY_BARS = 500
MODEL_STRATEGY = ModelSignal.name

#: Closed candles of a series, the newest ``bars`` of them.
HistorySource = Callable[[SeriesKey, int], CandleSeries]


@dataclass(frozen=True, slots=True)
class _Decision:
    key: SeriesKey
    closed_open_time: int
    expected_return: float | None = None


class AutoTrader:
    """Runs ``strategy`` on ``pairs`` at ``timeframe`` of ``venue`` through ``manager``."""

    def __init__(self, manager: OrderManager, bus: EventBus, history: HistorySource, *,
                 venue: str, timeframe: Timeframe, pairs: Sequence[str], strategy: str,
                 params: dict[str, ParamValue] | None = None, fee: float = 0.001) -> None:
        if not pairs:
            raise InvalidArgument("automated trading needs at least one pair")
        self.manager = manager
        self._bus = bus
        self._history = history
        self._keys = {SeriesKey(venue, pair, timeframe) for pair in pairs}
        self.strategy_name = strategy
        self._params = dict(params or {})
        if strategy == MODEL_STRATEGY:
            self._params.setdefault("fee", fee)
        # Built once so a bad strategy or parameter fails here, not at the first candle.
        self._runners = {key: StrategyRunner(manager, self._strategy(np.empty(0)), key.symbol)
                         for key in self._keys}
        self._queue: asyncio.Queue[_Decision] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._reported_models: set[int] = set()
        self.enabled = False

    def start(self) -> None:
        """Listen for closed candles and forecasts; nothing is traded until :attr:`enabled`."""
        if self._worker is not None:
            return
        self._worker = asyncio.get_running_loop().create_task(self._work(),
                                                              name="auto-trader")
        self._unsubscribe = [self._bus.subscribe(CandleClosed, self._on_candle),
                             self._bus.subscribe(PredictionMade, self._on_prediction)]

    async def stop(self) -> None:
        """Stop listening and wait for the decision in progress to end."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every decision queued so far has been made."""
        await self._queue.join()

    def _on_candle(self, event: CandleClosed) -> None:
        if (self.enabled and event.key in self._keys
                and self.strategy_name != MODEL_STRATEGY):
            self._queue.put_nowait(_Decision(event.key, event.candle.open_time))

    def _on_prediction(self, event: PredictionMade) -> None:
        if not (self.enabled and event.key in self._keys
                and self.strategy_name == MODEL_STRATEGY and event.predictions):
            return
        if not event.usable_for_trading:
            if event.model_id not in self._reported_models:
                self._reported_models.add(event.model_id)
                self._bus.publish(ErrorRaised(
                    "automated trading",
                    f"{event.key.symbol}: model #{event.model_id} ({event.architecture}) shows"
                    " no out-of-sample skill, so its forecasts are not traded; override that"
                    " in the Models panel only if you accept trading on noise"))
            return
        nearest = min(event.predictions, key=lambda p: p.horizon_bars)
        self._queue.put_nowait(_Decision(event.key, nearest.made_from,
                                         nearest.expected_return))

    async def _work(self) -> None:
        while True:
            decision = await self._queue.get()
            try:
                await self._decide(decision)
            except asyncio.CancelledError:
                raise
            except TerminalError as error:
                self._bus.publish(ErrorRaised("automated trading",
                                              f"{decision.key.symbol}: {error}"))
            except Exception as error:  # one bad decision must not end automated trading
                log.exception("automated trading decision failed")
                self._bus.publish(ErrorRaised("automated trading",
                                              f"{decision.key.symbol}: unexpected {error!r}"))
            finally:
                self._queue.task_done()

    async def _decide(self, decision: _Decision) -> None:
        history = self._history(decision.key, HISTORY_BARS)
        if not len(history) or int(history.open_time[-1]) != decision.closed_open_time:
            # The store has not caught up with the candle, or a newer one closed meanwhile:
            # acting on other candles than the signal's would trade on the wrong bar.
            log.info("skipping %s decision at %d: history ends elsewhere", decision.key,
                     decision.closed_open_time)
            return
        runner = self._runners[decision.key]
        if decision.expected_return is not None:
            predictions = np.full(len(history), np.nan)
            predictions[-1] = decision.expected_return
            runner.strategy = self._strategy(predictions)
        await runner.on_candle_closed(history)

    def _strategy(self, predictions: np.ndarray) -> Strategy:
        if self.strategy_name == MODEL_STRATEGY:
            return ModelSignal(predictions, self._params)
        return create_strategy(self.strategy_name, self._params)

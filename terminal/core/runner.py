"""Running a strategy on live candles through the order manager (paper and live trading).

On every closed candle the runner does what the backtest engine does at a decision bar:
entry orders of the previous bar that the candle did not fill expire (the strategy API's
rule: an entry order lives for one candle), the strategy's signals are computed from the
closed candles, :func:`~terminal.core.strategy.intents_for_bar` turns the newest bar's
signals and the position into intents, and each goes to :meth:`OrderManager.submit`, risk
check included. Driven over a history candle by candle on a paper venue, it trades exactly
as :func:`terminal.core.backtest.run_backtest` does on the same candles.
"""

from __future__ import annotations

from terminal.core.errors import InvalidArgument
from terminal.core.model import OrderSide
from terminal.core.orders import OrderManager, Submission
from terminal.core.series import CandleSeries
from terminal.core.strategy import Strategy, intents_for_bar


class StrategyRunner:
    """Feeds one strategy's intents for ``symbol`` to ``manager``, one closed candle at a time."""

    def __init__(self, manager: OrderManager, strategy: Strategy, symbol: str) -> None:
        self.manager = manager
        self.strategy = strategy
        self.symbol = symbol
        self._entries: list[str] = []

    async def on_candle_closed(self, history: CandleSeries) -> list[Submission]:
        """Act on the newest candle of ``history`` (closed candles, oldest first).

        The caller has already shown that candle to the venue and synced the manager, so
        the position and the orders it reads are current.
        """
        if not len(history):
            raise InvalidArgument("the strategy runner needs at least one closed candle")
        await self._expire_entries()
        bar = len(history) - 1
        if bar < self.strategy.warmup_bars():
            return []
        signals = self.strategy.signals(history)
        close_time = int(history.open_time[bar]) + history.timeframe.ms
        close = float(history.close[bar])
        position = float(self.manager.position(self.symbol).amount)
        submissions = []
        for intent in intents_for_bar(signals, bar, symbol=self.symbol, time_ms=close_time,
                                      position=position):
            submission = await self.manager.submit(intent, strategy=self.strategy.name,
                                                   prices={self.symbol: close})
            order = submission.order
            if order is not None and order.side is OrderSide.BUY and not order.status.is_final:
                self._entries.append(order.client_order_id)
            submissions.append(submission)
        return submissions

    async def _expire_entries(self) -> None:
        entries, self._entries = self._entries, []
        for client_order_id in entries:
            record = self.manager.store.orders.get(client_order_id)
            if record is not None and not record.order.status.is_final:
                await self.manager.cancel(client_order_id)

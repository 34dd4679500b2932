"""The backtest engine: strategy signals → order intents → risk check → fill model.

Speed comes from not visiting every bar in Python. The strategy computes its signals for the
whole history with numpy; the engine then jumps from event to event: the next bar with an
entry signal while flat; while holding, the next exit signal or, before it, the first candle
a protective exit fills in (a numpy search in :meth:`FillModel.first_exit`). At each event it
does exactly what a paper runner does on a closed candle: :func:`intents_for_bar`, the risk
check with an :class:`AccountSnapshot`, and the fill model on the next candle. Bars where
nothing can happen are skipped, which is all but a few hundred of them.

Conventions (see also :mod:`terminal.core.fills` for what happens inside a candle):

* Orders decided at a bar's close fill in the next candle; signals on the last bar are not
  acted on, there is no candle left to fill them.
* Bars before ``strategy.warmup_bars()`` carry no signals; results (the strategy's and
  buy-and-hold's) start at the close of that bar, with the initial cash.
* Without a risk check, an entry spends all the cash: the quantity is
  ``cash / (price * (1 + fee))`` at the fill price. With one, the approved amount is bought,
  cut to what the cash pays for at the fill price. Exits always sell the whole position; a
  risk check may refuse an exit but not resize it. Refused intents are kept in the result.
* A position open at the end is marked to the last close without an exit fee.
* Buy-and-hold buys with all the cash at the open of the first bar the strategy could trade
  (the one after the warm-up), with the same fill model, and holds to the last close.

A long run can be watched and stopped: ``progress(done, total)`` hears how many of the bars
after the warm-up the engine has gone through, about every hundredth of them (it jumps, so
the steps are uneven), rising to ``total`` when the engine is through; ``cancel`` (a
``threading.Event`` or anything with ``is_set()``) is looked at on the same occasions and
before and after each stage, and :class:`Cancelled` is raised once it is set. Neither changes
a result.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from terminal.core.errors import Cancelled, InvalidArgument
from terminal.core.events import IntentRejected
from terminal.core.fills import ExitReason, FillModel, Protection, SimFill, SimOrder
from terminal.core.intents import AccountSnapshot, OrderIntent, RiskCheck
from terminal.core.metrics import Metrics, Trade, compute_metrics
from terminal.core.model import DAY_MS, OrderSide, OrderType, Timeframe
from terminal.core.series import CandleSeries, TimeArray
from terminal.core.strategy import Signals, Strategy, check_lookahead, intents_for_bar
from terminal.core.timefmt import format_ms

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_LOOKAHEAD_CUTS = 8
#: About how many times a watched run reports its progress and looks at its cancel flag.
PROGRESS_REPORTS = 100

#: Told ``(done, total)`` as a long job advances.
Progress = Callable[[int, int], None]


class CancelFlag(Protocol):
    """Set from another thread to stop a long job at its next check."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Everything a backtest found. Arrays run from the end of the warm-up to the last bar:
    bar ``i`` of the candles is ``times[i - warmup_bars]`` here.

    ``lookahead_bar`` is the first bar whose signals changed when the history was cut short
    (the strategy peeks at later candles), or None; ``lookahead_cuts`` says how many cuts
    were tried (0: the check was not run).
    """

    strategy: str
    params: dict[str, int | float]
    symbol: str
    timeframe: Timeframe
    initial_cash: float
    warmup_bars: int
    times: TimeArray
    close: FloatArray
    equity: FloatArray
    buy_and_hold_equity: FloatArray
    metrics: Metrics
    buy_and_hold: Metrics
    trades: tuple[Trade, ...]
    fills: tuple[SimFill, ...]
    rejections: tuple[IntentRejected, ...]
    lookahead_bar: int | None
    lookahead_cuts: int

    def to_json(self, *, trade_list: bool = True) -> dict[str, Any]:
        """One JSON-safe object: the strategy's figures at the top level, then the rest."""
        lookahead_time = (None if self.lookahead_bar is None
                          else int(self.times[0]) + (self.lookahead_bar - self.warmup_bars)
                          * self.timeframe.ms)
        payload: dict[str, Any] = {
            "strategy": self.strategy,
            "params": dict(self.params),
            "symbol": self.symbol,
            "timeframe": self.timeframe.code,
            "start_utc": format_ms(int(self.times[0])),
            "end_utc": format_ms(int(self.times[-1])),
            "bars": len(self.times),
            "warmup_bars": self.warmup_bars,
            "initial_cash": self.initial_cash,
            **self.metrics.to_json(),
            "buy_and_hold": self.buy_and_hold.to_json(),
            "lookahead": {
                "cuts_checked": self.lookahead_cuts,
                "peeks": self.lookahead_bar is not None,
                "first_bar": self.lookahead_bar,
                "first_utc": None if lookahead_time is None else format_ms(lookahead_time),
            },
            "rejected_intents": [
                {"time": r.intent.created_at, "time_utc": format_ms(r.intent.created_at),
                 "side": r.intent.side.value, "reason": r.reason}
                for r in self.rejections],
        }
        if trade_list:
            payload["trade_list"] = [t.to_json() for t in self.trades]
        return payload


def run_backtest(candles: CandleSeries, strategy: Strategy, *, symbol: str = "BTC/USDT",
                 cash: float = 10_000.0, fill_model: FillModel | None = None,
                 risk: RiskCheck | None = None,
                 lookahead_cuts: int | Sequence[int] = DEFAULT_LOOKAHEAD_CUTS,
                 progress: Progress | None = None,
                 cancel: CancelFlag | None = None) -> BacktestResult:
    """Run ``strategy`` over ``candles`` (closed candles, oldest first) from ``cash``.

    ``risk`` is asked before every order (see the module docstring for sizing without one).
    ``lookahead_cuts`` is passed to :func:`check_lookahead`; 0 skips the check.
    ``progress`` and ``cancel`` watch and stop a long run (see the module docstring); a
    cancelled run raises :class:`~terminal.core.errors.Cancelled`.
    """
    if not (math.isfinite(cash) and cash > 0):
        raise InvalidArgument(f"the starting cash must be a positive amount, got {cash}")
    warmup = strategy.warmup_bars()
    if len(candles) < warmup + 2:
        raise InvalidArgument(
            f"{strategy.name} needs at least {warmup + 2} candles ({warmup} warm-up bars, one"
            f" bar to decide on and one to fill in), got {len(candles)}")
    total = len(candles) - warmup
    _stop_if_cancelled(cancel, 0, total)
    signals = strategy.signals(candles)
    if len(signals) != len(candles):
        raise InvalidArgument(f"{strategy.name} gave {len(signals)} signals for"
                              f" {len(candles)} candles")
    model = fill_model or FillModel()
    engine = _Engine(candles, signals, model, risk, symbol=symbol, cash=cash, warmup=warmup)
    engine.run(progress, cancel)
    cuts_tried = 0
    peeking = None
    if lookahead_cuts:
        _stop_if_cancelled(cancel, total, total)
        peeking = check_lookahead(strategy, candles, lookahead_cuts, full=signals)
        cuts_tried = lookahead_cuts if isinstance(lookahead_cuts, int) else len(lookahead_cuts)
    _stop_if_cancelled(cancel, total, total)
    return engine.result(strategy, peeking, cuts_tried)


def _stop_if_cancelled(cancel: CancelFlag | None, done: int, total: int) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"the backtest was cancelled after {done:,} of {total:,} bars")


def fill_missing_bars(candles: CandleSeries) -> tuple[CandleSeries, int]:
    """``candles`` with every missing bar between the first and the last added, and how many.

    An added bar is flat at the previous close with zero volume, as freqtrade fills gaps: no
    trading happened, so the price stayed where it was.
    """
    step = candles.timeframe.ms
    times = candles.open_time
    if len(times) < 2:
        return candles, 0
    slots = (times - times[0]) // step
    total = int(slots[-1]) + 1
    if total == len(times):
        return candles, 0
    present = np.zeros(total, dtype=bool)
    present[slots] = True
    # For every slot, the candle at or before it.
    source = np.cumsum(present) - 1
    close = candles.close[source]

    def column(values: FloatArray, missing: FloatArray | float) -> FloatArray:
        return np.where(present, values[source], missing)

    filled = CandleSeries(
        timeframe=candles.timeframe,
        open_time=times[0] + np.arange(total, dtype=np.int64) * step,
        open=column(candles.open, close),
        high=column(candles.high, close),
        low=column(candles.low, close),
        close=close,
        volume=column(candles.volume, 0.0),
    )
    return filled, total - len(times)


class _Engine:
    """One run's state: cash, position, the account history snapshots need, and the record."""

    def __init__(self, candles: CandleSeries, signals: Signals, model: FillModel,
                 risk: RiskCheck | None, *, symbol: str, cash: float, warmup: int) -> None:
        self.candles = candles
        self.signals = signals
        self.model = model
        self.risk = risk
        self.symbol = symbol
        self.initial_cash = cash
        self.warmup = warmup
        self.close = candles.close
        self.close_time = candles.open_time + candles.timeframe.ms
        self.cash = cash
        self.qty = 0.0
        # The account after each fill, from the close of ``state_bars[k]`` on.
        self.state_bars: list[int] = [-1]
        self.state_cash: list[float] = [cash]
        self.state_qty: list[float] = [0.0]
        self.peak = cash
        self.peak_through = -1
        self.entry_times: list[int] = []
        self.fills: list[SimFill] = []
        self.trades: list[Trade] = []
        self.rejections: list[IntentRejected] = []
        self.entry: tuple[int, SimFill] | None = None

    def run(self, progress: Progress | None = None, cancel: CancelFlag | None = None) -> None:
        signals, count = self.signals, len(self.candles)
        last_decision = count - 2
        total = count - self.warmup
        watched = progress is not None or cancel is not None
        # Unwatched, the next report lies past the last bar: one comparison per event.
        next_report = self.warmup if watched else count
        report_step = max(1, total // PROGRESS_REPORTS)
        window = slice(self.warmup, last_decision + 1)
        # Plain lists: bisect on them costs a fraction of a numpy call per event.
        entries = (np.flatnonzero(signals.enter_long[window] & ~signals.exit_long[window])
                   + self.warmup).tolist()
        exits = (np.flatnonzero(signals.exit_long[window]) + self.warmup).tolist()
        bar = self.warmup
        protection = Protection()
        checked_from = 0
        entered_inside = False
        while bar <= last_decision:
            if bar >= next_report:
                _stop_if_cancelled(cancel, bar - self.warmup, total)
                if progress is not None:
                    progress(bar - self.warmup, total)
                next_report = bar + report_step
            if self.qty == 0:
                at = bisect_left(entries, bar)
                if at == len(entries):
                    break
                signal_bar = entries[at]
                bar = signal_bar + 1
                decided = self._decide(signal_bar)
                if decided is None:
                    continue
                intent, order = decided
                fill_bar, outcome = self.model.first_fill(order, self.candles, bar, bar + 1)
                if fill_bar is None or outcome.fill is None:
                    continue
                self._enter(fill_bar, outcome.fill)
                protection = Protection(intent.stop_loss, intent.take_profit,
                                        intent.trailing_stop_pct, outcome.fill.price)
                checked_from, entered_inside = fill_bar, not outcome.fill.at_open
                bar = fill_bar
                continue
            at = bisect_left(exits, bar)
            exit_bar = exits[at] if at < len(exits) else None
            horizon = count - 1 if exit_bar is None else exit_bar
            hit = self.model.first_exit(protection, self.qty, self.candles, checked_from,
                                        horizon + 1, entered_inside=entered_inside)
            if hit is not None:
                self._exit(hit[0], hit[1], ExitReason(hit[1].reason))
                bar = hit[0]
                continue
            if exit_bar is None:
                break
            if protection.active:
                protection = protection.after_close(
                    float(self.candles.high[checked_from:exit_bar + 1].max()))
            checked_from = bar = exit_bar + 1
            entered_inside = False
            decided = self._decide(exit_bar)
            if decided is None:
                continue
            fill_bar, outcome = self.model.first_fill(decided[1], self.candles, bar, bar + 1)
            if fill_bar is not None and outcome.fill is not None:
                self._exit(fill_bar, outcome.fill, ExitReason.SIGNAL)
                bar = fill_bar
        if watched:
            _stop_if_cancelled(cancel, min(bar - self.warmup, total), total)
            if progress is not None:
                progress(total, total)

    # --- decisions --------------------------------------------------------------------------

    def _decide(self, bar: int) -> tuple[OrderIntent, SimOrder] | None:
        """The intent made at ``bar``'s close and the order it became, or None if refused."""
        intents = intents_for_bar(self.signals, bar, symbol=self.symbol,
                                  time_ms=int(self.close_time[bar]), position=self.qty)
        if not intents:
            return None
        intent = intents[0]
        amount = intent.amount
        if self.risk is not None:
            decision = self.risk.check(intent, self.snapshot(bar))
            if not decision.approved:
                self.rejections.append(IntentRejected(intent, decision.reason))
                return None
            amount = decision.amount
        if intent.side is OrderSide.SELL:
            return intent, SimOrder(OrderSide.SELL, OrderType.MARKET, amount=self.qty,
                                    reason=intent.reason)
        if not self.cash > 0:
            self.rejections.append(IntentRejected(intent, "no cash left to buy with"))
            return None
        return intent, SimOrder(OrderSide.BUY, intent.type, amount=amount, max_quote=self.cash,
                                price=intent.price, stop_price=intent.stop_price,
                                reason=intent.reason)

    def snapshot(self, bar: int) -> AccountSnapshot:
        """The account as it stands at ``bar``'s close."""
        self._extend_peak(bar)
        price = float(self.close[bar])
        value = self.qty * price
        equity = self.cash + value
        time_ms = int(self.close_time[bar])
        day_start = time_ms - time_ms % DAY_MS
        # The equity at 00:00 UTC is the one marked at the close of the bar ending then.
        day_bar = int(np.searchsorted(self.close_time, day_start, "right")) - 1
        return AccountSnapshot(
            time_ms=time_ms,
            equity=equity,
            cash=self.cash,
            peak_equity=max(self.peak, equity),
            day_start_equity=self._equity_at(day_bar),
            prices={self.symbol: price},
            exposure={self.symbol: value} if self.qty > 0 else {},
            open_trades=1 if self.qty > 0 else 0,
            trades_today=len(self.entry_times) - bisect_left(self.entry_times, day_start),
        )

    def _equity_at(self, bar: int) -> float:
        if bar < 0:
            return self.initial_cash
        state = bisect_right(self.state_bars, bar) - 1
        return self.state_cash[state] + self.state_qty[state] * float(self.close[bar])

    def _extend_peak(self, through: int) -> None:
        """Take the closes up to ``through`` into the peak; the account is unchanged since
        the last fill, so they are marked with today's cash and quantity."""
        if through <= self.peak_through:
            return
        start = max(self.peak_through + 1, 0)
        if self.qty > 0:
            best = self.cash + self.qty * float(self.close[start:through + 1].max())
        else:
            best = self.cash
        self.peak = max(self.peak, best)
        self.peak_through = through

    # --- fills ------------------------------------------------------------------------------

    def _apply(self, bar: int, fill: SimFill) -> None:
        if self.risk is not None:
            # The peak only feeds the risk check's snapshots.
            self._extend_peak(bar - 1)
        # The entry spends at most the cash by construction (max_quote); only rounding in the
        # last digit can cross zero.
        self.cash = max(0.0, self.cash + fill.cash_change)
        self.qty = self.qty + fill.amount if fill.side is OrderSide.BUY else 0.0
        if self.state_bars[-1] == bar:
            self.state_cash[-1], self.state_qty[-1] = self.cash, self.qty
        else:
            self.state_bars.append(bar)
            self.state_cash.append(self.cash)
            self.state_qty.append(self.qty)
        self.fills.append(fill)

    def _enter(self, bar: int, fill: SimFill) -> None:
        self._apply(bar, fill)
        self.entry_times.append(fill.time_ms)
        self.entry = (bar, fill)

    def _exit(self, bar: int, fill: SimFill, reason: ExitReason) -> None:
        assert self.entry is not None
        entry_bar, entry = self.entry
        self._apply(bar, fill)
        self.trades.append(Trade(entry_bar, bar, entry.time_ms, fill.time_ms, entry.price,
                                 fill.price, entry.amount, entry.fee, fill.fee, reason.value))
        self.entry = None

    # --- results ----------------------------------------------------------------------------

    def result(self, strategy: Strategy, lookahead_bar: int | None,
               lookahead_cuts: int) -> BacktestResult:
        candles, start = self.candles, self.warmup
        last = len(candles) - 1
        trades = list(self.trades)
        if self.entry is not None:
            entry_bar, entry = self.entry
            trades.append(Trade(entry_bar, last, entry.time_ms, int(candles.open_time[last]),
                                entry.price, float(self.close[last]), entry.amount, entry.fee,
                                0.0, ExitReason.END_OF_TEST.value))
        bars = last + 1 - start
        # Each account state holds from the close of its fill's bar to the next state's:
        # runs of equal values, built by repetition (linear, no search or index per bar).
        begins = np.maximum(np.asarray(self.state_bars[1:], dtype=np.int64) - start, 0)
        lengths = np.diff(np.r_[0, begins, bars])
        qty = np.repeat(np.asarray(self.state_qty), lengths)
        equity = np.repeat(np.asarray(self.state_cash), lengths) + qty * self.close[start:]
        hold_equity, hold_trade = self._buy_and_hold()
        return BacktestResult(
            strategy=strategy.name,
            params=dict(strategy.params),
            symbol=self.symbol,
            timeframe=candles.timeframe,
            initial_cash=self.initial_cash,
            warmup_bars=start,
            times=candles.open_time[start:],
            close=self.close[start:],
            equity=equity,
            buy_and_hold_equity=hold_equity,
            metrics=compute_metrics(equity, qty > 0, trades, candles.timeframe),
            buy_and_hold=compute_metrics(hold_equity, np.arange(bars) > 0, [hold_trade],
                                         candles.timeframe),
            trades=tuple(trades),
            fills=tuple(self.fills),
            rejections=tuple(self.rejections),
            lookahead_bar=lookahead_bar,
            lookahead_cuts=lookahead_cuts,
        )

    def _buy_and_hold(self) -> tuple[FloatArray, Trade]:
        start, last = self.warmup, len(self.candles) - 1
        order = SimOrder(OrderSide.BUY, OrderType.MARKET, max_quote=self.initial_cash,
                         reason="buy and hold")
        fill = self.model.execute(order, self.candles[start + 1]).fill
        assert fill is not None
        left = max(0.0, self.initial_cash + fill.cash_change)
        equity = left + fill.amount * self.close[start:]
        equity[0] = self.initial_cash
        trade = Trade(start + 1, last, fill.time_ms, int(self.candles.open_time[last]),
                      fill.price, float(self.close[last]), fill.amount, fill.fee, 0.0,
                      ExitReason.END_OF_TEST.value)
        return equity, trade

"""The strategy API shared by backtests, paper trading and live trading.

A :class:`Strategy` looks at closed candles only and answers with per-bar :class:`Signals`,
computed for a whole history at once with numpy. Signals must be causal: the value at bar
``i`` may use ``candles[: i + 1]`` and nothing later; :func:`check_lookahead` re-runs a
strategy on truncated histories to catch one that peeks. One function,
:func:`intents_for_bar`, turns the signals at a closed bar plus the current position into
:class:`~terminal.core.intents.OrderIntent` objects; the backtest engine calls it, and paper
and live runners call it on every closed candle, so every mode trades the same intents.

Trading is long-only spot for now: an entry buys, an exit sells what is held, and there is
no pyramiding (an entry signal while holding does nothing). Entry orders live for one candle:
one the next candle does not fill expires when it closes, and a strategy that still wants in
says so again with its signal at that bar.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from terminal.core.errors import InvalidArgument
from terminal.core.intents import OrderIntent
from terminal.core.model import OrderSide, OrderType
from terminal.core.series import CandleSeries

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ParamValue = int | float


@dataclass(frozen=True, slots=True)
class Parameter:
    """One tunable number of a strategy, with its allowed range (both ends included)."""

    name: str
    kind: type[int] | type[float]
    default: ParamValue
    minimum: ParamValue
    maximum: ParamValue
    description: str

    def parse(self, text: str) -> ParamValue:
        """Read the value from text as typed on the command line."""
        try:
            value = float(text)
        except ValueError:
            raise InvalidArgument(f"{self.name} must be a number, got {text!r}") from None
        return self.check(value)

    def check(self, value: float) -> ParamValue:
        """``value`` as this parameter's kind, or an error naming the allowed range."""
        if not math.isfinite(value):
            raise InvalidArgument(f"{self.name} must be a finite number, got {value}")
        if self.kind is int:
            if value != int(value):
                raise InvalidArgument(f"{self.name} must be a whole number, got {value:g}")
            value = int(value)
        if not self.minimum <= value <= self.maximum:
            raise InvalidArgument(f"{self.name} must be between {self.minimum} and"
                                  f" {self.maximum}, got {value:g}")
        return value


#: Protective exits every built-in strategy offers; 0 switches one off.
PROTECTIVE_PARAMETERS = (
    Parameter("stop_loss_pct", float, 0.0, 0.0, 99.0,
              "stop loss this many percent below the close of the entry signal's bar"),
    Parameter("take_profit_pct", float, 0.0, 0.0, 10_000.0,
              "take profit this many percent above the close of the entry signal's bar"),
    Parameter("trailing_stop_pct", float, 0.0, 0.0, 99.0,
              "trailing stop this many percent below the highest price since the entry"),
)


@dataclass(frozen=True, eq=False)
class Signals:
    """A strategy's verdict on every bar, each array as long as the candles.

    ``enter_long[i]`` / ``exit_long[i]`` are decided when bar ``i`` closes. The optional
    price arrays are read at an entry bar (NaN: none): ``stop_loss`` and ``take_profit``
    levels and ``trailing_stop_pct`` protect the position; ``entry_limit`` and ``entry_stop``
    make the entry a limit, stop or (both) stop-limit order instead of a market order.
    """

    enter_long: BoolArray
    exit_long: BoolArray
    stop_loss: FloatArray | None = None
    take_profit: FloatArray | None = None
    trailing_stop_pct: FloatArray | None = None
    entry_limit: FloatArray | None = None
    entry_stop: FloatArray | None = None

    def __post_init__(self) -> None:
        count = len(self.enter_long)
        for name, values in self.arrays():
            if len(values) != count:
                raise InvalidArgument(f"signal {name!r} has {len(values)} values, expected"
                                      f" {count}")
        for name in ("enter_long", "exit_long"):
            if getattr(self, name).dtype != np.bool_:
                raise InvalidArgument(f"signal {name!r} must be a boolean array")

    def __len__(self) -> int:
        return len(self.enter_long)

    def arrays(self) -> list[tuple[str, npt.NDArray[np.generic]]]:
        """The arrays present, by field name."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None]


class Strategy(ABC):
    """Base of every strategy. Subclasses set the class attributes and implement the two
    methods; parameters are validated when the strategy is built."""

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]]

    def __init__(self, params: Mapping[str, ParamValue] | None = None) -> None:
        given = dict(params or {})
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(given) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise InvalidArgument(f"{self.name} has no parameter {unknown[0]!r}; valid"
                                  f" parameters: {valid}")
        self.params: dict[str, ParamValue] = {
            name: p.check(given[name]) if name in given else p.default
            for name, p in known.items()}
        self.validate()

    def validate(self) -> None:  # noqa: B027 - an optional hook; most strategies need none
        """Check rules that tie parameters together; raise :class:`InvalidArgument`."""

    @abstractmethod
    def warmup_bars(self) -> int:
        """Bars of history before the first bar whose signal may be acted on.

        Signals on bars ``0 .. warmup_bars() - 1`` are ignored, so the first order can be
        decided at the close of bar ``warmup_bars()``.
        """

    @abstractmethod
    def signals(self, candles: CandleSeries) -> Signals:
        """Per-bar signals for ``candles`` (closed candles only), computed causally."""

    def protected(self, candles: CandleSeries, enter_long: BoolArray,
                  exit_long: BoolArray) -> Signals:
        """``Signals`` with the protective exits of :data:`PROTECTIVE_PARAMETERS` attached."""
        close = candles.close
        stop = float(self.params.get("stop_loss_pct", 0.0))
        target = float(self.params.get("take_profit_pct", 0.0))
        trailing = float(self.params.get("trailing_stop_pct", 0.0))
        return Signals(
            enter_long=enter_long,
            exit_long=exit_long,
            stop_loss=close * (1 - stop / 100) if stop else None,
            take_profit=close * (1 + target / 100) if target else None,
            trailing_stop_pct=np.full(len(close), trailing) if trailing else None,
        )

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{type(self).__name__}({values})"


def intents_for_bar(signals: Signals, bar: int, *, symbol: str, time_ms: int,
                    position: float) -> tuple[OrderIntent, ...]:
    """The order intents a strategy makes when bar ``bar`` closes at ``time_ms``.

    ``position`` is the base amount held. Holding, an exit signal sells all of it; flat, an
    entry signal (without an exit signal on the same bar) buys, sized later by the risk
    check, with the protective exits and entry prices the signals give for that bar.
    """
    if position > 0:
        if signals.exit_long[bar]:
            return (OrderIntent(symbol, OrderSide.SELL, time_ms, amount=position,
                                reduce_only=True, reason="exit signal"),)
        return ()
    if not signals.enter_long[bar] or signals.exit_long[bar]:
        return ()
    limit = _level(signals.entry_limit, bar)
    stop = _level(signals.entry_stop, bar)
    if limit is not None:
        kind = OrderType.STOP_LIMIT if stop is not None else OrderType.LIMIT
    else:
        kind = OrderType.STOP if stop is not None else OrderType.MARKET
    return (OrderIntent(symbol, OrderSide.BUY, time_ms, type=kind, price=limit,
                        stop_price=stop, stop_loss=_level(signals.stop_loss, bar),
                        take_profit=_level(signals.take_profit, bar),
                        trailing_stop_pct=_level(signals.trailing_stop_pct, bar),
                        reason="entry signal"),)


def _level(values: FloatArray | None, bar: int) -> float | None:
    if values is None:
        return None
    value = float(values[bar])
    return value if math.isfinite(value) and value > 0 else None


def check_lookahead(strategy: Strategy, candles: CandleSeries, cuts: int | Sequence[int] = 8,
                    *, full: Signals | None = None) -> int | None:
    """The first bar whose signals change when later candles are removed, or None.

    The strategy is re-run on histories cut after ``cuts`` bars (a list of lengths, or a
    count of lengths spread evenly over the history) and each result is compared with the
    full run's signals (``full``, computed here when not given) on the bars both have,
    from the end of the warm-up on. A causal strategy never differs; one that reads a
    later candle differs at least where that candle is missing.
    """
    count = len(candles)
    warmup = strategy.warmup_bars()
    if isinstance(cuts, int):
        lengths = np.unique(np.linspace(warmup + 2, count - 1, cuts).astype(np.int64))
    else:
        lengths = np.asarray(sorted(set(cuts)), dtype=np.int64)
    lengths = lengths[(lengths > warmup) & (lengths < count)]
    reference = full if full is not None else strategy.signals(candles)
    first: int | None = None
    for length in lengths.tolist():
        cut = strategy.signals(candles.take(0, length))
        for name in {name for name, _ in (*reference.arrays(), *cut.arrays())}:
            bar = _first_difference(getattr(reference, name), getattr(cut, name), warmup, length)
            if bar is not None and (first is None or bar < first):
                first = bar
    return first


def _first_difference(values: npt.NDArray[np.generic] | None,
                      other: npt.NDArray[np.generic] | None, start: int, stop: int) -> int | None:
    """The first bar in ``[start, stop)`` where two signal arrays disagree (NaN equals NaN)."""
    if values is None or other is None:
        return start
    ours, theirs = values[start:stop], other[start:stop]
    if len(ours) != len(theirs):
        return start + min(len(ours), len(theirs))
    if ours.dtype == np.bool_ or theirs.dtype == np.bool_:
        differs = ours != theirs
    else:
        differs = ~((ours == theirs) | (np.isnan(ours) & np.isnan(theirs)))
    where = np.flatnonzero(differs)
    return start + int(where[0]) if len(where) else None

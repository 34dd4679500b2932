"""The built-in strategies and the registry the command line and the UI pick them from."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from terminal.core.errors import InvalidArgument
from terminal.core.indicators import rolling_std, rsi, sma
from terminal.core.series import CandleSeries
from terminal.core.strategy import (
    PROTECTIVE_PARAMETERS,
    BoolArray,
    FloatArray,
    Parameter,
    ParamValue,
    Signals,
    Strategy,
)


def _crossed_above(values: FloatArray, level: FloatArray) -> BoolArray:
    """True where ``values`` is above ``level`` after being at or below it on the bar before."""
    above = values > level
    crossed = np.zeros(len(values), dtype=bool)
    crossed[1:] = above[1:] & (values[:-1] <= level[:-1])
    return crossed


class SmaCrossover(Strategy):
    """Long while the fast simple moving average of the close is above the slow one."""

    name = "sma_crossover"
    description = ("buys when the fast SMA of the close crosses above the slow SMA and sells"
                   " when it crosses back below")
    parameters = (
        Parameter("fast", int, 20, 2, 1000, "bars in the fast moving average"),
        Parameter("slow", int, 50, 3, 5000, "bars in the slow moving average"),
        *PROTECTIVE_PARAMETERS,
    )

    def validate(self) -> None:
        if self.params["fast"] >= self.params["slow"]:
            raise InvalidArgument(f"{self.name}: fast ({self.params['fast']}) must be below slow"
                                  f" ({self.params['slow']})")

    def warmup_bars(self) -> int:
        # The slow average exists from bar slow - 1; a cross also needs the bar before.
        return int(self.params["slow"])

    def signals(self, candles: CandleSeries) -> Signals:
        fast = sma(candles.close, int(self.params["fast"]))
        slow = sma(candles.close, int(self.params["slow"]))
        return self.protected(candles, _crossed_above(fast, slow), _crossed_above(slow, fast))


class RsiMeanReversion(Strategy):
    """Buys an oversold market and sells it once it is overbought."""

    name = "rsi_mean_reversion"
    description = ("buys when Wilder's RSI falls below the oversold level and sells when it"
                   " rises above the overbought level")
    parameters = (
        Parameter("period", int, 14, 2, 500, "bars in the RSI"),
        Parameter("oversold", float, 30.0, 1.0, 50.0, "RSI below which to buy"),
        Parameter("overbought", float, 70.0, 50.0, 99.0, "RSI above which to sell"),
        *PROTECTIVE_PARAMETERS,
    )

    def validate(self) -> None:
        if self.params["oversold"] >= self.params["overbought"]:
            raise InvalidArgument(f"{self.name}: oversold ({self.params['oversold']:g}) must be"
                                  f" below overbought ({self.params['overbought']:g})")

    def warmup_bars(self) -> int:
        return int(self.params["period"])

    def signals(self, candles: CandleSeries) -> Signals:
        index = rsi(candles.close, int(self.params["period"]))
        return self.protected(candles, index < self.params["oversold"],
                              index > self.params["overbought"])


class BollingerBreakout(Strategy):
    """Buys a close breaking out above the upper Bollinger band; sells below the middle."""

    name = "bollinger_breakout"
    description = ("buys when the close crosses above the upper Bollinger band and sells when"
                   " it closes below the middle band (the moving average)")
    parameters = (
        Parameter("period", int, 20, 2, 1000, "bars in the moving average and deviation"),
        Parameter("width", float, 2.0, 0.1, 10.0, "band width in standard deviations"),
        *PROTECTIVE_PARAMETERS,
    )

    def warmup_bars(self) -> int:
        return int(self.params["period"])

    def signals(self, candles: CandleSeries) -> Signals:
        period = int(self.params["period"])
        middle = sma(candles.close, period)
        upper = middle + float(self.params["width"]) * rolling_std(candles.close, period)
        return self.protected(candles, _crossed_above(candles.close, upper),
                              candles.close < middle)


class ModelSignal(Strategy):
    """Trades on a model's predicted returns, entering only when they beat the fees.

    ``predictions[i]`` is the expected log return over the model's horizon, made from the
    candles up to and including bar ``i``, aligned by position with the candles the strategy
    will see (a prefix of them is fine). NaN means no prediction: neither entry nor exit. An
    entry needs more than the round trip's cost, ``ln((1 + fee) / (1 - fee))``, plus
    ``margin``; a held position is sold when the prediction falls below ``exit_below``.
    """

    name = "model_signal"
    description = ("trades on predicted returns: buys when the prediction beats the round-trip"
                   " fee plus a margin, sells when it falls below a floor")
    parameters = (
        Parameter("fee", float, 0.001, 0.0, 0.05,
                  "fee per side the entry threshold covers (a fraction)"),
        Parameter("margin", float, 0.0, 0.0, 0.5,
                  "expected log return required beyond the round-trip fee"),
        Parameter("exit_below", float, 0.0, -0.5, 0.5,
                  "sell when the predicted log return falls below this"),
        *PROTECTIVE_PARAMETERS,
    )

    def __init__(self, predictions: FloatArray,
                 params: Mapping[str, ParamValue] | None = None) -> None:
        values = np.asarray(predictions, dtype=np.float64)
        if values.ndim != 1:
            raise InvalidArgument("predictions must be one value per candle")
        self.predictions = values
        super().__init__(params)

    @property
    def entry_threshold(self) -> float:
        fee = float(self.params["fee"])
        return math.log((1 + fee) / (1 - fee)) + float(self.params["margin"])

    def validate(self) -> None:
        if self.params["exit_below"] >= self.entry_threshold:
            raise InvalidArgument(f"{self.name}: exit_below ({self.params['exit_below']:g})"
                                  f" must be below the entry threshold"
                                  f" ({self.entry_threshold:.6g})")

    def warmup_bars(self) -> int:
        return 0

    def signals(self, candles: CandleSeries) -> Signals:
        count = len(candles)
        if len(self.predictions) < count:
            raise InvalidArgument(f"{self.name} has {len(self.predictions)} predictions for"
                                  f" {count} candles")
        predicted = self.predictions[:count]
        return self.protected(candles, predicted > self.entry_threshold,
                              predicted < float(self.params["exit_below"]))


#: Every built-in strategy by its name.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (SmaCrossover, RsiMeanReversion, BollingerBreakout, ModelSignal)
}


def create_strategy(name: str, params: Mapping[str, str | float | int] | None = None, *,
                    predictions: FloatArray | None = None) -> Strategy:
    """Build the strategy called ``name``; text values (from the command line) are parsed.

    ``predictions`` feeds :class:`ModelSignal` and is refused by the others.
    """
    cls = STRATEGIES.get(name.strip().lower())
    if cls is None:
        raise InvalidArgument(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    known = {p.name: p for p in cls.parameters}
    parsed: dict[str, ParamValue] = {}
    for key, value in (params or {}).items():
        parameter = known.get(key)
        if parameter is None:
            raise InvalidArgument(f"{cls.name} has no parameter {key!r}; valid parameters:"
                                  f" {', '.join(known)}")
        parsed[key] = parameter.parse(value) if isinstance(value, str) else parameter.check(
            float(value))
    if cls is ModelSignal:
        if predictions is None:
            raise InvalidArgument(f"{cls.name} trades on predictions; give a prediction series")
        return ModelSignal(predictions, parsed)
    if predictions is not None:
        raise InvalidArgument(f"{cls.name} does not use predictions")
    return cls(parsed)

import itertools
import math
import statistics

import numpy as np
import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.indicators import rolling_std, rsi, sma
from terminal.core.model import OrderSide, OrderType, Timeframe
from terminal.core.series import CandleSeries
from terminal.core.strategies import (
    STRATEGIES,
    BollingerBreakout,
    ModelSignal,
    RsiMeanReversion,
    SmaCrossover,
    create_strategy,
)
from terminal.core.strategy import (
    Parameter,
    Signals,
    Strategy,
    check_lookahead,
    intents_for_bar,
)
from tests.factories import make_series

SYMBOL = "BTC/USDT"


def closes(values: list[float]) -> CandleSeries:
    """Candles whose closes are ``values`` (open at the previous close)."""
    close = np.asarray(values, dtype=np.float64)
    open_ = np.r_[close[0], close[:-1]]
    times = np.arange(len(close), dtype=np.int64) * Timeframe.H1.ms
    return CandleSeries(Timeframe.H1, times, open_, np.maximum(open_, close) + 1,
                        np.minimum(open_, close) - 1, close, np.ones(len(close)))


def walk(count: int = 600, seed: int = 3) -> CandleSeries:
    return make_series(count, Timeframe.H1, seed=seed)


# --- parameters -----------------------------------------------------------------------------

def test_defaults_and_text_parameters() -> None:
    strategy = create_strategy("sma_crossover", {"fast": "10", "slow": 30.0})
    assert strategy.params["fast"] == 10 and isinstance(strategy.params["fast"], int)
    assert strategy.params["slow"] == 30
    assert create_strategy("SMA_Crossover").params["fast"] == 20
    assert set(STRATEGIES) == {"sma_crossover", "rsi_mean_reversion", "bollinger_breakout",
                               "model_signal"}


def test_bad_parameters_say_what_is_allowed() -> None:
    with pytest.raises(InvalidArgument, match="unknown strategy 'nope'; choose one of: "
                                              "sma_crossover"):
        create_strategy("nope")
    with pytest.raises(InvalidArgument, match="no parameter 'fats'; valid parameters: fast,"
                                              " slow, stop_loss_pct"):
        create_strategy("sma_crossover", {"fats": "3"})
    with pytest.raises(InvalidArgument, match="fast must be between 2 and 1000, got 1"):
        create_strategy("sma_crossover", {"fast": "1"})
    with pytest.raises(InvalidArgument, match=r"fast must be a whole number, got 2\.5"):
        create_strategy("sma_crossover", {"fast": "2.5"})
    with pytest.raises(InvalidArgument, match="slow must be a number, got 'x'"):
        create_strategy("sma_crossover", {"slow": "x"})
    with pytest.raises(InvalidArgument, match="finite"):
        create_strategy("bollinger_breakout", {"width": "nan"})
    with pytest.raises(InvalidArgument, match=r"fast \(50\) must be below slow \(20\)"):
        SmaCrossover({"fast": 50, "slow": 20})
    with pytest.raises(InvalidArgument, match=r"oversold .* must be below overbought"):
        RsiMeanReversion({"oversold": 50, "overbought": 50})
    with pytest.raises(InvalidArgument, match="no parameter 'x'"):
        BollingerBreakout({"x": 1})


def test_parameter_parse_keeps_kinds() -> None:
    width = Parameter("width", float, 2.0, 0.5, 5.0, "")
    assert width.parse("2.5") == 2.5 and width.parse(" 3 ") == 3.0
    with pytest.raises(InvalidArgument, match=r"between 0.5 and 5.0, got 9"):
        width.parse("9")


def test_signals_check_their_arrays() -> None:
    with pytest.raises(InvalidArgument, match="'exit_long' has 2 values, expected 3"):
        Signals(np.zeros(3, bool), np.zeros(2, bool))
    with pytest.raises(InvalidArgument, match="boolean"):
        Signals(np.zeros(3), np.zeros(3, bool))


# --- built-ins ------------------------------------------------------------------------------

def test_indicators_match_plain_python() -> None:
    values = walk(200).close
    for period in (1, 5, 20):
        expected = [sum(values[i - period + 1:i + 1]) / period for i in range(period - 1, 200)]
        assert np.allclose(sma(values, period)[period - 1:], expected, rtol=1e-12)
        assert np.isnan(sma(values, period)[:period - 1]).all()
    deviations = [statistics.pstdev(values[i - 19:i + 1]) for i in range(19, 200)]
    assert np.allclose(rolling_std(values, 20)[19:], deviations, rtol=1e-6)
    assert np.isnan(sma(values[:3], 5)).all()
    with pytest.raises(InvalidArgument, match="at least 1 bar"):
        sma(values, 0)


def test_rsi_is_wilders() -> None:
    values = walk(120).close.tolist()
    period = 14
    changes = [b - a for a, b in itertools.pairwise(values)]
    gain = sum(max(c, 0) for c in changes[:period]) / period
    loss = sum(max(-c, 0) for c in changes[:period]) / period
    expected = [100 - 100 / (1 + gain / loss)]
    for change in changes[period:]:
        gain = (gain * (period - 1) + max(change, 0)) / period
        loss = (loss * (period - 1) + max(-change, 0)) / period
        expected.append(100 - 100 / (1 + gain / loss))
    got = rsi(np.asarray(values), period)
    assert np.isnan(got[:period]).all()
    assert np.allclose(got[period:], expected, rtol=1e-9)
    assert rsi(np.full(30, 5.0), 14)[-1] == 50.0
    assert rsi(np.arange(1.0, 31.0), 14)[-1] == 100.0


def test_sma_crossover_marks_the_crossing_bars() -> None:
    # Falling, then rising, then falling again: one cross up and one cross down.
    values = [10.0 - i * 0.1 for i in range(20)] + [8.0 + i * 0.3 for i in range(20)]
    values += [14.0 - i * 0.5 for i in range(20)]
    strategy = SmaCrossover({"fast": 3, "slow": 6})
    signals = strategy.signals(closes(values))
    fast, slow = sma(np.asarray(values), 3), sma(np.asarray(values), 6)
    ups = [i for i in range(1, 60) if fast[i] > slow[i] and fast[i - 1] <= slow[i - 1]]
    downs = [i for i in range(1, 60) if fast[i] < slow[i] and fast[i - 1] >= slow[i - 1]]
    assert np.flatnonzero(signals.enter_long).tolist() == ups and len(ups) == 1
    assert np.flatnonzero(signals.exit_long).tolist() == downs and len(downs) == 1
    assert strategy.warmup_bars() == 6
    assert signals.stop_loss is None and signals.take_profit is None


def test_a_flat_market_never_crosses() -> None:
    values = [100.0 + 0.1 * i for i in range(30)] + [103.7] * 400
    signals = SmaCrossover({"fast": 20, "slow": 50}).signals(closes(values))
    assert not signals.enter_long[80:].any() and not signals.exit_long[80:].any()


def test_rsi_and_bollinger_signals_follow_their_rules() -> None:
    candles = walk(800)
    index = rsi(candles.close, 14)
    signals = RsiMeanReversion({"oversold": 35, "overbought": 65}).signals(candles)
    assert np.array_equal(signals.enter_long, index < 35)
    assert np.array_equal(signals.exit_long, index > 65)
    assert signals.enter_long.any() and signals.exit_long.any()

    bands = BollingerBreakout({"period": 20, "width": 1.5}).signals(candles)
    middle = sma(candles.close, 20)
    upper = middle + 1.5 * rolling_std(candles.close, 20)
    close = candles.close
    crossings = [i for i in range(1, len(close))
                 if close[i] > upper[i] and close[i - 1] <= upper[i - 1]]
    assert np.flatnonzero(bands.enter_long).tolist() == crossings and crossings
    assert np.array_equal(bands.exit_long, close < middle)


def test_protective_parameters_become_levels() -> None:
    candles = walk(100)
    signals = SmaCrossover({"fast": 5, "slow": 10, "stop_loss_pct": 2, "take_profit_pct": 5,
                            "trailing_stop_pct": 3}).signals(candles)
    assert signals.stop_loss is not None and signals.take_profit is not None
    assert np.allclose(signals.stop_loss, candles.close * 0.98)
    assert np.allclose(signals.take_profit, candles.close * 1.05)
    assert signals.trailing_stop_pct is not None and (signals.trailing_stop_pct == 3).all()


def test_model_signal_needs_more_than_the_round_trip_fee() -> None:
    fee = 0.001
    threshold = math.log(1.001 / 0.999)
    predictions = np.array([np.nan, threshold * 0.99, threshold * 1.01, 0.0, -0.001, 0.01])
    strategy = create_strategy("model_signal", {"fee": str(fee)}, predictions=predictions)
    assert isinstance(strategy, ModelSignal)
    assert strategy.entry_threshold == pytest.approx(threshold)
    signals = strategy.signals(walk(6))
    assert signals.enter_long.tolist() == [False, False, True, False, False, True]
    assert signals.exit_long.tolist() == [False, False, False, False, True, False]
    margin = create_strategy("model_signal", {"margin": "0.02"}, predictions=predictions)
    assert not margin.signals(walk(6)).enter_long.any()
    assert margin.signals(walk(4)).enter_long.tolist() == [False, False, False, False]
    with pytest.raises(InvalidArgument, match="give a prediction series"):
        create_strategy("model_signal")
    with pytest.raises(InvalidArgument, match="does not use predictions"):
        create_strategy("sma_crossover", predictions=predictions)
    with pytest.raises(InvalidArgument, match="6 predictions for 7 candles"):
        strategy.signals(walk(7))
    with pytest.raises(InvalidArgument, match=r"exit_below .* must be below the entry"):
        ModelSignal(predictions, {"exit_below": 0.01})


# --- intents --------------------------------------------------------------------------------

def test_intents_for_a_flat_account_and_a_held_position() -> None:
    enter = np.array([True, False, True, True])
    leave = np.array([False, True, True, False])
    signals = Signals(enter, leave, stop_loss=np.array([90.0, np.nan, 1.0, 1.0]),
                      take_profit=np.array([120.0, 1.0, 1.0, np.nan]),
                      trailing_stop_pct=np.array([5.0, 1.0, 1.0, 1.0]))
    (buy,) = intents_for_bar(signals, 0, symbol=SYMBOL, time_ms=7, position=0.0)
    assert (buy.side, buy.type, buy.amount, buy.created_at) == (OrderSide.BUY,
                                                                OrderType.MARKET, None, 7)
    assert (buy.stop_loss, buy.take_profit, buy.trailing_stop_pct) == (90.0, 120.0, 5.0)
    assert intents_for_bar(signals, 1, symbol=SYMBOL, time_ms=7, position=0.0) == ()
    assert intents_for_bar(signals, 2, symbol=SYMBOL, time_ms=7, position=0.0) == ()
    (sell,) = intents_for_bar(signals, 1, symbol=SYMBOL, time_ms=8, position=1.5)
    assert (sell.side, sell.amount, sell.reduce_only) == (OrderSide.SELL, 1.5, True)
    assert intents_for_bar(signals, 3, symbol=SYMBOL, time_ms=8, position=1.5) == ()
    (last,) = intents_for_bar(signals, 3, symbol=SYMBOL, time_ms=8, position=0.0)
    assert last.take_profit is None


def test_entry_prices_choose_the_order_type() -> None:
    yes = np.array([True] * 4)
    no = np.zeros(4, bool)
    nan = np.nan
    signals = Signals(yes, no, entry_limit=np.array([nan, 99.0, nan, 99.0]),
                      entry_stop=np.array([nan, nan, 101.0, 101.0]))
    kinds = [intents_for_bar(signals, i, symbol=SYMBOL, time_ms=0, position=0.0)[0]
             for i in range(4)]
    assert [(k.type, k.price, k.stop_price) for k in kinds] == [
        (OrderType.MARKET, None, None), (OrderType.LIMIT, 99.0, None),
        (OrderType.STOP, None, 101.0), (OrderType.STOP_LIMIT, 99.0, 101.0)]


# --- look-ahead -----------------------------------------------------------------------------

class PeekingStrategy(Strategy):
    """Buys when the next close is higher: it reads a candle that has not closed yet."""

    name = "peeking"
    description = "reads the future"
    parameters = ()

    def warmup_bars(self) -> int:
        return 0

    def signals(self, candles: CandleSeries) -> Signals:
        following = np.r_[candles.close[1:], np.nan]
        return Signals(following > candles.close, following < candles.close)


class WholeHistoryStrategy(Strategy):
    """Buys below the average of the whole history, which includes later candles."""

    name = "whole_history"
    description = "normalises by the future"
    parameters = ()

    def warmup_bars(self) -> int:
        return 0

    def signals(self, candles: CandleSeries) -> Signals:
        below = candles.close < candles.close.mean()
        return Signals(below, ~below)


def test_built_in_strategies_do_not_peek() -> None:
    candles = walk(1500)
    rng = np.random.default_rng(5)
    built = [SmaCrossover({"stop_loss_pct": 2, "trailing_stop_pct": 4}),
             RsiMeanReversion({"take_profit_pct": 3}), BollingerBreakout(),
             ModelSignal(rng.normal(0, 0.003, 1500))]
    for strategy in built:
        assert check_lookahead(strategy, candles, cuts=12) is None, strategy.name


def test_peeking_strategies_are_caught() -> None:
    candles = walk(1500)
    # Cut after 100 bars, bar 99 cannot see close 100 any more: its entry or exit vanishes.
    assert check_lookahead(PeekingStrategy(), candles, cuts=[100, 700, 1200]) == 99
    assert check_lookahead(WholeHistoryStrategy(), candles) is not None
    assert check_lookahead(PeekingStrategy(), candles) is not None

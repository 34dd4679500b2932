import itertools
import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest

from terminal.core.backtest import fill_missing_bars, run_backtest
from terminal.core.errors import InvalidArgument
from terminal.core.fills import FeeSchedule, FillModel, Protection, SimFill, SimOrder, Slippage
from terminal.core.intents import AccountSnapshot, OrderIntent, RiskDecision
from terminal.core.model import DAY_MS, Liquidity, OrderSide, Timeframe
from terminal.core.series import CandleSeries
from terminal.core.strategies import SmaCrossover
from terminal.core.strategy import Signals, Strategy, intents_for_bar
from tests.factories import START_MS, make_series

SYMBOL = "BTC/USDT"
FEE = 0.001


def hourly(count: int, seed: int = 11, volatility: float = 0.004) -> CandleSeries:
    """A deterministic hourly random walk with wicks, around 100."""
    rng = np.random.default_rng(seed)
    times = START_MS + np.arange(count, dtype=np.int64) * Timeframe.H1.ms
    close = 100 * np.exp(np.cumsum(rng.normal(0, volatility, count)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, volatility / 4, count))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, volatility, count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, volatility, count)))
    return CandleSeries(Timeframe.H1, times, open_, high, low, close, rng.gamma(2, 50, count))


class Scripted(Strategy):
    """Signals given up front, read as a prefix (so it is causal)."""

    name = "scripted"
    description = "fixed signals for tests"
    parameters = ()

    def __init__(self, signals: Signals, warmup: int = 0) -> None:
        self.fixed = signals
        self.warmup = warmup
        super().__init__()

    def warmup_bars(self) -> int:
        return self.warmup

    def signals(self, candles: CandleSeries) -> Signals:
        count = len(candles)
        return Signals(**{name: values[:count] for name, values in self.fixed.arrays()})


def flags(count: int, bars: list[int]) -> np.ndarray:
    marks = np.zeros(count, dtype=bool)
    marks[bars] = True
    return marks


# --- the correctness anchor -----------------------------------------------------------------

def reference_sma_crossover(opens: list[float], closes: list[float], fast: int, slow: int,
                            cash: float) -> tuple[list[tuple[float, float]], float]:
    """The anchor's conventions in plain Python: cross up (fast > slow after fast <= slow)
    buys with all the cash at the next open, fee on top; cross down sells at the next open
    less the fee; a signal on the last bar is ignored; an open position is marked to the
    last close without an exit fee. Returns (entry, exit price) pairs and final equity."""

    def average(bar: int, length: int) -> float | None:
        return sum(closes[bar - length + 1:bar + 1]) / length if bar >= length - 1 else None

    qty, trades = 0.0, []
    for bar in range(1, len(closes) - 1):
        before_fast, before_slow = average(bar - 1, fast), average(bar - 1, slow)
        now_fast, now_slow = average(bar, fast), average(bar, slow)
        if before_fast is None or before_slow is None or now_fast is None or now_slow is None:
            continue
        price = opens[bar + 1]
        if qty == 0 and now_fast > now_slow and before_fast <= before_slow:
            qty, cash = cash / (price * (1 + FEE)), 0.0
            trades.append((price, math.nan))
        elif qty > 0 and now_fast < now_slow and before_fast >= before_slow:
            cash, qty = qty * price * (1 - FEE), 0.0
            trades[-1] = (trades[-1][0], price)
    return trades, cash + qty * closes[-1]


def anchor_lengths() -> list[int]:
    candles = hourly(3000)
    crosses = SmaCrossover({"fast": 20, "slow": 50}).signals(candles)
    entry = int(np.flatnonzero(crosses.enter_long)[-3])
    leave = int(np.flatnonzero(crosses.exit_long)[-3])
    # Whole, ending on an entry signal, on an exit signal, and while holding.
    return [3000, entry + 1, leave + 1, entry + 5]


@pytest.mark.parametrize("length", anchor_lengths())
def test_sma_crossover_matches_the_plain_python_reference(length: int) -> None:
    candles = hourly(3000).take(0, length)
    result = run_backtest(candles, SmaCrossover({"fast": 20, "slow": 50}), cash=10_000.0,
                          fill_model=FillModel(FeeSchedule(FEE, FEE)))
    trades, final = reference_sma_crossover(candles.open.tolist(), candles.close.tolist(),
                                            20, 50, 10_000.0)
    assert len(trades) > 20
    assert result.metrics.trades == len(trades)
    assert result.metrics.final_equity == pytest.approx(final, rel=1e-12)
    assert [t.entry_price for t in result.trades] == [entry for entry, _ in trades]
    exits = [t.exit_price if t.exit_reason == "signal" else math.nan for t in result.trades]
    assert exits == pytest.approx([exit for _, exit in trades], nan_ok=True)
    assert result.equity[-1] == result.metrics.final_equity


# --- bar by bar (a paper venue) and the engine fill identically -------------------------------

def paper_fills(candles: CandleSeries, strategy: Strategy, model: FillModel,
                cash: float) -> list[SimFill]:
    """What a paper venue does: one candle at a time, orders decided when a candle closes
    from the closed candles only, filled by the fill model in the next candle."""
    qty, fills = 0.0, []
    pending: tuple[OrderIntent, SimOrder] | None = None
    protection = Protection()
    warmup = strategy.warmup_bars()
    for bar in range(len(candles)):
        candle = candles[bar]
        entered_inside = False
        if pending is not None:
            intent, order = pending
            pending = None
            fill = model.execute(order, candle).fill
            if fill is not None:
                fills.append(fill)
                cash = max(0.0, cash + fill.cash_change)
                if fill.side is OrderSide.BUY:
                    qty = fill.amount
                    protection = Protection(intent.stop_loss, intent.take_profit,
                                            intent.trailing_stop_pct, fill.price)
                    entered_inside = not fill.at_open
                else:
                    qty = 0.0
        if qty > 0:
            exit_fill = model.exit_fill(protection, qty, candle, entered_inside=entered_inside)
            if exit_fill is not None:
                fills.append(exit_fill)
                cash, qty = cash + exit_fill.cash_change, 0.0
            protection = protection.after_close(candle.high)
        if warmup <= bar < len(candles) - 1:
            signals = strategy.signals(candles.take(0, bar + 1))
            for intent in intents_for_bar(signals, bar, symbol=SYMBOL,
                                          time_ms=int(candle.open_time) + candles.timeframe.ms,
                                          position=qty):
                if intent.side is OrderSide.SELL:
                    order = SimOrder(OrderSide.SELL, amount=qty, reason=intent.reason)
                else:
                    order = SimOrder(OrderSide.BUY, intent.type, max_quote=cash,
                                     price=intent.price, stop_price=intent.stop_price,
                                     reason=intent.reason)
                pending = (intent, order)
    return fills


def protected_limit_entries(count: int) -> Scripted:
    """Entries alternating between market, limit, stop and stop-limit orders, each with
    a stop loss, a take profit and a trailing stop, and exit signals now and then."""
    candles = hourly(count, seed=4)
    close = candles.close
    rng = np.random.default_rng(9)
    enter = rng.random(count) < 0.25
    leave = rng.random(count) < 0.08
    kind = np.arange(count) % 4
    limit = np.where((kind == 1) | (kind == 3), close * 0.998, np.nan)
    stop = np.where(kind >= 2, close * 1.001, np.nan)
    trailing = np.where(rng.random(count) < 0.5, 0.8, np.nan)
    return Scripted(Signals(enter, leave, stop_loss=close * 0.985, take_profit=close * 1.02,
                            trailing_stop_pct=trailing, entry_limit=limit, entry_stop=stop),
                    warmup=3)


@pytest.mark.parametrize("strategy", [
    SmaCrossover({"fast": 5, "slow": 15, "stop_loss_pct": 1, "take_profit_pct": 2,
                  "trailing_stop_pct": 1.5}),
    SmaCrossover({"fast": 4, "slow": 9}),
    protected_limit_entries(700),
], ids=["sma-protected", "sma-plain", "all-order-types"])
def test_bar_by_bar_and_engine_give_identical_fills(strategy: Strategy) -> None:
    candles = hourly(700, seed=4)
    model = FillModel(FeeSchedule(maker=0.0002, taker=0.001),
                      Slippage(fixed_bps=2, volume_bps=30))
    expected = paper_fills(candles, strategy, model, 5_000.0)
    result = run_backtest(candles, strategy, cash=5_000.0, fill_model=model, lookahead_cuts=0)
    assert len(expected) > 40
    assert list(result.fills) == expected
    reasons = {t.exit_reason for t in result.trades}
    if strategy.params.get("stop_loss_pct") or isinstance(strategy, Scripted):
        assert {"stop_loss", "take_profit", "trailing_stop", "signal"} <= reasons
    if isinstance(strategy, Scripted):
        entries = [f for f in result.fills if f.side is OrderSide.BUY]
        assert any(f.liquidity is Liquidity.MAKER for f in entries)
        assert any(not f.at_open for f in entries) and any(f.at_open for f in entries)


# --- results --------------------------------------------------------------------------------

def test_figures_of_a_small_hand_checked_run() -> None:
    close = [100.0, 100, 100, 110, 120, 90, 95, 100, 105, 110]
    candles = CandleSeries(Timeframe.D1, START_MS + np.arange(10, dtype=np.int64) * DAY_MS,
                           np.array(close), np.array(close) + 1, np.array(close) - 1,
                           np.array(close), np.ones(10))
    # Buy at the open of bar 2 (100), sell at bar 5's open (90); buy at 7 (100), held.
    strategy = Scripted(Signals(flags(10, [1, 6]), flags(10, [4])), warmup=1)
    result = run_backtest(candles, strategy, cash=1_000.0,
                          fill_model=FillModel(FeeSchedule(0.0, 0.01)), lookahead_cuts=0)
    first, second = result.trades
    qty = 1_000 / (100 * 1.01)
    assert (first.entry_price, first.exit_price, first.amount) == (100.0, 90.0, qty)
    assert first.pnl == pytest.approx(qty * 90 * 0.99 - 1_000)
    assert first.bars_held == 3 and first.exit_reason == "signal"
    cash = qty * 90 * 0.99
    qty2 = cash / (100 * 1.01)
    assert second.exit_reason == "end_of_test" and second.exit_fee == 0.0
    assert second.amount == pytest.approx(qty2)
    expected_equity = [1_000, qty * 100, qty * 110, qty * 120, cash, cash, qty2 * 100,
                       qty2 * 105, qty2 * 110]
    assert result.equity == pytest.approx(expected_equity)
    metrics = result.metrics
    assert metrics.final_equity == pytest.approx(qty2 * 110)
    assert metrics.total_return == pytest.approx(qty2 * 110 / 1_000 - 1)
    assert metrics.trades == 2 and metrics.win_rate == 0.5
    assert metrics.profit_factor == pytest.approx(second.pnl / -first.pnl)
    assert metrics.exposure == pytest.approx(6 / 8)
    assert metrics.fees_paid == pytest.approx(first.entry_fee + first.exit_fee + second.entry_fee)
    assert metrics.max_drawdown == pytest.approx(1 - min(expected_equity[4:]) / (qty * 120))
    returns = [b / a - 1 for a, b in itertools.pairwise(expected_equity)]
    sharpe = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / len(returns))
    assert metrics.sharpe == pytest.approx(sharpe)
    assert metrics.sortino == pytest.approx(statistics.mean(returns) / downside * math.sqrt(365))
    assert metrics.cagr == pytest.approx((metrics.final_equity / 1_000) ** (365 / 8) - 1)
    assert metrics.avg_trade_return == pytest.approx((first.return_ + second.return_) / 2)

    hold = result.buy_and_hold
    hold_qty = 1_000 / (100 * 1.01)
    assert result.buy_and_hold_equity[0] == 1_000
    assert hold.final_equity == pytest.approx(hold_qty * 110)
    assert (hold.trades, hold.exposure, hold.profit_factor) == (1, 1.0, None)
    payload = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert (payload["trades"], payload["buy_and_hold"]["profit_factor"]) == (2, None)
    assert payload["trade_list"][0]["exit_reason"] == "signal"
    assert payload["lookahead"] == {"cuts_checked": 0, "peeks": False, "first_bar": None,
                                    "first_utc": None}


def test_signals_during_the_warm_up_are_ignored() -> None:
    candles = hourly(40)
    strategy = Scripted(Signals(flags(40, [0, 2, 5]), flags(40, [])), warmup=4)
    result = run_backtest(candles, strategy, lookahead_cuts=0)
    (trade,) = result.trades
    assert trade.entry_bar == 6 and result.times[0] == candles.open_time[4]
    assert result.warmup_bars == 4 and len(result.equity) == 36


def test_no_trades_gives_flat_figures_and_json_nulls() -> None:
    candles = hourly(60)
    strategy = Scripted(Signals(flags(60, [59]), flags(60, [])))
    result = run_backtest(candles, strategy, lookahead_cuts=0)
    assert result.trades == () and result.metrics.final_equity == 10_000.0
    assert (result.metrics.sharpe, result.metrics.win_rate, result.metrics.cagr) == (
        None, None, 0.0)
    json.dumps(result.to_json(), allow_nan=False)


def test_too_little_history_and_bad_cash_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"needs at least 52 candles .*50 warm-up"):
        run_backtest(hourly(51), SmaCrossover())
    with pytest.raises(InvalidArgument, match="starting cash"):
        run_backtest(hourly(100), SmaCrossover(), cash=0.0)


def test_a_peeking_strategy_is_reported() -> None:
    candles = hourly(400)
    following = np.r_[candles.close[1:], np.nan]
    peeking = Scripted(Signals(following > candles.close, following < candles.close))

    class Peeking(Scripted):
        def signals(self, candles: CandleSeries) -> Signals:
            ahead = np.r_[candles.close[1:], np.nan]
            return Signals(ahead > candles.close, ahead < candles.close)

    assert run_backtest(candles, peeking).lookahead_bar is None  # fixed arrays are causal
    result = run_backtest(candles, Peeking(peeking.fixed))
    assert result.lookahead_bar is not None and result.lookahead_cuts == 8
    assert result.to_json()["lookahead"]["peeks"] is True


# --- the account the risk check sees --------------------------------------------------------

@dataclass
class RecordingRisk:
    """Approves entries with all the cash and exits whole; remembers what it was shown."""

    seen: list[tuple[OrderIntent, AccountSnapshot]]
    refuse_every: int = 0

    def check(self, intent: OrderIntent, account: AccountSnapshot) -> RiskDecision:
        self.seen.append((intent, account))
        if self.refuse_every and len(self.seen) % self.refuse_every == 0:
            return RiskDecision.reject(f"refused #{len(self.seen)}")
        if intent.side is OrderSide.SELL:
            return RiskDecision(True, intent.amount or 0.0)
        return RiskDecision(True, account.cash / (account.prices[SYMBOL] * 1.5))


def test_risk_check_sees_the_account_at_each_decision() -> None:
    candles = hourly(24 * 12, seed=2)
    risk = RecordingRisk([])
    result = run_backtest(candles, SmaCrossover({"fast": 3, "slow": 8}), risk=risk,
                          lookahead_cuts=0)
    assert len(risk.seen) == len(result.fills) > 20
    start = result.warmup_bars
    entries = [t.entry_time for t in result.trades]
    for intent, account in risk.seen:
        bar = int(np.searchsorted(candles.open_time, intent.created_at - Timeframe.H1.ms))
        equity = result.equity[bar - start]
        assert account.time_ms == intent.created_at == candles.open_time[bar] + Timeframe.H1.ms
        assert account.equity == pytest.approx(equity)
        assert account.peak_equity == pytest.approx(result.equity[:bar - start + 1].max())
        assert account.prices == {SYMBOL: candles.close[bar]}
        day = account.time_ms - account.time_ms % DAY_MS
        midnight_bar = int(np.searchsorted(candles.open_time, day - Timeframe.H1.ms))
        day_equity = (10_000.0 if midnight_bar < start
                      else result.equity[midnight_bar - start])
        assert account.day_start_equity == pytest.approx(day_equity)
        assert account.trades_today == sum(day <= t < account.time_ms for t in entries)
        holding = intent.side is OrderSide.SELL
        assert account.open_trades == int(holding)
        assert bool(account.exposure) == holding
        if holding:
            assert account.exposure[SYMBOL] == pytest.approx(equity - account.cash)
    # Entries buy what the check approved (a third less than the cash allows).
    first_entry = result.fills[0]
    assert first_entry.amount == pytest.approx(risk.seen[0][1].cash
                                               / (risk.seen[0][1].prices[SYMBOL] * 1.5))


def test_refused_intents_are_recorded_and_not_traded() -> None:
    candles = hourly(600, seed=8)
    risk = RecordingRisk([], refuse_every=3)
    result = run_backtest(candles, SmaCrossover({"fast": 3, "slow": 8}), risk=risk,
                          lookahead_cuts=0)
    refused = [i for i, _ in risk.seen[2::3]]
    assert [r.intent for r in result.rejections] == refused
    assert [r.reason for r in result.rejections][:2] == ["refused #3", "refused #6"]
    assert len(result.fills) == len(risk.seen) - len(refused)
    assert result.to_json()["rejected_intents"][0]["reason"] == "refused #3"


def test_the_risk_manager_limits_trades_per_day() -> None:
    from terminal.core.risk import RiskLimits, RiskManager

    candles = hourly(24 * 20, seed=6)
    strategy = SmaCrossover({"fast": 2, "slow": 5})
    free = run_backtest(candles, strategy, lookahead_cuts=0)
    limited = run_backtest(candles, strategy, lookahead_cuts=0,
                           risk=RiskManager(RiskLimits(max_trades_per_day=1), fee_rate=FEE))
    per_day = Counter(t.entry_time // DAY_MS for t in limited.trades)
    assert max(Counter(t.entry_time // DAY_MS for t in free.trades).values()) > 1
    assert max(per_day.values()) == 1
    assert limited.rejections
    assert all("daily trade limit reached" in r.reason for r in limited.rejections)


# --- gaps -----------------------------------------------------------------------------------

def test_missing_bars_are_filled_flat_at_the_previous_close() -> None:
    full = make_series(10, Timeframe.H1)
    holed = CandleSeries.from_records(np.delete(full.to_records(), [3, 4, 7]), Timeframe.H1)
    filled, added = fill_missing_bars(holed)
    assert added == 3 and np.array_equal(filled.open_time, full.open_time)
    for bar in (3, 4, 7):
        previous = full.close[2] if bar < 7 else full.close[6]
        assert (filled.open[bar], filled.high[bar], filled.low[bar], filled.close[bar],
                filled.volume[bar]) == (previous, previous, previous, previous, 0.0)
    kept = [0, 1, 2, 5, 6, 8, 9]
    assert np.array_equal(filled.to_records()[kept], full.to_records()[kept])
    assert fill_missing_bars(full) == (full, 0)

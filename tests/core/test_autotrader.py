"""Automated trading: driven by bus events, it trades exactly like the backtest."""

from __future__ import annotations

import asyncio

import pytest

from terminal.core.autotrader import AutoTrader
from terminal.core.backtest import run_backtest
from terminal.core.bus import EventBus
from terminal.core.clock import ManualClock
from terminal.core.errors import InvalidArgument
from terminal.core.events import CandleClosed, ErrorRaised, PredictionMade
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.model import OrderSide, Prediction, Timeframe
from terminal.core.orders import OrderManager
from terminal.core.risk import RiskLimits, RiskManager
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.core.strategies import SmaCrossover
from terminal.exchange.paper import PaperVenue
from tests.core.test_backtest import hourly
from tests.exchange.paper_helpers import SYMBOL, paper_setup

LIMITS = RiskLimits(max_position_quote=1_000)
MODEL = FillModel(FeeSchedule(maker=0.001, taker=0.001))


class Market:
    """Candles closing one by one: what the venue has seen and the store holds so far."""

    def __init__(self, candles: CandleSeries, venue: PaperVenue, manager: OrderManager,
                 bus: EventBus, clock: ManualClock) -> None:
        self.candles, self.venue, self.manager, self.bus, self.clock = (
            candles, venue, manager, bus, clock)
        self.closed = 0
        self.key = SeriesKey(venue.id, SYMBOL, candles.timeframe)

    def history(self, key: SeriesKey, bars: int) -> CandleSeries:
        assert key == self.key
        return self.candles.take(max(0, self.closed - bars), self.closed)

    async def close_next(self) -> None:
        bar = self.closed
        self.clock.set(int(self.candles.open_time[bar]) + self.candles.timeframe.ms)
        self.venue.observe(SYMBOL, self.candles[bar], closed=True)
        await self.manager.sync()
        self.closed += 1
        self.bus.publish(CandleClosed(self.key, self.candles[bar]))


def trader_for(market: Market, strategy: str, params: dict | None = None) -> AutoTrader:
    return AutoTrader(market.manager, market.bus, market.history, venue=market.venue.id,
                      timeframe=market.candles.timeframe, pairs=[SYMBOL], strategy=strategy,
                      params=params)


def setup(store: Store, candles: CandleSeries) -> Market:
    clock = ManualClock(int(candles.open_time[0]))
    venue, manager, bus = paper_setup(store, fill_model=MODEL, limits=LIMITS, clock=clock)
    return Market(candles, venue, manager, bus, clock)


def test_automated_trading_fills_like_the_backtest(store: Store) -> None:
    candles = hourly(300, seed=4)
    params = {"fast": 4, "slow": 9}

    async def scenario() -> list[tuple]:
        market = setup(store, candles)
        await market.manager.start()
        trader = trader_for(market, "sma_crossover", params)
        trader.start()
        trader.enabled = True
        for _ in range(len(candles) - 1):
            await market.close_next()
            await trader.idle()
        trader.enabled = False  # the last candle's signal has no next candle, as in a backtest
        await market.close_next()
        await trader.stop()
        return [(f.timestamp, f.side, float(f.price), float(f.amount), float(f.fee))
                for f in store.orders.fills(venue=market.venue.id)]

    paper = asyncio.run(scenario())
    result = run_backtest(candles, SmaCrossover(params), symbol=SYMBOL, cash=10_000.0,
                          fill_model=MODEL, risk=RiskManager(LIMITS, fee_rate=0.001),
                          lookahead_cuts=0)
    assert len(result.fills) > 10
    assert paper == [(f.time_ms, f.side, f.price, f.amount, f.fee) for f in result.fills]
    trades = store.orders.trades()
    assert trades and all(t.strategy == "sma_crossover" for t in trades)


def test_nothing_is_traded_until_switched_on(store: Store) -> None:
    async def scenario() -> int:
        market = setup(store, hourly(120, seed=4))
        await market.manager.start()
        trader = trader_for(market, "sma_crossover", {"fast": 4, "slow": 9})
        trader.start()
        for _ in range(119):
            await market.close_next()
        await trader.idle()
        await trader.stop()
        return len(store.orders.orders())

    assert asyncio.run(scenario()) == 0


def forecast(market: Market, expected: float, *, usable: bool, model_id: int = 1
             ) -> PredictionMade:
    made_from = int(market.candles.open_time[market.closed - 1])
    prediction = Prediction(market.venue.id, SYMBOL, Timeframe.H1, made_from, 1, expected,
                            expected - 0.01, expected, expected + 0.01, 0.6, str(model_id),
                            made_from)
    return PredictionMade(market.key, (prediction,), "ridge", ("no skill",), usable,
                          model_id, made_from)


def test_the_model_strategy_trades_forecasts_with_skill_only(store: Store) -> None:
    errors: list[ErrorRaised] = []

    async def scenario() -> list:
        market = setup(store, hourly(60, seed=4))
        market.bus.subscribe(ErrorRaised, errors.append)
        await market.manager.start()
        trader = trader_for(market, "model_signal")
        trader.start()
        trader.enabled = True
        for _ in range(50):
            await market.close_next()
        # A confident forecast from a model without skill: reported once, never traded.
        market.bus.publish(forecast(market, 0.05, usable=False))
        market.bus.publish(forecast(market, 0.05, usable=False))
        await trader.idle()
        assert store.orders.orders() == []
        # The same forecast from a model with skill (or overridden) is traded at once.
        market.bus.publish(forecast(market, 0.05, usable=True, model_id=2))
        await trader.idle()
        await trader.stop()
        return store.orders.orders()

    (order,) = asyncio.run(scenario())
    assert order.order.side is OrderSide.BUY and order.strategy == "model_signal"
    assert len(errors) == 1 and "no out-of-sample skill" in errors[0].message


def test_a_stale_forecast_is_not_traded_on_a_newer_candle(store: Store) -> None:
    async def scenario() -> int:
        market = setup(store, hourly(60, seed=4))
        await market.manager.start()
        trader = trader_for(market, "model_signal")
        trader.start()
        trader.enabled = True
        for _ in range(50):
            await market.close_next()
        late = forecast(market, 0.05, usable=True)
        await market.close_next()
        market.bus.publish(late)
        await trader.idle()
        await trader.stop()
        return len(store.orders.orders())

    assert asyncio.run(scenario()) == 0


def test_bad_configuration_is_refused_at_once(store: Store) -> None:
    market = setup(store, hourly(10))
    with pytest.raises(InvalidArgument, match="unknown strategy"):
        trader_for(market, "moon_shot")
    with pytest.raises(InvalidArgument, match="fast must be between"):
        trader_for(market, "sma_crossover", {"fast": 1})
    with pytest.raises(InvalidArgument, match="at least one pair"):
        AutoTrader(market.manager, market.bus, market.history, venue="paper",
                   timeframe=Timeframe.H1, pairs=[], strategy="sma_crossover")

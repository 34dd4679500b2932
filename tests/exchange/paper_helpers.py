"""A fixture market for paper-venue tests: fixed candles, one instrument, no clock."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from decimal import Decimal

from terminal.core.bus import EventBus
from terminal.core.clock import ManualClock
from terminal.core.fills import FillModel
from terminal.core.model import Instrument, Timeframe, VenueKind
from terminal.core.orders import OrderManager
from terminal.core.ports import CandleTick
from terminal.core.risk import RiskLimits, RiskManager
from terminal.core.series import CandleSeries
from terminal.core.storage import Store
from terminal.core.storage.orders import TradingMode
from terminal.exchange.paper import PaperVenue

SYMBOL = "BTC/USDT"
# Precision fine enough that rounding never changes a float-derived price or amount, so a
# comparison with the backtester (which works in floats) sees only the fill rules.
FINE = Decimal("1e-20")


def instrument(tick: Decimal = FINE, lot: Decimal = FINE, *, min_amount: Decimal = Decimal(0),
               min_notional: Decimal = Decimal(0)) -> Instrument:
    return Instrument("fixture", SYMBOL, "BTC", "USDT", tick, lot, min_amount, min_notional)


class FixtureMarket:
    """A market-data venue over given candles; ``fetch_candles`` serves closed ones."""

    def __init__(self, candles: CandleSeries | None = None,
                 instruments: Sequence[Instrument] = ()) -> None:
        self.candles = candles
        self.instruments = tuple(instruments) or (instrument(),)

    @property
    def id(self) -> str:
        return "fixture"

    @property
    def display_name(self) -> str:
        return "Fixture market"

    @property
    def kind(self) -> VenueKind:
        return VenueKind.SIMULATED

    async def load_instruments(self) -> Sequence[Instrument]:
        return self.instruments

    async def fetch_candles(self, symbol: str, timeframe: Timeframe, start_ms: int,
                            end_ms: int) -> CandleSeries:
        assert self.candles is not None
        times = self.candles.open_time
        first = int((times < start_ms).sum())
        last = int((times + timeframe.ms <= end_ms).sum())
        return self.candles.take(first, max(first, last))

    def stream_candles(self, symbols: Sequence[str],
                       timeframe: Timeframe) -> AsyncGenerator[CandleTick, None]:
        raise NotImplementedError("the fixture market has no live stream")

    async def close(self) -> None:
        pass


def paper_setup(store: Store, *, market: FixtureMarket | None = None,
                fill_model: FillModel | None = None, limits: RiskLimits | None = None,
                cash: Decimal = Decimal(10_000), clock: ManualClock | None = None,
                fee_rate: float = 0.001) -> tuple[PaperVenue, OrderManager, EventBus]:
    clock = clock or ManualClock(1_700_000_000_000)
    venue = PaperVenue(store, market or FixtureMarket(), fill_model=fill_model, clock=clock,
                       starting_cash=cash)
    bus = EventBus()
    manager = OrderManager(venue, store, bus, RiskManager(limits or RiskLimits(),
                                                          fee_rate=fee_rate),
                           mode=TradingMode.PAPER, clock=clock)
    return venue, manager, bus

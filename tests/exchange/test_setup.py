"""Which market and account the window opens on, from the settings (no network is used:
building a ccxt venue makes no request)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from terminal.core.fills import FillModel
from terminal.core.model import Fill, Order, OrderSide, OrderStatus, OrderType, VenueKind
from terminal.core.secrets import KeyStore
from terminal.core.settings import (
    MarketSettings,
    Settings,
    SimulatedMarketSettings,
    TradingSettings,
)
from terminal.core.storage import Store
from terminal.core.storage.orders import TradingMode
from terminal.exchange.paper import PaperVenue, paper_account_id
from terminal.exchange.setup import open_venues
from tests.exchange.emulator import API_KEY, SECRET

KEYS = KeyStore(from_env=True, environ={"TERMINAL_KRAKEN_API_KEY": API_KEY,
                                         "TERMINAL_KRAKEN_SECRET": SECRET})
NO_KEYS = KeyStore(from_env=True, environ={})


def on(source: str, *, live: bool = False, sandbox: bool = False,
       watchlist: tuple[str, ...] = ()) -> Settings:
    return Settings(market=MarketSettings(source=source, live_trading=live, sandbox=sandbox,
                                          watchlist=watchlist),
                    trading=TradingSettings(pairs=("BTC/USD", "ETH/USD")))


def test_the_default_is_the_simulated_market_with_its_paper_account(store: Store) -> None:
    venues = open_venues(Settings(simulated=SimulatedMarketSettings(speed=60, history_days=3)),
                         store, keys=NO_KEYS, fill_model=FillModel())
    assert venues.kind is VenueKind.SIMULATED and venues.mode is TradingMode.PAPER
    assert venues.market.id == "simulated" and venues.clock is venues.market
    assert isinstance(venues.account, PaperVenue) and venues.account.id == "paper"
    assert (venues.pairs, venues.history_days, venues.notice) == (None, 3, None)


def test_an_exchange_without_live_trading_is_paper_on_its_prices(store: Store) -> None:
    venues = open_venues(on("kraken", watchlist=("SOL/USD", "BTC/USD")), store, keys=KEYS,
                         fill_model=FillModel())
    assert venues.kind is VenueKind.PAPER and venues.mode is TradingMode.PAPER
    assert (venues.market.id, venues.account.id) == ("kraken", "paper-kraken")
    assert venues.paper is venues.account
    assert venues.pairs == ("BTC/USD", "ETH/USD", "SOL/USD")
    assert venues.history_days == MarketSettings().history_days


def test_live_trading_with_a_key_sends_orders_to_the_exchange_itself(store: Store) -> None:
    venues = open_venues(on("kraken", live=True), store, keys=KEYS, fill_model=FillModel())
    assert venues.kind is VenueKind.LIVE and venues.mode is TradingMode.LIVE
    assert venues.account is venues.market and venues.paper is None
    assert venues.notice is None


def test_the_testnet_keeps_its_own_data_and_paper_account(store: Store) -> None:
    venues = open_venues(on("binance", sandbox=True), store, keys=NO_KEYS,
                         fill_model=FillModel())
    assert (venues.market.id, venues.account.id) == ("binance-testnet",
                                                     "paper-binance-testnet")


@pytest.mark.parametrize(("settings", "kind", "said"), [
    (on("kraken", live=True), VenueKind.PAPER, "no API key is stored for kraken"),
    (on("nosuchexchange"), VenueKind.SIMULATED, "unknown exchange 'nosuchexchange'"),
    (on("nosuchexchange", live=True), VenueKind.SIMULATED, "unknown exchange"),
    (on("bitstamp", sandbox=True), VenueKind.SIMULATED, "has no sandbox/testnet"),
])
def test_what_cannot_be_had_opens_a_set_up_with_less_real_money_and_says_why(
        store: Store, settings: Settings, kind: VenueKind, said: str) -> None:
    venues = open_venues(settings, store, keys=NO_KEYS, fill_model=FillModel())
    assert venues.kind is kind
    assert venues.notice is not None and said in venues.notice


def test_pairs_the_account_still_holds_or_has_orders_in_stay_followed(store: Store) -> None:
    account = paper_account_id("kraken")
    bought = Order("trm-1", account, "XRP/USD", OrderSide.BUY, OrderType.MARKET, Decimal(10),
                   1, status=OrderStatus.FILLED, filled=Decimal(10),
                   average_price=Decimal("0.5"))
    store.orders.add(bought, mode=TradingMode.PAPER, strategy="manual", reason="", now_ms=1)
    store.orders.record(bought, [Fill("f1", "trm-1", account, "XRP/USD", OrderSide.BUY,
                                      Decimal("0.5"), Decimal(10), Decimal("0.005"), "USD", 2)],
                        now_ms=2)
    resting = Order("trm-2", account, "ADA/USD", OrderSide.BUY, OrderType.LIMIT, Decimal(5), 3,
                    price=Decimal("0.3"), status=OrderStatus.OPEN)
    store.orders.add(resting, mode=TradingMode.PAPER, strategy="manual", reason="", now_ms=3)
    venues = open_venues(on("kraken"), store, keys=NO_KEYS, fill_model=FillModel())
    assert venues.pairs == ("BTC/USD", "ETH/USD", "ADA/USD", "XRP/USD")

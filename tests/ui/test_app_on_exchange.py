"""The window on an exchange: paper trading on its prices, live trading with a key, and the
safer set-up it falls back to. The exchange is the local emulator; nothing leaves 127.0.0.1.

The wall clock is held still for the paper test (the exchange's time is the wall clock) and
the emulator's candles end with the minute forming at that moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest

from terminal import app as app_module
from terminal.app import Terminal, build_terminal
from terminal.core.events import ErrorRaised
from terminal.core.intents import OrderIntent
from terminal.core.model import OrderSide, OrderStatus, OrderType, Timeframe, VenueKind
from terminal.core.secrets import KeyStore
from terminal.core.series import SeriesKey
from terminal.core.settings import MarketSettings, Settings, SettingsFile, TradingSettings
from terminal.core.storage import Store
from terminal.core.storage.orders import TradingMode
from terminal.exchange import ccxt_venue
from tests.exchange.conftest import fast_retry
from tests.exchange.emulator import API_KEY, SECRET, ExchangeEmulator
from tests.exchange.test_paper_cli_exchange import BARS, MINUTE, cents
from tests.factories import Moment, make_series
from tests.ui.test_app import run_on_qt_loop

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("no_internet")]
M1 = Timeframe.M1.ms
T = TypeVar("T")
KEYS = {"TERMINAL_BINANCE_API_KEY": API_KEY, "TERMINAL_BINANCE_SECRET": SECRET}


def on_binance(*, live: bool = False, source: str = "binance") -> Settings:
    return Settings(market=MarketSettings(source=source, live_trading=live, history_days=1,
                                          watchlist=("ETH/USDT", "DOGE/USDT")),
                    trading=TradingSettings(pairs=("BTC/USDT",)))


def lay_out_market(emulator: ExchangeEmulator) -> None:
    """Thirty minutes of BTC and ETH up to the minute forming now."""
    emulator.set_candles("BTCUSDT", "1m", cents(BARS, MINUTE - (BARS - 1) * M1))
    emulator.set_candles("ETHUSDT", "1m", cents(BARS, MINUTE - (BARS - 1) * M1))


def build(data_dir: Path, emulator: ExchangeEmulator, settings: Settings,
          environ: dict[str, str] | None = None) -> Terminal:
    return build_terminal(str(data_dir), None, preferences=settings,
                          keys=KeyStore(from_env=True, environ=environ or {}),
                          exchange_api_url=emulator.base_url)


def run_terminal(qapp, terminal: Terminal, scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` on a Qt event loop; the terminal then shuts down and its window
    closes, whatever happened."""
    async def guarded() -> T:
        terminal.bus.bind_loop(asyncio.get_running_loop())
        try:
            return await scenario()
        finally:
            await terminal.shutdown()

    try:
        return run_on_qt_loop(qapp, guarded(), timeout_s=90)
    finally:
        terminal.window.close()


async def wait_for(condition, what: str, timeout_s: float = 20.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_window_paper_trades_on_an_exchanges_prices_and_sends_it_nothing(
        qapp, data_dir: Path, emulator: ExchangeEmulator, moment: Moment) -> None:
    lay_out_market(emulator)
    terminal = build(data_dir, emulator, on_binance(), environ=KEYS)
    window = terminal.window

    async def scenario() -> OrderStatus:
        await terminal.start_service()
        placed = await terminal.orders.submit(OrderIntent(
            "BTC/USDT", OrderSide.BUY, moment.now, amount=0.01))
        assert placed.order is not None
        record_id = placed.order.client_order_id

        def status() -> OrderStatus:
            record = terminal.store.orders.get(record_id)
            return record.order.status if record else OrderStatus.PENDING

        await wait_for(lambda: status().is_final, "the paper order to fill")
        return status()

    assert run_terminal(qapp, terminal, scenario) is OrderStatus.FILLED
    assert terminal.venues.kind is VenueKind.PAPER
    assert terminal.orders.venue.id == "paper-binance"  # the account `paper --exchange` uses
    assert terminal.service.symbols == ["BTC/USDT", "ETH/USDT"]  # DOGE is not listed
    assert "PAPER — Binance" in window.status_texts()
    fills = terminal.store.orders.fills(venue="paper-binance")
    assert [f.amount for f in fills] == [Decimal("0.01")]
    # Prices only: not one order request reached the exchange.
    assert emulator.all_orders() == []
    assert not [r for r in emulator.requests if "/order" in r]


def test_live_trading_sends_orders_to_the_exchange_and_follows_their_fills(
        qapp, data_dir: Path, emulator: ExchangeEmulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "LIVE_SYNC_INTERVAL_S", 0.1)
    lay_out_market(emulator)
    emulator.deposit("USDT", "10000")
    terminal = build(data_dir, emulator, on_binance(live=True), environ=KEYS)
    window = terminal.window
    price = float(emulator.prices["BTCUSDT"])

    async def scenario() -> tuple[OrderStatus, OrderStatus]:
        await terminal.start_service()
        placed = await terminal.orders.submit(OrderIntent(
            "BTC/USDT", OrderSide.BUY, terminal.venues.clock.now_ms(),
            type=OrderType.LIMIT, amount=0.01, price=round(price * 0.99, 2)))
        assert placed.order is not None
        order_id = placed.order.client_order_id

        def status() -> OrderStatus:
            record = terminal.store.orders.get(order_id)
            return record.order.status if record else OrderStatus.PENDING

        resting = status()
        emulator.set_price("BTCUSDT", f"{price * 0.98:.2f}")  # the exchange fills it
        await wait_for(lambda: status() is OrderStatus.FILLED,
                       "the live order's fill to be picked up")
        return resting, status()

    resting, filled = run_terminal(qapp, terminal, scenario)
    assert (resting, filled) == (OrderStatus.OPEN, OrderStatus.FILLED)
    assert terminal.venues.kind is VenueKind.LIVE
    assert terminal.orders.mode is TradingMode.LIVE
    assert "LIVE — Binance" in window.status_texts()
    assert window.trading_desk is not None and window.trading_desk.live
    [sent] = emulator.all_orders()
    assert sent.status == "FILLED"
    [record] = terminal.store.orders.orders(venue="binance")
    assert record.mode is TradingMode.LIVE


def test_live_trading_without_a_key_opens_on_paper_and_says_why(
        qapp, data_dir: Path, emulator: ExchangeEmulator) -> None:
    terminal = build(data_dir, emulator, on_binance(live=True), environ={})
    try:
        assert terminal.venues.kind is VenueKind.PAPER
        assert terminal.orders.mode is TradingMode.PAPER
        assert terminal.orders.venue.id == "paper-binance"
        notes = [n.text for n in terminal.window.notification_center.notifications]
        assert any("no API key is stored for binance" in n and "Trading on paper" in n
                   for n in notes)
    finally:
        terminal.window.close()
        terminal.store.close()


def test_an_unknown_market_source_opens_the_simulated_market_and_says_why(
        qapp, data_dir: Path, emulator: ExchangeEmulator) -> None:
    terminal = build(data_dir, emulator, on_binance(source="nosuchexchange"))
    try:
        assert terminal.venues.kind is VenueKind.SIMULATED
        assert terminal.venue.id == "simulated"
        assert "unknown exchange 'nosuchexchange'" in terminal.window.status_message
    finally:
        terminal.window.close()
        terminal.store.close()


def test_a_live_order_from_the_ticket_reaches_the_exchange_only_after_confirmation(
        qapp, data_dir: Path, emulator: ExchangeEmulator, moment: Moment) -> None:
    lay_out_market(emulator)
    emulator.deposit("USDT", "10000")
    terminal = build(data_dir, emulator, on_binance(live=True), environ=KEYS)
    window = terminal.window
    window.show()
    ticket, desk = window.order_ticket, window.trading_desk
    assert desk is not None

    async def scenario() -> None:
        await terminal.start_service()
        await wait_for(lambda: desk.marks.get(ticket.symbol), "a live price")
        ticket.set_share(25)  # a quarter of the exchange's USDT balance
        await wait_for(lambda: ticket.verdict_text.startswith("Approved"), "approval")
        ticket.submit()
        confirm = desk.confirmation
        assert confirm is not None and confirm.isVisible()
        assert "real money" in confirm.text()
        await asyncio.sleep(0.3)
        assert emulator.all_orders() == []  # nothing is sent before the user confirms
        confirm.accept()
        await wait_for(lambda: emulator.all_orders(), "the order on the exchange")
        await wait_for(lambda: terminal.orders.positions(), "the position")
        [position] = terminal.orders.positions()
        assert position.symbol == "BTC/USDT" and position.amount > 0
        # Closing the position from the positions panel asks too.
        desk.close_position("BTC/USDT")
        closing = desk.confirmation
        assert closing is not None and closing is not confirm and closing.isVisible()
        assert "SELL the whole BTC/USDT position" in closing.text()
        await asyncio.sleep(0.3)
        assert len(emulator.all_orders()) == 1
        closing.accept()
        # Binance took the buy's fee in BTC: what is left is dust below the lot size,
        # shown without a Close button.
        await wait_for(lambda: terminal.orders.is_dust(terminal.orders.position("BTC/USDT")),
                       "the position closed")
        desk.refresh()
        await wait_for(lambda: not desk.busy and not desk.refresh_pending, "the panels")
        table = window.positions_panel.positions_table
        assert window.positions_panel.action_button(table, 0).text() == "Dust"

    run_terminal(qapp, terminal, scenario)
    bought, sold = emulator.all_orders()
    assert (bought.side, bought.status, sold.side, sold.status) == (
        "BUY", "FILLED", "SELL", "FILLED")


def test_an_exchange_that_cannot_be_reached_at_start_is_tried_again_until_it_answers(
        qapp, data_dir: Path, emulator: ExchangeEmulator, moment: Moment,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ccxt_venue, "RetryPolicy", lambda: fast_retry(attempts=2))
    monkeypatch.setattr(app_module, "_START_RETRY_DELAYS_S", (0.05,))
    lay_out_market(emulator)
    # Each start-up try lets the venue make two requests: six failures are three tries.
    emulator.inject("unavailable", "GET /api/v3/exchangeInfo", calls=(1, 2, 3, 4, 5, 6))
    terminal = build(data_dir, emulator, on_binance())
    errors: list[str] = []
    terminal.bus.subscribe(ErrorRaised, lambda e: errors.append(e.message))

    # Saved while the exchange is still being reached: applied once trading has started.
    saved = on_binance().model_copy(update={
        "market": MarketSettings(source="binance", history_days=1),
        "trading": TradingSettings(pairs=("BTC/USDT",), automated_trading=True)})
    enabled: list[bool] = []

    async def scenario() -> None:
        starting = asyncio.create_task(terminal.start_service())
        await wait_for(lambda: errors, "the first failed try")
        terminal.window.preferences_saved.emit(saved)
        await starting
        enabled.append(terminal.auto_trader is not None and terminal.auto_trader.enabled)

    run_terminal(qapp, terminal, scenario)
    retries = [e for e in errors if e.startswith("cannot load market data")]
    assert len(retries) == 3
    assert all("trying again in 0 s" in e for e in retries)
    assert terminal.service.ready and terminal.orders.venue.id == "paper-binance"
    assert terminal.service.symbols == ["BTC/USDT"]  # the watchlist saved meanwhile
    assert enabled == [True]


def test_pairs_added_to_the_watchlist_are_saved_downloaded_and_streamed(
        qapp, data_dir: Path, tmp_path: Path, emulator: ExchangeEmulator,
        moment: Moment) -> None:
    lay_out_market(emulator)
    settings_file = SettingsFile(tmp_path / "config")
    terminal = build_terminal(
        str(data_dir), None, preferences=on_binance().model_copy(update={
            "market": MarketSettings(source="binance", history_days=1,
                                     watchlist=("DOGE/USDT",))}),
        settings_file=settings_file, keys=KeyStore(from_env=True, environ={}),
        exchange_api_url=emulator.base_url)
    window = terminal.window
    watchlist = window.watchlist

    async def scenario() -> None:
        await terminal.start_service()
        assert watchlist.model.symbols == ["BTC/USDT"]
        assert watchlist.entry.isVisibleTo(watchlist)  # pairs are the user's choice here
        window.watch_pair("XRP/USDT")
        assert watchlist.entry_error == "XRP/USDT is not listed on Binance (spot)"
        window.watch_pair("DOGE/USDT")  # in the settings, though not listed
        assert watchlist.entry_error == "DOGE/USDT is in the watchlist already"
        window.watch_pair("BTC/USDT")
        assert watchlist.entry_error == "BTC/USDT is in the watchlist already"
        watchlist.entry.setText("eth/usdt")
        watchlist.entry.returnPressed.emit()
        await wait_for(lambda: watchlist.model.symbols == ["BTC/USDT", "ETH/USDT"],
                       "ETH/USDT in the watchlist")
        assert watchlist.entry.text() == "" and watchlist.entry_error == ""
        window.unwatch_pair("BTC/USDT")
        assert watchlist.entry_error == "BTC/USDT is traded: remove it in Preferences → Trading"
        window.select(symbol="ETH/USDT")
        window.unwatch_pair("ETH/USDT")
        await wait_for(lambda: watchlist.model.symbols == ["BTC/USDT"],
                       "ETH/USDT off the watchlist")
        # The chart moved off the pair that is no longer followed.
        assert window.symbol == "BTC/USDT"
        assert window.series_key is not None and window.series_key.symbol == "BTC/USDT"

    run_terminal(qapp, terminal, scenario)
    eth = terminal.service.key("ETH/USDT", Timeframe.M1)
    with Store.open(data_dir) as store:
        assert len(store.candles.load(eth)) == BARS - 1  # its closed minutes were downloaded
    assert settings_file.load().market.watchlist == ("DOGE/USDT",)
    assert settings_file.problem is None


def test_a_file_of_the_exchange_leads_up_to_the_live_chart_and_other_pairs_stay_listed(
        qapp, data_dir: Path, emulator: ExchangeEmulator, moment: Moment) -> None:
    lay_out_market(emulator)
    hours = make_series(100, Timeframe.H1, start_ms=MINUTE - 200 * Timeframe.H1.ms,
                        price=30_000)
    with Store.open(data_dir) as store:  # what importing Binance's CSV files stores
        store.candles.upsert(SeriesKey("binance", "BTC/USDT", Timeframe.H1), hours)
        store.candles.upsert(SeriesKey("binance", "SOL/USDT", Timeframe.H1), hours)
    terminal = build(data_dir, emulator, on_binance())
    window = terminal.window

    async def scenario() -> None:
        await terminal.start_service()
        window.select(symbol="BTC/USDT", timeframe=Timeframe.H1)
        await wait_for(lambda: window.chart.bar_count, "the hourly chart")

    run_terminal(qapp, terminal, scenario)
    # The imported hours, then the hour the live minutes built (the forming one is live).
    assert window.chart.bar_count >= len(hours)
    assert window.static_series is None
    assert [(k.venue, k.symbol) for k in window.imported_series] == [("binance", "SOL/USDT")]

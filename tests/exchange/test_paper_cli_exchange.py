"""``paper --exchange``: paper trading on an exchange's public prices, against the emulator.

The wall clock is held still (the exchange's time is the wall clock) and the emulator's
candles are laid out around it, so the minute forming "now" is the emulator's last candle.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from terminal.cli import main
from terminal.core.model import Timeframe, to_decimal
from terminal.core.series import CandleSeries
from terminal.core.storage import Store
from terminal.exchange import ccxt_venue
from tests.exchange.conftest import fast_retry
from tests.exchange.emulator import DEFAULT_MARKETS, ExchangeEmulator, MarketSpec
from tests.factories import FROZEN_NOW, Moment, make_series

M1 = Timeframe.M1.ms
NOW = FROZEN_NOW
MINUTE = NOW - NOW % M1
CREATE = "POST /api/v3/order"
BARS = 30



def cents(count: int, start_ms: int, *, dip_at: int | None = None,
          dip_to: float = 0.0) -> CandleSeries:
    """A BTC/USDT-like series priced in whole cents, as the exchange's tick is; the low of
    candle ``dip_at`` reaches down to ``dip_to``."""
    series = make_series(count, start_ms=start_ms, price=30_000)
    low = np.round(series.low, 2)
    if dip_at is not None:
        low[dip_at] = min(low[dip_at], dip_to)
    return CandleSeries(series.timeframe, series.open_time, np.round(series.open, 2),
                        np.round(series.high, 2), low, np.round(series.close, 2),
                        series.volume)


@pytest.fixture
def market(emulator: ExchangeEmulator) -> CandleSeries:
    """Thirty minutes of BTC/USDT up to the one forming now; the ticker agrees with it."""
    series = cents(BARS, MINUTE - (BARS - 1) * M1)
    emulator.set_candles("BTCUSDT", "1m", series)
    return series


def on_exchange(emulator: ExchangeEmulator, *argv: str) -> list[str]:
    return ["--exchange", "binance", "--api-url", emulator.base_url, *argv]


def paper(data_dir: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["--data-dir", str(data_dir), "paper", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def failing(data_dir: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["--data-dir", str(data_dir), "paper", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured.err
    return errors[0]


def usdt(report: dict) -> Decimal:
    return Decimal(next(b["total"] for b in report["balances"] if b["currency"] == "USDT"))


def assert_no_order_reached_the_exchange(emulator: ExchangeEmulator) -> None:
    assert emulator.all_orders() == [] and emulator.calls[CREATE] == 0
    signed = [r for r in emulator.requests
              if any(word in r for word in ("/order", "/account", "/myTrades", "/openOrders"))]
    assert signed == []


def test_a_market_buy_fills_at_the_exchanges_current_price(
        data_dir: Path, moment: Moment, market: CandleSeries, emulator: ExchangeEmulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    report = paper(data_dir, capsys, *on_exchange(emulator, "buy", "BTC/USDT", "0.01"))
    price = to_decimal(float(market.close[-1]))
    assert report["order"]["status"] == "filled"
    (fill,) = report["fills"]
    assert Decimal(fill["price"]) == price and fill["time"] == NOW
    balance = paper(data_dir, capsys, *on_exchange(emulator, "balance"))
    assert (balance["venue"], balance["market"]) == ("paper-binance", "binance")
    assert usdt(balance) == (Decimal(10_000) - price * Decimal("0.01")
                             - Decimal(fill["fee"])).quantize(Decimal("1e-8"))
    (position,) = balance["positions"]
    assert position["amount"] == "0.01" and Decimal(position["mark_price"]) == price
    assert_no_order_reached_the_exchange(emulator)
    # The text report names the account and its price source.
    assert main(["--data-dir", str(data_dir), "paper", *on_exchange(emulator, "balance")]) == 0
    assert "Paper account paper-binance on Binance prices" in capsys.readouterr().out


def test_without_a_candle_for_this_minute_the_last_price_is_the_price(
        data_dir: Path, moment: Moment, emulator: ExchangeEmulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Candles up to the previous minute only; the ticker's last trade is the price now.
    emulator.set_candles("BTCUSDT", "1m", cents(BARS, MINUTE - BARS * M1))
    emulator.set_price("BTCUSDT", "30123.45")
    report = paper(data_dir, capsys, *on_exchange(emulator, "buy", "BTC/USDT", "0.01"))
    (fill,) = report["fills"]
    assert Decimal(fill["price"]) == Decimal("30123.45")
    assert_no_order_reached_the_exchange(emulator)


def test_a_resting_limit_fills_on_a_later_call_after_the_exchanges_candles_move(
        data_dir: Path, moment: Moment, market: CandleSeries, emulator: ExchangeEmulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    price = float(market.close[-1])
    limit = Decimal(round(price * 0.98, 2)).quantize(Decimal("0.01"))
    placed = paper(data_dir, capsys, *on_exchange(emulator, "buy", "BTC/USDT", "0.01",
                                                  "--limit", str(limit)))
    assert placed["order"]["status"] == "open" and placed["fills"] == []
    assert paper(data_dir, capsys, *on_exchange(emulator, "orders"))["orders"][0]["id"] == \
        placed["order"]["id"]
    # Three minutes later: the minute after the order dipped through the limit and closed.
    moment.now = NOW + 3 * M1
    emulator.set_candles("BTCUSDT", "1m", cents(BARS + 3, MINUTE - (BARS - 1) * M1,
                                                dip_at=BARS, dip_to=float(limit) - 50))
    orders = paper(data_dir, capsys, *on_exchange(emulator, "orders", "--all"))
    (order,) = orders["orders"]
    assert order["status"] == "filled" and Decimal(order["average_price"]) == limit
    balance = paper(data_dir, capsys, *on_exchange(emulator, "balance"))
    assert balance["positions"][0]["amount"] == "0.01"
    assert_no_order_reached_the_exchange(emulator)


def test_coins_held_are_followed_in_the_accounts_currency_only(
        data_dir: Path, moment: Moment, capsys: pytest.CaptureFixture[str]) -> None:
    exchange = ExchangeEmulator((*DEFAULT_MARKETS,
                                 MarketSpec("BTCEUR", "BTC", "EUR", "0.01", "0.00001",
                                            "0.00001", "5")))
    exchange.start()
    try:
        exchange.set_candles("BTCUSDT", "1m", cents(BARS, MINUTE - (BARS - 1) * M1))
        paper(data_dir, capsys, *on_exchange(exchange, "buy", "BTC/USDT", "0.01"))
        balance = paper(data_dir, capsys, *on_exchange(exchange, "balance"))
    finally:
        exchange.stop()
    assert [p["symbol"] for p in balance["positions"]] == ["BTC/USDT"]
    assert_no_order_reached_the_exchange(exchange)


def test_each_price_source_has_its_own_account(
        data_dir: Path, moment: Moment, market: CandleSeries, emulator: ExchangeEmulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    paper(data_dir, capsys, *on_exchange(emulator, "reset", "--cash", "5000"))
    paper(data_dir, capsys, *on_exchange(emulator, "buy", "BTC/USDT", "0.01"))
    simulated = paper(data_dir, capsys, "balance")
    assert simulated["venue"] == "paper" and simulated["market"] == "simulated"
    assert usdt(simulated) == 10_000 and simulated["positions"] == []
    exchange = paper(data_dir, capsys, *on_exchange(emulator, "balance"))
    assert exchange["starting_cash"] == "5000.00" and len(exchange["positions"]) == 1
    assert paper(data_dir, capsys, "orders", "--all")["orders"] == []
    assert len(paper(data_dir, capsys, *on_exchange(emulator, "orders", "--all"))["orders"]) == 1
    # A sell on the simulated account finds nothing to sell there.
    assert "cannot sell" in failing(data_dir, capsys, "sell", "BTC/USDT", "0.01")


def test_bad_exchange_symbol_or_connection_is_one_clear_error_and_changes_nothing(
        data_dir: Path, moment: Moment, market: CandleSeries, emulator: ExchangeEmulator,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The command's venue retries as always, without waiting between attempts.
    monkeypatch.setattr(ccxt_venue, "RetryPolicy", fast_retry)
    assert "unknown exchange 'nosuchexchange'" in failing(
        data_dir, capsys, "--exchange", "nosuchexchange", "balance")
    assert "not listed on Binance" in failing(
        data_dir, capsys, *on_exchange(emulator, "buy", "DOGE/USDT", "10"))
    with Store.open(data_dir) as store:
        assert store.paper.load("paper-binance") is None  # not even an empty account
    limit = str(round(float(market.close[-1]) * 0.9, 2))
    paper(data_dir, capsys, *on_exchange(emulator, "buy", "BTC/USDT", "0.01", "--limit", limit))
    before = paper(data_dir, capsys, *on_exchange(emulator, "balance"))
    assert "not listed on Binance" in failing(
        data_dir, capsys, *on_exchange(emulator, "sell", "DOGE/USDT", "10"))
    # Nothing listens on port 9 of this machine: every attempt is refused.
    unreachable = ["--exchange", "binance", "--api-url", "http://127.0.0.1:9"]
    error = failing(data_dir, capsys, *unreachable, "buy", "BTC/USDT", "0.01")
    assert "Binance cannot be reached" in error
    assert paper(data_dir, capsys, *on_exchange(emulator, "balance")) == before
    assert len(paper(data_dir, capsys, *on_exchange(emulator, "orders"))["orders"]) == 1
    assert_no_order_reached_the_exchange(emulator)


def test_the_simulated_paper_account_never_imports_ccxt(data_dir: Path) -> None:
    code = ("import sys; from terminal.cli import main;"
            f" assert main(['--data-dir', {str(data_dir)!r}, 'paper', 'balance']) == 0;"
            " assert not [m for m in sys.modules if m.split('.')[0] == 'ccxt'], 'ccxt imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)

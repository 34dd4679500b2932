"""``paper`` and ``keys`` from the command line, on the simulated market at a fixed instant."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.cli import main
from terminal.core.model import Timeframe, to_decimal
from terminal.core.risk import RiskLimits
from terminal.core.settings import Settings, SettingsFile
from terminal.exchange.simulated import DEFAULT_SEED, MarketGenerator
from tests.factories import FROZEN_NOW, Moment
from tests.keyring_helpers import MemoryKeyring

NOW = FROZEN_NOW



def paper(data_dir: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["--data-dir", str(data_dir), "paper", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def failing(data_dir: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["--data-dir", str(data_dir), "paper", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def simulated_price(symbol: str, at_ms: int) -> Decimal:
    minute = Timeframe.M1.floor(at_ms)
    return to_decimal(MarketGenerator(DEFAULT_SEED).candle_at(symbol, Timeframe.M1, minute,
                                                              at_ms).close)


def test_a_market_buy_fills_at_the_simulated_price_now(data_dir: Path, moment: Moment,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    report = paper(data_dir, capsys, "buy", "BTC/USDT", "0.01")
    price = simulated_price("BTC/USDT", NOW)
    assert report["order"]["status"] == "filled"
    (fill,) = report["fills"]
    assert Decimal(fill["price"]) == price and fill["time"] == NOW
    assert Decimal(fill["fee"]) == (price * Decimal("0.01") * Decimal("0.001")).quantize(
        Decimal("1e-8"))
    balance = paper(data_dir, capsys, "balance")
    usdt = next(b for b in balance["balances"] if b["currency"] == "USDT")
    assert Decimal(usdt["total"]) == (Decimal(10_000) - price * Decimal("0.01")
                                      - Decimal(fill["fee"])).quantize(Decimal("1e-8"))
    (position,) = balance["positions"]
    assert position["symbol"] == "BTC/USDT" and position["amount"] == "0.01"


def test_a_resting_limit_order_fills_on_the_minutes_that_close_later(
        data_dir: Path, moment: Moment, capsys: pytest.CaptureFixture[str]) -> None:
    generator = MarketGenerator(DEFAULT_SEED)
    start = Timeframe.M1.floor(NOW) + Timeframe.M1.ms
    later = generator.candles("ETH/USDT", Timeframe.M1, start, start + 120 * 60_000)
    limit = Decimal(str(round(float(later.low.min()) + 0.01, 2)))
    report = paper(data_dir, capsys, "buy", "ETH/USDT", "0.5", "--limit", str(limit))
    assert report["order"]["status"] == "open" and report["fills"] == []
    order_id = report["order"]["id"]
    listed = paper(data_dir, capsys, "orders")["orders"]
    assert [o["id"] for o in listed] == [order_id]
    balance = paper(data_dir, capsys, "balance")
    usdt = next(b for b in balance["balances"] if b["currency"] == "USDT")
    assert Decimal(usdt["used"]) == limit * Decimal("0.5") * Decimal("1.001")
    moment.now = start + 120 * 60_000 + 1_000
    assert paper(data_dir, capsys, "orders")["orders"] == []
    (order,) = paper(data_dir, capsys, "orders", "--all")["orders"]
    assert order["status"] == "filled" and Decimal(order["average_price"]) <= limit


def test_orders_pass_the_risk_limits_from_the_settings(data_dir: Path, moment: Moment,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    SettingsFile().save(Settings(risk=RiskLimits(max_position_quote=100)))
    error = failing(data_dir, capsys, "buy", "BTC/USDT", "1")
    assert "not sent: the risk manager would change the order" in error
    assert "--allow-resize" in error
    assert paper(data_dir, capsys, "orders", "--all")["orders"] == []
    report = paper(data_dir, capsys, "buy", "BTC/USDT", "1", "--allow-resize")
    (note,) = report["risk_notes"]
    assert "maximum position size of 100.00 USDT" in note
    assert Decimal(report["order"]["amount"]) * simulated_price("BTC/USDT", NOW) <= 100
    SettingsFile().save(Settings(risk=RiskLimits(max_open_trades=1, min_position_pct=50)))
    error = failing(data_dir, capsys, "buy", "ETH/USDT", "0.01")
    assert error.startswith("error: refused by the risk manager:")


def test_sell_cancel_trades_and_reset(data_dir: Path, moment: Moment,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    paper(data_dir, capsys, "buy", "BTC/USDT", "0.02")
    resting = paper(data_dir, capsys, "sell", "BTC/USDT", "0.01", "--limit", "999999")
    canceled = paper(data_dir, capsys, "cancel", resting["order"]["id"])
    assert canceled["order"]["status"] == "canceled"
    moment.now += 3_600_000
    sold = paper(data_dir, capsys, "sell", "BTC/USDT", "0.02")
    assert sold["order"]["status"] == "filled"
    trades = paper(data_dir, capsys, "trades")
    (trade,) = trades["trades"]
    entry = simulated_price("BTC/USDT", NOW)
    exit_price = simulated_price("BTC/USDT", moment.now)
    assert Decimal(trade["entry_price"]) == entry and Decimal(trade["exit_price"]) == exit_price
    gross = (exit_price - entry) * Decimal("0.02")
    fees = (entry + exit_price) * Decimal("0.02") * Decimal("0.001")
    assert Decimal(trades["totals"]["pnl"]) == (gross - fees).quantize(Decimal("0.01"))
    assert trades["totals"]["count"] == 1 and trade["strategy"] == "manual"
    assert paper(data_dir, capsys, "trades", "--symbol", "ETH/USDT")["trades"] == []
    reset = paper(data_dir, capsys, "reset", "--cash", "2500")
    assert reset["starting_cash"] == "2500.00"
    assert paper(data_dir, capsys, "trades")["trades"] == []
    balance = paper(data_dir, capsys, "balance")
    assert balance["balances"] == [{"currency": "USDT", "free": "2500", "used": "0",
                                    "total": "2500"}]


@pytest.mark.parametrize(("argv", "message"), [
    (["buy", "DOGE/USDT", "1"], "not traded on the simulated market"),
    (["buy", "BTC/USDT", "abc"], "the amount must be a number"),
    (["buy", "BTC/USDT", "0"], "the amount must be a positive number"),
    (["buy", "BTC/USDT", "0.01", "--limit", "-5"], "--limit must be a positive number"),
    (["sell", "BTC/USDT", "1"], "cannot sell 1 BTC: 0 free"),
    (["buy", "BTC/USDT", "0.00001"], "below the BTC/USDT minimum of 5 USDT"),
    (["cancel", "trm-unknown"], "no order trm-unknown"),
    (["reset", "--cash", "0"], "--cash must be a positive number"),
])
def test_bad_input_is_reported(data_dir: Path, moment: Moment,
                               capsys: pytest.CaptureFixture[str], argv: list[str],
                               message: str) -> None:
    assert message in failing(data_dir, capsys, *argv)


def test_the_text_output_reads_well(data_dir: Path, moment: Moment,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data_dir), "paper", "buy", "BTC/USDT", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "buy 0.01 BTC/USDT market: filled at" in out
    assert main(["--data-dir", str(data_dir), "paper", "balance"]) == 0
    out = capsys.readouterr().out
    assert "Equity" in out and "BTC/USDT" in out


# --- keys -------------------------------------------------------------------------------------

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_keys_are_set_listed_and_deleted_without_showing_secrets(
        memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zv", SECRET, ""])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert main(["keys", "set", "binance"]) == 0
    assert "vmPU…E2zv" in capsys.readouterr().out
    assert main(["keys", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"source": "keyring", "exchanges": [
        {"exchange": "binance", "key": "vmPU…E2zv", "password": False}]}
    assert SECRET not in out
    assert main(["keys", "delete", "binance"]) == 0
    assert main(["keys", "list"]) == 0
    assert "no exchange keys in the keyring" in capsys.readouterr().out


def test_keys_without_a_keyring_point_to_the_fallback(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    import keyring
    import keyring.backends.fail

    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        assert main(["keys", "list"]) == 1
    finally:
        keyring.set_keyring(previous)
    assert "--keys-from-env" in capsys.readouterr().err
    monkeypatch.setenv("TERMINAL_KRAKEN_API_KEY", "env-key-abcdef")
    monkeypatch.setenv("TERMINAL_KRAKEN_SECRET", "env-secret-abcdef")
    assert main(["keys", "--keys-from-env", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["source"] == "environment"
    assert [e["exchange"] for e in listed["exchanges"]] == ["kraken"]

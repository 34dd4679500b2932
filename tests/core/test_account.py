"""The account summary behind the dashboard, and the trade history's CSV export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.core.account import (
    PriceHistory,
    TradeLine,
    equity_curve,
    max_drawdown,
    summarize_account,
    trades_csv,
    write_text_atomically,
)
from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.model import DAY_MS, Balance, Fill, OrderSide
from terminal.core.portfolio import build_positions

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


def fill(n: int, side: OrderSide, price: str, amount: str, at: int, fee: str = "0") -> Fill:
    return Fill(f"t{n}", f"o{n}", "paper", "BTC/USDT", side, Decimal(price), Decimal(amount),
                Decimal(fee), "USDT", at)


def test_the_curve_is_cash_plus_positions_marked_at_each_close() -> None:
    fills = [fill(1, OrderSide.BUY, "100", "1", T0, fee="1"),
             fill(2, OrderSide.SELL, "120", "1", T0 + 3 * HOUR, fee="1")]
    prices = {"BTC/USDT": PriceHistory([T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR],
                                       [110.0, 90.0, 120.0])}
    # Cash now: 1000 - 101 + 119 = 1018.
    times, values = equity_curve(fills, prices, cash_now=1018.0, marks={},
                                 now_ms=T0 + 5 * HOUR)
    assert times == [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 5 * HOUR]
    assert values == pytest.approx([999.0, 1009.0, 989.0, 1018.0, 1018.0])
    assert max_drawdown(values) == pytest.approx(20 / 1009)


def test_an_open_position_is_marked_at_the_latest_price_at_the_end() -> None:
    fills = [fill(1, OrderSide.BUY, "100", "2", T0)]
    times, values = equity_curve(fills, {}, cash_now=800.0, marks={"BTC/USDT": 150.0},
                                 now_ms=T0 + HOUR)
    assert values == pytest.approx([1000.0, 1100.0])
    assert times[-1] == T0 + HOUR


def test_no_fills_no_curve_and_no_drawdown() -> None:
    assert equity_curve([], {}, cash_now=5.0, marks={}, now_ms=T0) == ([], [])
    assert max_drawdown([]) == 0.0


def test_the_summary_values_balances_counts_trades_and_exposure() -> None:
    fills = [fill(1, OrderSide.BUY, "100", "2", T0 - 40 * DAY_MS),
             fill(2, OrderSide.SELL, "110", "1", T0 - DAY_MS),
             fill(3, OrderSide.BUY, "105", "1", T0 - DAY_MS + HOUR)]
    _, closed = build_positions("paper", fills)
    balances = [Balance("USDT", Decimal("905"), Decimal("0")), Balance("BTC", Decimal("2")),
                Balance("DOGE", Decimal("10"))]
    summary = summarize_account(quote="USDT", balances=balances, fills=fills, trades=closed,
                                marks={"BTC/USDT": 120.0}, prices={}, now_ms=T0)
    assert summary.equity == pytest.approx(905 + 240)
    assert summary.cash == 905
    assert [a.value for a in summary.assets] == [905.0, 240.0, None]  # DOGE: no price
    assert summary.total_trades == 1 and summary.wins == 1 and summary.win_ratio == 1.0
    assert summary.realized_recent == pytest.approx(10)
    # 30 days ago: 900 cash and 2 BTC marked at their fill price of 100.
    assert summary.pnl_recent == pytest.approx(1145 - 1100)
    assert summary.exposure == pytest.approx(240 / 1145)
    with pytest.raises(InvalidArgument):
        summarize_account(quote="USDT", balances=[], fills=[], trades=[], marks={},
                          prices={}, now_ms=0)


def test_trades_export_as_csv_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    fills = [fill(1, OrderSide.BUY, "100", "1", T0, fee="0.1"),
             fill(2, OrderSide.SELL, "90", "1", T0 + HOUR, fee="0.09")]
    _, closed = build_positions("paper", fills)
    text = trades_csv([TradeLine(closed[0], "manual", "paper")])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["symbol"] == "BTC/USDT" and rows[0]["pnl"] == "-10.19"
    assert rows[0]["strategy"] == "manual" and rows[0]["mode"] == "paper"
    target = tmp_path / "trades.csv"
    target.write_text("old")
    write_text_atomically(target, text)
    assert target.read_text() == text
    with pytest.raises(TerminalError, match="does not exist"):
        write_text_atomically(tmp_path / "missing" / "t.csv", text)
    blocked = tmp_path / "dir.csv"
    blocked.mkdir()
    with pytest.raises(TerminalError, match="cannot write"):
        write_text_atomically(blocked, text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.csv", "trades.csv"]

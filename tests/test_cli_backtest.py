from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from terminal.cli import main
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from tests.factories import START_MS, cdd_lines, generic_lines, make_series, write_lines

FEE = 0.001
ANCHOR = ("--strategy", "sma_crossover", "--param", "fast=20", "--param", "slow=50")


def market(count: int, seed: int = 3) -> CandleSeries:
    """An hourly random walk volatile enough for many crossovers."""
    rng = np.random.default_rng(seed)
    times = START_MS + np.arange(count, dtype=np.int64) * Timeframe.H1.ms
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.008, count)))
    open_ = np.r_[20_000.0, close[:-1]] * np.exp(rng.normal(0, 0.001, count))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, count)))
    return CandleSeries(Timeframe.H1, times, open_, high, low, close, rng.gamma(2, 50, count))


def anchor_file(tmp_path: Path, count: int = 2500) -> tuple[Path, CandleSeries]:
    """A CryptoDataDownload export like the real one: newest first, three hours missing and
    one row repeated with other prices (the first occurrence must win). Returns the file and
    the candles a backtest must see: duplicates dropped, the hole filled flat."""
    full = market(count)
    missing = [count // 2, count // 2 + 1, count // 2 + 2]
    present = CandleSeries.from_records(np.delete(full.to_records(), missing), Timeframe.H1)
    lines = cdd_lines(present)
    # Newest first: the line after the header pair is the last candle; repeat an older row
    # further down the file with changed prices.
    victim = lines[len(lines) // 5]
    cells = victim.split(",")
    cells[3:7] = [repr(float(cells[3]) * 1.01), repr(float(cells[4]) * 1.02),
                  repr(float(cells[5])), repr(float(cells[6]) * 1.01)]
    lines.insert(len(lines) // 3, ",".join(cells))
    records = full.to_records()
    previous_close = records["close"][missing[0] - 1]
    for name in ("open", "high", "low", "close"):
        records[name][missing] = previous_close
    records["volume"][missing] = 0.0
    expected = CandleSeries.from_records(records, Timeframe.H1)
    return write_lines(tmp_path / "Binance_BTCUSDT_1h.csv", lines), expected


def numpy_reference(opens: np.ndarray, closes: np.ndarray, fast: int, slow: int,
                    cash: float) -> tuple[int, float]:
    """The anchor's rules, written independently of the engine: SMAs by convolution, cross up
    (fast > slow after fast <= slow) buys all-in at the next open with the fee on top, cross
    down sells at the next open less the fee, nothing is acted on at the last bar, and an open
    position is marked to the last close without an exit fee."""
    def average(length: int) -> np.ndarray:
        out = np.full(len(closes), np.nan)
        out[length - 1:] = np.convolve(closes, np.ones(length) / length, mode="valid")
        return out

    quick, calm = average(fast), average(slow)
    with np.errstate(invalid="ignore"):
        up = np.r_[False, (quick[1:] > calm[1:]) & (quick[:-1] <= calm[:-1])]
        down = np.r_[False, (calm[1:] > quick[1:]) & (calm[:-1] <= quick[:-1])]
    events = np.flatnonzero((up | down)[:-1])
    qty, trades = 0.0, 0
    for bar in events:
        price = opens[bar + 1]
        if qty == 0 and up[bar]:
            qty, cash = cash / (price * (1 + FEE)), 0.0
            trades += 1
        elif qty > 0 and down[bar]:
            cash, qty = qty * price * (1 - FEE), 0.0
    return trades, cash + qty * closes[-1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["backtest", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--json")
    assert (code, err) == (0, "")
    payload: dict[str, Any] = json.loads(out)
    return payload


def test_the_anchor_rules_through_the_command_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path, expected = anchor_file(tmp_path)
    report = run_json(capsys, "--csv", str(path), "--timeframe", "1h", *ANCHOR)
    trades, final = numpy_reference(expected.open, expected.close, 20, 50, 10_000.0)
    assert trades > 25
    assert report["trades"] == trades
    assert report["final_equity"] == pytest.approx(final, rel=1e-9)
    assert report["total_return"] == pytest.approx(final / 10_000.0 - 1, rel=1e-9)
    for name in ("max_drawdown", "sharpe"):
        assert isinstance(report[name], float)
    assert report["data"]["duplicates"] == 1 and report["data"]["filled_bars"] == 3
    assert report["data"]["gaps"] == 1 and report["data"]["timeframe_inferred"] is False
    assert report["symbol"] == "BTC/USDT" and report["fee"] == FEE


def test_the_timeframe_is_inferred_from_the_candle_spacing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = anchor_file(tmp_path, 400)
    with_timeframe = run_json(capsys, "--csv", str(path), "--timeframe", "1h", *ANCHOR)
    report = run_json(capsys, "--csv", str(path), *ANCHOR)
    assert report["data"]["timeframe"] == "1h" and report["data"]["timeframe_inferred"]
    assert report["final_equity"] == with_timeframe["final_equity"]
    code, out, _ = run(capsys, "--csv", str(path), *ANCHOR)
    assert code == 0 and "timeframe 1h inferred from the candle spacing" in out
    four_hourly = make_series(120, Timeframe.H4, seed=2)
    other = write_lines(tmp_path / "four.csv", generic_lines(four_hourly))
    assert run_json(capsys, "--csv", str(other), "--strategy", "rsi_mean_reversion"
                    )["timeframe"] == "4h"


@pytest.mark.parametrize(("times", "message"), [
    ([0], "one candle says nothing about the candle length; give the timeframe"),
    ([0, 90, 180, 270], "most rows are 90m apart, which is no timeframe"),
])
def test_a_timeframe_that_cannot_be_inferred_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], times: list[int],
        message: str) -> None:
    base = make_series(len(times), Timeframe.M1)
    shifted = CandleSeries(Timeframe.M1, START_MS + np.array(times, dtype=np.int64) * 60_000,
                           base.open, base.high, base.low, base.close, base.volume)
    path = write_lines(tmp_path / "odd.csv", generic_lines(shifted))
    code, out, err = run(capsys, "--csv", str(path), *ANCHOR)
    assert (code, out) == (1, "") and message in err and err.startswith("error: ")


def test_the_store_needs_a_timeframe(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--symbol", "BTC/USDT", *ANCHOR)
    assert code == 1 and "--symbol needs --timeframe" in err


def test_the_text_report_and_the_trade_list(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = anchor_file(tmp_path, 600)
    trades_csv = tmp_path / "trades.csv"
    code, out, err = run(capsys, "--csv", str(path), *ANCHOR, "--trades-csv", str(trades_csv))
    assert (code, err) == (0, "")
    assert "1 duplicated open times dropped (first occurrence kept)" in out
    assert "1 gaps: 3 missing bars filled flat at the previous close" in out
    assert "look-ahead check: passed" in out
    with trades_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    report = run_json(capsys, "--csv", str(path), *ANCHOR)
    assert len(rows) == report["trades"] > 3
    assert [float(r["pnl"]) for r in rows] == pytest.approx(
        [t["pnl"] for t in report["trade_list"]])


def test_slippage_costs_money_and_is_reported(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = anchor_file(tmp_path, 800)
    plain = run_json(capsys, "--csv", str(path), *ANCHOR)
    fixed = run_json(capsys, "--csv", str(path), *ANCHOR, "--slippage-bps", "5")
    volume = run_json(capsys, "--csv", str(path), *ANCHOR, "--volume-slippage-bps", "50")
    assert fixed["final_equity"] < plain["final_equity"]
    assert volume["final_equity"] < plain["final_equity"]
    assert (fixed["slippage_bps"], volume["volume_slippage_bps"]) == (5.0, 50.0)
    entry = volume["trade_list"][0]
    assert entry["entry_price"] > plain["trade_list"][0]["entry_price"]
    code, out, _ = run(capsys, "--csv", str(path), *ANCHOR, "--volume-slippage-bps", "50")
    assert code == 0 and "volume-aware slippage 50 bps" in out


def test_take_profits_pay_the_maker_fee(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = anchor_file(tmp_path, 800)
    target = (*ANCHOR, "--param", "take_profit_pct=1")
    taker = run_json(capsys, "--csv", str(path), *target)
    maker = run_json(capsys, "--csv", str(path), *target, "--maker-fee", "0")
    assert (taker["maker_fee"], maker["maker_fee"], maker["fee"]) == (FEE, 0.0, FEE)
    exits = [t for t in maker["trade_list"] if t["exit_reason"] == "take_profit"]
    assert exits and maker["final_equity"] > taker["final_equity"]
    code, out, _ = run(capsys, "--csv", str(path), *target, "--maker-fee", "0.0002")
    assert code == 0 and "fee 0.1 % (maker 0.02 %)" in out


@pytest.mark.parametrize(("extra", "message"), [
    (("--strategy", "moon"), "unknown strategy 'moon'"),
    (("--strategy", "sma_crossover", "--param", "speed=3"), "no parameter 'speed'"),
    (("--strategy", "sma_crossover", "--param", "fast=1"), "fast must be between 2 and 1000"),
    (("--strategy", "sma_crossover", "--param", "fast=60"), "fast (60) must be below slow"),
    (("--strategy", "sma_crossover", "--param", "slow=4000"), "needs at least 4002 candles"),
    (("--strategy", "sma_crossover", "--fee", "-0.1"), "--fee is a fraction"),
    (("--strategy", "sma_crossover", "--fee", "abc"), "--fee must be a number"),
    (("--strategy", "sma_crossover", "--cash", "0"), "--cash is an amount"),
    (("--strategy", "sma_crossover", "--cash", "nan"), "--cash is an amount"),
    (("--strategy", "sma_crossover", "--param", "fast"), "--param expects NAME=VALUE"),
    (("--strategy", "sma_crossover", "--maker-fee", "0.5"), "--maker-fee is a fraction"),
    (("--strategy", "sma_crossover", "--volume-slippage-bps", "-1"),
     "--volume-slippage-bps is basis points"),
])
def test_bad_input_is_refused_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...],
        message: str) -> None:
    path, _ = anchor_file(tmp_path, 300)
    trades_csv = tmp_path / "trades.csv"
    code, out, err = run(capsys, "--csv", str(path), *extra, "--trades-csv", str(trades_csv))
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and message in err
    assert not trades_csv.exists()


def test_a_file_the_importers_reject_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    lines = generic_lines(make_series(80, Timeframe.H1))
    lines[10] = lines[10].replace(",", ",-", 2)  # a negative open
    path = write_lines(tmp_path / "bad.csv", lines)
    code, out, err = run(capsys, "--csv", str(path), *ANCHOR)
    assert (code, out) == (1, "") and "line 11" in err


def test_stored_candles_backtest_like_the_file_they_came_from(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = anchor_file(tmp_path, 700)
    assert main(["--data-dir", str(data_dir), "import", str(path), "--symbol", "BTC/USDT",
                 "--timeframe", "1h"]) == 0
    capsys.readouterr()
    from_file = run_json(capsys, "--csv", str(path), *ANCHOR)
    code = main(["--data-dir", str(data_dir), "backtest", "--symbol", "BTC/USDT",
                 "--timeframe", "1h", "--venue", "binance", *ANCHOR, "--json"])
    stored = json.loads(capsys.readouterr().out)
    assert code == 0
    assert stored["final_equity"] == from_file["final_equity"]
    assert stored["data"]["venue"] == "binance" and stored["data"]["filled_bars"] == 3
    code = main(["--data-dir", str(data_dir), "optimize", "--symbol", "BTC/USDT",
                 "--timeframe", "1h", "--venue", "binance", "--strategy", "sma_crossover",
                 "--grid", "fast=20", "--grid", "slow=50", "--workers", "1", "--json"])
    searched = json.loads(capsys.readouterr().out)
    assert code == 0
    assert searched["best"]["metrics"]["final_equity"] == from_file["final_equity"]


def test_a_reader_that_stops_early_is_not_an_error(tmp_path: Path) -> None:
    path, _ = anchor_file(tmp_path, 300)
    process = subprocess.Popen([sys.executable, "-m", "terminal", "backtest", "--csv",
                                str(path), *ANCHOR], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `... | head -0`
    errors = process.stderr.read()
    assert (process.wait(timeout=60), errors) == (0, b"")

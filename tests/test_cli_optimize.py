from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from terminal.cli import main
from terminal.commands.optimize_command import _Progress
from terminal.core.optimize import Objective, RunSettings, grid_points, search, walk_forward
from tests.factories import generic_lines, write_lines
from tests.test_cli_backtest import market

SMA = ("--strategy", "sma_crossover")


@pytest.fixture
def candle_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "BTCUSDT-1h.csv", generic_lines(market(1200, seed=8)))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["optimize", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict[str, Any], str]:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    payload: dict[str, Any] = json.loads(out)
    return payload, err


def test_a_grid_search_ranks_the_sets_as_the_core_does(
        candle_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, err = run_json(capsys, "--csv", str(candle_file), *SMA, "--grid", "fast=5,10",
                           "--grid", "slow=20:40:10", "--workers", "1", "--fee", "0.002")
    expected = search(market(1200, seed=8), "sma_crossover",
                      grid_points("sma_crossover", {"fast": [5, 10], "slow": [20, 30, 40]}),
                      settings=RunSettings(fee=0.002))
    assert report["mode"] == "search" and report["tried"] == 6
    assert [r["params"] for r in report["ranking"]] == [e.params for e in expected.evaluations]
    assert report["best"]["metrics"]["final_equity"] == pytest.approx(
        expected.evaluations[0].metrics.final_equity)  # type: ignore[union-attr]
    assert report["searched"] == ["fast", "slow"] and report["objective"] == "sharpe"
    assert report["data"]["timeframe"] == "1h" and report["data"]["timeframe_inferred"]
    # Progress is on stderr, ending with the last backtest.
    assert err.strip().splitlines()[-1] == "backtests: 6 of 6"


def test_a_random_walk_forward_with_fixed_parameters(
        candle_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--csv", str(candle_file), *SMA, "--random", "5", "--range", "fast=3:9",
            "--range", "slow=15:30", "--param", "stop_loss_pct=4", "--walk-forward",
            "--in-sample", "400", "--out-of-sample", "200", "--objective", "total_return",
            "--workers", "2", "--seed", "7")
    report, _ = run_json(capsys, *argv)
    assert report["mode"] == "walk_forward" and not report["anchored"]
    assert len(report["windows"]) == 4 and report["out_of_sample"]["bars"] == 800
    assert report["fixed"] == {"stop_loss_pct": 4.0}
    assert all(w["params"]["stop_loss_pct"] == 4.0 for w in report["windows"])
    from terminal.core.optimize import random_points

    points = [{**p, "stop_loss_pct": 4.0} for p in
              random_points("sma_crossover", {"fast": (3, 9), "slow": (15, 30)}, 5, seed=7)]
    expected = walk_forward(market(1200, seed=8), "sma_crossover", points, in_sample_bars=400,
                            out_of_sample_bars=200, objective=Objective.TOTAL_RETURN)
    assert report["out_of_sample"]["final_equity"] == pytest.approx(
        expected.metrics.final_equity)
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "walk-forward (rolling): 4 windows of 400 in-sample" in out
    assert "strategy sma_crossover with stop_loss_pct=4" in out
    assert "out of sample, chained (800 bars" in out


def test_the_text_report_of_a_search(candle_file: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--csv", str(candle_file), *SMA, "--grid", "fast=5,10",
                       "--grid", "slow=20,60", "--top", "3", "--workers", "1")
    assert code == 0
    assert "4 parameter sets backtested over the whole history; the 3 best:" in out
    assert "look-ahead check of the best set: passed" in out
    assert "best: fast=" in out and "in-sample" in out


@pytest.mark.parametrize(("extra", "message"), [
    ((), "say what to search: --grid"),
    (("--grid", "fast=5", "--random", "3"), "either --grid or --random"),
    (("--range", "fast=2:5"), "--range goes with --random"),
    (("--random", "3"), "at least one parameter range"),
    (("--random", "three", "--range", "fast=2:5"), "--random must be a whole number"),
    (("--random", "3", "--range", "fast=2-5"), "a range is LOW:HIGH"),
    (("--grid", "fast=10:5:1"), "the range runs downwards"),
    (("--grid", "fast=1:5:0"), "the step must be positive"),
    (("--grid", "fast=5,,6"), "an empty value between commas"),
    (("--grid", "fast=5", "--param", "fast=6"), "fast is both fixed with --param and searched"),
    (("--grid", "speed=5"), "no parameter 'speed'"),
    (("--grid", "fast=5", "--objective", "calmar"), "unknown objective 'calmar'"),
    (("--grid", "fast=5", "--workers", "0"), "--workers must be between 1"),
    (("--grid", "fast=5", "--in-sample", "300"), "go with --walk-forward"),
    (("--grid", "fast=5", "--walk-forward"), "needs --in-sample BARS and --out-of-sample"),
    (("--grid", "fast=5", "--walk-forward", "--in-sample", "900", "--out-of-sample", "900"),
     "1200 candles are too few for one walk-forward window"),
    (("--grid", "slow=3000"), "no parameter set could be backtested: sma_crossover needs at"
                              " least 3002 candles"),
    (("--grid", "fast=60"), "no parameter set to try: sma_crossover: fast (60) must be below"),
    (("--grid", "slow=1150", "--walk-forward", "--in-sample", "60", "--out-of-sample", "60"),
     "no parameter set could be backtested in any in-sample window"),
])
def test_bad_options_are_refused(candle_file: Path, capsys: pytest.CaptureFixture[str],
                                 extra: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, "--csv", str(candle_file), *SMA, "--workers", "1", *extra)
    assert (code, out) == (1, "")
    assert message in err and "error: " in err


def test_strategies_that_cannot_be_searched(candle_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--csv", str(candle_file), "--strategy", "model_signal",
                       "--grid", "margin=0,0.01")
    assert code == 1 and "predictions" in err
    code, _, err = run(capsys, "--csv", str(candle_file), "--strategy", "moon", "--grid",
                       "fast=5")
    assert code == 1 and "unknown strategy 'moon'" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_updates_one_line_on_a_terminal_and_writes_tenths_elsewhere() -> None:
    screen = _Terminal()
    progress = _Progress(screen)
    for done in (1, 2, 4):
        progress(done, 4)
    progress.finish()
    assert screen.getvalue() == ("\rbacktests: 1 of 4\rbacktests: 2 of 4\rbacktests: 4 of 4"
                                 "\n")
    log = io.StringIO()
    progress = _Progress(log)
    for done in range(1, 101):
        progress(done, 100)
    progress.finish()
    lines = log.getvalue().splitlines()
    assert lines[0] == "backtests: 1 of 100" and lines[-1] == "backtests: 100 of 100"
    assert len(lines) == 11

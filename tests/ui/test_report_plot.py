from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from terminal.cli import main
from terminal.ui.report_plot import _compact, _nice_ticks
from tests.factories import write_lines
from tests.test_cli_backtest import anchor_file


def test_the_plot_option_writes_a_png_of_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = anchor_file(tmp_path, 600)
    plot = tmp_path / "report.png"
    code = main(["backtest", "--csv", str(path), "--strategy", "sma_crossover", "--param",
                 "fast=5", "--param", "slow=20", "--plot", str(plot), "--json"])
    assert code == 0 and capsys.readouterr().err == ""
    image = QImage(str(plot))
    assert (image.width(), image.height()) == (1400, 900)


def test_a_plot_path_that_cannot_be_written_is_refused_before_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "unused.csv", ["not a candle file"])
    for target, message in ((tmp_path / "report.jpg", "must be a .png file"),
                            (tmp_path / "missing" / "report.png", "does not exist")):
        code = main(["backtest", "--csv", str(path), "--strategy", "sma_crossover", "--plot",
                     str(target)])
        assert code == 1 and message in capsys.readouterr().err


def test_axis_ticks_are_round_numbers() -> None:
    assert _nice_ticks(6_265.0, 189_000.0, log=True) == [10_000, 20_000, 50_000, 100_000]
    assert _nice_ticks(0.5, 50_000.0, log=True) == [1, 10, 100, 1_000, 10_000]
    assert _nice_ticks(93.0, 117.0, log=False) == [95, 100, 105, 110, 115]
    assert [_compact(v) for v in (5_000, 12_000, 2_500, 0.5)] == ["5k", "12k", "2,500", "0.5"]

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from terminal.cli import main
from terminal.core.model import Timeframe
from tests.factories import cdd_lines, make_series, write_lines


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("candles")
    return write_lines(folder / "Binance_BTCUSDT_1h.csv",
                       cdd_lines(make_series(1_500, Timeframe.H1, seed=4)))


def test_json_has_every_figure_per_model_and_horizon(
        candle_file: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", str(data_dir), "evaluate", "--csv", str(candle_file),
                 "--timeframe", "1h", "--models", "drift,ridge", "--horizons", "1,4",
                 "--refit-every", "200", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["symbol"] == "BTC/USDT" and report["horizons"] == [1, 4]
    assert set(report["models"]) == {"persistence", "drift", "ridge"}
    for horizon in ("1", "4"):
        figures = report["models"]["ridge"]["horizons"][horizon]
        for key in ("mase", "mse_skill", "dm_pvalue", "dir_acc", "dir_acc_ci", "brier_skill"):
            assert key in figures
        assert len(figures["dir_acc_ci"]) == 2


@pytest.mark.qt
def test_report_writes_markdown_and_plots(qapp: object, candle_file: Path, data_dir: Path,
                                          tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # The plots need a Qt application; the session's QApplication serves (a bare
    # QGuiApplication made here would outlive the test and break widget tests).
    out = tmp_path / "report"
    code = main(["--data-dir", str(data_dir), "evaluate", "--csv", str(candle_file),
                 "--timeframe", "1h", "--models", "ridge", "--horizons", "4",
                 "--refit-every", "300", "--report", str(out)])
    assert code == 0
    assert "ridge" in capsys.readouterr().out
    text = (out / "report.md").read_text()
    assert "| ridge | 4 |" in text and "ridge_h4.png" in text
    assert (out / "ridge_h4.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("argv", "message"), [
    (["--models", "ridge,oracle"], "unknown model 'oracle'"),
    (["--horizons", "1,x"], "horizons are whole numbers"),
    (["--test-fraction", "1.2"], "--test-fraction"),
    (["--refit-every", "0"], "--refit-every"),
])
def test_bad_options_exit_1_with_a_message(candle_file: Path, data_dir: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           argv: list[str], message: str) -> None:
    code = main(["--data-dir", str(data_dir), "evaluate", "--csv", str(candle_file),
                 "--timeframe", "1h", *argv])
    assert code == 1
    assert message in capsys.readouterr().err


def test_a_store_without_the_series_says_so(data_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", str(data_dir), "evaluate", "--symbol", "BTC/USDT",
                 "--timeframe", "1h"])
    assert code == 1
    assert "no BTC/USDT 1h candles stored" in capsys.readouterr().err


def test_evaluates_a_stored_series(candle_file: Path, data_dir: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data_dir), "import", str(candle_file), "--symbol",
                 "BTC/USDT", "--timeframe", "1h", "--venue", "binance"]) == 0
    capsys.readouterr()
    code = main(["--data-dir", str(data_dir), "evaluate", "--symbol", "BTC/USDT",
                 "--timeframe", "1h", "--venue", "binance", "--models", "ridge",
                 "--horizons", "1", "--refit-every", "400", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["venue"] == "binance" and report["data"]["candles"] == 1_500
    assert "1" in report["models"]["ridge"]["horizons"]


def test_evaluate_runs_without_qt_or_torch(candle_file: Path, data_dir: Path) -> None:
    script = (
        "import contextlib, io, sys\n"
        "from terminal.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['--data-dir', {str(data_dir)!r}, 'evaluate', '--csv',"
        f" {str(candle_file)!r}, '--timeframe', '1h', '--models', 'ridge', '--horizons', '1',"
        " '--json'])\n"
        "loaded = [m for m in ('PySide6', 'torch') if m in sys.modules]\n"
        "print(code, loaded)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "0 []"

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from terminal.cli import main
from terminal.core.model import MINUTE_MS, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from tests.factories import START_MS, make_series

KEY = SeriesKey("binance", "BTC/USDT", Timeframe.M1)


def store_series(data_dir: Path, key: SeriesKey, series: CandleSeries) -> None:
    with Store.open(data_dir) as store:
        store.candles.upsert(key, series)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_list_an_empty_store(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data_dir), "data", "list"]) == 0
    assert "no candles stored yet" in capsys.readouterr().out
    report = run_json(capsys, "--data-dir", str(data_dir), "data", "list", "--json")
    assert report["series"] == []


def test_list_shows_each_series(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = make_series(100)
    holed = CandleSeries.from_records(np.delete(series.to_records(), [10, 11]), Timeframe.M1)
    store_series(data_dir, KEY, holed)
    store_series(data_dir, SeriesKey("simulated", "ETH/USDT", Timeframe.M1), make_series(5))
    store_series(data_dir, SeriesKey("simulated-7", "ETH/USDT", Timeframe.M1), make_series(3))
    rows = run_json(capsys, "--data-dir", str(data_dir), "data", "list", "--json")["series"]
    assert [(r["venue"], r["symbol"], r["candles"], r["missing_bars"]) for r in rows] == [
        ("binance", "BTC/USDT", 98, 2), ("simulated", "ETH/USDT", 5, 0),
        ("simulated-7", "ETH/USDT", 3, 0)]
    assert [r["simulated"] for r in rows] == [False, True, True]
    assert rows[0]["first_utc"] == "2023-11-14T00:00:00Z"
    main(["--data-dir", str(data_dir), "data", "list"])
    assert "simulated (SIM)" in capsys.readouterr().out


def test_export_writes_csv_and_resamples_on_the_fly(data_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    store_series(data_dir, KEY, make_series(180))
    out = tmp_path / "hourly.csv"
    assert main(["--data-dir", str(data_dir), "data", "export", "--venue", "binance",
                 "--symbol", "btcusdt", "--timeframe", "1h", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "open_time,date,open,high,low,close,volume"
    assert len(lines) == 1 + 3
    assert lines[1].startswith(f"{START_MS},2023-11-14T00:00:00Z,")
    assert main(["--data-dir", str(data_dir), "data", "export", "--venue", "binance",
                 "--symbol", "BTC/USDT", "--timeframe", "1m", "--start", "2023-11-14 01:00",
                 "--end", "2023-11-14T01:02:00Z"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 2


def test_export_of_nothing_is_an_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data_dir), "data", "export", "--symbol", "BTC/USDT",
                 "--timeframe", "1h"]) == 1
    assert "no BTC/USDT 1h candles from simulated" in capsys.readouterr().err


def test_resample_stores_coarser_series(data_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # 00:30 .. 05:59 with minutes missing inside the third hour.
    series = make_series(330, start_ms=START_MS + 30 * MINUTE_MS)
    holed = CandleSeries.from_records(np.delete(series.to_records(), [100, 101]), Timeframe.M1)
    store_series(data_dir, KEY, holed)
    argv = ["--data-dir", str(data_dir), "data", "resample", "--venue", "binance",
            "--symbol", "BTC/USDT", "--timeframe", "1m", "--to", "1h,4h", "--json"]
    report = run_json(capsys, *argv)
    hourly, four_hourly = report["targets"]
    assert report["source_gaps"] == 1
    assert (hourly["candles"], hourly["with_missing_source_bars"], hourly["dropped_incomplete"]) \
        == (5, 1, 1)
    assert (four_hourly["candles"], four_hourly["dropped_incomplete"]) == (0, 2)
    with Store.open(data_dir) as store:
        stored = store.candles.load(SeriesKey("binance", "BTC/USDT", Timeframe.H1))
    assert stored.open_time.tolist() == [START_MS + h * 3_600_000 for h in range(1, 6)]
    assert run_json(capsys, *argv)["targets"][0]["stored"] == 0
    strict = run_json(capsys, *argv[:-3], "--to", "1h", "--complete-only", "--json")
    assert strict["targets"][0]["candles"] == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", "7m"], "unknown timeframe '7m'"),
        (["--to", "1h"], "nothing stored for binance:BTC/USDT:1m"),
        (["--to", "1m"], "must be a whole multiple"),
    ],
)
def test_resample_errors(data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                         message: str) -> None:
    code = main(["--data-dir", str(data_dir), "data", "resample", "--venue", "binance",
                 "--symbol", "BTC/USDT", "--timeframe", "1m", *argv])
    assert code == 1
    assert message in capsys.readouterr().err


def test_a_missing_data_dir_is_one_clear_error(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path / "missing"), "data", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the data directory") and "does not exist" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_commands_do_not_load_qt(data_dir: Path) -> None:
    code = (
        "import sys\n"
        "from terminal.cli import main\n"
        f"assert main(['--data-dir', {str(data_dir)!r}, 'data', 'list', '--json']) == 0\n"
        "loaded = [m for m in ('PySide6', 'pyqtgraph', 'qasync', 'torch') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

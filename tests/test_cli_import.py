from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from terminal.cli import main
from terminal.core.model import HOUR_MS, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import SeriesSummary, Store
from tests.factories import START_MS, cdd_lines, generic_lines, make_series, write_lines

KEY = SeriesKey("binance", "BTC/USDT", Timeframe.H1)


def hourly_file(tmp_path: Path, count: int = 30) -> tuple[Path, CandleSeries]:
    """A CryptoDataDownload file of ``count`` rows: the 10th hour missing and the second row
    (line 4) repeated on line 5."""
    series = make_series(count, Timeframe.H1)
    series = CandleSeries.from_records(series.to_records()[[*range(10), *range(11, count)]],
                                       Timeframe.H1)
    lines = cdd_lines(series, old_before=int(series.open_time[5]))
    lines.insert(4, lines[3])
    return write_lines(tmp_path / "Binance_BTCUSDT_1h.csv", lines), series


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), "import", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], data_dir: Path,
             *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(capsys, data_dir, *argv, "--json")
    return code, json.loads(out), err


def stored(data_dir: Path) -> list[tuple[SeriesSummary, CandleSeries]]:
    with Store.open(data_dir) as store:
        return [(s, store.candles.load(s.key)) for s in store.candles.summaries()]


def test_json_report(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, series = hourly_file(tmp_path)
    code, report, err = run_json(capsys, data_dir, str(path), "--symbol", "BTCUSDT",
                                 "--timeframe", "1h")
    assert (code, err) == (0, "")
    assert report["rows_read"] == 30
    assert (report["stored"], report["unchanged"], report["candles"]) == (29, 0, 29)
    assert (report["venue"], report["symbol"], report["timeframe"]) == ("binance", "BTC/USDT",
                                                                        "1h")
    assert report["format"] == "cryptodatadownload"
    assert report["duplicates"] == [{"time": int(series.open_time[-2]),
                                     "time_utc": "2023-11-15T04:00:00Z", "kept_line": 4,
                                     "dropped_line": 5, "conflicting": False}]
    assert report["gaps"] == [{"start": START_MS + 10 * HOUR_MS, "end": START_MS + 11 * HOUR_MS,
                               "missing": 1, "start_utc": "2023-11-14T10:00:00Z",
                               "end_utc": "2023-11-14T11:00:00Z"}]
    assert report["rejected"] == []
    assert report["imported"] is True
    assert report["first_utc"] == "2023-11-14T00:00:00Z"
    with Store.open(data_dir) as store:
        assert store.candles.load(KEY) == series

    code, again, _ = run_json(capsys, data_dir, str(path), "--symbol", "BTC/USDT",
                              "--timeframe", "1h")
    assert (code, again["stored"], again["unchanged"]) == (0, 0, 29)


def test_human_summary(data_dir: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = hourly_file(tmp_path)
    code, out, err = run(capsys, data_dir, str(path), "--symbol", "BTC/USDT", "--timeframe", "1h")
    assert (code, err) == (0, "")
    assert f"{path}: imported" in out
    assert "rows read:   30" in out
    assert "stored:      29 new or changed, 0 unchanged" in out
    assert "duplicates:  1 (0 with different values" in out
    assert "2023-11-15T04:00:00Z: kept line 4, dropped line 5 (identical)" in out
    assert "2023-11-14T10:00:00Z to 2023-11-14T11:00:00Z: 1 missing" in out
    assert "rejected:    0 rows" in out
    assert "rows were newest first; sorted oldest first" in out


def test_rejected_file_exits_1_and_keeps_the_store(data_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = hourly_file(tmp_path)
    run(capsys, data_dir, str(path), "--symbol", "BTC/USDT", "--timeframe", "1h")
    before = stored(data_dir)
    series = make_series(6, Timeframe.H1, seed=9)
    lines = generic_lines(series)
    cell = f"x{series[2].open!r}"
    lines[3] = lines[3].replace(",", ",x", 1)  # candle 2's open, on line 4
    bad = write_lines(tmp_path / "bad.csv", lines)

    code, report, err = run_json(capsys, data_dir, str(bad), "--symbol", "BTC/USDT",
                                 "--timeframe", "1h", "--venue", "Binance")
    assert code == 1
    assert err.startswith("error: ") and "1 of 6 rows rejected" in err and "line 4:" in err
    assert report["rejected"] == [{"line": 4, "reason": f"cannot read open {cell!r} as a number"}]
    assert (report["stored"], report["imported"]) == (0, False)
    assert report["error"] == err.removeprefix("error: ").strip()
    assert stored(data_dir) == before

    code, out, err = run(capsys, data_dir, str(bad), "--symbol", "BTC/USDT", "--timeframe", "1h")
    assert code == 1
    assert "rejected, nothing stored" in out and "line 4: cannot read open" in out
    assert "error:" in err

    code, report, _ = run_json(capsys, data_dir, str(bad), "--symbol", "BTC/USDT",
                               "--timeframe", "1h", "--skip-bad-rows")
    assert (code, report["stored"], len(report["rejected"])) == (0, 5, 1)


def test_dry_run_stores_nothing(data_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = hourly_file(tmp_path)
    code, report, _ = run_json(capsys, data_dir, str(path), "--symbol", "BTC/USDT",
                               "--timeframe", "1h", "--dry-run")
    assert (code, report["dry_run"], report["stored"], report["candles"]) == (0, True, 0, 29)
    code, out, _ = run(capsys, data_dir, str(path), "--symbol", "BTC/USDT", "--timeframe", "1h",
                       "--dry-run")
    assert "dry run, nothing stored" in out
    assert stored(data_dir) == []


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--symbol", "bitcoin", "invalid symbol 'bitcoin'"),
    ("--timeframe", "7m", "unknown timeframe '7m'"),
    ("--venue", "two words", "invalid venue 'two words'"),
])
def test_bad_arguments(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       option: str, value: str, message: str) -> None:
    path, _ = hourly_file(tmp_path)
    argv = {"--symbol": "BTC/USDT", "--timeframe": "1h", option: value}
    code, out, err = run(capsys, data_dir, str(path), *[x for kv in argv.items() for x in kv])
    assert code == 1
    assert message in err
    assert out == ""


def test_wrong_symbol_or_timeframe_for_the_file(data_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = hourly_file(tmp_path)
    code, report, err = run_json(capsys, data_dir, str(path), "--symbol", "ETH/USDT",
                                 "--timeframe", "1h")
    assert code == 1
    assert "holds BTC/USDT candles" in err and "ETH/USDT" in err
    assert report["error"] and report["rows_read"] == 30
    code, report, err = run_json(capsys, data_dir, str(path), "--symbol", "BTC/USDT",
                                 "--timeframe", "1m")
    assert code == 1 and "looks like 1h candles, not 1m" in err
    assert report["gaps"] == []  # gaps counted in bars of the wrong length would mislead
    assert stored(data_dir) == []


def test_missing_and_empty_files(data_dir: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    code, report, err = run_json(capsys, data_dir, str(missing), "--symbol", "BTC/USDT",
                                 "--timeframe", "1h")
    assert code == 1 and f"{missing}: no such file" in err
    assert report["format"] == "unknown" and report["rows_read"] == 0
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = run(capsys, data_dir, str(empty), "--symbol", "BTC/USDT", "--timeframe", "1h")
    assert code == 1 and f"{empty} is empty" in err


def test_import_runs_without_qt(data_dir: Path, tmp_path: Path) -> None:
    path, _ = hourly_file(tmp_path, count=12)
    script = (
        "import contextlib, io, json, sys\n"
        "from terminal.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['--data-dir', {str(data_dir)!r}, 'import', {str(path)!r},"
        " '--symbol', 'BTC/USDT', '--timeframe', '1h', '--json'])\n"
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('PySide6', 'pyqtgraph', 'qasync'))\n"
        "print(json.dumps({'code': code, 'qt': qt, 'report': json.loads(out.getvalue())}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["code"], result["qt"], result["report"]["stored"]) == (0, [], 11)

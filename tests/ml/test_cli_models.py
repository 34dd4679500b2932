from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminal.cli import main
from terminal.core.model import Timeframe
from tests.factories import cdd_lines, make_series, write_lines


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("candles")
    return write_lines(folder / "Binance_ETHUSDT_1h.csv",
                       cdd_lines(make_series(1_500, Timeframe.H1, seed=8), symbol="ETH/USDT"))


def run_json(capsys: pytest.CaptureFixture[str], data_dir: Path, *argv: str) -> dict:
    assert main(["--data-dir", str(data_dir), *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def train(capsys: pytest.CaptureFixture[str], data_dir: Path, csv: Path, *extra: str) -> dict:
    return run_json(capsys, data_dir, "train", "--csv", str(csv), "--timeframe", "1h",
                    "--model", "ridge", "--horizons", "1,4", "--refit-every", "300",
                    "--for-venue", "binance", *extra)["model"]


def test_train_registers_and_models_manage_it(candle_file: Path, data_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    first = train(capsys, data_dir, candle_file, "--activate")
    assert first["active"] and first["symbol"] == "ETH/USDT" and first["venue"] == "binance"
    assert first["feature_set"] == "ohlcv-basic/1" and set(first["metrics"]) == {"1", "4"}
    assert first["has_skill"] is False and first["usable_for_trading"] is False
    assert (data_dir / "models" / first["weights_file"]).is_file()
    second = train(capsys, data_dir, candle_file)
    assert not second["active"]
    activated = run_json(capsys, data_dir, "models", "activate", str(second["id"]))["model"]
    assert activated["active"]
    listed = run_json(capsys, data_dir, "models", "list", "--symbol", "ETH/USDT",
                      "--timeframe", "1h", "--venue", "binance")["models"]
    assert [(m["id"], m["active"]) for m in listed] == [(second["id"], True),
                                                        (first["id"], False)]
    back = run_json(capsys, data_dir, "models", "rollback", "--symbol", "ETH/USDT",
                    "--timeframe", "1h", "--venue", "binance")["model"]
    assert back["id"] == first["id"] and back["active"]
    allowed = run_json(capsys, data_dir, "models", "override", str(first["id"]), "on")["model"]
    assert allowed["usable_for_trading"] and allowed["trading_override"]
    compared = run_json(capsys, data_dir, "models", "compare", str(first["id"]),
                        str(second["id"]))["models"]
    assert len(compared) == 2


def test_activating_a_model_whose_file_is_gone_fails_and_changes_nothing(
        candle_file: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = train(capsys, data_dir, candle_file)
    (data_dir / "models" / model["weights_file"]).unlink()
    assert main(["--data-dir", str(data_dir), "models", "activate", str(model["id"])]) == 1
    assert "is missing" in capsys.readouterr().err
    listed = run_json(capsys, data_dir, "models", "list")["models"]
    assert not any(m["active"] for m in listed)


@pytest.mark.parametrize(("argv", "message"), [
    (["models", "activate", "42"], "there is no model 42"),
    (["models", "activate", "x"], "a model id is a number"),
    (["models", "rollback", "--symbol", "BTC/USDT", "--timeframe", "1h"], "no earlier"),
    (["models", "list", "--symbol", "BTC/USDT"], "give both --symbol and --timeframe"),
])
def test_bad_model_commands(data_dir: Path, capsys: pytest.CaptureFixture[str],
                            argv: list[str], message: str) -> None:
    assert main(["--data-dir", str(data_dir), *argv]) == 1
    assert message in capsys.readouterr().err


def test_training_a_yardstick_or_too_little_history_is_refused(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = write_lines(tmp_path / "Binance_BTCUSDT_1h.csv",
                        cdd_lines(make_series(300, Timeframe.H1)))
    for model, message in (("persistence", "yardstick"), ("ridge", "too few")):
        code = main(["--data-dir", str(data_dir), "train", "--csv", str(short),
                     "--timeframe", "1h", "--model", model])
        assert code == 1
        assert message in capsys.readouterr().err
    assert not (data_dir / "models").exists() or not any((data_dir / "models").iterdir())


def test_schedules_are_stored_listed_and_deleted(data_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    saved = run_json(capsys, data_dir, "models", "schedule", "--symbol", "BTC/USDT",
                     "--timeframe", "1h", "--model", "lstm", "--daily", "03:00",
                     "--refresh-data")["schedule"]
    assert (saved["daily_at"], saved["refresh_data"]) == ("03:00", True)
    run_json(capsys, data_dir, "models", "schedule", "--symbol", "BTC/USDT", "--timeframe",
             "1h", "--model", "ridge", "--every-candles", "24")
    listed = run_json(capsys, data_dir, "models", "schedules")["schedules"]
    assert [(s["architecture"], s["every_candles"]) for s in listed] == [("lstm", None),
                                                                         ("ridge", 24)]
    assert main(["--data-dir", str(data_dir), "models", "unschedule", str(saved["id"])]) == 0
    capsys.readouterr()
    assert len(run_json(capsys, data_dir, "models", "schedules")["schedules"]) == 1
    for argv, message in ((["--daily", "25:00"], "HH:MM"), (["--every-candles", "0"], "between"),
                          (["--daily", "03:00", "--model", "persistence"], "yardstick")):
        code = main(["--data-dir", str(data_dir), "models", "schedule", "--symbol", "BTC/USDT",
                     "--timeframe", "1h", "--model", "lstm", *argv])
        assert code == 1 and message in capsys.readouterr().err
    assert len(run_json(capsys, data_dir, "models", "schedules")["schedules"]) == 1


def test_forecast_uses_the_active_model_or_the_one_named(
        candle_file: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["forecast", "--csv", str(candle_file), "--timeframe", "1h", "--for-venue", "binance"]
    assert main(["--data-dir", str(data_dir), *argv]) == 1
    assert "has no active model" in capsys.readouterr().err
    model = train(capsys, data_dir, candle_file, "--activate")
    report = run_json(capsys, data_dir, *argv)
    assert report["model"]["id"] == model["id"]
    forecasts = report["forecasts"]
    assert [f["horizon"] for f in forecasts] == [1, 4]
    assert all(f["price_10"] <= f["expected_price"] <= f["price_90"] for f in forecasts)
    assert forecasts[0]["verdict"] == model["metrics"]["1"]["verdict"]
    named = run_json(capsys, data_dir, "forecast", "--csv", str(candle_file), "--timeframe",
                     "1h", "--model-id", str(model["id"]))
    assert named["model"]["id"] == model["id"]

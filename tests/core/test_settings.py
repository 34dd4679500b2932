import json
from pathlib import Path

import pytest

from terminal.core.risk import RiskLimits
from terminal.core.settings import Settings, SettingsFile, SimulatedMarketSettings


def test_defaults_when_there_is_no_file(tmp_path: Path) -> None:
    settings_file = SettingsFile(tmp_path)
    assert settings_file.load() == Settings()
    assert settings_file.problem is None


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    settings_file = SettingsFile(tmp_path / "new-folder")
    chosen = Settings(simulated=SimulatedMarketSettings(speed=60, seed=3, history_days=30),
                      risk=RiskLimits(risk_per_trade_pct=1, max_drawdown_pct=20))
    settings_file.save(chosen)
    assert settings_file.load() == chosen
    assert not list((tmp_path / "new-folder").glob("*.tmp"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "does not hold a JSON object"),
        (json.dumps({"simulated": {"speed": -1}}), "greater than 0"),
        (json.dumps({"simulated": {"history_days": "many"}}), "simulated.history_days"),
        (json.dumps({"version": 99}), "newer version"),
        (json.dumps({"colour": "blue"}), "Extra inputs are not permitted"),
        (json.dumps({"risk": {"max_drawdown_pct": 0}}), "risk.max_drawdown_pct"),
        (json.dumps({"risk": {"min_position_quote": 50, "max_position_quote": 10}}),
         "min_position_quote (50) is above max_position_quote (10)"),
    ],
)
def test_a_bad_file_is_kept_aside_and_defaults_used(tmp_path: Path, content: str,
                                                    reason: str) -> None:
    settings_file = SettingsFile(tmp_path)
    settings_file.path.write_text(content)
    assert settings_file.load() == Settings()
    assert settings_file.problem is not None and reason in settings_file.problem
    kept = tmp_path / "settings.broken-1.json"
    assert kept.read_text() == content
    assert str(kept) in settings_file.problem

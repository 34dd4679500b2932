import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from terminal.core.risk import RiskLimits
from terminal.core.settings import (
    AppearanceSettings,
    DataSettings,
    MarketSettings,
    Settings,
    SettingsFile,
    SimulatedMarketSettings,
    TradingSettings,
)


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


def test_a_version_1_file_loads_with_the_new_sections_at_their_defaults(tmp_path: Path) -> None:
    settings_file = SettingsFile(tmp_path)
    settings_file.path.write_text(json.dumps({"version": 1, "simulated": {"speed": 5.0}}))
    loaded = settings_file.load()
    assert settings_file.problem is None
    assert loaded.version == 3
    assert loaded.simulated.speed == 5.0
    assert loaded.trading == TradingSettings()
    assert loaded.appearance.theme == "dark"
    assert loaded.first_run_done is False


def test_trading_data_and_appearance_round_trip(tmp_path: Path) -> None:
    settings_file = SettingsFile(tmp_path)
    chosen = Settings(
        trading=TradingSettings(pairs=("sol/usdt", "BTC/USDT"), timeframe="4h",
                                strategy="rsi_mean_reversion", automated_trading=True),
        data=DataSettings(poll_interval_s=10, retrain_schedule="WEEKLY Mon 04:30"),
        appearance=AppearanceSettings(theme="light"), first_run_done=True)
    assert chosen.trading.pairs == ("SOL/USDT", "BTC/USDT")
    assert chosen.data.retrain_schedule == "weekly mon 04:30"
    settings_file.save(chosen)
    assert settings_file.load() == chosen


@pytest.mark.parametrize(("section", "values", "message"), [
    ("trading", {"pairs": ["BTCUSDT"]}, "not a pair like BTC/USDT"),
    ("trading", {"pairs": ["BTC/USDT", "btc/usdt"]}, "listed twice"),
    ("trading", {"pairs": [f"C{i:02d}/USDT" for i in range(11)]}, "at most 10"),
    ("trading", {"timeframe": "2m"}, "unknown timeframe"),
    ("trading", {"strategy": "moon"}, "unknown strategy"),
    ("data", {"retrain_schedule": "sometimes"}, "cannot read the schedule"),
    ("data", {"poll_interval_s": 0}, "greater than or equal to 1"),
    ("appearance", {"theme": "neon"}, "'dark' or 'light'"),
])
def test_bad_values_are_refused_with_the_reason(section, values, message) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({section: values})


def test_a_version_2_file_keeps_everything_and_starts_on_the_simulated_market(
        tmp_path: Path) -> None:
    settings_file = SettingsFile(tmp_path)
    settings_file.path.write_text(json.dumps({
        "version": 2, "trading": {"pairs": ["SOL/USDT"], "automated_trading": True},
        "data": {"refresh_interval_s": 60, "retrain_schedule": "every 6h"}}))
    loaded = settings_file.load()
    assert settings_file.problem is None
    assert loaded.version == 3
    assert loaded.trading.pairs == ("SOL/USDT",)
    assert loaded.market == MarketSettings()
    assert loaded.market.simulated and not loaded.market.live_trading
    assert loaded.data == DataSettings(retrain_schedule="every 6h")  # the unused poll went


def test_the_market_source_is_an_exchange_id_and_live_trading_needs_one() -> None:
    chosen = MarketSettings(source=" Binance ", sandbox=True, live_trading=True,
                            watchlist=("sol/usdt", "XRP/USDT"))
    assert (chosen.source, chosen.simulated, chosen.watchlist) == (
        "binance", False, ("SOL/USDT", "XRP/USDT"))
    for field, value in (("live_trading", True), ("sandbox", True)):
        with pytest.raises(ValidationError, match="needs an exchange as the source") as caught:
            MarketSettings(**{field: value})
        assert caught.value.errors()[0]["loc"] == (field,)
    with pytest.raises(ValidationError, match="is not an exchange id"):
        MarketSettings(source="bin ance")
    with pytest.raises(ValidationError, match="a pair is listed twice"):
        MarketSettings(source="kraken", watchlist=("BTC/USD", "btc/usd"))
    with pytest.raises(ValidationError, match="at most 20"):
        MarketSettings(watchlist=tuple(f"C{i:02d}/USDT" for i in range(21)))


def test_a_version_2_file_with_a_broken_data_section_is_set_aside_not_a_crash(
        tmp_path: Path) -> None:
    settings_file = SettingsFile(tmp_path)
    settings_file.path.write_text(json.dumps({"version": 2, "data": None}))
    assert settings_file.load() == Settings()
    assert settings_file.problem is not None and "data" in settings_file.problem

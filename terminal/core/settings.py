"""Typed, versioned user settings, stored as JSON in the platform's config folder.

Secrets are never settings: API keys live in the OS keyring. Window layout and the chart's
last selection live in QSettings.
A settings file that cannot be read is moved aside (never overwritten) and the defaults are
used, with a message saying where the old file went.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe
from terminal.core.paths import APP_NAME
from terminal.core.risk import RiskLimits
from terminal.core.schedule import parse_schedule
from terminal.core.secrets import check_exchange_id
from terminal.core.services import DEFAULT_HISTORY_DAYS
from terminal.core.strategies import STRATEGIES

SETTINGS_FILENAME = "settings.json"


class SimulatedMarketSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    speed: float = Field(default=1.0, gt=0, le=3600,
                         description="simulated seconds per real second")
    seed: int | None = Field(default=None, ge=0,
                             description="which simulated market; None is the built-in one")
    history_days: int = Field(default=DEFAULT_HISTORY_DAYS, ge=1, le=730,
                              description="days of history generated on first start")


#: The most pairs traded and watched at once.
MAX_PAIRS = 10
_PAIR = re.compile(r"[A-Z0-9]{2,12}/[A-Z0-9]{2,12}")


def _check_pairs(pairs: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = tuple(pair.strip().upper() for pair in pairs)
    for pair in cleaned:
        if not _PAIR.fullmatch(pair):
            raise ValueError(f"{pair!r} is not a pair like BTC/USDT")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError("a pair is listed twice")
    return cleaned


class TradingSettings(BaseModel):
    """What is traded and how: pairs, timeframe, strategy, and whether trading is automatic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: tuple[str, ...] = Field(
        default=("BTC/USDT", "ETH/USDT"), min_length=1, max_length=MAX_PAIRS,
        description="pairs traded and shown in the watchlist, as BASE/QUOTE")
    timeframe: str = Field(default="1h", description="candle timeframe strategies trade on")
    strategy: str = Field(default="sma_crossover", description="strategy of automated trading")
    model: str | None = Field(default=None, description="model whose predictions are used;"
                                                        " none until one is trained")
    automated_trading: bool = Field(default=False,
                                    description="let the strategy place orders by itself")

    @field_validator("pairs")
    @classmethod
    def _valid_pairs(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        return _check_pairs(pairs)

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, code: str) -> str:
        codes = [tf.code for tf in Timeframe]
        if code not in codes:
            raise ValueError(f"unknown timeframe {code!r}; one of {', '.join(codes)}")
        return code

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}")
        return name


#: The market source that needs no exchange: the built-in simulated market.
SIMULATED_SOURCE = "simulated"
#: Pairs watched besides the traded ones.
MAX_WATCHED_PAIRS = 20
#: Days of 1-minute history fetched from an exchange on first start: at 1,000 candles per
#: request, 30 days is 44 requests per pair.
DEFAULT_EXCHANGE_HISTORY_DAYS = 30


class MarketSettings(BaseModel):
    """Where prices come from and where orders go; takes effect at the next start.

    ``source`` is the simulated market or a ccxt exchange id. On an exchange the terminal
    paper-trades on its public prices unless ``live_trading`` is on, which sends orders to
    the exchange with the API key stored for it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(default=SIMULATED_SOURCE,
                        description="where prices come from: the simulated market or an"
                                    " exchange (its public market data; no key needed)")
    sandbox: bool = Field(default=False,
                          description="use the exchange's testnet (its prices and, when"
                                      " trading live, its test money)")
    live_trading: bool = Field(default=False,
                               description="send orders to the exchange with real money,"
                                           " using its stored API key; off: paper trading")
    watchlist: tuple[str, ...] = Field(
        default=(), max_length=MAX_WATCHED_PAIRS,
        description="pairs an exchange's watchlist shows besides the traded ones (its other"
                    " pairs are not downloaded; the simulated market shows all of its own)")
    history_days: int = Field(default=DEFAULT_EXCHANGE_HISTORY_DAYS, ge=1, le=730,
                              description="days of 1-minute candles fetched from an exchange"
                                          " when a pair is new to the store; from the next"
                                          " start")

    @field_validator("source")
    @classmethod
    def _source_id(cls, source: str) -> str:
        try:
            return check_exchange_id(source)
        except InvalidArgument:
            raise ValueError(f"{source!r} is not an exchange id such as binance or kraken"
                             ) from None

    @field_validator("sandbox", "live_trading")
    @classmethod
    def _needs_exchange(cls, on: bool, info: ValidationInfo) -> bool:
        if on and info.data.get("source", SIMULATED_SOURCE) == SIMULATED_SOURCE:
            raise ValueError("needs an exchange as the source")
        return on

    @field_validator("watchlist")
    @classmethod
    def _valid_watchlist(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        return _check_pairs(pairs)

    @property
    def simulated(self) -> bool:
        return self.source == SIMULATED_SOURCE


class DataSettings(BaseModel):
    """How often live data is polled and models retrained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    poll_interval_s: int = Field(default=2, ge=1, le=60,
                                 description="seconds between polls of an exchange's live"
                                             " candles where it streams none (websocket);"
                                             " from the next start")
    retrain_schedule: str = Field(default="daily 03:00",
                                  description="when models retrain: off, every 6h, daily 03:00,"
                                              " weekly mon 03:00 (UTC)")

    @field_validator("retrain_schedule")
    @classmethod
    def _readable_schedule(cls, text: str) -> str:
        try:
            return parse_schedule(text).text
        except InvalidArgument as error:
            raise ValueError(str(error)) from None


class AppearanceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    theme: Literal["dark", "light"] = Field(default="dark", description="colour theme")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 3
    market: MarketSettings = MarketSettings()
    simulated: SimulatedMarketSettings = SimulatedMarketSettings()
    risk: RiskLimits = RiskLimits()
    trading: TradingSettings = TradingSettings()
    data: DataSettings = DataSettings()
    appearance: AppearanceSettings = AppearanceSettings()
    first_run_done: bool = Field(default=False,
                                 description="the first-run wizard has been shown")


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added trading, data, appearance and first_run_done, all with defaults."""
    return {**raw, "version": 2}


def _v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 3 added the market section (the simulated market by default) and replaced
    ``data.refresh_interval_s``, which nothing used, by ``data.poll_interval_s``."""
    data = raw.get("data")
    if isinstance(data, dict):
        raw = {**raw, "data": {k: v for k, v in data.items() if k != "refresh_interval_s"}}
    return {**raw, "version": 3}


SETTINGS_VERSION = Settings().version
#: Step ``i`` turns the raw JSON of version ``i + 1`` into version ``i + 2``. Append only.
_MIGRATIONS: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...] = (_v1_to_v2, _v2_to_v3)


def default_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


class SettingsFile:
    """Loads and saves :class:`Settings` at ``folder / settings.json``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or default_config_dir()) / SETTINGS_FILENAME
        #: Set by :meth:`load` when the file on disk could not be used; shown to the user.
        self.problem: str | None = None

    def load(self) -> Settings:
        self.problem = None
        if not self.path.exists():
            return Settings()
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("the file does not hold a JSON object")
            return Settings.model_validate(_migrate(raw))
        except (OSError, ValueError, ValidationError, InvalidArgument) as error:
            kept = self._set_aside()
            self.problem = (f"settings in {self.path} could not be used ({_first_line(error)});"
                            f" defaults are in effect and the old file was kept as {kept}")
            return Settings()

    def save(self, settings: Settings) -> None:
        """Write atomically: a crash mid-save leaves the previous file intact."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(settings.model_dump_json(indent=2), encoding="utf-8")
        os.replace(temporary, self.path)

    def _set_aside(self) -> Path:
        for n in range(1, 1000):
            candidate = self.path.with_name(f"{self.path.stem}.broken-{n}.json")
            if not candidate.exists():
                os.replace(self.path, candidate)
                return candidate
        raise InvalidArgument(f"too many broken settings files next to {self.path}")


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    version = raw.get("version", 1)
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"unknown settings version {version!r}")
    if version > SETTINGS_VERSION:
        raise ValueError(f"written by a newer version of the terminal (settings v{version})")
    for step in _MIGRATIONS[version - 1:]:
        raw = step(raw)
    return raw


def problem_text(problem: ErrorDetails) -> str:
    """One problem of a validation as a field shows it: pydantic's reason without its
    ``Value error,`` prefix (the reasons our checks raise are written for people)."""
    return problem["msg"].removeprefix("Value error, ")


def describe_validation_error(error: ValidationError) -> str:
    """``simulated.speed: Input should be greater than 0`` for each problem, joined by ``;``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors()
    )


def _first_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return describe_validation_error(error)
    return str(error).strip().splitlines()[0]

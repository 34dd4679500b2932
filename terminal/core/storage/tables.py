"""The current database schema as SQLModel tables.

These classes describe the schema the latest migration produces; the migrations in
:mod:`terminal.core.storage.database` are the frozen history that builds it, and a test checks
that the two agree. Rows map to domain types only inside the repositories of this package.
"""

from __future__ import annotations

from sqlalchemy import Index, LargeBinary, PrimaryKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel


class SchemaVersionRow(SQLModel, table=True):
    __tablename__ = "schema_version"

    id: int = Field(default=1, primary_key=True)
    version: int


class CandleSeriesRow(SQLModel, table=True):
    """One (venue, symbol, timeframe) history. Candles live in blocks that point here."""

    __tablename__ = "candle_series"
    __table_args__ = (UniqueConstraint("venue", "symbol", "timeframe"),)

    id: int | None = Field(default=None, primary_key=True)
    venue: str
    symbol: str
    timeframe: str


class CandleBlockRow(SQLModel, table=True):
    """A run of up to ``BLOCK_BARS`` candles of one series, packed as ``CANDLE_DTYPE`` records.

    ``block_start`` is the open time where the block's fixed span begins; ``first_time`` and
    ``last_time`` are the open times of the candles actually present, kept in the row so that
    summaries never have to unpack the data.
    """

    __tablename__ = "candle_block"

    series_id: int = Field(foreign_key="candle_series.id", primary_key=True)
    block_start: int = Field(primary_key=True)
    first_time: int
    last_time: int
    count: int
    data: bytes = Field(sa_type=LargeBinary)


class ModelRow(SQLModel, table=True):
    """A registered forecasting model; JSON columns hold hyperparameters, horizons, metrics."""

    __tablename__ = "ml_model"
    __table_args__ = (Index("ix_ml_model_series", "venue", "symbol", "timeframe"),)

    id: int | None = Field(default=None, primary_key=True)
    venue: str
    symbol: str
    timeframe: str
    architecture: str
    hyperparameters: str
    feature_set: str
    horizons: str
    train_start: int
    train_end: int
    data_fingerprint: str
    metrics: str
    verdict: str
    has_skill: bool
    weights_file: str
    created_at: int
    active: bool
    trading_override: bool


class ModelActivationRow(SQLModel, table=True):
    """One activation of a model; rolling back removes the latest and reactivates the one
    before it."""

    __tablename__ = "ml_activation"

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="ml_model.id")
    activated_at: int


class PredictionRow(SQLModel, table=True):
    """A stored forecast; ``realised_return`` is filled in once its horizon has passed."""

    __tablename__ = "ml_prediction"
    __table_args__ = (PrimaryKeyConstraint("model_id", "made_from", "horizon_bars"),)

    model_id: int = Field(foreign_key="ml_model.id")
    made_from: int
    horizon_bars: int
    expected_return: float
    quantile_10: float
    quantile_50: float
    quantile_90: float
    prob_up: float
    created_at: int
    realised_return: float | None = None


class ScheduleRow(SQLModel, table=True):
    """A retraining schedule for one architecture on one series."""

    __tablename__ = "ml_schedule"
    __table_args__ = (UniqueConstraint("venue", "symbol", "timeframe", "architecture"),)

    id: int | None = Field(default=None, primary_key=True)
    venue: str
    symbol: str
    timeframe: str
    architecture: str
    daily_at: str | None = None
    every_candles: int | None = None
    refresh_data: bool
    enabled: bool
    last_run_at: int | None = None

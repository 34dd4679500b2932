"""The current database schema as SQLModel tables.

These classes describe the schema the latest migration produces; the migrations in
:mod:`terminal.core.storage.database` are the frozen history that builds it, and a test checks
that the two agree. Rows map to domain types only inside the repositories of this package.
"""

from __future__ import annotations

from sqlalchemy import LargeBinary, UniqueConstraint
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

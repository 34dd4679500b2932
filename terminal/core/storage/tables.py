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


class TradeOrderRow(SQLModel, table=True):
    """One of our orders as the order manager knows it. Decimals are stored as text."""

    __tablename__ = "trade_order"

    client_order_id: str = Field(primary_key=True)
    venue: str = Field(index=True)
    mode: str
    strategy: str
    reason: str
    symbol: str
    side: str
    type: str
    amount: str
    price: str | None = None
    stop_price: str | None = None
    time_in_force: str
    status: str = Field(index=True)
    filled: str
    average_price: str | None = None
    venue_order_id: str | None = None
    reject_reason: str | None = None
    take_profit: str | None = None
    stop_loss: str | None = None
    trailing_stop_pct: str | None = None
    created_at: int
    updated_at: int


class TradeFillRow(SQLModel, table=True):
    """One execution of one of our orders, as the venue reported it."""

    __tablename__ = "trade_fill"

    venue: str = Field(primary_key=True)
    trade_id: str = Field(primary_key=True)
    client_order_id: str = Field(index=True)
    mode: str
    strategy: str
    symbol: str
    side: str
    price: str
    amount: str
    fee: str
    fee_currency: str
    liquidity: str
    timestamp: int = Field(index=True)


class ClosedTradeRow(SQLModel, table=True):
    """A round trip: (part of) a position opened by earlier fills and closed by one fill."""

    __tablename__ = "closed_trade"

    id: int | None = Field(default=None, primary_key=True)
    venue: str
    mode: str
    strategy: str
    symbol: str
    side: str
    amount: str
    entry_time: int
    exit_time: int = Field(index=True)
    entry_price: str
    exit_price: str
    entry_fee: str
    exit_fee: str
    pnl: str
    exit_trade_id: str
    exit_client_order_id: str


class AccountBalanceRow(SQLModel, table=True):
    """The last balances a venue reported, kept for the dashboard and for offline starts."""

    __tablename__ = "account_balance"

    venue: str = Field(primary_key=True)
    currency: str = Field(primary_key=True)
    free: str
    used: str
    updated_at: int


class PaperBalanceRow(SQLModel, table=True):
    """A paper account's balance of one currency."""

    __tablename__ = "paper_balance"

    venue: str = Field(primary_key=True)
    currency: str = Field(primary_key=True)
    free: str
    used: str


class PaperOrderRow(SQLModel, table=True):
    """An order on a paper account, with what the venue needs to keep working it.

    ``reserved`` is the balance held for the order (quote for buys, base for sells);
    ``triggered`` marks a stop-limit whose stop was reached.
    """

    __tablename__ = "paper_order"

    venue: str = Field(primary_key=True)
    client_order_id: str = Field(primary_key=True)
    venue_order_id: str
    symbol: str
    side: str
    type: str
    amount: str
    price: str | None = None
    stop_price: str | None = None
    time_in_force: str
    status: str
    filled: str
    average_price: str | None = None
    reject_reason: str | None = None
    reserved: str
    triggered: bool
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_pct: float | None = None
    created_at: int
    updated_at: int


class PaperFillRow(SQLModel, table=True):
    """An execution on a paper account."""

    __tablename__ = "paper_fill"

    venue: str = Field(primary_key=True)
    trade_id: str = Field(primary_key=True)
    seq: int
    client_order_id: str
    symbol: str
    side: str
    price: str
    amount: str
    fee: str
    fee_currency: str
    liquidity: str
    timestamp: int


class PaperAccountRow(SQLModel, table=True):
    """A paper account: its quote currency, starting cash and counters."""

    __tablename__ = "paper_account"

    venue: str = Field(primary_key=True)
    quote: str
    starting_cash: str
    next_seq: int
    reset_at: int


class PaperCursorRow(SQLModel, table=True):
    """How far a paper account has followed one symbol's prices: the last candle state seen.

    Orders are worked on the price movement after this state, so a restart neither misses
    nor replays a move.
    """

    __tablename__ = "paper_cursor"

    venue: str = Field(primary_key=True)
    symbol: str = Field(primary_key=True)
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool


class PaperProtectionRow(SQLModel, table=True):
    """Protective exits attached to a paper position by the entry order that opened it.

    ``amount`` is what the exits sell; ``high_water`` is where the trailing stop follows.
    """

    __tablename__ = "paper_protection"

    venue: str = Field(primary_key=True)
    symbol: str = Field(primary_key=True)
    client_order_id: str
    amount: str
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_pct: float | None = None
    high_water: float


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

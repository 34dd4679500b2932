"""Opening the SQLite store: WAL mode, explicit transactions, schema migrations, clear errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from terminal.core.errors import StoreError

DATABASE_FILENAME = "terminal.sqlite3"
BUSY_TIMEOUT_MS = 5_000


def _migrate_to_1(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE candle_series ("
        " id INTEGER NOT NULL PRIMARY KEY,"
        " venue VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " timeframe VARCHAR NOT NULL,"
        " UNIQUE (venue, symbol, timeframe))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE candle_block ("
        " series_id INTEGER NOT NULL REFERENCES candle_series (id),"
        " block_start INTEGER NOT NULL,"
        " first_time INTEGER NOT NULL,"
        " last_time INTEGER NOT NULL,"
        " count INTEGER NOT NULL,"
        " data BLOB NOT NULL,"
        " PRIMARY KEY (series_id, block_start)) WITHOUT ROWID"
    )


def _migrate_to_2(conn: Connection) -> None:
    """Trading: our orders, fills and closed trades; venue balances; paper accounts."""
    conn.exec_driver_sql(
        "CREATE TABLE trade_order ("
        " client_order_id VARCHAR NOT NULL PRIMARY KEY,"
        " venue VARCHAR NOT NULL,"
        " mode VARCHAR NOT NULL,"
        " strategy VARCHAR NOT NULL,"
        " reason VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " side VARCHAR NOT NULL,"
        " type VARCHAR NOT NULL,"
        " amount VARCHAR NOT NULL,"
        " price VARCHAR,"
        " stop_price VARCHAR,"
        " time_in_force VARCHAR NOT NULL,"
        " status VARCHAR NOT NULL,"
        " filled VARCHAR NOT NULL,"
        " average_price VARCHAR,"
        " venue_order_id VARCHAR,"
        " reject_reason VARCHAR,"
        " take_profit VARCHAR,"
        " stop_loss VARCHAR,"
        " trailing_stop_pct VARCHAR,"
        " created_at INTEGER NOT NULL,"
        " updated_at INTEGER NOT NULL)"
    )
    conn.exec_driver_sql("CREATE INDEX ix_trade_order_venue ON trade_order (venue)")
    conn.exec_driver_sql("CREATE INDEX ix_trade_order_status ON trade_order (status)")
    conn.exec_driver_sql(
        "CREATE TABLE trade_fill ("
        " venue VARCHAR NOT NULL,"
        " trade_id VARCHAR NOT NULL,"
        " client_order_id VARCHAR NOT NULL,"
        " mode VARCHAR NOT NULL,"
        " strategy VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " side VARCHAR NOT NULL,"
        " price VARCHAR NOT NULL,"
        " amount VARCHAR NOT NULL,"
        " fee VARCHAR NOT NULL,"
        " fee_currency VARCHAR NOT NULL,"
        " liquidity VARCHAR NOT NULL,"
        " timestamp INTEGER NOT NULL,"
        " PRIMARY KEY (venue, trade_id))"
    )
    conn.exec_driver_sql(
        "CREATE INDEX ix_trade_fill_client_order_id ON trade_fill (client_order_id)")
    conn.exec_driver_sql("CREATE INDEX ix_trade_fill_timestamp ON trade_fill (timestamp)")
    conn.exec_driver_sql(
        "CREATE TABLE closed_trade ("
        " id INTEGER NOT NULL PRIMARY KEY,"
        " venue VARCHAR NOT NULL,"
        " mode VARCHAR NOT NULL,"
        " strategy VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " side VARCHAR NOT NULL,"
        " amount VARCHAR NOT NULL,"
        " entry_time INTEGER NOT NULL,"
        " exit_time INTEGER NOT NULL,"
        " entry_price VARCHAR NOT NULL,"
        " exit_price VARCHAR NOT NULL,"
        " entry_fee VARCHAR NOT NULL,"
        " exit_fee VARCHAR NOT NULL,"
        " pnl VARCHAR NOT NULL,"
        " exit_trade_id VARCHAR NOT NULL,"
        " exit_client_order_id VARCHAR NOT NULL)"
    )
    conn.exec_driver_sql("CREATE INDEX ix_closed_trade_exit_time ON closed_trade (exit_time)")
    conn.exec_driver_sql(
        "CREATE TABLE account_balance ("
        " venue VARCHAR NOT NULL,"
        " currency VARCHAR NOT NULL,"
        " free VARCHAR NOT NULL,"
        " used VARCHAR NOT NULL,"
        " updated_at INTEGER NOT NULL,"
        " PRIMARY KEY (venue, currency))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE paper_account ("
        " venue VARCHAR NOT NULL PRIMARY KEY,"
        " quote VARCHAR NOT NULL,"
        " starting_cash VARCHAR NOT NULL,"
        " next_seq INTEGER NOT NULL,"
        " reset_at INTEGER NOT NULL)"
    )
    conn.exec_driver_sql(
        "CREATE TABLE paper_balance ("
        " venue VARCHAR NOT NULL,"
        " currency VARCHAR NOT NULL,"
        " free VARCHAR NOT NULL,"
        " used VARCHAR NOT NULL,"
        " PRIMARY KEY (venue, currency))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE paper_order ("
        " venue VARCHAR NOT NULL,"
        " client_order_id VARCHAR NOT NULL,"
        " venue_order_id VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " side VARCHAR NOT NULL,"
        " type VARCHAR NOT NULL,"
        " amount VARCHAR NOT NULL,"
        " price VARCHAR,"
        " stop_price VARCHAR,"
        " time_in_force VARCHAR NOT NULL,"
        " status VARCHAR NOT NULL,"
        " filled VARCHAR NOT NULL,"
        " average_price VARCHAR,"
        " reject_reason VARCHAR,"
        " reserved VARCHAR NOT NULL,"
        " triggered BOOLEAN NOT NULL,"
        " stop_loss FLOAT,"
        " take_profit FLOAT,"
        " trailing_pct FLOAT,"
        " created_at INTEGER NOT NULL,"
        " updated_at INTEGER NOT NULL,"
        " PRIMARY KEY (venue, client_order_id))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE paper_fill ("
        " venue VARCHAR NOT NULL,"
        " trade_id VARCHAR NOT NULL,"
        " seq INTEGER NOT NULL,"
        " client_order_id VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " side VARCHAR NOT NULL,"
        " price VARCHAR NOT NULL,"
        " amount VARCHAR NOT NULL,"
        " fee VARCHAR NOT NULL,"
        " fee_currency VARCHAR NOT NULL,"
        " liquidity VARCHAR NOT NULL,"
        " timestamp INTEGER NOT NULL,"
        " PRIMARY KEY (venue, trade_id))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE paper_cursor ("
        " venue VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " open_time INTEGER NOT NULL,"
        " open FLOAT NOT NULL,"
        " high FLOAT NOT NULL,"
        " low FLOAT NOT NULL,"
        " close FLOAT NOT NULL,"
        " volume FLOAT NOT NULL,"
        " closed BOOLEAN NOT NULL,"
        " PRIMARY KEY (venue, symbol))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE paper_protection ("
        " venue VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " client_order_id VARCHAR NOT NULL,"
        " amount VARCHAR NOT NULL,"
        " stop_loss FLOAT,"
        " take_profit FLOAT,"
        " trailing_pct FLOAT,"
        " high_water FLOAT NOT NULL,"
        " PRIMARY KEY (venue, symbol))"
    )


def _migrate_to_3(conn: Connection) -> None:
    """Forecasting: registered models, their activation history, predictions, schedules."""
    conn.exec_driver_sql(
        "CREATE TABLE ml_model ("
        " id INTEGER NOT NULL PRIMARY KEY,"
        " venue VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " timeframe VARCHAR NOT NULL,"
        " architecture VARCHAR NOT NULL,"
        " hyperparameters VARCHAR NOT NULL,"
        " feature_set VARCHAR NOT NULL,"
        " horizons VARCHAR NOT NULL,"
        " train_start INTEGER NOT NULL,"
        " train_end INTEGER NOT NULL,"
        " data_fingerprint VARCHAR NOT NULL,"
        " metrics VARCHAR NOT NULL,"
        " verdict VARCHAR NOT NULL,"
        " has_skill BOOLEAN NOT NULL,"
        " weights_file VARCHAR NOT NULL,"
        " created_at INTEGER NOT NULL,"
        " active BOOLEAN NOT NULL,"
        " trading_override BOOLEAN NOT NULL)"
    )
    conn.exec_driver_sql("CREATE INDEX ix_ml_model_series ON ml_model (venue, symbol, timeframe)")
    conn.exec_driver_sql(
        "CREATE TABLE ml_activation ("
        " id INTEGER NOT NULL PRIMARY KEY,"
        " model_id INTEGER NOT NULL REFERENCES ml_model (id),"
        " activated_at INTEGER NOT NULL)"
    )
    conn.exec_driver_sql(
        "CREATE TABLE ml_prediction ("
        " model_id INTEGER NOT NULL REFERENCES ml_model (id),"
        " made_from INTEGER NOT NULL,"
        " horizon_bars INTEGER NOT NULL,"
        " expected_return FLOAT NOT NULL,"
        " quantile_10 FLOAT NOT NULL,"
        " quantile_50 FLOAT NOT NULL,"
        " quantile_90 FLOAT NOT NULL,"
        " prob_up FLOAT NOT NULL,"
        " created_at INTEGER NOT NULL,"
        " realised_return FLOAT,"
        " PRIMARY KEY (model_id, made_from, horizon_bars))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE ml_schedule ("
        " id INTEGER NOT NULL PRIMARY KEY,"
        " venue VARCHAR NOT NULL,"
        " symbol VARCHAR NOT NULL,"
        " timeframe VARCHAR NOT NULL,"
        " architecture VARCHAR NOT NULL,"
        " daily_at VARCHAR,"
        " every_candles INTEGER,"
        " refresh_data BOOLEAN NOT NULL,"
        " enabled BOOLEAN NOT NULL,"
        " last_run_at INTEGER,"
        " UNIQUE (venue, symbol, timeframe, architecture))"
    )


#: Migration ``i`` brings a database from version ``i`` to ``i + 1``. Append only: released
#: steps are history that users' databases have already gone through.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_migrate_to_1, _migrate_to_2,
                                                        _migrate_to_3)
SCHEMA_VERSION = len(MIGRATIONS)


def describe_database_error(error: BaseException, path: Path) -> str:
    """Turn an SQLite failure into a sentence a user can act on."""
    text = str(getattr(error, "orig", None) or error).lower()
    if "readonly" in text or "read-only" in text:
        return f"the database {path} is read-only; check the file's permissions"
    if "locked" in text or "busy" in text:
        return (f"the database {path} is locked by another program (is another copy of the "
                "terminal running?); try again when it has finished")
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return f"{path} is not a valid terminal database (the file is damaged or of another kind)"
    if "unable to open" in text:
        return f"cannot open the database {path}; check that its folder exists and is writable"
    if "disk" in text and ("full" in text or "i/o" in text):
        return f"cannot write the database {path}: {text}"
    return f"database error in {path}: {text}"


class Database:
    """One SQLite file. Use :meth:`read` and :meth:`write` to get a connection in a transaction.

    A write transaction takes SQLite's write lock when it begins (``BEGIN IMMEDIATE``), so two
    writers queue instead of failing half-way; readers never block thanks to WAL mode.
    """

    def __init__(self, path: Path, engine: Engine) -> None:
        self.path = path
        self._engine = engine

    @classmethod
    def open(cls, path: Path) -> Database:
        """Open (creating and migrating when needed) the database at ``path``."""
        if not path.parent.is_dir():
            raise StoreError(f"the data directory {path.parent} does not exist")
        engine = create_engine(
            f"sqlite:///{path}",
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(engine, "connect", _configure_connection)
        event.listen(engine, "begin", _begin_transaction)
        database = cls(path, engine)
        try:
            database._migrate()
        except BaseException:
            engine.dispose()
            raise
        return database

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._translated_errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits when the block ends and rolls back when it raises."""
        with self._translated_errors(), self._engine.connect() as conn:
            conn = conn.execution_options(sqlite_write=True)
            with conn.begin():
                yield conn

    @property
    def schema_version(self) -> int:
        with self.read() as conn:
            return _read_version(conn)

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except (DBAPIError, sqlite3.Error) as error:
            raise StoreError(describe_database_error(error, self.path)) from error
        except SQLAlchemyError as error:
            raise StoreError(f"database error in {self.path}: {error}") from error

    def _migrate(self) -> None:
        with self.write() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " id INTEGER NOT NULL PRIMARY KEY, version INTEGER NOT NULL)"
            )
            version = _read_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database {self.path} was written by a newer version of the terminal "
                    f"(schema {version}, this version knows up to {SCHEMA_VERSION}); "
                    "upgrade the terminal or choose another data directory"
                )
            for step in MIGRATIONS[version:]:
                step(conn)
            if version < SCHEMA_VERSION:
                conn.exec_driver_sql(
                    "INSERT INTO schema_version (id, version) VALUES (1, ?)"
                    " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                    (SCHEMA_VERSION,),
                )


def _read_version(conn: Connection) -> int:
    row = conn.exec_driver_sql("SELECT version FROM schema_version WHERE id = 1").first()
    return int(row[0]) if row else 0


def _configure_connection(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself; pysqlite's implicit transactions
    # would otherwise start late and make IMMEDIATE impossible.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_transaction(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")

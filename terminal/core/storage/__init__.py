"""The local SQLite store, reached through repositories that speak the domain model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Connection

from terminal.core.storage.candles import CandleRepository, SeriesSummary, UpsertResult
from terminal.core.storage.database import DATABASE_FILENAME, SCHEMA_VERSION, Database
from terminal.core.storage.forecasts import ForecastRepository
from terminal.core.storage.orders import OrderRepository
from terminal.core.storage.paper import PaperRepository

__all__ = [
    "DATABASE_FILENAME",
    "SCHEMA_VERSION",
    "CandleRepository",
    "ForecastRepository",
    "OrderRepository",
    "PaperRepository",
    "SeriesSummary",
    "Store",
    "Transaction",
    "UpsertResult",
]


class Transaction:
    """Repositories bound to one open write transaction (see :meth:`Store.transaction`)."""

    def __init__(self, conn: Connection) -> None:
        def scope() -> nullcontext[Connection]:
            return nullcontext(conn)

        self.candles = CandleRepository(scope, scope)
        self.orders = OrderRepository(scope, scope)
        self.paper = PaperRepository(scope, scope)
        self.forecasts = ForecastRepository(scope, scope)


class Store:
    """The application's database. Each repository call is its own transaction unless it is
    made through :meth:`transaction`, which groups several calls into one all-or-nothing unit.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self.candles = CandleRepository(database.read, database.write)
        self.orders = OrderRepository(database.read, database.write)
        self.paper = PaperRepository(database.read, database.write)
        self.forecasts = ForecastRepository(database.read, database.write)

    @classmethod
    def open(cls, data_dir: Path) -> Store:
        return cls(Database.open(data_dir / DATABASE_FILENAME))

    @property
    def path(self) -> Path:
        return self._database.path

    @property
    def schema_version(self) -> int:
        return self._database.schema_version

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Everything done through the yielded object commits together or not at all."""
        with self._database.write() as conn:
            yield Transaction(conn)

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

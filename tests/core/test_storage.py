import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from terminal.core.errors import StoreError
from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import DATABASE_FILENAME, SCHEMA_VERSION, Store
from terminal.core.storage import database as database_module
from terminal.core.storage.candles import BLOCK_BARS
from terminal.core.storage.database import describe_database_error
from tests.factories import START_MS, make_series

KEY = SeriesKey("sim", "BTC/USDT", Timeframe.M1)


@pytest.fixture
def store(data_dir: Path) -> Store:
    opened = Store.open(data_dir)
    yield opened
    opened.close()


def test_new_database_is_migrated_in_wal_mode(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrated_schema_matches_the_table_models(store: Store) -> None:
    with sqlite3.connect(store.path) as conn:
        for table in SQLModel.metadata.sorted_tables:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table.name})")}
            assert columns == {c.name for c in table.columns}, table.name


def test_reopening_keeps_data_and_version(data_dir: Path) -> None:
    with Store.open(data_dir) as first:
        first.candles.upsert(KEY, make_series(10))
    with Store.open(data_dir) as second:
        assert second.schema_version == SCHEMA_VERSION
        assert len(second.candles.load(KEY)) == 10


def test_database_from_a_newer_version_is_refused(data_dir: Path) -> None:
    Store.open(data_dir).close()
    with sqlite3.connect(data_dir / DATABASE_FILENAME) as conn:
        conn.execute("UPDATE schema_version SET version = 999")
    with pytest.raises(StoreError, match="newer version of the terminal"):
        Store.open(data_dir)


def test_round_trip_across_many_blocks(store: Store) -> None:
    series = make_series(3 * BLOCK_BARS + 17)
    result = store.candles.upsert(KEY, series)
    assert (result.inserted, result.updated, result.unchanged) == (len(series), 0, 0)
    assert store.candles.load(KEY) == series
    start, end = int(series.open_time[1000]), int(series.open_time[2500])
    assert store.candles.load(KEY, start, end) == series.between(start, end)
    summary = store.candles.summary(KEY)
    assert summary is not None
    assert (summary.count, summary.first_time, summary.last_time) == (
        len(series), series.first_time, series.last_time)


def test_upserting_again_changes_nothing_and_new_values_win(store: Store) -> None:
    series = make_series(2000)
    store.candles.upsert(KEY, series)
    again = store.candles.upsert(KEY, series)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2000)
    changed = series.to_records()[1500:1510].copy()
    changed["close"] = changed["high"]
    result = store.candles.upsert(KEY, CandleSeries.from_records(changed, Timeframe.M1))
    assert (result.inserted, result.updated) == (0, 10)
    loaded = store.candles.load(KEY)
    assert np.array_equal(loaded.close[1500:1510], changed["close"])
    assert np.array_equal(loaded.close[:1500], series.close[:1500])


def test_series_are_kept_apart(store: Store) -> None:
    other = SeriesKey("sim", "ETH/USDT", Timeframe.M1)
    store.candles.upsert(KEY, make_series(5, seed=1))
    store.candles.upsert(other, make_series(7, seed=2))
    assert [s.key for s in store.candles.summaries()] == [KEY, other]
    assert len(store.candles.load(other)) == 7
    assert len(store.candles.load(SeriesKey("sim", "SOL/USDT", Timeframe.M1))) == 0


def test_a_failed_transaction_leaves_the_store_as_it_was(store: Store) -> None:
    store.candles.upsert(KEY, make_series(100))
    before = store.candles.load(KEY)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.candles.upsert(KEY, make_series(5000, seed=99))
        tx.candles.upsert(SeriesKey("sim", "ETH/USDT", Timeframe.M1), make_series(5))
        raise RuntimeError("simulated crash in the middle of an import")
    assert store.candles.load(KEY) == before
    assert [s.key for s in store.candles.summaries()] == [KEY]


def test_missing_data_dir_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "nope")


def test_a_file_that_is_not_a_database_is_reported(data_dir: Path) -> None:
    (data_dir / DATABASE_FILENAME).write_bytes(b"this is a text file, not sqlite" * 100)
    with pytest.raises(StoreError, match="not a valid terminal database"):
        Store.open(data_dir)


def test_a_locked_database_is_reported(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "BUSY_TIMEOUT_MS", 100)
    with Store.open(data_dir) as store:
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError, match="locked by another program"):
                store.candles.upsert(KEY, make_series(3))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert len(store.candles.load(KEY)) == 0


def test_read_only_database_message() -> None:
    error = sqlite3.OperationalError("attempt to write a readonly database")
    assert "is read-only" in describe_database_error(error, Path("/x/terminal.sqlite3"))


def test_a_read_only_database_file_is_reported(data_dir: Path) -> None:
    Store.open(data_dir).close()
    path = data_dir / DATABASE_FILENAME
    path.chmod(0o444)
    data_dir.chmod(0o555)
    try:
        with open(path, "ab"):
            pytest.skip("running with privileges that ignore file permissions")
    except PermissionError:
        pass
    try:
        with pytest.raises(StoreError, match=r"read-only|cannot open"), Store.open(
                data_dir) as store:
            store.candles.upsert(KEY, make_series(3))
    finally:
        data_dir.chmod(0o755)
        path.chmod(0o644)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(
    st.tuples(st.integers(0, 3 * BLOCK_BARS), st.integers(1, 1500), st.integers(0, 10_000)),
    min_size=1, max_size=4))
def test_upserts_behave_like_a_dictionary_keyed_by_open_time(
        tmp_path_factory: pytest.TempPathFactory, batches: list[tuple[int, int, int]]) -> None:
    expected: dict[int, tuple[float, ...]] = {}
    with Store.open(tmp_path_factory.mktemp("prop")) as store:
        for offset, count, seed in batches:
            batch = make_series(count, start_ms=START_MS + offset * 60_000, seed=seed)
            before = dict(expected)
            result = store.candles.upsert(KEY, batch)
            for candle in batch:
                expected[candle.open_time] = (candle.open, candle.high, candle.low, candle.close,
                                              candle.volume)
            new = [t for t in batch.open_time.tolist() if t not in before]
            assert result.inserted == len(new)
        loaded = store.candles.load(KEY)
    assert loaded.open_time.tolist() == sorted(expected)
    assert [(c.open, c.high, c.low, c.close, c.volume) for c in loaded] == [
        expected[t] for t in sorted(expected)]

"""Registered forecasting models, their activations, predictions and retraining schedules.

One model per series is active. Every activation is logged, so a rollback can remove the
latest activation and reactivate the model that was active before it, as often as the log
goes back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection

from terminal.core.errors import InvalidArgument
from terminal.core.forecasts import ModelRecord, PredictionRecord, RetrainSchedule, check_schedule
from terminal.core.model import Prediction, Timeframe
from terminal.core.series import SeriesKey

ConnectionScope = Callable[[], AbstractContextManager[Connection]]

_MODEL_COLUMNS = ("id, venue, symbol, timeframe, architecture, hyperparameters, feature_set,"
                  " horizons, train_start, train_end, data_fingerprint, metrics, verdict,"
                  " has_skill, weights_file, created_at, active, trading_override")
_PREDICTION_COLUMNS = ("p.model_id, m.venue, m.symbol, m.timeframe, p.made_from, p.horizon_bars,"
                       " p.expected_return, p.quantile_10, p.quantile_50, p.quantile_90,"
                       " p.prob_up, p.created_at, p.realised_return")
_SCHEDULE_COLUMNS = ("id, venue, symbol, timeframe, architecture, daily_at, every_candles,"
                     " refresh_data, enabled, last_run_at")


class ForecastRepository:
    """Reads and writes model records, predictions and schedules; each call one transaction
    unless made through :meth:`terminal.core.storage.Store.transaction`."""

    def __init__(self, read_scope: ConnectionScope, write_scope: ConnectionScope) -> None:
        self._read_scope = read_scope
        self._write_scope = write_scope

    # --- models -------------------------------------------------------------------------

    def add_model(self, key: SeriesKey, *, architecture: str, hyperparameters: dict[str, Any],
                  feature_set: str, horizons: Sequence[int], train_start: int, train_end: int,
                  data_fingerprint: str, metrics: dict[str, Any], verdict: str,
                  has_skill: bool, weights_file: str, created_at: int) -> ModelRecord:
        """Register a model (inactive); returns its record with the new id."""
        with self._write_scope() as conn:
            result = conn.exec_driver_sql(
                "INSERT INTO ml_model (venue, symbol, timeframe, architecture, hyperparameters,"
                " feature_set, horizons, train_start, train_end, data_fingerprint, metrics,"
                " verdict, has_skill, weights_file, created_at, active, trading_override)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
                (key.venue, key.symbol, key.timeframe.code, architecture,
                 json.dumps(hyperparameters), feature_set, json.dumps(list(horizons)),
                 train_start, train_end, data_fingerprint, json.dumps(metrics), verdict,
                 has_skill, weights_file, created_at))
            model_id = int(result.lastrowid)
            return _fetch_model(conn, model_id)

    def get(self, model_id: int) -> ModelRecord:
        """The model with ``model_id``; :class:`InvalidArgument` when there is none."""
        with self._read_scope() as conn:
            return _fetch_model(conn, model_id)

    def models(self, key: SeriesKey | None = None) -> list[ModelRecord]:
        """Registered models, newest first; only ``key``'s when given."""
        query = f"SELECT {_MODEL_COLUMNS} FROM ml_model"
        params: tuple[Any, ...] = ()
        if key is not None:
            query += " WHERE venue = ? AND symbol = ? AND timeframe = ?"
            params = (key.venue, key.symbol, key.timeframe.code)
        with self._read_scope() as conn:
            rows = conn.exec_driver_sql(query + " ORDER BY id DESC", params).all()
        return [_model(row) for row in rows]

    def active(self, key: SeriesKey) -> ModelRecord | None:
        with self._read_scope() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {_MODEL_COLUMNS} FROM ml_model WHERE venue = ? AND symbol = ? AND"
                " timeframe = ? AND active", (key.venue, key.symbol, key.timeframe.code)).first()
        return None if row is None else _model(row)

    def activate(self, model_id: int, at: int) -> ModelRecord:
        """Make ``model_id`` its series' active model and log the activation."""
        with self._write_scope() as conn:
            record = _fetch_model(conn, model_id)
            _set_active(conn, record.key, model_id)
            conn.exec_driver_sql("INSERT INTO ml_activation (model_id, activated_at)"
                                 " VALUES (?, ?)", (model_id, at))
            return _fetch_model(conn, model_id)

    def rollback(self, key: SeriesKey) -> ModelRecord:
        """Undo ``key``'s latest activation: the model active before it becomes active."""
        with self._write_scope() as conn:
            log = conn.exec_driver_sql(
                "SELECT a.id, a.model_id FROM ml_activation a JOIN ml_model m ON"
                " m.id = a.model_id WHERE m.venue = ? AND m.symbol = ? AND m.timeframe = ?"
                " ORDER BY a.id DESC", (key.venue, key.symbol, key.timeframe.code)).all()
            current = log[0][1] if log else None
            earlier = [row for row in log if row[1] != current]
            if not earlier:
                raise InvalidArgument(f"no earlier active model of {key} to roll back to")
            cut = earlier[0][0]
            conn.exec_driver_sql("DELETE FROM ml_activation WHERE id > ? AND id IN (SELECT a.id"
                                 " FROM ml_activation a JOIN ml_model m ON m.id = a.model_id"
                                 " WHERE m.venue = ? AND m.symbol = ? AND m.timeframe = ?)",
                                 (cut, key.venue, key.symbol, key.timeframe.code))
            previous = int(earlier[0][1])
            _set_active(conn, key, previous)
            return _fetch_model(conn, previous)

    def set_trading_override(self, model_id: int, allowed: bool) -> ModelRecord:
        """Allow (or stop allowing) automated trading on a model without proven skill."""
        with self._write_scope() as conn:
            _fetch_model(conn, model_id)
            conn.exec_driver_sql("UPDATE ml_model SET trading_override = ? WHERE id = ?",
                                 (allowed, model_id))
            return _fetch_model(conn, model_id)

    # --- predictions --------------------------------------------------------------------

    def add_predictions(self, predictions: Iterable[Prediction]) -> int:
        """Store forecasts of registered models (a forecast already stored for the same model,
        bar and horizon is kept); returns how many were new."""
        rows = [(int(p.model_id), p.made_from, p.horizon_bars, p.expected_return,
                 p.quantile_10, p.quantile_50, p.quantile_90, p.prob_up, p.created_at)
                for p in predictions]
        if not rows:
            return 0
        with self._write_scope() as conn:
            before = _count(conn)
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO ml_prediction (model_id, made_from, horizon_bars,"
                " expected_return, quantile_10, quantile_50, quantile_90, prob_up, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return _count(conn) - before

    def predictions(self, key: SeriesKey, *, model_id: int | None = None,
                    limit: int = 500) -> list[PredictionRecord]:
        """``key``'s stored forecasts, newest first."""
        query = (f"SELECT {_PREDICTION_COLUMNS} FROM ml_prediction p JOIN ml_model m ON"
                 " m.id = p.model_id WHERE m.venue = ? AND m.symbol = ? AND m.timeframe = ?")
        params: tuple[Any, ...] = (key.venue, key.symbol, key.timeframe.code)
        if model_id is not None:
            query += " AND p.model_id = ?"
            params += (model_id,)
        query += " ORDER BY p.made_from DESC, p.horizon_bars LIMIT ?"
        with self._read_scope() as conn:
            rows = conn.exec_driver_sql(query, (*params, limit)).all()
        return [_prediction(row) for row in rows]

    def unresolved_predictions(self, key: SeriesKey) -> list[PredictionRecord]:
        """``key``'s forecasts whose outcome is not recorded yet, oldest first."""
        with self._read_scope() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_PREDICTION_COLUMNS} FROM ml_prediction p JOIN ml_model m ON"
                " m.id = p.model_id WHERE m.venue = ? AND m.symbol = ? AND m.timeframe = ?"
                " AND p.realised_return IS NULL ORDER BY p.made_from",
                (key.venue, key.symbol, key.timeframe.code)).all()
        return [_prediction(row) for row in rows]

    def set_outcomes(self, outcomes: Iterable[tuple[int, int, int, float]]) -> None:
        """Record realised returns as (model id, made_from, horizon, log return)."""
        rows = [(value, model_id, made_from, horizon)
                for model_id, made_from, horizon, value in outcomes]
        if rows:
            with self._write_scope() as conn:
                conn.exec_driver_sql(
                    "UPDATE ml_prediction SET realised_return = ? WHERE model_id = ? AND"
                    " made_from = ? AND horizon_bars = ?", rows)

    # --- schedules ----------------------------------------------------------------------

    def save_schedule(self, key: SeriesKey, architecture: str, *, daily_at: str | None,
                      every_candles: int | None, refresh_data: bool,
                      enabled: bool = True) -> RetrainSchedule:
        """Create or replace the schedule of ``architecture`` on ``key``."""
        check_schedule(daily_at, every_candles)
        with self._write_scope() as conn:
            conn.exec_driver_sql(
                "INSERT INTO ml_schedule (venue, symbol, timeframe, architecture, daily_at,"
                " every_candles, refresh_data, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (venue, symbol, timeframe, architecture) DO UPDATE SET"
                " daily_at = excluded.daily_at, every_candles = excluded.every_candles,"
                " refresh_data = excluded.refresh_data, enabled = excluded.enabled",
                (key.venue, key.symbol, key.timeframe.code, architecture, daily_at,
                 every_candles, refresh_data, enabled))
            row = conn.exec_driver_sql(
                f"SELECT {_SCHEDULE_COLUMNS} FROM ml_schedule WHERE venue = ? AND symbol = ?"
                " AND timeframe = ? AND architecture = ?",
                (key.venue, key.symbol, key.timeframe.code, architecture)).one()
        return _schedule(row)

    def schedules(self) -> list[RetrainSchedule]:
        with self._read_scope() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_SCHEDULE_COLUMNS} FROM ml_schedule ORDER BY id").all()
        return [_schedule(row) for row in rows]

    def delete_schedule(self, schedule_id: int) -> None:
        with self._write_scope() as conn:
            deleted = conn.exec_driver_sql("DELETE FROM ml_schedule WHERE id = ?",
                                           (schedule_id,)).rowcount
        if not deleted:
            raise InvalidArgument(f"there is no schedule {schedule_id}")

    def mark_schedule_run(self, schedule_id: int, at: int) -> None:
        with self._write_scope() as conn:
            conn.exec_driver_sql("UPDATE ml_schedule SET last_run_at = ? WHERE id = ?",
                                 (at, schedule_id))


def _set_active(conn: Connection, key: SeriesKey, model_id: int) -> None:
    conn.exec_driver_sql("UPDATE ml_model SET active = (id = ?) WHERE venue = ? AND symbol = ?"
                         " AND timeframe = ?",
                         (model_id, key.venue, key.symbol, key.timeframe.code))


def _fetch_model(conn: Connection, model_id: int) -> ModelRecord:
    row = conn.exec_driver_sql(f"SELECT {_MODEL_COLUMNS} FROM ml_model WHERE id = ?",
                               (model_id,)).first()
    if row is None:
        raise InvalidArgument(f"there is no model {model_id}; `models list` shows them")
    return _model(row)


def _count(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT COUNT(*) FROM ml_prediction").scalar_one())


def _model(row: Any) -> ModelRecord:
    return ModelRecord(
        id=int(row[0]), key=SeriesKey(row[1], row[2], Timeframe(row[3])), architecture=row[4],
        hyperparameters=json.loads(row[5]), feature_set=row[6],
        horizons=tuple(json.loads(row[7])), train_start=int(row[8]), train_end=int(row[9]),
        data_fingerprint=row[10], metrics=json.loads(row[11]), verdict=row[12],
        has_skill=bool(row[13]), weights_file=row[14], created_at=int(row[15]),
        active=bool(row[16]), trading_override=bool(row[17]))


def _prediction(row: Any) -> PredictionRecord:
    return PredictionRecord(
        Prediction(venue=row[1], symbol=row[2], timeframe=Timeframe(row[3]),
                   made_from=int(row[4]), horizon_bars=int(row[5]),
                   expected_return=float(row[6]), quantile_10=float(row[7]),
                   quantile_50=float(row[8]), quantile_90=float(row[9]),
                   prob_up=float(row[10]), model_id=str(row[0]), created_at=int(row[11])),
        realised_return=None if row[12] is None else float(row[12]))


def _schedule(row: Any) -> RetrainSchedule:
    return RetrainSchedule(
        id=int(row[0]), key=SeriesKey(row[1], row[2], Timeframe(row[3])), architecture=row[4],
        daily_at=row[5], every_candles=None if row[6] is None else int(row[6]),
        refresh_data=bool(row[7]), enabled=bool(row[8]),
        last_run_at=None if row[9] is None else int(row[9]))

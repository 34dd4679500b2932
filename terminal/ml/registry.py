"""The model registry: weights files under the data folder plus a record per model in the store.

A weights file holds the feature-set name and version, the architecture, the hyperparameters
and the learnt state as tensors; it is written to a temporary name and renamed into place, and
the store row is added only after, so a failed registration leaves neither. Files are read
with ``torch.load(weights_only=True)``, which never runs code from the file. Loading checks
that the file exists, is a model file of this format, and was trained on the feature set this
version computes; each failure is a :class:`ModelLoadError` and changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from terminal.core.errors import TerminalError
from terminal.core.forecasts import ModelRecord
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.ml.features import feature_set_id
from terminal.ml.forecasters import BASELINES, Forecaster

WEIGHTS_FOLDER = "models"
FILE_FORMAT = 1
_NETWORK_KEY = "network"


class ModelLoadError(TerminalError):
    """A registered model's weights cannot be used; the registry is unchanged."""


def data_fingerprint(candles: CandleSeries) -> str:
    """A short hash of the candles' times and prices: equal data, equal fingerprint."""
    digest = hashlib.sha256()
    for column in (candles.open_time, candles.open, candles.high, candles.low, candles.close,
                   candles.volume):
        digest.update(np.ascontiguousarray(column).tobytes())
    return f"{len(candles)}:{digest.hexdigest()[:16]}"


class ModelRegistry:
    """Registered models of one data folder (see the module docstring)."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.folder = data_dir / WEIGHTS_FOLDER

    def register(self, model: Forecaster, key: SeriesKey, candles: CandleSeries, *,
                 train_start: int, train_end: int, metrics: dict[str, Any], verdict: str,
                 has_skill: bool, created_at: int) -> ModelRecord:
        """Save ``model``'s weights and add its record (inactive); returns the record."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{key.symbol.replace('/', '-')}_{key.timeframe.code}_{model.name}_" \
               f"{uuid.uuid4().hex[:12]}.pt"
        path = self.folder / name
        payload = {"format": FILE_FORMAT, "feature_set": feature_set_id(),
                   "architecture": model.name, "state": _to_tensors(model.get_state())}
        partial = path.with_suffix(".part")
        try:
            torch.save(payload, partial)
            os.replace(partial, path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise ModelLoadError(f"cannot write the model file {path}: {error.strerror}"
                                 ) from error
        try:
            return self.store.forecasts.add_model(
                key, architecture=model.name, hyperparameters=model.hyperparameters(),
                feature_set=feature_set_id(), horizons=model.horizons,
                train_start=train_start, train_end=train_end,
                data_fingerprint=data_fingerprint(candles), metrics=metrics, verdict=verdict,
                has_skill=has_skill, weights_file=name, created_at=created_at)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def load(self, record: ModelRecord) -> Forecaster:
        """The trained model of ``record``, ready to predict."""
        path = self.folder / record.weights_file
        label = f"model {record.id} ({record.architecture}, {record.key})"
        if record.feature_set != feature_set_id():
            raise ModelLoadError(f"{label} was trained on feature set {record.feature_set};"
                                 f" this version computes {feature_set_id()}: retrain it")
        if not path.is_file():
            raise ModelLoadError(f"{label}: its weights file {path} is missing; retrain it or"
                                 " restore the file")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ModelLoadError(f"{label}: {path} is damaged or not a model file ({error})"
                                 .split("\n")[0]) from error
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
            raise ModelLoadError(f"{label}: {path} is not a model file of this terminal")
        if payload.get("feature_set") != record.feature_set:
            raise ModelLoadError(f"{label}: {path} belongs to feature set"
                                 f" {payload.get('feature_set')}, the record says"
                                 f" {record.feature_set}; the file was replaced")
        if payload.get("architecture") != record.architecture:
            raise ModelLoadError(f"{label}: {path} holds a {payload.get('architecture')}"
                                 " model; the file was replaced")
        model = build_model(record.architecture, record.hyperparameters)
        try:
            model.set_state(_from_tensors(payload["state"]))
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ModelLoadError(f"{label}: the weights in {path} do not fit the model"
                                 f" ({str(error).splitlines()[0]})") from error
        if model.horizons != record.horizons:
            raise ModelLoadError(f"{label}: {path} predicts horizons {model.horizons}, the"
                                 f" record says {record.horizons}")
        return model

    def activate(self, model_id: int, at: int) -> ModelRecord:
        """Make ``model_id`` its series' active model, after checking that it loads: a model
        that cannot forecast must never become the one the terminal trades on."""
        self.load(self.store.forecasts.get(model_id))
        return self.store.forecasts.activate(model_id, at)

    def trading_model(self, key: SeriesKey) -> ModelRecord | None:
        """``key``'s active model if automated trading may use it (skill or override)."""
        record = self.store.forecasts.active(key)
        return record if record is not None and record.usable_for_trading else None


def build_model(architecture: str, hyperparameters: dict[str, Any]) -> Forecaster:
    """An untrained model of ``architecture`` with the stored hyperparameters."""
    if architecture in BASELINES:
        return BASELINES[architecture]()
    from terminal.ml.models import ARCHITECTURES, NeuralForecaster, TrainingSettings

    if architecture not in ARCHITECTURES:
        raise ModelLoadError(f"unknown model architecture {architecture!r}")
    known = {f.name for f in fields(TrainingSettings)} - {"device"}
    settings = TrainingSettings(**{k: v for k, v in hyperparameters.items() if k in known})
    return NeuralForecaster(architecture, settings)


def _to_tensors(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {key: _to_tensors(item) for key, item in value.items()}
    return value


def _from_tensors(value: Any, *, keep: bool = False) -> Any:
    if isinstance(value, torch.Tensor):
        return value if keep else value.numpy()
    if isinstance(value, dict):
        return {key: _from_tensors(item, keep=keep or key == _NETWORK_KEY)
                for key, item in value.items()}
    return value

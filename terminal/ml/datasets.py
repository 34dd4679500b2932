"""Feature matrices, targets, scaling and windowing shared by every model.

A :class:`Dataset` holds features and targets for a whole candle history; models are fit on a
set of *rows* (bar indices) and predict for other rows, so a walk-forward evaluation never
copies the history. Whatever is learnt from data (scalers, calibration, the ridge penalty) is
learnt from the training rows alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from terminal.core.errors import InvalidArgument
from terminal.core.series import CandleSeries
from terminal.ml.features import (
    WARMUP_BARS,
    check_horizons,
    compute_features,
    future_returns,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_WINDOW = 60
#: Fewer training rows than this cannot fit or calibrate anything meaningful.
MIN_TRAINING_ROWS = 200


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features (one row per candle) and future log returns (one column per horizon).

    ``features[i]`` uses candles ``0..i``; ``targets[i, k]`` is the return from bar ``i``'s
    close to ``horizons[k]`` bars later (NaN where that bar does not exist yet).
    """

    candles: CandleSeries
    features: FloatArray
    targets: FloatArray
    horizons: tuple[int, ...]

    @classmethod
    def from_candles(cls, candles: CandleSeries,
                     horizons: Sequence[int]) -> Dataset:
        checked = check_horizons(horizons)
        return cls(candles, compute_features(candles), future_returns(candles, checked), checked)

    def __len__(self) -> int:
        return len(self.candles)

    def feature_rows(self) -> IntArray:
        """Rows whose features are all known (after the warm-up)."""
        return np.flatnonzero(np.isfinite(self.features).all(axis=1)).astype(np.int64)

    def labelled_rows(self, rows: IntArray) -> IntArray:
        """The subset of ``rows`` whose every horizon's target is known."""
        known = np.isfinite(self.targets[rows]).all(axis=1)
        return rows[known]


def check_enough_history(candles: CandleSeries, horizons: Sequence[int],
                         window: int = 1) -> None:
    """Refuse a history too short to warm up, window, train and test on."""
    needed = WARMUP_BARS + window + max(horizons) + 2 * MIN_TRAINING_ROWS
    if len(candles) < needed:
        raise InvalidArgument(
            f"{len(candles)} candles are too few: the features need {WARMUP_BARS} bars of"
            f" warm-up, a sequence model {window} bars of window, the longest horizon"
            f" {max(horizons)} bars of future, and training and testing at least"
            f" {MIN_TRAINING_ROWS} bars each; give at least {needed} candles")


@dataclass(frozen=True)
class Scaler:
    """Standardises columns with the mean and spread of the rows it was fit on."""

    mean: FloatArray
    scale: FloatArray

    @classmethod
    def fit(cls, values: FloatArray) -> Scaler:
        if not len(values) or not np.isfinite(values).all():
            raise InvalidArgument("scaling needs finite training values")
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 1e-12, std, 1.0))

    def transform(self, values: FloatArray) -> FloatArray:
        return (values - self.mean) / self.scale

    def inverse(self, values: FloatArray) -> FloatArray:
        return values * self.scale + self.mean


def windows(features: FloatArray, rows: IntArray, length: int) -> FloatArray:
    """``(len(rows), length, columns)``: for each row the ``length`` feature rows ending there.

    A view where possible; rows must have ``length - 1`` earlier rows.
    """
    if len(rows) and int(rows.min()) < length - 1:
        raise InvalidArgument(f"row {int(rows.min())} has fewer than {length - 1} earlier rows")
    view = sliding_window_view(features, length, axis=0)  # (n - length + 1, columns, length)
    return np.ascontiguousarray(view[rows - (length - 1)].transpose(0, 2, 1))


def time_split(rows: IntArray, fraction: float, gap: int) -> tuple[IntArray, IntArray]:
    """Split time-ordered ``rows`` into an earlier part and the last ``fraction`` of them,
    dropping the ``gap`` earlier rows whose targets reach into the later part."""
    if not 0.0 < fraction < 1.0:
        raise InvalidArgument(f"a split fraction is between 0 and 1, got {fraction}")
    cut = int(len(rows) * (1.0 - fraction))
    later = rows[cut:]
    if not len(later):
        return rows, later
    earlier = rows[:cut]
    return earlier[earlier + gap <= later[0]], later

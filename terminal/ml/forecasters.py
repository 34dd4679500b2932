"""The forecaster contract, probability calibration, the naive baselines and ridge regression.

Every forecaster predicts, for each requested row and horizon, the expected log return, its
10/50/90 % quantiles and a calibrated probability that it is positive. What a model cannot
learn directly is fit on a *calibration holdout*: the last part of the training rows, after a
gap of the longest horizon, predicted by a fit on the earlier part. Quantiles then come from
the holdout's residuals and the up-probability from a logistic (Platt) fit of the holdout's
outcomes on the model's score, so both are measured out of sample, inside the training window.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from terminal.core.errors import InvalidArgument
from terminal.ml.datasets import MIN_TRAINING_ROWS, Dataset, Scaler, time_split

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QUANTILES = (0.1, 0.5, 0.9)
CALIBRATION_FRACTION = 0.2
RIDGE_PENALTIES = (0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0)


@dataclass(frozen=True, eq=False)
class Forecast:
    """Predictions for ``m`` rows and ``H`` horizons; every array is ``(m, H)``."""

    expected: FloatArray
    quantile_10: FloatArray
    quantile_50: FloatArray
    quantile_90: FloatArray
    prob_up: FloatArray


@dataclass(frozen=True)
class PlattCalibration:
    """``P(up) = sigmoid(slope * score + intercept)``, fit by regularised logistic regression."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, scores: FloatArray, outcomes: FloatArray) -> PlattCalibration:
        """Maximum likelihood with a small ridge on the slope (Newton steps)."""
        x = np.column_stack([scores, np.ones(len(scores))])
        weights = np.zeros(2)
        penalty = np.diag([1e-3 * len(scores), 0.0])
        for _ in range(50):
            p = _sigmoid(x @ weights)
            gradient = x.T @ (p - outcomes) + penalty @ weights
            hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            weights -= step
            if float(np.abs(step).max()) < 1e-10:
                break
        return cls(float(weights[0]), float(weights[1]))

    def __call__(self, scores: FloatArray) -> FloatArray:
        return _sigmoid(self.slope * scores + self.intercept)


def _sigmoid(values: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * values)), dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """What the holdout taught: residual quantile offsets and an up-probability map per
    horizon; ``up_rate`` is the training rows' share of positive returns per horizon."""

    offsets: FloatArray  # (3, H): residual quantiles 10/50/90
    platt: tuple[PlattCalibration, ...]
    up_rate: FloatArray


class Forecaster(ABC):
    """A model of future log returns at several horizons. Fit, then predict rows."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: Feature rows a prediction looks back over (1: the current row only).
    window: int = 1

    def __init__(self) -> None:
        self.calibration: Calibration | None = None
        self.horizons: tuple[int, ...] = ()

    def fit(self, data: Dataset, rows: IntArray) -> None:
        """Learn from ``rows`` (time-ordered; their features and targets must be known)."""
        rows = data.labelled_rows(self.usable_rows(data, rows))
        if len(rows) < MIN_TRAINING_ROWS:
            raise InvalidArgument(f"{self.name} needs at least {MIN_TRAINING_ROWS} training"
                                  f" bars with known features and targets, got {len(rows)}")
        self.horizons = data.horizons
        fit_rows, holdout = time_split(rows, CALIBRATION_FRACTION, max(data.horizons))
        self._fit_core(data, fit_rows, holdout)
        mean, score, _ = self._predict_core(data, holdout)
        truth = data.targets[holdout]
        residuals = truth - mean
        offsets = np.quantile(residuals, QUANTILES, axis=0)
        platt = tuple(PlattCalibration.fit(score[:, k], (truth[:, k] > 0).astype(np.float64))
                      for k in range(len(data.horizons)))
        self.calibration = Calibration(offsets, platt, (data.targets[rows] > 0).mean(axis=0))
        if self._refit_after_calibration():
            self._fit_core(data, rows, None)

    def predict(self, data: Dataset, rows: IntArray) -> Forecast:
        """Forecasts for ``rows`` (their features must be known)."""
        if self.calibration is None:
            raise InvalidArgument(f"{self.name} has not been trained")
        if data.horizons != self.horizons:
            raise InvalidArgument(f"{self.name} was trained for horizons {self.horizons}, not"
                                  f" {data.horizons}")
        mean, score, quantiles = self._predict_core(data, rows)
        calibration = self.calibration
        prob = np.column_stack([calibration.platt[k](score[:, k])
                                for k in range(len(self.horizons))])
        if quantiles is None:
            bands = [mean + calibration.offsets[q] for q in range(3)]
        else:
            ordered = np.sort(quantiles, axis=2)
            bands = [ordered[:, :, q] for q in range(3)]
        return Forecast(mean, bands[0], bands[1], bands[2], prob)

    def usable_rows(self, data: Dataset, rows: IntArray) -> IntArray:
        """``rows`` whose features, and those of the window before them, are known."""
        known: npt.NDArray[np.bool_] = np.asarray(np.isfinite(data.features).all(axis=1))
        first = int(np.argmax(known)) if known.any() else len(known)
        rows = rows[known[rows]]
        return rows[rows >= first + self.window - 1]

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that define this model (stored with it in the registry)."""
        return {}

    def get_state(self) -> dict[str, Any]:
        """What a trained model has learnt, as numbers, arrays and nested dicts of them."""
        if self.calibration is None:
            raise InvalidArgument(f"{self.name} has not been trained")
        calibration = self.calibration
        return {"horizons": list(self.horizons), "offsets": calibration.offsets,
                "platt": np.array([[p.slope, p.intercept] for p in calibration.platt]),
                "up_rate": calibration.up_rate, "core": self._core_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (of a model of the same kind)."""
        self.horizons = tuple(int(h) for h in state["horizons"])
        platt = np.asarray(state["platt"], dtype=np.float64)
        self.calibration = Calibration(
            np.asarray(state["offsets"], dtype=np.float64),
            tuple(PlattCalibration(float(a), float(b)) for a, b in platt),
            np.asarray(state["up_rate"], dtype=np.float64))
        self._load_core_state(state["core"])

    @abstractmethod
    def _core_state(self) -> dict[str, Any]:
        """The point model's learnt values (see :meth:`get_state`)."""

    @abstractmethod
    def _load_core_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_core_state`."""

    @abstractmethod
    def _fit_core(self, data: Dataset, rows: IntArray, holdout: IntArray | None) -> None:
        """Fit the point forecast on ``rows``; ``holdout`` (when given) is later and may be
        used for early stopping."""

    @abstractmethod
    def _predict_core(self, data: Dataset,
                      rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """(expected return, score for the up-probability, quantiles ``(m, H, 3)`` or None
        to take them from holdout residuals)."""

    def _refit_after_calibration(self) -> bool:
        """Whether to refit on all training rows once calibrated (cheap models do)."""
        return True


class Persistence(Forecaster):
    """The naive forecast: tomorrow's price is today's, so the expected return is zero.

    Its up-probability is the training share of up moves, so its directional call is the
    majority class; its band is the training returns' own quantiles.
    """

    name = "persistence"
    description = "zero return (next price = last price): the bar every model must beat"

    def _fit_core(self, data: Dataset, rows: IntArray, holdout: IntArray | None) -> None:
        self._rate = (data.targets[rows] > 0).mean(axis=0)

    def _predict_core(self, data: Dataset,
                      rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        zeros = np.zeros((len(rows), len(data.horizons)))
        return zeros, zeros + _logit(self._rate), None

    def _core_state(self) -> dict[str, Any]:
        return {"rate": self._rate}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        self._rate = np.asarray(state["rate"], dtype=np.float64)


class Drift(Forecaster):
    """The training window's mean return per horizon (a random walk with drift)."""

    name = "drift"
    description = "mean training return per horizon (random walk with drift)"

    def _fit_core(self, data: Dataset, rows: IntArray, holdout: IntArray | None) -> None:
        self._mean = data.targets[rows].mean(axis=0)
        self._rate = (data.targets[rows] > 0).mean(axis=0)

    def _predict_core(self, data: Dataset,
                      rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        mean = np.tile(self._mean, (len(rows), 1))
        return mean, np.zeros_like(mean) + _logit(self._rate), None

    def _core_state(self) -> dict[str, Any]:
        return {"mean": self._mean, "rate": self._rate}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        self._mean = np.asarray(state["mean"], dtype=np.float64)
        self._rate = np.asarray(state["rate"], dtype=np.float64)


class AlwaysUp(Forecaster):
    """The direction baseline: always says up, with certainty. Return forecast zero."""

    name = "always_up"
    description = "always predicts up with probability 1 (the directional baseline)"

    def _fit_core(self, data: Dataset, rows: IntArray, holdout: IntArray | None) -> None:
        return None

    def _predict_core(self, data: Dataset,
                      rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        zeros = np.zeros((len(rows), len(data.horizons)))
        return zeros, zeros, None

    def _core_state(self) -> dict[str, Any]:
        return {}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        return None

    def predict(self, data: Dataset, rows: IntArray) -> Forecast:
        forecast = super().predict(data, rows)
        return Forecast(forecast.expected, forecast.quantile_10, forecast.quantile_50,
                        forecast.quantile_90, np.ones_like(forecast.prob_up))


class Ridge(Forecaster):
    """Linear regression of each horizon's return on the standardised features, with an L2
    penalty chosen per horizon on the calibration holdout. Closed form, so refits are cheap.
    """

    name = "ridge"
    description = "ridge regression on the features (closed form; a strong cheap baseline)"

    def __init__(self, penalties: tuple[float, ...] = RIDGE_PENALTIES) -> None:
        super().__init__()
        self.penalties = penalties
        self.penalty: FloatArray | None = None
        self.scaler: Scaler | None = None
        self.coefficients: FloatArray | None = None  # (features + 1, H), intercept last
        self.unit: FloatArray | None = None

    def hyperparameters(self) -> dict[str, Any]:
        chosen = None if self.penalty is None else [float(p) for p in self.penalty]
        return {"penalties": list(self.penalties), "chosen_penalty": chosen}

    def _fit_core(self, data: Dataset, rows: IntArray, holdout: IntArray | None) -> None:
        self.scaler = Scaler.fit(data.features[rows])
        x = self._design(data, rows)
        y = data.targets[rows]
        gram, moment = x.T @ x, x.T @ y
        if holdout is not None:
            # Scores are returns in units of a typical move, so the Platt slope is well
            # scaled; the unit is fixed here so the refit keeps the calibration's scale.
            self.unit = np.maximum(y.std(axis=0), 1e-12)
            truth = data.targets[holdout]
            x_holdout = self._design(data, holdout)
            errors = []
            for penalty in self.penalties:
                solved = self._solve(gram, moment, penalty)
                errors.append(((x_holdout @ solved - truth) ** 2).mean(axis=0))
            self.penalty = np.asarray(self.penalties)[np.argmin(np.array(errors), axis=0)]
        penalties = self.penalty if self.penalty is not None else np.full(y.shape[1], 1.0)
        self.coefficients = np.column_stack([
            self._solve(gram, moment[:, [k]], float(penalties[k]))[:, 0]
            for k in range(y.shape[1])])

    def _predict_core(self, data: Dataset,
                      rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        if self.coefficients is None:
            raise InvalidArgument("ridge has not been trained")
        mean = self._design(data, rows) @ self.coefficients
        unit = self.unit if self.unit is not None else np.ones(mean.shape[1])
        return mean, mean / unit, None

    def _core_state(self) -> dict[str, Any]:
        if self.scaler is None or self.coefficients is None or self.unit is None:
            raise InvalidArgument("ridge has not been trained")
        return {"mean": self.scaler.mean, "scale": self.scaler.scale,
                "coefficients": self.coefficients, "unit": self.unit,
                "penalty": self.penalty if self.penalty is not None else np.zeros(0)}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        self.scaler = Scaler(np.asarray(state["mean"]), np.asarray(state["scale"]))
        self.coefficients = np.asarray(state["coefficients"], dtype=np.float64)
        self.unit = np.asarray(state["unit"], dtype=np.float64)
        penalty = np.asarray(state["penalty"], dtype=np.float64)
        self.penalty = penalty if len(penalty) else None

    def _design(self, data: Dataset, rows: IntArray) -> FloatArray:
        assert self.scaler is not None
        scaled = self.scaler.transform(data.features[rows])
        return np.column_stack([scaled, np.ones(len(rows))])

    @staticmethod
    def _solve(gram: FloatArray, moment: FloatArray, penalty: float) -> FloatArray:
        regulariser = np.eye(len(gram)) * penalty
        regulariser[-1, -1] = 0.0  # the intercept is not shrunk
        return np.asarray(np.linalg.solve(gram + regulariser, moment), dtype=np.float64)


def _logit(rate: FloatArray) -> FloatArray:
    clipped = np.clip(rate, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


BASELINES: dict[str, type[Forecaster]] = {
    cls.name: cls for cls in (Persistence, Drift, AlwaysUp, Ridge)
}

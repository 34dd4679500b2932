"""Walk-forward evaluation of forecasters against the naive baselines.

The last ``test_fraction`` of the usable bars is the test span. It is cut into folds of
``refit_every`` bars; before each fold every model is refit on all bars before it, minus a
purge gap of the longest horizon (a training target that ends inside the fold would tell the
model about the test period). Each model then predicts the fold's bars. Nothing from the test
span reaches a model before it is predicted.

Figures per model and horizon (all out of sample):

* MAE and RMSE of the log return; MASE and MSE skill against persistence (zero return) on the
  same bars; a Diebold–Mariano test of equal squared error against persistence, with a HAC
  variance over ``h - 1`` lags because ``h``-bar returns of neighbouring bars overlap.
* Directional accuracy (up when ``prob_up >= 0.5``) with a 95 % Wilson interval on ``n / h``
  effective samples, and its edge over always saying up.
* Brier score of ``prob_up`` and its skill against the training window's up-rate, with a
  calibration table; the share of outcomes inside the 10–90 % band.
* A long/flat strategy net of fees (the backtester's ``model_signal``: enter when the expected
  return beats the round-trip fee) and buy-and-hold over the same bars.
* R² of the implied price level, always next to persistence's: a price-level R² near 1 is what
  "next = now" scores and says nothing about skill.

A verdict sums it up: "beats persistence by X%, p=..." only with positive MSE skill and a DM
p-value below 0.05; skill above :data:`LEAK_SKILL` is reported as a suspected leak, since no
honest forecast of liquid crypto returns gets near it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from terminal.core.backtest import BacktestResult, run_backtest
from terminal.core.errors import InvalidArgument
from terminal.core.fills import FeeSchedule, FillModel
from terminal.core.series import CandleSeries
from terminal.core.strategies import ModelSignal
from terminal.core.timefmt import format_ms
from terminal.ml.datasets import Dataset, check_enough_history
from terminal.ml.features import check_horizons
from terminal.ml.forecasters import Forecast, Forecaster

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_TEST_FRACTION = 0.3
DEFAULT_REFIT_EVERY = 720
DEFAULT_FEE = 0.001
SIGNIFICANCE = 0.05
#: MSE skill above this (2 %) is treated as a look-ahead leak until proven otherwise.
LEAK_SKILL = 0.02
CALIBRATION_BINS = 10
BASELINE = "persistence"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    mean_prob: float
    observed_up: float


@dataclass(frozen=True)
class HorizonMetrics:
    """The out-of-sample figures of one model at one horizon (see the module docstring)."""

    horizon: int
    n: int
    mae: float
    rmse: float
    mase: float
    mse_skill: float
    dm_stat: float | None
    dm_pvalue: float | None
    dir_acc: float
    dir_acc_ci: tuple[float, float]
    always_up_acc: float
    dir_edge: float
    brier: float
    brier_skill: float
    band_coverage: float
    calibration: tuple[CalibrationBin, ...]
    r2_price: float
    r2_price_persistence: float
    strategy_return: float
    strategy_exposure: float
    strategy_trades: int
    strategy_fees: float
    buy_and_hold_return: float
    verdict: str
    has_skill: bool
    suspected_leak: bool

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["dir_acc_ci"] = list(self.dir_acc_ci)
        payload["calibration"] = [asdict(b) for b in self.calibration]
        return {key: _finite(value) for key, value in payload.items()}


@dataclass(frozen=True, eq=False)
class ModelRun:
    """A model's predictions over the test span, in the span's row order."""

    name: str
    forecast: Forecast
    train_seconds: float
    metrics: tuple[HorizonMetrics, ...]
    backtests: tuple[BacktestResult, ...]  # the long/flat strategy per horizon


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A whole walk-forward run: the test rows, every model's predictions and figures."""

    candles: CandleSeries
    horizons: tuple[int, ...]
    test_rows: IntArray
    folds: int
    refit_every: int
    fee: float
    realised: FloatArray  # (test rows, H), NaN where the outcome is not known yet
    runs: tuple[ModelRun, ...]

    def run(self, name: str) -> ModelRun:
        for run in self.runs:
            if run.name == name:
                return run
        raise InvalidArgument(f"no model {name!r} in this evaluation")

    def to_json(self) -> dict[str, Any]:
        times = self.candles.open_time
        return {
            "horizons": list(self.horizons),
            "test": {"first_utc": format_ms(int(times[self.test_rows[0]])),
                     "last_utc": format_ms(int(times[self.test_rows[-1]])),
                     "bars": len(self.test_rows), "folds": self.folds,
                     "refit_every": self.refit_every, "fee": self.fee},
            "models": {run.name: {"train_seconds": round(run.train_seconds, 3),
                                  "horizons": {str(m.horizon): m.to_json()
                                               for m in run.metrics}}
                       for run in self.runs},
        }


def walk_forward(candles: CandleSeries, models: Mapping[str, Callable[[], Forecaster]], *,
                 horizons: Sequence[int], test_fraction: float = DEFAULT_TEST_FRACTION,
                 refit_every: int = DEFAULT_REFIT_EVERY, fee: float = DEFAULT_FEE,
                 progress: Progress | None = None) -> Evaluation:
    """Evaluate every model in ``models`` (name → factory) on ``candles`` (see module)."""
    horizons = check_horizons(horizons)
    if not 0.0 < test_fraction < 1.0:
        raise InvalidArgument(f"the test fraction is between 0 and 1, got {test_fraction}")
    if refit_every < 1:
        raise InvalidArgument(f"refit every at least 1 bar, got {refit_every}")
    if not models:
        raise InvalidArgument("name at least one model to evaluate")
    factories = {BASELINE: _persistence_factory(), **models}
    longest = max(horizons)
    window = max(factory().window for factory in factories.values())
    check_enough_history(candles, horizons, window)
    data = Dataset.from_candles(candles, horizons)
    usable = data.feature_rows()
    usable = usable[usable >= usable[0] + window - 1]
    test_count = int(len(usable) * test_fraction)
    if test_count < 2 * longest:
        raise InvalidArgument(f"the test span of {test_count} bars is shorter than twice the"
                              f" longest horizon ({longest}); raise --test-fraction or give"
                              " more history")
    test_rows = usable[-test_count:]
    fold_starts = list(range(0, test_count, refit_every))
    outputs = {name: _empty_forecast(test_count, len(horizons)) for name in factories}
    train_up_rate = np.empty((test_count, len(horizons)))
    seconds = dict.fromkeys(factories, 0.0)
    for number, offset in enumerate(fold_starts, start=1):
        fold = test_rows[offset:offset + refit_every]
        train = usable[usable + longest <= fold[0]]
        train = data.labelled_rows(train)
        train_up_rate[offset:offset + len(fold)] = (data.targets[train] > 0).mean(axis=0)
        for name, factory in factories.items():
            if progress is not None:
                progress(f"fold {number}/{len(fold_starts)}: {name}")
            started = time.perf_counter()
            model = factory()
            model.fit(data, train)
            predicted = model.predict(data, fold)
            seconds[name] += time.perf_counter() - started
            _store(outputs[name], predicted, offset)
    realised = data.targets[test_rows]
    runs = []
    span = candles.take(int(test_rows[0]), int(test_rows[-1]) + 1)
    for name, forecast in outputs.items():
        backtests = tuple(_strategy(span, forecast.expected[:, k], fee)
                          for k in range(len(horizons)))
        metrics = tuple(
            _horizon_metrics(name, k, horizons[k], forecast, outputs[BASELINE], realised,
                             train_up_rate, backtests[k])
            for k in range(len(horizons)))
        runs.append(ModelRun(name, forecast, seconds[name], metrics, backtests))
    return Evaluation(candles, horizons, test_rows, len(fold_starts), refit_every, fee,
                      realised, tuple(runs))


def _persistence_factory() -> Callable[[], Forecaster]:
    from terminal.ml.forecasters import Persistence

    return Persistence


def _empty_forecast(rows: int, horizons: int) -> Forecast:
    def blank() -> FloatArray:
        return np.full((rows, horizons), np.nan)

    return Forecast(blank(), blank(), blank(), blank(), blank())


def _store(into: Forecast, predicted: Forecast, offset: int) -> None:
    stop = offset + len(predicted.expected)
    for field in ("expected", "quantile_10", "quantile_50", "quantile_90", "prob_up"):
        getattr(into, field)[offset:stop] = getattr(predicted, field)


def _horizon_metrics(name: str, k: int, horizon: int, forecast: Forecast, baseline: Forecast,
                     realised: FloatArray, train_up_rate: FloatArray,
                     backtest: BacktestResult) -> HorizonMetrics:
    known = np.isfinite(realised[:, k])
    truth = realised[known, k]
    predicted = forecast.expected[known, k]
    errors = truth - predicted
    baseline_errors = truth - baseline.expected[known, k]
    n = len(truth)
    mse, baseline_mse = float(np.mean(errors ** 2)), float(np.mean(baseline_errors ** 2))
    mae, baseline_mae = float(np.mean(np.abs(errors))), float(np.mean(np.abs(baseline_errors)))
    mse_skill = 1.0 - mse / baseline_mse if baseline_mse > 0 else 0.0
    dm_stat, dm_pvalue = diebold_mariano(errors, baseline_errors, horizon)
    up = truth > 0
    prob = forecast.prob_up[known, k]
    hits = (prob >= 0.5) == up
    dir_acc = float(hits.mean())
    always_up = float(up.mean())
    reference = train_up_rate[known, k]
    brier = float(np.mean((prob - up) ** 2))
    brier_reference = float(np.mean((reference - up) ** 2))
    inside = (forecast.quantile_10[known, k] <= truth) & (truth <= forecast.quantile_90[known, k])
    close = backtest.close[known]
    later = close * np.exp(truth)
    is_baseline = name == BASELINE
    leak = not is_baseline and mse_skill > LEAK_SKILL
    skill = (not is_baseline and not leak and mse_skill > 0 and dm_pvalue is not None
             and dm_pvalue < SIGNIFICANCE)
    return HorizonMetrics(
        horizon=horizon, n=n, mae=mae, rmse=math.sqrt(mse),
        mase=mae / baseline_mae if baseline_mae > 0 else 1.0,
        mse_skill=mse_skill, dm_stat=dm_stat, dm_pvalue=dm_pvalue,
        dir_acc=dir_acc, dir_acc_ci=wilson_interval(dir_acc, n / horizon),
        always_up_acc=always_up, dir_edge=dir_acc - always_up,
        brier=brier,
        brier_skill=1.0 - brier / brier_reference if brier_reference > 0 else 0.0,
        band_coverage=float(inside.mean()),
        calibration=calibration_table(prob, up),
        r2_price=_r_squared(later, close * np.exp(predicted)),
        r2_price_persistence=_r_squared(later, close),
        strategy_return=backtest.metrics.total_return,
        strategy_exposure=backtest.metrics.exposure, strategy_trades=backtest.metrics.trades,
        strategy_fees=backtest.metrics.fees_paid,
        buy_and_hold_return=backtest.buy_and_hold.total_return,
        verdict=skill_verdict(mse_skill, dm_pvalue, baseline=is_baseline),
        has_skill=skill, suspected_leak=leak)


def skill_verdict(mse_skill: float, dm_pvalue: float | None, *, baseline: bool = False) -> str:
    """The one-line judgement shown everywhere a model's forecast is shown."""
    if baseline:
        return "baseline"
    shown = f"{mse_skill * 100:.1f}%"
    p = "n/a" if dm_pvalue is None else f"{dm_pvalue:.2g}"
    if mse_skill > LEAK_SKILL:
        return (f"suspected leak: beats persistence by {shown}, p={p}; honest forecasts stay"
                f" below {LEAK_SKILL * 100:.0f}%, check the features for look-ahead")
    if dm_pvalue is not None and dm_pvalue < SIGNIFICANCE:
        if mse_skill > 0:
            return f"beats persistence by {shown}, p={p}"
        return f"no skill (worse than persistence by {-mse_skill * 100:.1f}%, p={p})"
    return "no skill"


def diebold_mariano(errors: FloatArray, baseline_errors: FloatArray,
                    horizon: int) -> tuple[float | None, float | None]:
    """DM statistic and two-sided p-value for equal mean squared error.

    The loss differential's long-run variance sums autocovariances up to lag ``horizon - 1``
    with equal weights (Diebold and Mariano's choice); when that comes out non-positive, as
    it can in small samples, Bartlett weights (always positive) are used instead. None when
    the two forecasts make the same errors.
    """
    differential = errors ** 2 - baseline_errors ** 2
    n = len(differential)
    if n < 2:
        return None, None
    centred = differential - differential.mean()
    lags = min(horizon - 1, n - 1)
    autocov = [float(centred[lag:] @ centred[:n - lag]) / n for lag in range(lags + 1)]
    variance = autocov[0] + 2 * sum(autocov[1:])
    if variance <= 0:
        variance = autocov[0] + 2 * sum((1 - lag / (lags + 1)) * autocov[lag]
                                        for lag in range(1, lags + 1))
    if variance <= 0:
        return None, None
    statistic = float(differential.mean()) / math.sqrt(variance / n)
    return statistic, math.erfc(abs(statistic) / math.sqrt(2))


def wilson_interval(rate: float, effective_n: float, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion measured on ``effective_n`` samples."""
    if effective_n <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / effective_n
    centre = (rate + z * z / (2 * effective_n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / effective_n
                         + z * z / (4 * effective_n ** 2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def calibration_table(prob: FloatArray, up: npt.NDArray[np.bool_],
                      bins: int = CALIBRATION_BINS) -> tuple[CalibrationBin, ...]:
    """Predicted against observed up-rate in equal-width probability bins (empty bins left
    out)."""
    index = np.minimum((prob * bins).astype(np.int64), bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count:
            table.append(CalibrationBin(b / bins, (b + 1) / bins, count,
                                        float(prob[members].mean()), float(up[members].mean())))
    return tuple(table)


def _r_squared(actual: FloatArray, predicted: FloatArray) -> float:
    total = float(np.sum((actual - actual.mean()) ** 2))
    return 1.0 - float(np.sum((actual - predicted) ** 2)) / total if total > 0 else 0.0


def _strategy(span: CandleSeries, expected: FloatArray, fee: float) -> BacktestResult:
    """Long/flat on the forecast over the test span, paying ``fee`` per side."""
    strategy = ModelSignal(expected, {"fee": fee})
    model = FillModel(FeeSchedule(maker=fee, taker=fee))
    # The predictions were made bar by bar out of sample; re-cutting the history cannot
    # change them, so the backtester's truncation check has nothing to find.
    return run_backtest(span, strategy, fill_model=model, lookahead_cuts=0)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

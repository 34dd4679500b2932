import json
import math

import numpy as np

from terminal.core.metrics import compute_metrics
from terminal.core.model import Timeframe


def test_cagr_of_a_short_fast_run_is_infinite_not_an_overflow() -> None:
    # A 3 % gain in one minute compounds to more than any float over a year.
    metrics = compute_metrics(np.array([100.0, 103.0]), np.array([False, True]), [],
                              Timeframe.M1)
    assert metrics.cagr == math.inf
    assert json.loads(json.dumps(metrics.to_json(), allow_nan=False))["cagr"] is None


def test_cagr_compounds_to_a_year() -> None:
    daily = compute_metrics(np.array([100.0, 110.0]), np.array([False, True]), [],
                            Timeframe.D1)
    assert daily.cagr is not None and math.isclose(daily.cagr, 1.1 ** 365 - 1, rel_tol=1e-9)
    lost = compute_metrics(np.array([100.0, 0.0]), np.array([False, True]), [], Timeframe.D1)
    assert lost.cagr == -1.0

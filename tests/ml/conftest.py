"""Fixtures for the forecasting tests: small hourly histories built in memory."""

from __future__ import annotations

import pytest

from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from tests.factories import make_series


@pytest.fixture(scope="module")
def hourly() -> CandleSeries:
    """A 2,000-bar hourly random walk: no model can honestly forecast it."""
    return make_series(2_000, Timeframe.H1, seed=11)

"""Fixtures for exchange tests: the local exchange emulator and a network guard.

Every test in this folder runs behind the guard of ``tests/conftest.py`` that refuses
connections and name lookups for any host but 127.0.0.1, so ccxt can never reach a real
exchange from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from terminal.core.clock import Clock
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.exchange.errors import RetryPolicy
from tests.exchange.emulator import API_KEY, SECRET, ExchangeEmulator


@pytest.fixture(autouse=True)
def offline(no_internet: list[str]) -> list[str]:
    """Every exchange test runs behind the network guard (``no_internet``)."""
    return no_internet


async def _no_sleep(_seconds: float) -> None:
    return None


def fast_retry(attempts: int = 4) -> RetryPolicy:
    """Backoff that does not wait, so retry tests stay fast; delays are still computed."""
    return RetryPolicy(attempts=attempts, base_delay_s=0.001, max_delay_s=0.01,
                       max_wait_s=60, sleep=_no_sleep)


VenueFactory = Callable[..., CcxtVenue]


@pytest.fixture
def make_venue(emulator: ExchangeEmulator) -> VenueFactory:
    """Builds a ccxt binance venue pointed at the emulator, with the right keys by default."""

    def build(*, api_key: str | None = API_KEY, secret: str | None = SECRET,
              retry: RetryPolicy | None = None, clock: Clock | None = None,
              timeout_ms: int = 2_000, **options: Any) -> CcxtVenue:
        return CcxtVenue("binance", api_key=api_key, secret=secret, websocket=False,
                         retry=retry or fast_retry(), clock=clock, timeout_ms=timeout_ms,
                         rate_limit_ms=0, api_base_url=emulator.base_url, **options)

    return build

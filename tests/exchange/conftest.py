"""Fixtures for exchange tests: the local exchange emulator and a network guard.

Every test in this folder runs with a guard that refuses connections and name lookups for any
host but 127.0.0.1, so ccxt can never reach a real exchange from here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from terminal.core.clock import Clock
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.exchange.errors import RetryPolicy
from tests.exchange.emulator import API_KEY, SECRET, ExchangeEmulator

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ForeignConnection(AssertionError):
    """Something tried to reach a host other than this machine."""


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any attempt to resolve or connect to a non-local host; returns the attempts."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        if isinstance(address, tuple) and address and str(address[0]) not in LOCAL_HOSTS:
            attempts.append(str(address[0]))
            raise ForeignConnection(f"test tried to reach {address[0]}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and str(host) not in LOCAL_HOSTS:
            attempts.append(str(host))
            raise ForeignConnection(f"test tried to resolve {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


@pytest.fixture
def emulator() -> Iterator[ExchangeEmulator]:
    server = ExchangeEmulator()
    server.start()
    try:
        yield server
    finally:
        server.stop()


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

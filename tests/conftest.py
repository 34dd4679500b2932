"""Shared fixtures. Every test runs with its own data folder and never touches the user's."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from terminal.core.storage import Store
from tests.exchange.emulator import ExchangeEmulator
from tests.factories import Moment
from tests.keyring_helpers import MemoryKeyring

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point platformdirs (data, config, cache) at a private folder for the test."""
    home = tmp_path_factory.mktemp("home")
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(variable, str(home / variable.lower()))
    return home


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def moment(monkeypatch: pytest.MonkeyPatch) -> Moment:
    """The wall clock held still at ``FROZEN_NOW``; set ``moment.now`` to move it."""
    return Moment(monkeypatch)


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """A fresh store in the test's data folder."""
    opened = Store.open(data_dir)
    yield opened
    opened.close()


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """An in-memory keyring in place of the OS one for the test."""
    import keyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ForeignConnection(AssertionError):
    """Something tried to reach a host other than this machine."""


@pytest.fixture
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
    """The local exchange emulator (Binance spot), started for the test."""
    server = ExchangeEmulator()
    server.start()
    try:
        yield server
    finally:
        server.stop()

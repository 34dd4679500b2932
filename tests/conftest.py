"""Shared fixtures. Every test runs with its own data folder and never touches the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.core.storage import Store
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

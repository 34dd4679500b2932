from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.core.storage import Store


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    opened = Store.open(data_dir)
    yield opened
    opened.close()

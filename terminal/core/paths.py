"""Where the terminal keeps its files (platformdirs), overridable with ``--data-dir``."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from terminal.core.errors import InvalidArgument

APP_NAME = "crypto-terminal"
APP_DISPLAY_NAME = "Crypto Terminal"


def default_data_dir() -> Path:
    """The user's data folder for this application, created on first use."""
    path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_data_dir(requested: str | None) -> Path:
    """The data folder to use: ``requested`` when given (it must exist), else the default."""
    if requested is None:
        return default_data_dir()
    path = Path(requested).expanduser()
    if not path.exists():
        raise InvalidArgument(f"the data directory {path} does not exist; create it first")
    if not path.is_dir():
        raise InvalidArgument(f"the data directory {path} is a file, not a folder")
    return path.resolve()

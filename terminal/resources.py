"""Finding files shipped in ``resources/``, from a source checkout or a frozen bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    # PyInstaller unpacks bundled data under sys._MEIPASS; a checkout has it beside the package.
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return base / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a shipped file such as ``resource_path("icons", "app.svg")``; it must exist."""
    path = resources_dir().joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"resource {'/'.join(parts)} is missing from {resources_dir()}")
    return path

"""Entry script of the frozen bundle: the same as ``python -m terminal``."""

from __future__ import annotations

import multiprocessing
import sys

from terminal.cli import main

if __name__ == "__main__":
    # A frozen executable is also what a spawned worker process starts; this call turns such
    # a start into the worker instead of a second terminal.
    multiprocessing.freeze_support()
    sys.exit(main())

"""Error types that cross layer boundaries.

Every error a user can cause carries a message written for that user: what was wrong and where.
Adapters (exchange, ml, storage) translate their libraries' exceptions into these types so the
UI and the CLI only ever have to handle ours.
"""

from __future__ import annotations


class TerminalError(Exception):
    """Base of every error the application reports to its user."""


class InvalidArgument(TerminalError, ValueError):
    """A value given by the user (symbol, timeframe, date, path, ...) cannot be used."""


class DataError(TerminalError):
    """Market data is malformed or inconsistent."""


class ImportRejected(DataError):
    """A file cannot be imported; nothing from it was stored."""


class StoreError(TerminalError):
    """The local database cannot be opened, read or written."""

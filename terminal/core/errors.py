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


class VenueError(TerminalError):
    """A venue (exchange, paper or simulated) refused or failed a request.

    ``retryable`` is True only for failures that a later identical request may not meet
    (network, timeout, rate limit, venue down); everything else reaches the user unchanged.
    """

    retryable = False


class VenueUnavailable(VenueError):
    """The venue could not be reached or answered with a server error; try again later."""

    retryable = True


class RateLimited(VenueUnavailable):
    """The venue asked us to slow down. ``retry_after`` is its requested pause in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationFailed(VenueError):
    """The API key is missing, wrong, expired or lacks a permission the request needs."""


class InsufficientFunds(VenueError):
    """The account's free balance does not cover the order."""


class OrderRejected(VenueError):
    """The venue refused the order as invalid (price, amount, precision, limits, type)."""


class MarketClosed(VenueError):
    """The market is halted, delisted or closed for trading."""


class OrderNotFound(VenueError):
    """The venue has no order with the given id."""


class Cancelled(TerminalError):
    """The user stopped a long job (a backtest, a search, a training) before it ended;
    nothing from it was kept."""

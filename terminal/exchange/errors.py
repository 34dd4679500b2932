"""ccxt's exceptions translated into the terminal's :class:`VenueError` family, and retries.

Only failures that a later identical request may not meet are retried: network errors,
timeouts, rate limits, bans and the exchange being down or overloaded. Authentication,
insufficient funds, invalid orders and closed markets reach the user at once, because sending
the same request again cannot succeed. Retries back off exponentially and honour the
``Retry-After`` header the exchange sent with a 429 or 418 answer.

This module only translates; whether a failed *order* may be sent again is decided in
:mod:`terminal.exchange.ccxt_venue`, which first asks the exchange whether the order arrived.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import ccxt

from terminal.core.errors import (
    AuthenticationFailed,
    InsufficientFunds,
    MarketClosed,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    VenueError,
    VenueUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

_SIGNATURE_RE = re.compile(r"(signature=)[0-9A-Za-z%+/=_-]+")
_SECRET_FIELD_RE = re.compile(
    r"""(['"][\w-]*(?:sign|key|secret|passphrase|token)[\w-]*['"]\s*:\s*['"])[^'"]+""",
    re.IGNORECASE)
_JSON_RE = re.compile(r"\{.*\}", re.DOTALL)


class ClockSkew(VenueError):
    """The exchange rejected the request's timestamp: this computer's clock is off."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently retryable failures are repeated.

    The n-th retry waits ``base_delay_s * 2 ** n`` seconds (at most ``max_delay_s``), or the
    exchange's ``Retry-After`` when it asked for longer. A pause longer than ``max_wait_s``
    (a ban measured in minutes) is not slept through: the error goes to the caller at once.
    ``sleep`` is injectable so tests do not wait for real.
    """

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_wait_s: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def delay(self, retry: int, error: VenueError) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) after ``error``."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** retry)
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        return backoff if retry_after is None else max(backoff, retry_after)


class Redactor:
    """Removes API keys, secrets and request signatures from text that may be shown or logged.

    It knows the secrets it was given (:meth:`add`) and recognises signatures by shape: a
    ``signature=`` query parameter and header or field names containing sign, key, secret,
    passphrase or token.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def __call__(self, text: str) -> str:
        text = _SIGNATURE_RE.sub(r"\1<redacted>", text)
        text = _SECRET_FIELD_RE.sub(r"\1<redacted>", text)
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record through a :class:`Redactor`.

    ccxt logs request URLs (with their signature) and headers (with the API key) at debug
    level; this filter sits on ccxt's loggers so nothing secret reaches a log file.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        return True


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """The pause a ``Retry-After`` header asks for: seconds, or an HTTP date."""
    if not headers:
        return None
    value = next((str(v) for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def translate(error: BaseException, *, venue: str, redact: Redactor,
              headers: Mapping[str, Any] | None = None) -> VenueError:
    """Our error for a ccxt (or network) exception; ``headers`` are the last HTTP response's."""
    detail = redact(_exchange_message(error))
    if isinstance(error, VenueError):
        return error
    if isinstance(error, ccxt.DDoSProtection):
        retry_after = retry_after_seconds(headers)
        banned = " 418 " in str(error)
        what = "is refusing requests from this address for a while (IP ban)" if banned \
            else "asks us to slow down (rate limit)"
        wait = f"; retry after {retry_after:.0f} s" if retry_after is not None else ""
        return RateLimited(f"{venue} {what}{wait}", retry_after)
    if isinstance(error, ccxt.InvalidNonce):
        return ClockSkew(f"{venue} rejected the request time: this computer's clock differs"
                         f" from the exchange's; synchronise the system clock ({detail})")
    if isinstance(error, ccxt.RequestTimeout):
        return VenueUnavailable(f"{venue} did not answer in time ({detail})")
    if isinstance(error, ccxt.OnMaintenance):
        return VenueUnavailable(f"{venue} is under maintenance ({detail})")
    if isinstance(error, ccxt.NetworkError | ccxt.OperationFailed | OSError):
        return VenueUnavailable(f"{venue} cannot be reached or failed to answer ({detail})")
    if isinstance(error, ccxt.AuthenticationError):
        return AuthenticationFailed(f"{venue} refused the API key: {detail}. Check the key,"
                                    " its secret and its permissions (trading enabled, IP"
                                    " whitelist)")
    if isinstance(error, ccxt.InsufficientFunds):
        return InsufficientFunds(f"{venue}: insufficient balance for this order ({detail})")
    if isinstance(error, ccxt.MarketClosed):
        return MarketClosed(f"{venue}: the market is closed for trading ({detail})")
    if isinstance(error, ccxt.OrderNotFound):
        return OrderNotFound(f"{venue} has no such order ({detail})")
    if isinstance(error, ccxt.InvalidOrder):
        return OrderRejected(f"{venue} rejected the order: {detail}")
    if isinstance(error, ccxt.BadSymbol):
        return VenueError(f"{venue} does not list this market ({detail})")
    if isinstance(error, ccxt.NotSupported):
        return VenueError(f"{venue} does not support this: {detail}")
    return VenueError(f"{venue}: {detail}")


def _exchange_message(error: BaseException) -> str:
    """The exchange's own words from a ccxt message such as ``binance {"code":..,"msg":..}``."""
    text = str(error) or type(error).__name__
    match = _JSON_RE.search(text)
    if match:
        try:
            body = json.loads(match.group(0))
        except ValueError:
            return text
        if isinstance(body, dict):
            message = body.get("msg") or body.get("message") or body.get("error")
            code = body.get("code")
            if message:
                return f"{message} (code {code})" if code is not None else str(message)
    return text


async def call_with_retry(call: Callable[[], Awaitable[T]], *, translate_error:
                          Callable[[BaseException], VenueError], policy: RetryPolicy,
                          what: str,
                          on_clock_skew: Callable[[], Awaitable[None]] | None = None) -> T:
    """Run ``call``; retry retryable failures by ``policy``; raise our error otherwise.

    Only use this for requests that are safe to repeat (reads, cancels). A clock-skew
    rejection is answered once by ``on_clock_skew`` (resynchronising) and one more try.
    """
    skew_fixed = False
    retry = 0
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as raw:
            error = translate_error(raw)
            if isinstance(error, ClockSkew) and on_clock_skew is not None and not skew_fixed:
                skew_fixed = True
                await on_clock_skew()
                continue
            if not error.retryable or retry + 1 >= policy.attempts:
                raise error from raw
            delay = policy.delay(retry, error)
            if delay > policy.max_wait_s:
                raise error from raw
            log.warning("%s failed (%s); retry %d of %d in %.1f s", what, error, retry + 1,
                        policy.attempts - 1, delay)
            retry += 1
            await policy.sleep(delay)

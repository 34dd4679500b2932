"""API keys in the OS keyring, and a log filter that keeps them out of every log line.

This is the only module that imports :mod:`keyring` (import-linter checks it). Keys are kept
per exchange id under our service name, one keyring entry each, holding the API key, the
secret and the optional password (passphrase) as one JSON value. A keyring cannot list its
entries, so a separate entry, :data:`INDEX_ENTRY`, holds the (non-secret) list of exchange
ids that have keys.

Where the platform has no usable keyring (``keyring.backends.fail``/``null``: a headless
Linux without a Secret Service, for instance), every call raises :class:`KeyringUnavailable`
saying so and naming the one fallback: starting the terminal with ``--keys-from-env``, which
reads keys for that run only from ``TERMINAL_<EXCHANGE>_API_KEY``, ``..._SECRET`` and
``..._PASSWORD`` environment variables. Nothing is ever written to a plaintext file.

keyring is imported on first use: it takes a tenth of a second to load, which every command
line call would otherwise pay for the log filter alone.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType

from terminal.core.errors import InvalidArgument, TerminalError
from terminal.core.paths import APP_NAME

#: The keyring service our entries live under.
SERVICE_NAME = f"{APP_NAME}.exchange-keys"
#: The keyring entry listing which exchanges have keys.
INDEX_ENTRY = "__exchanges__"
ENV_PREFIX = "TERMINAL_"
ENV_FIELDS = {"api_key": "API_KEY", "secret": "SECRET", "password": "PASSWORD"}
FALLBACK_HINT = (
    "start the terminal with --keys-from-env and set TERMINAL_<EXCHANGE>_API_KEY,"
    " TERMINAL_<EXCHANGE>_SECRET (and TERMINAL_<EXCHANGE>_PASSWORD where the exchange needs"
    " one) for that run only; keys are never saved to a file")
_EXCHANGE_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")


class KeyringUnavailable(TerminalError):
    """The OS keyring cannot be used (no backend, locked, or refused the request)."""


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    """An exchange API key. ``repr`` never shows the secret parts."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("api_key", "secret"):
            value = getattr(self, name)
            if not value or value != value.strip():
                raise InvalidArgument(f"the {name.replace('_', ' ')} is empty or has spaces"
                                      " around it")

    @property
    def masked_key(self) -> str:
        """The API key as a user may see it: its first and last four characters."""
        key = self.api_key
        return f"{key[:4]}…{key[-4:]}" if len(key) > 12 else "…"

    def values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.api_key, self.secret, self.password) if v)


def check_exchange_id(exchange_id: str) -> str:
    """The exchange id, checked (``binance``, ``okx``, ``coinbase``...)."""
    cleaned = exchange_id.strip().lower()
    if not _EXCHANGE_ID.match(cleaned):
        raise InvalidArgument(f"invalid exchange id {exchange_id!r}; use the ccxt id such as"
                              " binance, bybit, okx or kraken")
    return cleaned


class KeyStore:
    """Stores and loads API keys per exchange id.

    With ``from_env`` set (the ``--keys-from-env`` launch option) keys come from the
    environment ``environ`` instead, read-only; the keyring is not touched.
    """

    def __init__(self, *, service: str = SERVICE_NAME, from_env: bool = False,
                 environ: Mapping[str, str] | None = None) -> None:
        self.service = service
        self.from_env = from_env
        self._environ = os.environ if environ is None else environ

    def save(self, exchange_id: str, credentials: ApiCredentials) -> None:
        """Keep ``credentials`` for ``exchange_id``, replacing any kept before."""
        exchange = check_exchange_id(exchange_id)
        self._writable()
        value = json.dumps({"api_key": credentials.api_key, "secret": credentials.secret,
                            "password": credentials.password})
        with _keyring_errors("store the key"):
            _keyring().set_password(self.service, exchange, value)
            index = self._index()
            if exchange not in index:
                self._write_index([*index, exchange])
        redact_values(credentials.values())

    def load(self, exchange_id: str) -> ApiCredentials | None:
        """The keys kept for ``exchange_id``, or None."""
        exchange = check_exchange_id(exchange_id)
        if self.from_env:
            credentials = self._from_env(exchange)
        else:
            _require_backend()
            with _keyring_errors("read the key"):
                raw = _keyring().get_password(self.service, exchange)
            credentials = None if raw is None else _parse(raw, exchange)
        if credentials is not None:
            redact_values(credentials.values())
        return credentials

    def delete(self, exchange_id: str) -> bool:
        """Forget the keys of ``exchange_id``; False when there were none."""
        exchange = check_exchange_id(exchange_id)
        self._writable()
        with _keyring_errors("delete the key"):
            existed = _keyring().get_password(self.service, exchange) is not None
            if existed:
                _keyring().delete_password(self.service, exchange)
            index = self._index()
            if exchange in index:
                self._write_index([e for e in index if e != exchange])
        return existed

    def exchanges(self) -> list[str]:
        """The exchange ids that have keys, sorted."""
        if self.from_env:
            found = {name[len(ENV_PREFIX):-len("_API_KEY")].lower()
                     for name in self._environ
                     if name.startswith(ENV_PREFIX) and name.endswith("_API_KEY")}
            return sorted(e for e in found if _EXCHANGE_ID.match(e))
        _require_backend()
        with _keyring_errors("read the list of keys"):
            return sorted(self._index())

    def _writable(self) -> None:
        if self.from_env:
            raise InvalidArgument("keys come from the environment in this run"
                                  " (--keys-from-env); they cannot be changed from here")
        _require_backend()

    def _index(self) -> list[str]:
        raw = _keyring().get_password(self.service, INDEX_ENTRY)
        if not raw:
            return []
        try:
            names = json.loads(raw)
        except json.JSONDecodeError:
            return []
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def _write_index(self, names: Iterable[str]) -> None:
        _keyring().set_password(self.service, INDEX_ENTRY, json.dumps(sorted(set(names))))

    def _from_env(self, exchange: str) -> ApiCredentials | None:
        prefix = f"{ENV_PREFIX}{exchange.upper()}_"
        values = {name: self._environ.get(prefix + suffix) for name, suffix in ENV_FIELDS.items()}
        if not values["api_key"] and not values["secret"]:
            return None
        if not values["api_key"] or not values["secret"]:
            raise InvalidArgument(f"set both {prefix}API_KEY and {prefix}SECRET")
        return ApiCredentials(values["api_key"], values["secret"], values["password"] or None)


def keyring_problem() -> str | None:
    """Why the OS keyring cannot be used here, or None when it can."""
    backend = _keyring().get_keyring()
    usable = _usable(backend)
    if usable:
        return None
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    return (f"no usable OS keyring was found (keyring backend: {name}); install and unlock"
            " one (macOS Keychain, Windows Credential Manager, or on Linux a Secret Service"
            f" such as GNOME Keyring or KWallet), or {FALLBACK_HINT}")


def _keyring() -> ModuleType:
    import keyring

    return keyring


def _usable(backend: object) -> bool:
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(_usable(b) for b in backend.backends)
    return True


def _require_backend() -> None:
    problem = keyring_problem()
    if problem is not None:
        raise KeyringUnavailable(problem)


@contextmanager
def _keyring_errors(doing: str) -> Iterator[None]:
    """Turns keyring's failures (locked, refused, missing backend) into our error."""
    from keyring.errors import KeyringError, NoKeyringError

    try:
        yield
    except NoKeyringError as error:
        raise KeyringUnavailable(keyring_problem() or str(error)) from error
    except KeyringError as error:
        raise KeyringUnavailable(f"the OS keyring refused to {doing}: {error}"
                                 " (is it locked?)") from error


def _parse(raw: str, exchange: str) -> ApiCredentials:
    try:
        data = json.loads(raw)
        return ApiCredentials(data["api_key"], data["secret"], data.get("password") or None)
    except (json.JSONDecodeError, KeyError, TypeError, InvalidArgument):
        raise KeyringUnavailable(f"the keyring entry for {exchange} is damaged; delete it with"
                                 f" `python -m terminal keys delete {exchange}` and set it"
                                 " again") from None


# --- keeping secrets out of logs ------------------------------------------------------------

_REDACTED = "***"
# name=value, name: value, "name": "value" for names that carry secrets (URL queries,
# headers, JSON bodies, ccxt's verbose request dumps).
_NAMED = re.compile(
    r"""(?ix)
    (?<![A-Za-z0-9_])
    (?P<name>["']?(?:api[-_]?key|apikey|x-mbx-apikey|secret(?:[-_]?key)?|api[-_]?secret|
        signature|sign|password|passphrase|passwd|token|access[-_]?token|
        authorization|ok-access-key|ok-access-sign|ok-access-passphrase|x-bapi-api-key|
        x-bapi-sign)["']?)
    (?P<sep>\s*[:=]\s*)
    (?P<quote>["']?)
    (?P<value>(?:Bearer\s+)?[^\s"'&,;}]+)
    """)
# Long runs of hex (HMAC signatures) or of key-like characters (API keys, base64 secrets);
# a key-like run mixes upper case, lower case and digits, which paths and words do not.
_LONG_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_-])")
_known_values: set[str] = set()


def redact_values(values: Iterable[str]) -> None:
    """Remember secret values so that they are redacted wherever they appear."""
    _known_values.update(v for v in values if len(v) >= 6)


def redact(text: str) -> str:
    """``text`` with anything that looks like a key, a secret or a signature replaced."""
    for value in _known_values:
        if value in text:
            text = text.replace(value, _REDACTED)
    text = _NAMED.sub(lambda m: f"{m['name']}{m['sep']}{m['quote']}{_REDACTED}", text)
    text = _LONG_HEX.sub(_REDACTED, text)
    return _LONG_TOKEN.sub(_key_like, text)


def _key_like(match: re.Match[str]) -> str:
    token = match[0]
    mixed = (any(c.isupper() for c in token) and any(c.islower() for c in token)
             and any(c.isdigit() for c in token))
    return _REDACTED if mixed and not token.startswith("/") else token


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    if getattr(record, "_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:
        # A bad format string is reported by the handler when it emits the record.
        return
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._redacted = True


_installed_factory: list[object] = []


def install_log_redaction() -> None:
    """Redact every log record, whoever logs it and whichever handler writes it.

    A filter on the root logger alone would miss records of other loggers (filters run
    only where a record is made), so records are redacted as they are created, and the
    root logger's handlers get the filter too for records made before this call.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if not any(isinstance(f, RedactingFilter) for f in root.filters):
        root.addFilter(RedactingFilter())
    if _installed_factory:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed_factory.append(factory)

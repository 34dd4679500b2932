"""API keys in the keyring (an in-memory backend, never the real one) and log redaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import keyring
import keyring.backends.fail
import pytest

from terminal.core.errors import InvalidArgument
from terminal.core.secrets import (
    INDEX_ENTRY,
    SERVICE_NAME,
    ApiCredentials,
    KeyringUnavailable,
    KeyStore,
    RedactingFilter,
    install_log_redaction,
    redact,
)
from tests.keyring_helpers import MemoryKeyring

KEY = ApiCredentials("vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                     "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j")


def test_keys_are_stored_listed_loaded_and_deleted(memory_keyring: MemoryKeyring) -> None:
    store = KeyStore()
    assert store.exchanges() == [] and store.load("binance") is None
    store.save("Binance", KEY)
    store.save("okx", ApiCredentials("okx-key-1234567", "okx-secret-123456", "passphrase"))
    assert store.exchanges() == ["binance", "okx"]
    assert store.load("binance") == KEY
    assert store.load("okx").password == "passphrase"  # type: ignore[union-attr]
    # The index holds exchange ids only; the secrets are in their own entries.
    assert KEY.secret not in memory_keyring.entries[(SERVICE_NAME, INDEX_ENTRY)]
    assert store.delete("okx") is True and store.delete("okx") is False
    assert store.exchanges() == ["binance"]


def test_credentials_never_show_their_secrets() -> None:
    assert KEY.secret not in repr(KEY) and KEY.api_key not in repr(KEY)
    assert KEY.masked_key == "vmPU…Eh8A"
    with pytest.raises(InvalidArgument, match="secret is empty"):
        ApiCredentials("key", " ")


def test_bad_exchange_ids_are_refused(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(InvalidArgument, match="invalid exchange id"):
        KeyStore().save("../etc", KEY)


def test_without_a_keyring_backend_the_error_names_the_fallback() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        with pytest.raises(KeyringUnavailable, match=r"no usable OS keyring.*--keys-from-env"):
            KeyStore().save("binance", KEY)
        with pytest.raises(KeyringUnavailable, match=r"keyring\.backends\.fail\.Keyring"):
            KeyStore().exchanges()
    finally:
        keyring.set_keyring(previous)


def test_a_locked_keyring_is_reported(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.locked = True
    with pytest.raises(KeyringUnavailable, match=r"refused to read the key.*locked"):
        KeyStore().load("binance")


def test_keys_from_the_environment_are_read_only(memory_keyring: MemoryKeyring) -> None:
    environ = {"TERMINAL_BINANCE_API_KEY": "env-key-123456", "TERMINAL_BINANCE_SECRET":
               "env-secret-123456", "TERMINAL_KRAKEN_API_KEY": "only-a-key", "HOME": "/x"}
    store = KeyStore(from_env=True, environ=environ)
    assert store.exchanges() == ["binance", "kraken"]
    assert store.load("binance") == ApiCredentials("env-key-123456", "env-secret-123456")
    with pytest.raises(InvalidArgument, match="set both TERMINAL_KRAKEN_API_KEY"):
        store.load("kraken")
    with pytest.raises(InvalidArgument, match="cannot be changed"):
        store.save("binance", KEY)
    assert memory_keyring.entries == {}


@pytest.mark.parametrize("line", [
    "GET /api/v3/account?timestamp=1700000000000&signature="
    "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
    'headers {"X-MBX-APIKEY": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91du"}',
    "config apiKey=abc123def456 secret: 'hunter2hunter2' password=p4ss",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    "loaded NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j from somewhere",
])
def test_anything_that_looks_like_a_secret_is_redacted(line: str) -> None:
    cleaned = redact(line)
    assert "***" in cleaned
    for secret in ("c8db5682", "vmPUZE6m", "abc123def456", "hunter2", "p4ss", "eyJhbGci",
                   "NhqPtmdS"):
        assert secret not in cleaned


def test_ordinary_lines_are_left_alone() -> None:
    line = ("stored 1440 candles of BTC/USDT in /home/user/.local/share/crypto-terminal/"
            "terminal.sqlite3 order trm-0a1b2c3d4e5f6a7b8c9d0e1f design=flat tokens: 5")
    assert redact(line) == line


@pytest.fixture
def redaction_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install the redaction for one test and take it out again afterwards."""
    import terminal.core.secrets as secrets_module

    factory = logging.getLogRecordFactory()
    monkeypatch.setattr(secrets_module, "_installed_factory", [])
    install_log_redaction()
    yield
    logging.setLogRecordFactory(factory)
    root = logging.getLogger()
    for owner in (root, *root.handlers):
        for installed in [f for f in owner.filters if isinstance(f, RedactingFilter)]:
            owner.removeFilter(installed)


@pytest.mark.usefixtures("redaction_installed")
def test_every_logger_is_redacted_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("terminal.exchange.some_venue")
    with caplog.at_level(logging.INFO):
        logger.info("request failed: %s", "https://api.x.com/order?apiKey=K3yK3yK3y&sig=1")
        try:
            raise RuntimeError(f"signature={'ab' * 32}")
        except RuntimeError:
            logger.exception("boom")
    text = caplog.text
    assert "K3yK3yK3y" not in text and "ab" * 32 not in text
    assert "apiKey=***" in text


def test_known_secret_values_are_redacted_anywhere(memory_keyring: MemoryKeyring) -> None:
    KeyStore().save("bybit", ApiCredentials("short-key-1", "tiny-secret"))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s then tiny-secret",
                               ("short-key-1",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "key *** then ***"

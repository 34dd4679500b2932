"""The API-keys dialog: keys only through the keyring, masked, tested on the asyncio loop
against the exchange emulator (never the network), withdrawal permission reported."""

from __future__ import annotations

import asyncio

import keyring
import keyring.backends.fail
import pytest

from terminal.core.secrets import ApiCredentials, KeyStore
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.ui.keys_dialog import KeysDialog
from tests.exchange.conftest import fast_retry
from tests.exchange.emulator import API_KEY, SECRET, ExchangeEmulator

pytestmark = pytest.mark.qt

IDS = ("binance", "kraken", "okx")


def make_dialog(qtbot, emulator: ExchangeEmulator | None = None) -> KeysDialog:
    def factory(exchange_id: str, credentials: ApiCredentials) -> CcxtVenue:
        assert emulator is not None
        return CcxtVenue(exchange_id, api_key=credentials.api_key, secret=credentials.secret,
                         websocket=False, retry=fast_retry(1), timeout_ms=2_000,
                         rate_limit_ms=0, api_base_url=emulator.base_url)

    dialog = KeysDialog(venue_factory=factory, exchange_ids=lambda: IDS)
    qtbot.addWidget(dialog)
    return dialog


def run_test(qapp, dialog: KeysDialog) -> None:
    import qasync

    loop = qasync.QEventLoop(qapp)

    async def scenario() -> None:
        assert dialog.test_connection()
        assert dialog.test_running  # the GUI thread did not wait for it
        while dialog.test_running:
            await asyncio.sleep(0.02)

    try:
        with loop:
            loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    finally:
        asyncio.set_event_loop(None)


def test_keys_are_saved_edited_and_deleted_in_the_keyring(qtbot, memory_keyring) -> None:
    dialog = make_dialog(qtbot)
    assert dialog.listed == [] and dialog.secrets_masked
    dialog.fill("binance", "k" * 20, "s" * 30)
    assert dialog.save()
    assert dialog.listed == ["binance"]
    assert KeyStore().load("binance") == ApiCredentials("k" * 20, "s" * 30)
    assert "kkkk…kkkk" in dialog.result_text and "s" * 30 not in dialog.result_text
    dialog._show.setChecked(True)
    assert not dialog.secrets_masked
    dialog.fill("nosuchexchange", "k" * 20, "s" * 30)
    assert not dialog.save()
    assert "does not know the exchange" in dialog.result_text
    dialog.fill("kraken", "", "s")
    assert not dialog.save() and "empty" in dialog.result_text
    dialog.edit("binance")
    assert dialog.delete()
    assert dialog.listed == [] and KeyStore().exchanges() == []


def test_an_unusable_keyring_is_said_plainly_with_the_fallback(qtbot) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        dialog = make_dialog(qtbot)
        assert "--keys-from-env" in dialog.banner_text
        dialog.fill("binance", "k" * 20, "s" * 30)
        assert not dialog.save()
        assert dialog.result_text.startswith("Not saved")
    finally:
        keyring.set_keyring(previous)


def test_a_connection_test_reads_the_account_and_the_withdrawal_permission(
        qapp, qtbot, memory_keyring, emulator: ExchangeEmulator) -> None:
    emulator.deposit("USDT", "1500")
    dialog = make_dialog(qtbot, emulator)
    dialog.fill("binance", API_KEY, SECRET)
    run_test(qapp, dialog)
    assert dialog.result_text.startswith("Connected"), dialog.result_text
    assert "1500 USDT" in dialog.result_text
    assert "off (good)" in dialog.withdrawal_text
    emulator.api_restrictions["enableWithdrawals"] = True
    run_test(qapp, dialog)
    assert "can WITHDRAW funds" in dialog.withdrawal_text
    assert memory_keyring.entries == {}  # testing does not store anything


def test_a_bad_key_fails_the_test_with_the_exchanges_reason(
        qapp, qtbot, memory_keyring, emulator: ExchangeEmulator) -> None:
    dialog = make_dialog(qtbot, emulator)
    dialog.fill("binance", "x" * 64, SECRET)
    run_test(qapp, dialog)
    assert dialog.result_text.startswith("Connection failed")
    assert "x" * 64 not in dialog.result_text
    assert dialog.withdrawal_text == ""


def test_an_exchange_that_cannot_tell_says_unknown(
        qapp, qtbot, memory_keyring, emulator: ExchangeEmulator, monkeypatch) -> None:
    kraken = CcxtVenue("kraken", websocket=False)
    try:
        assert asyncio.run(kraken.can_withdraw()) is None  # no request: ccxt cannot tell
    finally:
        asyncio.run(kraken.close())

    async def unknown(self: CcxtVenue) -> None:
        return None

    monkeypatch.setattr(CcxtVenue, "can_withdraw", unknown)
    dialog = make_dialog(qtbot, emulator)
    dialog.fill("binance", API_KEY, SECRET)
    run_test(qapp, dialog)
    assert "unknown" in dialog.withdrawal_text

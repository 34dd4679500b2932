"""File → API keys: exchange keys kept in the OS keyring, added, edited, tested, deleted.

Keys only ever go through :class:`KeyStore` (the keyring). Secrets are masked unless "Show"
is ticked. "Test connection" reads the account with the keys typed (saved or not) on the
asyncio loop, never on the GUI thread, and warns when the key may withdraw funds; where the
exchange cannot tell through ccxt the dialog says "unknown".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from terminal.core.errors import TerminalError
from terminal.core.secrets import ApiCredentials, KeyringUnavailable, KeyStore, check_exchange_id
from terminal.widgets.forms import show_state

if TYPE_CHECKING:
    from terminal.exchange.key_check import KeyCheck, VenueFactory

log = logging.getLogger(__name__)

#: Exchanges offered first in the picker, in this order.
POPULAR = ("binance", "bybit", "okx", "coinbase", "kraken", "kucoin", "bitget", "gateio")


def _all_exchange_ids() -> list[str]:
    # ccxt is imported only when the dialog opens: it is large and the window starts without.
    from terminal.exchange.ccxt_venue import exchange_ids

    return exchange_ids()


class KeysDialog(QDialog):
    """Non-modal dialog over a :class:`KeyStore`. ``venue_factory`` makes the venue a test
    connects to (tests point it at the exchange emulator)."""

    #: A test finished: (exchange id, KeyCheck or None, error message or None).
    tested = Signal(str, object, object)

    def __init__(self, parent: QWidget | None = None, *, key_store: KeyStore | None = None,
                 venue_factory: VenueFactory | None = None,
                 exchange_ids: Callable[[], Sequence[str]] = _all_exchange_ids) -> None:
        super().__init__(parent)
        self.setWindowTitle("API keys")
        self.setMinimumSize(680, 420)
        self._keys = key_store or KeyStore()
        self._factory = venue_factory
        self._test: asyncio.Task[Any] | None = None
        self._known = list(exchange_ids())

        self._banner = QLabel("")
        self._banner.setObjectName("KeysBanner")
        self._banner.setWordWrap(True)
        self._banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._banner.hide()
        self._list = QListWidget()
        self._list.setObjectName("KeyList")
        self._list.setMaximumWidth(200)
        self._list.currentTextChanged.connect(self._on_listed)
        add = QPushButton("Add…")
        add.setAutoDefault(False)
        add.setToolTip("Enter keys for another exchange")
        add.clicked.connect(self.new_entry)
        left = QVBoxLayout()
        caption = QLabel("Exchanges with keys")
        caption.setObjectName("Muted")
        left.addWidget(caption)
        left.addWidget(self._list, 1)
        left.addWidget(add)

        self._exchange = QComboBox()
        self._exchange.setObjectName("ExchangePicker")
        self._exchange.setEditable(True)
        self._exchange.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        ordered = [e for e in POPULAR if e in self._known]
        ordered += [e for e in sorted(self._known) if e not in POPULAR]
        self._exchange.addItems(ordered)
        completer = QCompleter(ordered, self._exchange)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self._exchange.setCompleter(completer)
        self._exchange.setCurrentText("")
        self._exchange.lineEdit().setPlaceholderText("Search exchanges (ccxt id)…")
        self._api_key = self._secret_edit("API key")
        self._secret = self._secret_edit("Secret")
        self._password = self._secret_edit("Only where the exchange asks for one")
        self._show = QCheckBox("Show")
        self._show.setToolTip("Show the key and secrets as typed")
        self._show.toggled.connect(self._on_show)
        form = QFormLayout()
        form.addRow("Exchange", self._exchange)
        form.addRow("API key", self._api_key)
        form.addRow("Secret", self._secret)
        form.addRow("Passphrase", self._password)
        form.addRow("", self._show)

        self._result = QLabel("")
        self._result.setObjectName("KeyTestResult")
        self._result.setWordWrap(True)
        self._result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._withdraw = QLabel("")
        self._withdraw.setObjectName("WithdrawWarning")
        self._withdraw.setWordWrap(True)
        self._withdraw.hide()
        self._test_button = QPushButton("Test connection")
        self._test_button.setAutoDefault(False)
        self._test_button.clicked.connect(self.test_connection)
        self._save_button = QPushButton("Save")
        self._save_button.setObjectName("Primary")
        self._save_button.clicked.connect(self.save)
        self._delete_button = QPushButton("Delete")
        self._delete_button.clicked.connect(self.delete)
        actions = QHBoxLayout()
        actions.addWidget(self._test_button)
        actions.addStretch(1)
        actions.addWidget(self._delete_button)
        actions.addWidget(self._save_button)
        note = QLabel("Keys are kept in the operating system's keyring, never in a file. Give"
                      " trading keys no withdrawal permission.")
        note.setObjectName("Muted")
        note.setWordWrap(True)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addLayout(actions)
        right.addWidget(self._result)
        right.addWidget(self._withdraw)
        right.addStretch(1)
        right.addWidget(note)
        body = QHBoxLayout()
        body.addLayout(left)
        body.addLayout(right, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(self._banner)
        column.addLayout(body, 1)
        column.addWidget(close)
        self.reload()

    def _secret_edit(self, placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setEchoMode(QLineEdit.EchoMode.Password)
        edit.setPlaceholderText(placeholder)
        return edit

    # -- listing ----------------------------------------------------------------------------

    def reload(self) -> None:
        """List the exchanges with stored keys; a keyring that cannot be used is said plainly."""
        self._list.blockSignals(True)
        self._list.clear()
        try:
            names = self._keys.exchanges()
        except KeyringUnavailable as error:
            self._show_banner(str(error))
            names = []
        else:
            self._banner.hide()
        self._list.addItems(names)
        self._list.blockSignals(False)
        writable = self._banner.isHidden()
        self._save_button.setEnabled(writable)
        self._delete_button.setEnabled(writable)

    def _show_banner(self, message: str) -> None:
        self._banner.setText(f"The keyring cannot be used: {message}")
        self._banner.show()

    @property
    def listed(self) -> list[str]:
        return [self._list.item(i).text() for i in range(self._list.count())]

    @property
    def banner_text(self) -> str:
        return "" if self._banner.isHidden() else self._banner.text()

    def _on_listed(self, exchange: str) -> None:
        if exchange:
            self.edit(exchange)

    def new_entry(self) -> None:
        self._list.clearSelection()
        for edit in (self._api_key, self._secret, self._password):
            edit.clear()
        self._exchange.setCurrentText("")
        self._exchange.setFocus()
        self._set_result("", None)

    def edit(self, exchange: str) -> None:
        """Show the stored keys of ``exchange`` (masked) for editing."""
        try:
            credentials = self._keys.load(exchange)
        except KeyringUnavailable as error:
            self._show_banner(str(error))
            return
        self._exchange.setCurrentText(exchange)
        self._api_key.setText(credentials.api_key if credentials else "")
        self._secret.setText(credentials.secret if credentials else "")
        self._password.setText((credentials.password or "") if credentials else "")
        self._set_result("", None)

    def fill(self, exchange: str, api_key: str, secret: str, password: str = "") -> None:
        """Type keys into the form (tests, and pasting from elsewhere)."""
        self._exchange.setCurrentText(exchange)
        self._api_key.setText(api_key)
        self._secret.setText(secret)
        self._password.setText(password)

    def _on_show(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        for edit in (self._api_key, self._secret, self._password):
            edit.setEchoMode(mode)

    @property
    def secrets_masked(self) -> bool:
        return self._secret.echoMode() is QLineEdit.EchoMode.Password

    # -- reading the form -------------------------------------------------------------------

    def _form(self) -> tuple[str, ApiCredentials] | None:
        try:
            exchange = check_exchange_id(self._exchange.currentText())
            if exchange not in self._known:
                raise TerminalError(f"ccxt does not know the exchange {exchange!r}; pick one"
                                    " from the list")
            credentials = ApiCredentials(self._api_key.text(), self._secret.text(),
                                         self._password.text() or None)
        except TerminalError as error:
            self._set_result(str(error)[:1].upper() + str(error)[1:], False)
            return None
        return exchange, credentials

    # -- actions ----------------------------------------------------------------------------

    def save(self) -> bool:
        form = self._form()
        if form is None:
            return False
        exchange, credentials = form
        try:
            self._keys.save(exchange, credentials)
        except KeyringUnavailable as error:
            self._show_banner(str(error))
            self._set_result("Not saved: the keyring cannot be used.", False)
            return False
        self.reload()
        matches = self._list.findItems(exchange, Qt.MatchFlag.MatchExactly)
        if matches:
            self._list.blockSignals(True)
            self._list.setCurrentItem(matches[0])
            self._list.blockSignals(False)
        self._set_result(f"Saved the {exchange} keys ({credentials.masked_key}) in the"
                         " keyring.", True)
        return True

    def delete(self) -> bool:
        exchange = self._exchange.currentText().strip().lower()
        if not exchange:
            self._set_result("Choose the exchange whose keys to delete.", False)
            return False
        try:
            removed = self._keys.delete(exchange)
        except (KeyringUnavailable, TerminalError) as error:
            self._set_result(str(error), False)
            return False
        self.reload()
        self.new_entry()
        self._set_result(f"Deleted the {exchange} keys." if removed
                         else f"No keys were stored for {exchange}.", removed)
        return removed

    def test_connection(self) -> bool:
        """Start reading the account with the keys in the form; False when the form is
        incomplete or a test is already running. The answer arrives in :attr:`tested`."""
        if self._test is not None and not self._test.done():
            return False
        form = self._form()
        if form is None:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._set_result("Cannot test: the application's event loop is not running.", False)
            return False
        exchange, credentials = form
        self._set_result(f"Connecting to {exchange}…", None)
        self._withdraw.hide()
        self._test_button.setEnabled(False)
        self._test = loop.create_task(self._run_test(exchange, credentials),
                                      name=f"key-test-{exchange}")
        return True

    async def _run_test(self, exchange: str, credentials: ApiCredentials) -> None:
        from terminal.exchange.key_check import check_key, connect

        try:
            check = await check_key(exchange, credentials,
                                    venue_factory=self._factory or connect)
        except TerminalError as error:
            self._finish_test(exchange, None, str(error))
        except Exception as error:
            log.exception("key test failed")
            self._finish_test(exchange, None, f"{type(error).__name__}: {error}")
        else:
            self._finish_test(exchange, check, None)

    def _finish_test(self, exchange: str, check: KeyCheck | None, error: str | None) -> None:
        self._test_button.setEnabled(True)
        if check is None:
            self._set_result(f"Connection failed: {error}", False)
        else:
            self._set_result(check.summary, True)
            self._show_withdrawal(check)
        self.tested.emit(exchange, check, error)

    def _show_withdrawal(self, check: KeyCheck) -> None:
        if check.can_withdraw is True:
            text = ("⚠ This key can WITHDRAW funds. A trading terminal never needs that: "
                    "create a key without withdrawal permission on the exchange.")
            level = "danger"
        elif check.can_withdraw is False:
            text = "Withdrawal permission: off (good)."
            level = "ok"
        else:
            reason = f" ({check.permission_error})" if check.permission_error else ""
            text = (f"Withdrawal permission: unknown — {check.exchange_id} does not report it"
                    f" through ccxt{reason}. Check the key's settings on the exchange.")
            level = "unknown"
        show_state(self._withdraw, text, "level", level)
        self._withdraw.show()

    def _set_result(self, text: str, ok: bool | None) -> None:
        show_state(self._result, text, "ok", ok)

    @property
    def result_text(self) -> str:
        return self._result.text()

    @property
    def withdrawal_text(self) -> str:
        return "" if self._withdraw.isHidden() else self._withdraw.text()

    @property
    def test_running(self) -> bool:
        return self._test is not None and not self._test.done()

    def done(self, result: int) -> None:
        if self._test is not None and not self._test.done():
            self._test.cancel()
        super().done(result)


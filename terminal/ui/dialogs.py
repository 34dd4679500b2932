"""Small dialogs of the main window: keyboard shortcuts, indicator settings, first-run wizard."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from terminal.core.errors import InvalidArgument
from terminal.core.paths import APP_DISPLAY_NAME
from terminal.widgets.chart_layers import IndicatorSettings
from terminal.widgets.forms import FieldBox


def shortcut_rows(actions: Sequence[QAction]) -> list[tuple[str, str]]:
    """(what it does, keys) for every action that has a shortcut, in menu order."""
    rows = []
    for action in actions:
        keys = [key.toString(QKeySequence.SequenceFormat.NativeText)
                for key in action.shortcuts()]
        if keys:
            name = (action.toolTip() or action.text()).replace("&", "")
            name = re.sub(r"\s*\([^)]*\)$", "", name)  # tooltips end with the keys
            rows.append((name, ", ".join(keys)))
    return rows


class ShortcutsDialog(QDialog):
    """Every keyboard shortcut of the window, with the chart's own keys."""

    #: Keys the chart handles itself while it has focus.
    CHART_KEYS = (
        ("Chart: zoom in / out", "+ / −, mouse wheel"),
        ("Chart: pan back / forward", "← / →, drag with the mouse"),
        ("Chart: back to the latest bar", "Home"),
    )

    def __init__(self, actions: Sequence[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 560)
        rows = [*shortcut_rows(actions), *self.CHART_KEYS]
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents)
        for row, (name, keys) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            key_item = QTableWidgetItem(keys)
            key_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 1, key_item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)

    def rows(self) -> list[tuple[str, str]]:
        result = []
        for row in range(self.table.rowCount()):
            name, keys = self.table.item(row, 0), self.table.item(row, 1)
            if name is not None and keys is not None:
                result.append((name.text(), keys.text()))
        return result


def _page(title: str, subtitle: str, paragraphs: Sequence[str]) -> QWizardPage:
    page = QWizardPage()
    page.setTitle(title)
    page.setSubTitle(subtitle)
    layout = QVBoxLayout(page)
    for text in paragraphs:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(label)
    layout.addStretch(1)
    return page


class FirstRunWizard(QWizard):
    """Shown once: the simulated market, paper trading, and API keys for later."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Welcome to {APP_DISPLAY_NAME}")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.resize(640, 440)
        self.addPage(_page(
            "1 · The simulated market", "Everything works offline from the first minute.",
            ["The terminal starts on a <b>built-in simulated market</b>: major pairs such as"
             " BTC/USDT and ETH/USDT whose prices follow realistic statistics, generated on this"
             " computer. Nothing is connected to"
             " an exchange and no money is involved.",
             "The status bar always says which kind of market you are on, in colour:"
             " <b>SIMULATED</b>, <b>PAPER</b> or <b>LIVE</b>.",
             "History builds up on the first start (90 days of 1-minute candles); the chart"
             " fills in as soon as it is ready."]))
        self.addPage(_page(
            "2 · Paper trading", "Practise on real prices without real orders.",
            ["Choose an exchange in <b>Preferences → Market</b> (no key needed) and, from the"
             " next start, <b>paper trading</b> runs your orders and strategies against its"
             " live prices while filling them in a simulation: balances, fees and positions"
             " behave as they would, but nothing is sent to the exchange.",
             "Use the <b>Backtest</b> panel first to see how a strategy would have done, against"
             " simply buying and holding, before trusting it with paper money.",
             "Risk limits (Preferences → Risk) apply in every mode: orders that break them are"
             " refused or reduced before they are placed."]))
        self.addPage(_page(
            "3 · API keys, later", "Only when you want to trade for real.",
            ["Live trading needs an exchange API key (<b>File → API keys</b>) and"
             " <b>Preferences → Market → Live trading</b> switched on. Keys are kept only in"
             " your operating system's keyring, never in the settings file, and you can add"
             " them any time later.",
             "Prefer keys <b>without withdrawal rights</b>. Every live order you place, and"
             " closing a live position, asks for confirmation first; automated trading, once"
             " you switch it on, does not ask.",
             "Press <b>Finish</b> to open the terminal. This guide is under Help → Getting"
             " started whenever you want it again."]))


#: The indicator periods the dialog edits: (field, label, whole number).
_INDICATOR_FIELDS = (
    ("sma_period", "SMA period", True),
    ("ema_period", "EMA period", True),
    ("bollinger_period", "Bollinger period", True),
    ("bollinger_width", "Bollinger width (deviations)", False),
    ("rsi_period", "RSI period", True),
    ("macd_fast", "MACD fast EMA", True),
    ("macd_slow", "MACD slow EMA", True),
    ("macd_signal", "MACD signal EMA", True),
)


class IndicatorDialog(QDialog):
    """The chart indicators' periods, checked as typed; Apply is enabled only when all are good."""

    #: The new :class:`IndicatorSettings` (emitted on Apply).
    applied = Signal(object)

    def __init__(self, settings: IndicatorSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Indicator settings")
        self._settings = settings
        self._fields: dict[str, FieldBox] = {}
        form = QFormLayout()
        for name, label, _whole in _INDICATOR_FIELDS:
            edit = QLineEdit(f"{getattr(settings, name):g}")
            edit.setObjectName(name)
            field = FieldBox(edit)
            edit.textChanged.connect(self.validate)
            self._fields[name] = field
            form.addRow(label, field.box)
        self._buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply
                                         | QDialogButtonBox.StandardButton.Cancel)
        self.apply_button.setObjectName("Primary")
        self.apply_button.clicked.connect(self.apply)
        self._buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self._buttons)
        self.setMinimumWidth(440)
        self.validate()

    @property
    def apply_button(self) -> QPushButton:
        return self._buttons.button(QDialogButtonBox.StandardButton.Apply)

    def edit(self, name: str) -> QLineEdit:
        widget = self._fields[name].widget
        assert isinstance(widget, QLineEdit)
        return widget

    def field_error(self, name: str) -> str:
        return self._fields[name].error_text

    def validate(self) -> IndicatorSettings | None:
        values: dict[str, float | int] = {}
        errors: dict[str, str] = {}
        for name, label, whole in _INDICATOR_FIELDS:
            text = self.edit(name).text().strip()
            try:
                number = float(text)
            except ValueError:
                errors[name] = f"{label} must be a number"
                continue
            if whole and number != int(number):
                errors[name] = f"{label} must be a whole number of bars"
                continue
            values[name] = int(number) if whole else number
        settings = None
        if not errors:
            try:
                settings = replace(self._settings, **values)
            except InvalidArgument as error:
                message = str(error)
                culprit = next((name for name, _, _ in _INDICATOR_FIELDS
                                if name.replace("_", " ") in message), None)
                if culprit is None and "MACD" in message:
                    culprit = "macd_fast"
                if culprit is None and "Bollinger width" in message:
                    culprit = "bollinger_width"
                errors[culprit or "sma_period"] = message
        for name, field in self._fields.items():
            field.set_error(errors.get(name))
        self.apply_button.setEnabled(settings is not None)
        self.adjustSize()  # room for the error lines shown, none left when they go
        return settings

    def apply(self) -> bool:
        settings = self.validate()
        if settings is None:
            return False
        self.applied.emit(settings)
        self.accept()
        return True

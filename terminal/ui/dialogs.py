"""Small dialogs of the main window: the keyboard shortcuts and the first-run wizard."""

from __future__ import annotations

import re
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from terminal.core.paths import APP_DISPLAY_NAME


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
            ["Once an exchange is set up, <b>paper trading</b> runs your orders and strategies"
             " against its live prices while filling them in a simulation: balances, fees and"
             " positions behave as they would, but nothing is sent to the exchange.",
             "Use the <b>Backtest</b> panel first to see how a strategy would have done, against"
             " simply buying and holding, before trusting it with paper money.",
             "Risk limits (Preferences → Risk) apply in every mode: orders that break them are"
             " refused or reduced before they are placed."]))
        self.addPage(_page(
            "3 · API keys, later", "Only when you want to trade for real.",
            ["Live trading needs an exchange API key. Keys are kept only in your operating"
             " system's keyring, never in the settings file, and you can add them any time"
             " later.",
             "Prefer keys <b>without withdrawal rights</b>. Live orders always ask for"
             " confirmation.",
             "Press <b>Finish</b> to open the terminal. This guide is under Help → Getting"
             " started whenever you want it again."]))

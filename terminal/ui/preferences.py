"""The preferences dialog: forms generated from the typed settings, validated as you type.

Every field is checked by the same pydantic models that load the settings file, so what the
dialog accepts is exactly what the file accepts. A bad value is shown at its field (red border
and the reason below it); Save stays disabled while any value is bad, and nothing is written
until the whole form is valid. Saving goes through :class:`SettingsFile` (atomic).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from terminal.core.model import Timeframe
from terminal.core.settings import (
    MAX_PAIRS,
    SIMULATED_SOURCE,
    Settings,
    SettingsFile,
    problem_text,
)
from terminal.core.strategies import STRATEGIES
from terminal.widgets.forms import FieldBox, field_label

#: The tabs: (settings section, title, note shown at the top).
SECTIONS = (
    ("trading", "Trading", f"What is traded: up to {MAX_PAIRS} pairs, the timeframe and"
                           " strategy. Automated trading lets the strategy place orders itself;"
                           " on the simulated market and in paper mode no real money moves."),
    ("market", "Market", "Where prices come from and where orders go. An exchange's prices"
                         " need no key; with live trading off, orders go to a paper account on"
                         " those prices. Live trading sends real orders with the key stored in"
                         " File → API keys. Changes of source, testnet or live trading take"
                         " effect at the next start; the watchlist changes at once."),
    ("risk", "Risk", "Every limit is optional: leave a field empty to switch it off. Entries"
                     " that break a limit are refused or reduced before any order is sent."),
    ("simulated", "Simulated market", "The built-in market used when no exchange is set up."
                                      " Changes take effect at the next start."),
    ("data", "Data && schedules", "Retrain schedules: off, every 6h, daily 03:00 or"
                                 " weekly mon 03:00 (times in UTC)."),
    ("appearance", "Appearance", "The colour theme switches at once when saved."),
)
_CHOICES: dict[tuple[str, str], Callable[[], list[str]]] = {
    ("trading", "timeframe"): lambda: [tf.code for tf in Timeframe],
    ("trading", "strategy"): lambda: list(STRATEGIES),
    ("market", "source"): lambda: [SIMULATED_SOURCE, *_exchange_choices()],
}


def _exchange_choices() -> list[str]:
    # Imported when the dialog opens: ccxt takes a moment to load, and the window starts
    # without it on the simulated market.
    from terminal.exchange.ccxt_venue import exchange_ids

    return sorted(exchange_ids())


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return rest[0], True
    return annotation, False


class _Editor:
    """One field's widget, how to read it and how to show an error at it."""

    def __init__(self, section: str, name: str, info: FieldInfo, value: Any) -> None:
        self.section, self.name = section, name
        annotation, self.optional = _unwrap_optional(info.annotation)
        self.kind = "text"
        self.widget: QWidget
        choices = _CHOICES.get((section, name))
        if annotation is bool:
            self.kind = "bool"
            box = QCheckBox()
            box.setChecked(bool(value))
            self.widget = box
        elif choices is not None or typing.get_origin(annotation) is Literal:
            self.kind = "choice"
            combo = QComboBox()
            for choice in (choices() if choices else typing.get_args(annotation)):
                combo.addItem(str(choice).replace("_", " "), choice)
            combo.setCurrentIndex(max(0, combo.findData(value)))
            self.widget = combo
        elif typing.get_origin(annotation) is tuple:
            self.kind = "list"
            self.widget = QLineEdit(", ".join(value))
            self.widget.setPlaceholderText("BTC/USDT, ETH/USDT")
        else:
            self.widget = QLineEdit("" if value is None else _plain(value))
            if self.optional:
                self.widget.setPlaceholderText("none" if annotation is str else "off")
        self.widget.setObjectName(f"{section}.{name}")
        self.widget.setToolTip(info.description or "")
        self.field = FieldBox(self.widget, info.description or "")

    def connect(self, slot: Callable[[], None]) -> None:
        widget = self.widget
        if isinstance(widget, QCheckBox):
            widget.toggled.connect(slot)
        elif isinstance(widget, QComboBox):
            widget.currentIndexChanged.connect(slot)
        elif isinstance(widget, QLineEdit):
            widget.textChanged.connect(slot)

    def value(self) -> Any:
        widget = self.widget
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            return widget.currentData()
        assert isinstance(widget, QLineEdit)
        text = widget.text().strip()
        if self.kind == "list":
            return [part.strip() for part in text.split(",") if part.strip()]
        if not text and self.optional:
            return None
        return text

    def set_error(self, message: str | None) -> None:
        self.field.set_error(message)


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class PreferencesDialog(QDialog):
    """Tabs of validated forms over :class:`Settings`; Save writes them atomically."""

    #: The settings were saved (the new :class:`Settings`).
    saved = Signal(object)

    def __init__(self, settings: Settings, settings_file: SettingsFile,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("Preferences")
        self.resize(620, 640)
        self._original = settings
        self._file = settings_file
        self._editors: dict[tuple[str, str], _Editor] = {}
        self._section_errors: dict[str, QLabel] = {}
        self._valid: Settings | None = settings
        self.tabs = QTabWidget(self)
        for section, title, note in SECTIONS:
            self.tabs.addTab(self._section_page(section, note), title)
        self._problem = QLabel()
        self._problem.setObjectName("FieldError")
        self._problem.setWordWrap(True)
        self._problem.hide()
        self._buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                         | QDialogButtonBox.StandardButton.Cancel)
        save = self._buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setObjectName("Primary")
        self._buttons.accepted.connect(self.save)
        self._buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self._problem)
        layout.addWidget(self._buttons)
        for editor in self._editors.values():
            editor.connect(self.validate)
        self.validate()

    def _section_page(self, section: str, note: str) -> QWidget:
        model: BaseModel = getattr(self._original, section)
        page = QWidget()
        form = QFormLayout(page)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        intro = QLabel(note)
        intro.setObjectName("Muted")
        intro.setWordWrap(True)
        form.addRow(intro)
        for name, info in type(model).model_fields.items():
            editor = _Editor(section, name, info, getattr(model, name))
            self._editors[(section, name)] = editor
            form.addRow(field_label(name), editor.field.box)
        error = QLabel()
        error.setObjectName("FieldError")
        error.setWordWrap(True)
        error.hide()
        form.addRow(error)
        self._section_errors[section] = error
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(page)
        return scroll

    def editor(self, section: str, name: str) -> QWidget:
        """The input widget of ``section.name`` (for tests and focus)."""
        return self._editors[(section, name)].widget

    def field_error(self, section: str, name: str) -> str:
        """The error shown at ``section.name``, empty when the value is good."""
        return self._editors[(section, name)].field.error_text

    @property
    def save_button(self) -> QPushButton:
        return self._buttons.button(QDialogButtonBox.StandardButton.Save)

    def validate(self) -> Settings | None:
        """Check the whole form; mark bad fields; enable Save only when everything is good."""
        raw: dict[str, Any] = self._original.model_dump()
        for (section, name), editor in self._editors.items():
            raw[section][name] = editor.value()
        problems: dict[tuple[str, ...], str] = {}
        try:
            candidate: Settings | None = Settings.model_validate(raw)
        except ValidationError as error:
            candidate = None
            for problem in error.errors():
                location = tuple(str(part) for part in problem["loc"])
                problems.setdefault(location[:2], problem_text(problem))
        for (section, name), editor in self._editors.items():
            editor.set_error(problems.get((section, name)))
        for section, label in self._section_errors.items():
            message = problems.get((section,))
            label.setText(message or "")
            label.setVisible(message is not None)
        self._valid = candidate
        self.save_button.setEnabled(candidate is not None)
        if candidate is None:
            bad_tabs = sorted({key[0] for key in problems})
            titles = [title.replace("&&", "&") for section, title, _ in SECTIONS
                      if section in bad_tabs]
            self._problem.setText(f"Fix the marked fields before saving ({', '.join(titles)}).")
            self._problem.show()
        else:
            self._problem.hide()
        return candidate

    def save(self) -> bool:
        """Write the settings if the form is valid; returns whether they were saved."""
        settings = self.validate()
        if settings is None:
            return False
        try:
            self._file.save(settings)
        except OSError as error:
            self._problem.setText(f"Cannot save the settings to {self._file.path}: {error}")
            self._problem.show()
            return False
        self.saved.emit(settings)
        self.accept()
        return True

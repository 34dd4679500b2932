"""Pieces of validated forms: a field with its error shown below it, and readable labels."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

#: Words of setting names shown as symbols or units in labels.
_LABEL_WORDS = {"pct": "%", "quote": "(quote)", "s": "(s)"}


def field_label(name: str) -> str:
    """``risk_per_trade_pct`` → ``Risk per trade %``."""
    text = " ".join(_LABEL_WORDS.get(word, word) for word in name.split("_"))
    return text[:1].upper() + text[1:]


def mark_invalid(widget: QWidget, message: str | None, label: QLabel) -> None:
    """Show ``message`` under a field and give the field a red border (None clears both)."""
    widget.setProperty("invalid", message is not None)
    widget.setToolTip(message or "")
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    label.setText(message or "")
    label.setVisible(message is not None)


def show_state(label: QLabel, text: str, name: str, value: object) -> None:
    """Show ``text`` in ``label`` styled by its dynamic property ``name`` (e.g. ``ok``):
    style sheets pick the colour from the property, which Qt only rereads on a repolish."""
    label.setProperty(name, value)
    label.setText(text)
    label.style().unpolish(label)
    label.style().polish(label)


class FieldBox:
    """An input widget with its error label below it and, optionally, a line of help."""

    def __init__(self, widget: QWidget, help_text: str = "") -> None:
        self.widget = widget
        self.error = QLabel()
        self.error.setObjectName("FieldError")
        self.error.setWordWrap(True)
        self.error.hide()
        self.box = QWidget()
        column = QVBoxLayout(self.box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(widget)
        column.addWidget(self.error)
        if help_text:
            help_label = QLabel(help_text)
            help_label.setObjectName("Muted")
            help_label.setWordWrap(True)
            column.addWidget(help_label)

    def set_error(self, message: str | None) -> None:
        mark_invalid(self.widget, message, self.error)

    @property
    def error_text(self) -> str:
        """The error shown, empty when the value is good."""
        return self.error.text() if not self.error.isHidden() else ""

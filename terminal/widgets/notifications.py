"""The notification centre: what happened in the background, newest first, until cleared."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

#: Notifications kept; older ones are dropped so a flood of errors cannot grow memory.
MAX_NOTIFICATIONS = 500


class Severity(Enum):
    """How much a notification matters; picks its colour and whether the desktop shows it."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Notification:
    """One entry: ``time`` is UTC epoch ms; ``title`` is short, ``text`` says what happened."""

    time: int
    severity: Severity
    title: str
    text: str


class NotificationCenter(QWidget):
    """A list of notifications with an unread count; :meth:`mark_read` when the user looks."""

    #: The number of unread notifications changed.
    unread_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colors = {Severity.INFO: "#787b86", Severity.SUCCESS: "#26a69a",
                        Severity.WARNING: "#f7a600", Severity.ERROR: "#ef5350"}
        self._muted = "#787b86"
        self._notifications: list[Notification] = []
        self._unread = 0
        self._list = QListWidget(self)
        self._list.setObjectName("Notifications")
        self._list.setWordWrap(True)
        self._list.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self._list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._empty = QLabel("No notifications", self)
        self._empty.setObjectName("Muted")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._summary = QLabel(self)
        self._summary.setObjectName("Muted")
        self._clear = QPushButton("Clear", self)
        self._clear.setToolTip("Remove every notification")
        self._clear.clicked.connect(self.clear)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 4)
        bar.addWidget(self._summary, 1)
        bar.addWidget(self._clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self._list, 1)
        layout.addWidget(self._empty, 1)
        self._refresh_state()

    def set_colors(self, info: str, success: str, warning: str, error: str, muted: str) -> None:
        self._colors = {Severity.INFO: info, Severity.SUCCESS: success,
                        Severity.WARNING: warning, Severity.ERROR: error}
        self._muted = muted
        self._rebuild()

    def add(self, notification: Notification) -> None:
        """Show ``notification`` at the top; it counts as unread."""
        self._notifications.insert(0, notification)
        if len(self._notifications) > MAX_NOTIFICATIONS:
            del self._notifications[MAX_NOTIFICATIONS:]
            self._list.takeItem(self._list.count() - 1)
        self._list.insertItem(0, self._item(notification))
        self._unread += 1
        self._refresh_state()
        self.unread_changed.emit(self._unread)

    @property
    def notifications(self) -> list[Notification]:
        """Every notification kept, newest first."""
        return list(self._notifications)

    @property
    def unread(self) -> int:
        return self._unread

    def mark_read(self) -> None:
        if self._unread:
            self._unread = 0
            self._refresh_state()
            self.unread_changed.emit(0)

    def clear(self) -> None:
        self._notifications.clear()
        self._list.clear()
        self.mark_read()
        self._refresh_state()

    def _item(self, notification: Notification) -> QListWidgetItem:
        moment = datetime.fromtimestamp(notification.time / 1000, tz=UTC).strftime("%H:%M:%S")
        item = QListWidgetItem(self._icon(notification.severity),
                               f"{notification.title}  ·  {moment} UTC\n{notification.text}")
        item.setToolTip(notification.text)
        item.setData(Qt.ItemDataRole.UserRole, notification)
        return item

    def _icon(self, severity: Severity) -> QIcon:
        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(self._colors[severity]))
        painter.drawEllipse(2, 2, 8, 8)
        painter.end()
        return QIcon(pixmap)

    def _rebuild(self) -> None:
        self._list.clear()
        for notification in self._notifications:
            self._list.addItem(self._item(notification))

    def _refresh_state(self) -> None:
        count = len(self._notifications)
        has_any = count > 0
        self._list.setVisible(has_any)
        self._empty.setVisible(not has_any)
        self._clear.setEnabled(has_any)
        unread = f", {self._unread} unread" if self._unread else ""
        self._summary.setText(f"{count} notification{'s' if count != 1 else ''}{unread}")

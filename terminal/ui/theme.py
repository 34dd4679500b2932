"""The application's dark theme: one palette, one compact style sheet, the chart's colours.

Every colour the UI uses is named here once, so widgets and style sheet cannot drift apart.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from terminal.widgets.candle_chart import ChartStyle

BACKGROUND = "#131722"
SURFACE = "#1e222d"
SURFACE_RAISED = "#2a2e39"
BORDER = "#2a2e39"
BORDER_STRONG = "#363a45"
TEXT = "#d1d4dc"
TEXT_MUTED = "#787b86"
TEXT_BRIGHT = "#f0f3fa"
ACCENT = "#2962ff"
ACCENT_HOVER = "#1e53e5"
UP = "#26a69a"
DOWN = "#ef5350"
WARNING = "#f7a600"
#: The venue badges: what kind of money a venue trades is never ambiguous.
VENUE_COLORS = {"SIMULATED": "#f7a600", "PAPER": "#2962ff", "LIVE": "#ef5350"}

_STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QToolTip {{
    background: {SURFACE_RAISED}; color: {TEXT}; border: 1px solid {BORDER_STRONG}; padding: 4px;
}}
QMenuBar {{ background: {SURFACE}; color: {TEXT}; border-bottom: 1px solid {BORDER}; }}
QMenuBar::item {{ padding: 4px 10px; background: transparent; }}
QMenuBar::item:selected {{ background: {SURFACE_RAISED}; }}
QMenu {{ background: {SURFACE}; color: {TEXT}; border: 1px solid {BORDER_STRONG}; padding: 4px; }}
QMenu::item {{ padding: 5px 24px 5px 16px; }}
QMenu::item:selected {{ background: {SURFACE_RAISED}; }}
QMenu::separator {{ height: 1px; background: {BORDER}; margin: 4px 8px; }}
QToolBar {{
    background: {SURFACE}; border: none; border-bottom: 1px solid {BORDER};
    spacing: 2px; padding: 3px 8px;
}}
QToolBar::separator {{ background: {BORDER_STRONG}; width: 1px; margin: 5px 8px; }}
QToolButton {{
    color: {TEXT}; background: transparent; border: 1px solid transparent; border-radius: 4px;
    padding: 3px 8px; font-weight: 600;
}}
QToolButton:hover {{ background: {SURFACE_RAISED}; }}
QToolButton:checked {{ color: {ACCENT}; background: rgba(41, 98, 255, 0.12); }}
QToolButton:disabled {{ color: {TEXT_MUTED}; }}
QComboBox {{
    color: {TEXT_BRIGHT}; background: {SURFACE}; border: 1px solid {BORDER_STRONG};
    border-radius: 4px; padding: 3px 8px; min-height: 20px; font-weight: 600;
}}
QComboBox:hover {{ border-color: {TEXT_MUTED}; }}
QComboBox:disabled {{ color: {TEXT_MUTED}; }}
QComboBox QAbstractItemView {{
    color: {TEXT}; background: {SURFACE}; border: 1px solid {BORDER_STRONG};
    selection-background-color: {SURFACE_RAISED}; outline: none;
}}
QLabel#AppName {{ color: {TEXT_BRIGHT}; font-weight: 700; padding: 0 6px 0 2px; }}
QLabel#VenueBadge {{
    color: #131722; border-radius: 9px; padding: 2px 10px; font-weight: 700;
    font-size: 8pt; letter-spacing: 1px;
}}
QStatusBar {{ background: {SURFACE}; color: {TEXT_MUTED}; border-top: 1px solid {BORDER}; }}
QStatusBar::item {{ border: none; }}
QStatusBar QLabel {{ color: {TEXT_MUTED}; padding: 0 8px; }}
QStatusBar QLabel#StatusStrong {{ color: {TEXT}; }}
QStatusBar QLabel#StatusError {{ color: {DOWN}; }}
QProgressBar {{
    background: {SURFACE_RAISED}; border: none; border-radius: 3px; max-height: 6px;
    min-width: 120px; max-width: 160px;
}}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QPushButton {{
    color: {TEXT}; background: {SURFACE_RAISED}; border: 1px solid {BORDER_STRONG};
    border-radius: 4px; padding: 5px 14px;
}}
QPushButton:hover {{ border-color: {TEXT_MUTED}; }}
QPushButton:default {{ background: {ACCENT}; border-color: {ACCENT}; color: white; }}
QScrollBar:vertical, QScrollBar:horizontal {{ background: {BACKGROUND}; border: none; }}
QScrollBar:vertical {{ width: 10px; }}
QScrollBar:horizontal {{ height: 10px; }}
QScrollBar::handle {{ background: {BORDER_STRONG}; border-radius: 4px; min-height: 24px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
"""


def palette() -> QPalette:
    """The dark palette, for the parts of Qt that style sheets do not reach."""
    result = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: SURFACE,
        QPalette.ColorRole.AlternateBase: BACKGROUND,
        QPalette.ColorRole.ToolTipBase: SURFACE_RAISED,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: TEXT_MUTED,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: SURFACE_RAISED,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: TEXT_BRIGHT,
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: TEXT_BRIGHT,
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.Light: BORDER_STRONG,
        QPalette.ColorRole.Midlight: BORDER,
        QPalette.ColorRole.Mid: BORDER,
        # Fusion outlines buttons (the combo box's arrow button too) in these two.
        QPalette.ColorRole.Dark: BORDER_STRONG,
        QPalette.ColorRole.Shadow: BORDER_STRONG,
    }
    for role, color in roles.items():
        result.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        result.setColor(QPalette.ColorGroup.Disabled, role, QColor(TEXT_MUTED))
    return result


def apply_theme(app: QApplication) -> None:
    """Make ``app`` dark: Fusion style (the same on every platform), palette, style sheet."""
    app.setStyle("Fusion")
    app.setPalette(palette())
    font = QFont(app.font())
    font.setPointSizeF(9.5)
    app.setFont(font)
    app.setStyleSheet(_STYLE_SHEET)


def chart_style() -> ChartStyle:
    """The candle chart's colours in this theme."""
    return ChartStyle(
        background=BACKGROUND,
        text=TEXT,
        text_muted=TEXT_MUTED,
        grid="#1c2030",
        border=BORDER,
        up=UP,
        down=DOWN,
        crosshair="#9598a1",
        tag_background=BORDER_STRONG,
    )


def venue_badge_style(label: str) -> str:
    """Style sheet fragment giving a venue badge (``SIMULATED``, ``PAPER``, ``LIVE``) its colour."""
    return f"background: {VENUE_COLORS.get(label, TEXT_MUTED)};"

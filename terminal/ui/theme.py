"""The application's themes: dark (the default) and light, each one palette, one compact style
sheet and the chart's colours.

Every colour the UI uses is named here once, so widgets and style sheet cannot drift apart.
The module-level colour names are the dark theme's; :func:`current` is the theme in effect.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Theme:
    """One theme's colours (CSS colour strings)."""

    name: str
    background: str
    surface: str
    surface_raised: str
    border: str
    border_strong: str
    text: str
    text_muted: str
    text_bright: str
    accent: str
    accent_hover: str
    grid: str
    crosshair: str
    up: str = UP
    down: str = DOWN
    warning: str = WARNING


DARK = Theme("dark", BACKGROUND, SURFACE, SURFACE_RAISED, BORDER, BORDER_STRONG, TEXT,
             TEXT_MUTED, TEXT_BRIGHT, ACCENT, ACCENT_HOVER, grid="#1c2030", crosshair="#9598a1")
LIGHT = Theme("light", background="#ffffff", surface="#f8f9fd", surface_raised="#eef0f6",
              border="#e0e3eb", border_strong="#d1d4dc", text="#131722", text_muted="#6a6d78",
              text_bright="#000000", accent="#2962ff", accent_hover="#1e53e5", grid="#f0f3fa",
              crosshair="#9598a1", up="#089981", down="#f23645", warning="#e08a00")
THEMES = {theme.name: theme for theme in (DARK, LIGHT)}
_current = DARK


def current() -> Theme:
    """The theme last applied (dark until :func:`apply_theme` says otherwise)."""
    return _current


def theme_named(name: str) -> Theme:
    """The theme called ``name`` (``dark`` or ``light``); unknown names fall back to dark."""
    return THEMES.get(name, DARK)


def style_sheet(t: Theme) -> str:
    """The application style sheet in theme ``t``."""
    return f"""
QMainWindow, QDialog {{ background: {t.background}; }}
QToolTip {{
    background: {t.surface_raised}; color: {t.text}; border: 1px solid {t.border_strong};
    padding: 4px;
}}
QMenuBar {{ background: {t.surface}; color: {t.text}; border-bottom: 1px solid {t.border}; }}
QMenuBar::item {{ padding: 4px 10px; background: transparent; }}
QMenuBar::item:selected {{ background: {t.surface_raised}; }}
QMenu {{
    background: {t.surface}; color: {t.text}; border: 1px solid {t.border_strong}; padding: 4px;
}}
QMenu::item {{ padding: 5px 24px 5px 16px; }}
QMenu::item:selected {{ background: {t.surface_raised}; }}
QMenu::separator {{ height: 1px; background: {t.border}; margin: 4px 8px; }}
QToolBar {{
    background: {t.surface}; border: none; border-bottom: 1px solid {t.border};
    spacing: 2px; padding: 3px 8px;
}}
QToolBar::separator {{ background: {t.border_strong}; width: 1px; margin: 5px 8px; }}
QToolButton {{
    color: {t.text}; background: transparent; border: 1px solid transparent; border-radius: 4px;
    padding: 3px 8px; font-weight: 600;
}}
QToolButton:hover {{ background: {t.surface_raised}; }}
QToolButton:checked {{ color: {t.accent}; background: rgba(41, 98, 255, 0.12); }}
QToolButton:disabled {{ color: {t.text_muted}; }}
QComboBox {{
    color: {t.text_bright}; background: {t.surface}; border: 1px solid {t.border_strong};
    border-radius: 4px; padding: 3px 8px; min-height: 20px; font-weight: 600;
}}
QComboBox:hover {{ border-color: {t.text_muted}; }}
QComboBox:disabled {{ color: {t.text_muted}; }}
QComboBox QAbstractItemView {{
    color: {t.text}; background: {t.surface}; border: 1px solid {t.border_strong};
    selection-background-color: {t.surface_raised}; outline: none;
}}
QLabel#AppName {{ color: {t.text_bright}; font-weight: 700; padding: 0 6px 0 2px; }}
QLabel#VenueBadge {{
    color: #131722; border-radius: 9px; padding: 2px 10px; font-weight: 700;
    font-size: 8pt; letter-spacing: 1px;
}}
QStatusBar {{ background: {t.surface}; color: {t.text_muted}; border-top: 1px solid {t.border}; }}
QStatusBar::item {{ border: none; }}
QStatusBar QLabel {{ color: {t.text_muted}; padding: 0 8px; }}
QStatusBar QLabel#StatusStrong {{ color: {t.text}; }}
QStatusBar QLabel#StatusError {{ color: {t.down}; }}
QProgressBar {{
    background: {t.surface_raised}; border: none; border-radius: 3px; max-height: 6px;
    min-width: 120px; max-width: 160px;
}}
QProgressBar::chunk {{ background: {t.accent}; border-radius: 3px; }}
QPushButton {{
    color: {t.text}; background: {t.surface_raised}; border: 1px solid {t.border_strong};
    border-radius: 4px; padding: 5px 14px;
}}
QPushButton:hover {{ border-color: {t.text_muted}; }}
QPushButton:default {{ background: {t.accent}; border-color: {t.accent}; color: white; }}
QScrollBar:vertical, QScrollBar:horizontal {{ background: {t.background}; border: none; }}
QScrollBar:vertical {{ width: 10px; }}
QScrollBar:horizontal {{ height: 10px; }}
QScrollBar::handle {{ background: {t.border_strong}; border-radius: 4px; min-height: 24px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QDockWidget {{ color: {t.text_muted}; font-weight: 600; }}
QDockWidget::title {{
    background: {t.surface}; padding: 5px 8px; border-bottom: 1px solid {t.border};
    text-align: left;
}}
QMainWindow::separator {{ background: {t.border}; width: 1px; height: 1px; }}
QMainWindow::separator:hover {{ background: {t.accent}; }}
QTabWidget::pane {{ border: none; border-top: 1px solid {t.border}; }}
QTabBar::tab {{
    color: {t.text_muted}; background: transparent; padding: 5px 12px; border: none;
    border-bottom: 2px solid transparent;
}}
QTabBar::tab:selected {{ color: {t.text_bright}; border-bottom-color: {t.accent}; }}
QTabBar::tab:hover {{ color: {t.text}; }}
QTableView, QListView, QTreeView {{
    background: {t.background}; color: {t.text}; border: none; gridline-color: {t.border};
    selection-background-color: {t.surface_raised}; selection-color: {t.text_bright};
    alternate-background-color: {t.surface};
}}
QHeaderView::section {{
    background: {t.surface}; color: {t.text_muted}; border: none;
    border-bottom: 1px solid {t.border}; padding: 4px 6px; font-weight: 600;
}}
QTableCornerButton::section {{ background: {t.surface}; border: none; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QDateEdit, QDateTimeEdit, QPlainTextEdit {{
    color: {t.text_bright}; background: {t.surface}; border: 1px solid {t.border_strong};
    border-radius: 4px; padding: 3px 6px; min-height: 20px;
    selection-background-color: {t.accent}; selection-color: #ffffff;
}}
QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QDateEdit:focus {{
    border-color: {t.accent};
}}
*[invalid="true"] {{ border: 1px solid {t.down}; }}
QLabel#FieldError {{ color: {t.down}; font-size: 8pt; }}
QLabel#Muted {{ color: {t.text_muted}; }}
QLabel#Heading {{ color: {t.text_bright}; font-weight: 700; font-size: 11pt; }}
QGroupBox {{
    color: {t.text_muted}; border: 1px solid {t.border}; border-radius: 6px;
    margin-top: 14px; padding: 10px 8px 8px 8px; font-weight: 600;
}}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; }}
QCheckBox {{ color: {t.text}; spacing: 6px; }}
QCheckBox::indicator {{
    width: 14px; height: 14px; border: 1px solid {t.text_muted}; border-radius: 3px;
    background: {t.surface};
}}
QCheckBox::indicator:checked {{ background: {t.accent}; border-color: {t.accent}; }}
QListWidget::item {{ padding: 6px 4px; border-bottom: 1px solid {t.border}; }}
QPushButton:disabled {{ color: {t.text_muted}; background: {t.surface}; }}
QPushButton#Primary {{ background: {t.accent}; border-color: {t.accent}; color: #ffffff; }}
QPushButton#Primary:hover {{ background: {t.accent_hover}; }}
QPushButton#Primary:disabled {{ background: {t.surface_raised}; border-color: {t.border_strong};
    color: {t.text_muted}; }}
QLabel#TicketSymbol {{ color: {t.text_bright}; font-weight: 700; font-size: 11pt; }}
QLabel#TicketPrice {{ color: {t.text_bright}; font-weight: 600; }}
QPushButton#BuySide, QPushButton#SellSide {{
    padding: 6px; font-weight: 700; color: {t.text_muted}; background: {t.surface};
}}
QPushButton#BuySide {{ border-radius: 4px 0 0 4px; }}
QPushButton#SellSide {{ border-radius: 0 4px 4px 0; }}
QPushButton#BuySide:checked {{ background: {t.up}; border-color: {t.up}; color: #ffffff; }}
QPushButton#SellSide:checked {{ background: {t.down}; border-color: {t.down}; color: #ffffff; }}
QPushButton#SendBuy, QPushButton#SendSell {{
    padding: 8px; font-weight: 700; font-size: 10pt; color: #ffffff;
}}
QPushButton#SendBuy {{ background: {t.up}; border-color: {t.up}; }}
QPushButton#SendSell {{ background: {t.down}; border-color: {t.down}; }}
QPushButton#SendBuy:disabled, QPushButton#SendSell:disabled {{
    background: {t.surface_raised}; border-color: {t.border_strong}; color: {t.text_muted};
}}
QPushButton#ShareButton {{ padding: 2px 4px; font-size: 8pt; color: {t.text_muted}; }}
QPushButton#RowAction {{ padding: 1px 8px; font-size: 8pt; }}
QFrame#TicketSeparator {{ color: {t.border}; }}
QLabel#TicketVerdict[verdict="ok"] {{ color: {t.up}; }}
QLabel#TicketVerdict[verdict="refused"] {{ color: {t.down}; }}
QLabel#TicketVerdict[verdict="muted"] {{ color: {t.text_muted}; }}
QLabel#TicketResult[ok="true"], QLabel#KeyTestResult[ok="true"] {{ color: {t.up}; }}
QLabel#TicketResult[ok="false"], QLabel#KeyTestResult[ok="false"] {{ color: {t.down}; }}
QLabel#ImportStatus {{ color: {t.text_bright}; font-weight: 600; }}
QLabel#ImportStatus[ok="true"] {{ color: {t.up}; }}
QLabel#ImportStatus[ok="false"] {{ color: {t.down}; }}
QLabel#WithdrawWarning[level="danger"], QLabel#KeysBanner {{
    color: {t.down}; border: 1px solid {t.down}; border-radius: 4px; padding: 6px;
}}
QLabel#WithdrawWarning[level="unknown"] {{ color: {t.warning}; }}
QLabel#WithdrawWarning[level="ok"] {{ color: {t.up}; }}
QFrame#DashboardCard {{
    background: {t.surface}; border: 1px solid {t.border}; border-radius: 6px;
}}
QLabel#CardTitle {{ color: {t.text_muted}; font-size: 7.5pt; font-weight: 600; }}
QLabel#CardValue {{ color: {t.text_bright}; font-size: 12pt; font-weight: 700; }}
QLabel#HistoryTotals {{ color: {t.text}; }}
"""


def palette(t: Theme = DARK) -> QPalette:
    """The palette of theme ``t``, for the parts of Qt that style sheets do not reach."""
    result = QPalette()
    roles = {
        QPalette.ColorRole.Window: t.background,
        QPalette.ColorRole.WindowText: t.text,
        QPalette.ColorRole.Base: t.surface,
        QPalette.ColorRole.AlternateBase: t.background,
        QPalette.ColorRole.ToolTipBase: t.surface_raised,
        QPalette.ColorRole.ToolTipText: t.text,
        QPalette.ColorRole.PlaceholderText: t.text_muted,
        QPalette.ColorRole.Text: t.text,
        QPalette.ColorRole.Button: t.surface_raised,
        QPalette.ColorRole.ButtonText: t.text,
        QPalette.ColorRole.BrightText: t.text_bright,
        QPalette.ColorRole.Highlight: t.accent,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: t.accent,
        QPalette.ColorRole.Light: t.border_strong,
        QPalette.ColorRole.Midlight: t.border,
        QPalette.ColorRole.Mid: t.border,
        # Fusion outlines buttons (the combo box's arrow button too) in these two.
        QPalette.ColorRole.Dark: t.border_strong,
        QPalette.ColorRole.Shadow: t.border_strong,
    }
    for role, color in roles.items():
        result.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        result.setColor(QPalette.ColorGroup.Disabled, role, QColor(t.text_muted))
    return result


def apply_theme(app: QApplication, t: Theme = DARK) -> None:
    """Give ``app`` theme ``t``: Fusion style (the same on every platform), palette, style
    sheet. Can be called again at run time to switch themes."""
    global _current
    _current = t
    if app.property("terminal-theme") == t.name:
        return  # restyling every widget again is costly, and nothing would change
    app.setProperty("terminal-theme", t.name)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(palette(t))
    if app.property("terminal-font-set") is not True:
        font = QFont(app.font())
        font.setPointSizeF(9.5)
        app.setFont(font)
        app.setProperty("terminal-font-set", True)
    app.setStyleSheet(style_sheet(t))


def chart_style(t: Theme | None = None) -> ChartStyle:
    """The candle chart's colours in theme ``t`` (the current one by default)."""
    t = t or _current
    light = t.name == "light"
    return ChartStyle(
        background=t.background,
        text=t.text,
        text_muted=t.text_muted,
        grid=t.grid,
        border=t.border,
        up=t.up,
        down=t.down,
        crosshair=t.crosshair,
        tag_background=t.border_strong if not light else "#131722",
        volume_alpha=0.45 if not light else 0.35,
        forecast_up="#4dd0e1" if not light else "#00838f",
        forecast_down="#ff8a65" if not light else "#d84315",
        forecast_band="#4dd0e1" if not light else "#0097a7",
    )


def venue_badge_style(label: str) -> str:
    """Style sheet fragment giving a venue badge (``SIMULATED``, ``PAPER``, ``LIVE``) its colour."""
    return f"background: {VENUE_COLORS.get(label, _current.text_muted)};"

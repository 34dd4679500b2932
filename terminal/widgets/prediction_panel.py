"""The prediction panel: the active model's latest forecast, one card per horizon, each with the
model's out-of-sample skill next to it, and the table of earlier forecasts and how they did.

A forecast is never shown without its skill: every card carries the verdict of the walk-forward
evaluation for its horizon ("beats persistence by 0.6%, p=0.03" or "no skill"), coloured. The
panel only shows what it is given; the forecasting controller feeds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from terminal.core.forecasts import PredictionRecord
from terminal.core.model import Prediction

_Index = QModelIndex | QPersistentModelIndex
HISTORY_COLUMNS = ("Made from", "Horizon", "Expected", "Call, P(up)", "Realised", "Outcome",
                   "Hit rate")
#: How often the ages ("trained 5 min ago") are refreshed.
AGE_REFRESH_MS = 30_000


def span_text(milliseconds: int) -> str:
    """A duration as a trader says it: ``15 min``, ``4 h``, ``2 d``."""
    minutes = milliseconds // 60_000
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60 and minutes % 60 == 0:
        return f"{minutes // 60} h"
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    return f"{minutes / 60:.1f} h"


def age_text(since_ms: int, now_ms: int) -> str:
    """How long ago ``since_ms`` was: ``just now``, ``12 min ago``, ``3 h ago``, ``2 d ago``."""
    seconds = max(0, (now_ms - since_ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86_400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86_400} d ago"


def verdict_tone(verdict: str) -> str:
    """``good`` for demonstrated skill, ``alarm`` for a suspected leak or a model that is
    significantly worse than persistence, ``neutral`` otherwise (no skill, baseline)."""
    if verdict.startswith("beats"):
        return "good"
    if verdict.startswith(("suspected leak", "no skill (worse")):
        return "alarm"
    return "neutral"


def _utc(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%m-%d %H:%M")


def _percent(log_return: float) -> str:
    return f"{math.expm1(log_return) * 100:+.2f}%"


@dataclass(frozen=True, slots=True)
class PanelForecast:
    """One forecast of the active model, as the cards show it.

    ``predictions`` and ``verdicts`` go together (one verdict per horizon); ``last_close`` is
    the close of the candle the forecast was made from; ``bar_ms`` the series' bar length.
    """

    model_text: str
    trained_at: int
    usable_for_trading: bool
    last_close: float
    bar_ms: int
    predictions: tuple[Prediction, ...]
    verdicts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Colors:
    up: str = "#26a69a"
    down: str = "#ef5350"
    warning: str = "#f7a600"
    muted: str = "#787b86"
    text: str = "#d1d4dc"
    surface: str = "#1e222d"
    border: str = "#2a2e39"


class PredictionCard(QFrame):
    """One horizon: direction, probability of up, expected move and band, and the skill badge."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PredictionCard")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._horizon = QLabel(self)
        self._direction = QLabel(self)
        self._probability = QLabel(self)
        self._move = QLabel(self)
        self._band = QLabel(self)
        self._badge = QLabel(self)
        self._badge.setObjectName("SkillBadge")
        self._badge.setWordWrap(True)
        layout = QGridLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setHorizontalSpacing(10)
        layout.setVerticalSpacing(3)
        layout.addWidget(self._horizon, 0, 0)
        layout.addWidget(self._direction, 0, 1, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self._move, 1, 0)
        layout.addWidget(self._probability, 1, 1, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self._band, 2, 0, 1, 2)
        layout.addWidget(self._badge, 3, 0, 1, 2)
        self.verdict = ""

    def show_prediction(self, prediction: Prediction, verdict: str, last_close: float,
                        bar_ms: int, decimals: int, colors: _Colors) -> None:
        up = prediction.prob_up >= 0.5
        ink = colors.up if up else colors.down
        bars = prediction.horizon_bars
        self._horizon.setText(f'<b>{span_text(bars * bar_ms)}</b> <span style="color:'
                              f'{colors.muted}">· {bars} bar{"s" if bars > 1 else ""}</span>')
        self._direction.setText(f'<span style="color:{ink}; font-weight:700">'
                                f'{"▲ Up" if up else "▼ Down"}</span>')
        self._probability.setText(f'<span style="color:{colors.muted}">P(up)</span> '
                                  f"<b>{prediction.prob_up * 100:.0f}%</b>")
        target = last_close * math.exp(prediction.expected_return)
        move_ink = colors.up if prediction.expected_return >= 0 else colors.down
        self._move.setText(f'<span style="color:{move_ink}">'
                           f"{_percent(prediction.expected_return)}"
                           f"</span> → {target:,.{decimals}f}")
        low = last_close * math.exp(prediction.quantile_10)
        high = last_close * math.exp(prediction.quantile_90)
        self._band.setText(f'<span style="color:{colors.muted}">10–90%</span> '
                           f"{low:,.{decimals}f} – {high:,.{decimals}f}"
                           f' <span style="color:{colors.muted}">'
                           f"({_percent(prediction.quantile_10)} / "
                           f"{_percent(prediction.quantile_90)})</span>")
        self.verdict = verdict
        tone = verdict_tone(verdict)
        badge = {"good": colors.up, "alarm": colors.down if verdict.startswith("no skill")
                 else colors.warning, "neutral": colors.muted}[tone]
        self._badge.setText(f"Out of sample: {verdict}")
        self._badge.setStyleSheet(
            f"QLabel#SkillBadge {{ color: {badge}; border: 1px solid {badge};"
            f" border-radius: 3px; padding: 1px 6px; }}")
        self._badge.setToolTip(
            "Walk-forward evaluation of this model at this horizon against persistence (the"
            " forecast 'no change'): MSE skill and the Diebold-Mariano p-value. 'no skill'"
            " means the forecast has not been shown to beat that naive forecast.")
        self.setStyleSheet(f"QFrame#PredictionCard {{ background: {colors.surface};"
                           f" border: 1px solid {colors.border}; border-left: 3px solid {ink};"
                           " border-radius: 4px; }")

    def texts(self) -> list[str]:
        """The card's visible texts, tags removed (for tests)."""
        import re

        return [re.sub(r"<[^>]+>", "", label.text()) for label in
                (self._horizon, self._direction, self._move, self._probability, self._band,
                 self._badge)]


class PredictionHistoryModel(QAbstractTableModel):
    """Earlier forecasts, newest first: made from, horizon, forecast, realised, hit or miss,
    and the running hit rate of that horizon's resolved forecasts up to that row."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[PredictionRecord, float | None]] = []
        self._bar_ms = 60_000
        self._colors = _Colors()

    def set_colors(self, colors: _Colors) -> None:
        self._colors = colors
        if self._rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(HISTORY_COLUMNS) - 1))

    def set_records(self, records: Sequence[PredictionRecord], bar_ms: int) -> None:
        """``records`` newest first, as the store gives them."""
        oldest_first = sorted(records, key=lambda r: (r.prediction.made_from,
                                                      r.prediction.horizon_bars))
        rates: dict[int, tuple[int, int]] = {}
        rows: list[tuple[PredictionRecord, float | None]] = []
        for record in oldest_first:
            hits, resolved = rates.get(record.prediction.horizon_bars, (0, 0))
            if record.hit is not None:
                hits, resolved = hits + record.hit, resolved + 1
            rates[record.prediction.horizon_bars] = (hits, resolved)
            rows.append((record, hits / resolved if resolved else None))
        self.beginResetModel()
        self._rows = rows[::-1]
        self._bar_ms = bar_ms
        self.endResetModel()

    def hit_rates(self) -> dict[int, tuple[int, int]]:
        """Per horizon (bars): (hits, resolved forecasts) over every row."""
        totals: dict[int, tuple[int, int]] = {}
        for record, _rate in self._rows:
            hits, resolved = totals.get(record.prediction.horizon_bars, (0, 0))
            if record.hit is not None:
                hits, resolved = hits + record.hit, resolved + 1
            totals[record.prediction.horizon_bars] = (hits, resolved)
        return totals

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HISTORY_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HISTORY_COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        record, rate = self._rows[index.row()]
        prediction, column = record.prediction, index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record, rate, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == 2:
                return QColor(self._colors.up if prediction.expected_return >= 0
                              else self._colors.down)
            if column == 3:
                return QColor(self._colors.up if prediction.prob_up >= 0.5
                              else self._colors.down)
            if column == 4 and record.realised_return is not None:
                return QColor(self._colors.up if record.realised_return > 0
                              else self._colors.down)
            if column == 5 and record.hit is not None:
                return QColor(self._colors.up if record.hit else self._colors.down)
            if column in (0, 1) or (record.hit is None and column in (4, 5)):
                return QColor(self._colors.muted)
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column == 2:
            return (f"expected {_percent(prediction.expected_return)}, 10–90% band"
                    f" {_percent(prediction.quantile_10)} to {_percent(prediction.quantile_90)}"
                    f" (model #{prediction.model_id})")
        return None

    def _text(self, record: PredictionRecord, rate: float | None, column: int) -> str:
        prediction = record.prediction
        if column == 0:
            return _utc(prediction.made_from)
        if column == 1:
            return span_text(prediction.horizon_bars * self._bar_ms)
        if column == 2:
            return _percent(prediction.expected_return)
        if column == 3:
            # The direction call that is scored as hit or miss: up when P(up) >= 50 %.
            arrow = "▲" if prediction.prob_up >= 0.5 else "▼"
            return f"{arrow} {prediction.prob_up * 100:.0f}%"
        if column == 4:
            return "pending" if record.realised_return is None else _percent(
                record.realised_return)
        if column == 5:
            return "—" if record.hit is None else "hit" if record.hit else "miss"
        return "—" if rate is None else f"{rate * 100:.0f}%"


class PredictionPanel(QWidget):
    """Cards of the latest forecast, or an honest empty state with a "Train a model" button,
    above the history of earlier forecasts."""

    #: The user asked to train a model for the charted series (from the empty state).
    train_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colors = _Colors()
        self._decimals = 2
        self._forecast: PanelForecast | None = None
        self._now_ms = lambda: int(datetime.now(tz=UTC).timestamp() * 1000)
        self._pages = QStackedWidget(self)

        empty = QWidget(self._pages)
        self._empty_title = QLabel("No forecasts yet", empty)
        self._empty_title.setObjectName("EmptyTitle")
        self._empty_text = QLabel(empty)
        self._empty_text.setWordWrap(True)
        self._empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._train_button = QPushButton("Train a model", empty)
        self._train_button.setToolTip("Open the Models panel and train a fast ridge model on"
                                      " this series' history")
        self._train_button.clicked.connect(self.train_requested)
        self._empty_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty_title.setWordWrap(True)
        empty_layout = QVBoxLayout(empty)
        empty_layout.setContentsMargins(24, 12, 24, 12)
        empty_layout.addStretch(1)
        for widget in (self._empty_title, self._empty_text):
            empty_layout.addWidget(widget)  # full width, so wrapped text gets its height
        empty_layout.addSpacing(8)
        empty_layout.addWidget(self._train_button, 0, Qt.AlignmentFlag.AlignHCenter)
        empty_layout.addStretch(2)
        self._pages.addWidget(empty)

        content = QWidget(self._pages)
        self._header = QLabel(content)
        self._header.setWordWrap(True)
        self._header.setTextFormat(Qt.TextFormat.RichText)
        self._waiting = QLabel(content)
        self._waiting.setWordWrap(True)
        self._cards_box = QWidget(content)
        self._cards_layout = QGridLayout(self._cards_box)
        self._cards_layout.setContentsMargins(0, 0, 0, 0)
        self._cards_layout.setSpacing(6)
        self._cards: list[PredictionCard] = []
        self.history_model = PredictionHistoryModel(self)
        self._table = QTableView(content)
        self._table.setModel(self.history_model)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.verticalHeader().hide()
        self._table.verticalHeader().setDefaultSectionSize(22)
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self._table.setShowGrid(False)
        self._summary = QLabel(content)
        self._summary.setWordWrap(True)
        top = QWidget(content)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self._header)
        top_layout.addWidget(self._waiting)
        top_layout.addWidget(self._cards_box)
        top_layout.addStretch(1)
        bottom = QWidget(content)
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self._summary)
        bottom_layout.addWidget(self._table)
        splitter = QSplitter(Qt.Orientation.Vertical, content)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(6, 6, 6, 6)
        content_layout.addWidget(splitter)
        self._pages.addWidget(content)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._pages)
        self._ages = QTimer(self)
        self._ages.setInterval(AGE_REFRESH_MS)
        self._ages.timeout.connect(self._show_header)
        self._ages.start()
        self.show_empty("")

    # -- states -------------------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        return self._pages.currentIndex() == 0

    def show_empty(self, series: str, *, reason: str = "") -> None:
        """No model for ``series``: say so, and offer to train one."""
        self._forecast = None
        where = f" for {series}" if series else ""
        self._empty_title.setText(f"No model{where} yet")
        self._empty_text.setText(
            reason or "Forecasts appear here once a model is trained on this series. Each one"
            " is shown with how the model did out of sample against the naive forecast"
            " \"no change\", so you can see how far to trust it.")
        self._pages.setCurrentIndex(0)

    def show_waiting(self, model_text: str, trained_at: int, verdict: str) -> None:
        """A model is active but has not forecast this series yet (until a candle closes)."""
        self._forecast = None
        self._set_cards(0)
        self._header_parts = (model_text, trained_at, None, verdict)
        self._waiting.setText("Waiting for the next closed candle to forecast from…")
        self._waiting.show()
        self._show_header()
        self._pages.setCurrentIndex(1)

    def show_forecast(self, forecast: PanelForecast) -> None:
        """One card per horizon of ``forecast``."""
        self._forecast = forecast
        self._waiting.hide()
        pairs = sorted(zip(forecast.predictions, forecast.verdicts, strict=True),
                       key=lambda pair: pair[0].horizon_bars)
        self._set_cards(len(pairs))
        for card, (prediction, verdict) in zip(self._cards, pairs, strict=True):
            card.show_prediction(prediction, verdict, forecast.last_close, forecast.bar_ms,
                                 self._decimals, self._colors)
        made_from = pairs[0][0].made_from if pairs else None
        self._header_parts = (forecast.model_text, forecast.trained_at, made_from,
                              "" if forecast.usable_for_trading else "not used for automated"
                              " trading (no skill)")
        self._show_header()
        self._pages.setCurrentIndex(1)

    def set_history(self, records: Sequence[PredictionRecord], bar_ms: int) -> None:
        self.history_model.set_records(records, bar_ms)
        rates = self.history_model.hit_rates()
        parts = [f"{span_text(h * bar_ms)} {hits}/{resolved} ({hits / resolved * 100:.0f}%)"
                 for h, (hits, resolved) in sorted(rates.items()) if resolved]
        self._summary.setText(
            f'<span style="color:{self._colors.muted}">Hit rate of resolved forecasts:</span> '
            + (" · ".join(parts) if parts else "none resolved yet"))

    def set_price_decimals(self, decimals: int) -> None:
        self._decimals = decimals

    def set_colors(self, up: str, down: str, warning: str, muted: str, text: str, surface: str,
                   border: str) -> None:
        self._colors = _Colors(up, down, warning, muted, text, surface, border)
        self.history_model.set_colors(self._colors)
        self._empty_title.setStyleSheet(f"font-size: 15px; font-weight: 600; color: {text};")
        self._empty_text.setStyleSheet(f"color: {muted};")
        self._waiting.setStyleSheet(f"color: {muted};")
        if self._forecast is not None:
            self.show_forecast(self._forecast)

    # -- for tests and the controller ---------------------------------------------------------

    @property
    def cards(self) -> list[PredictionCard]:
        return self._cards[: self._visible_cards]

    @property
    def header_text(self) -> str:
        return self._header.text()

    @property
    def train_button(self) -> QPushButton:
        return self._train_button

    # -- internals ----------------------------------------------------------------------------

    _visible_cards = 0
    _header_parts: tuple[str, int, int | None, str] = ("", 0, None, "")

    def _set_cards(self, count: int) -> None:
        while len(self._cards) < count:
            card = PredictionCard(self._cards_box)
            self._cards.append(card)
        for position, card in enumerate(self._cards):
            card.setVisible(position < count)
            if position < count:
                # Two columns: four horizons fit a dock without scrolling.
                self._cards_layout.addWidget(card, position // 2, position % 2)
        self._visible_cards = count

    def _show_header(self) -> None:
        model_text, trained_at, made_from, note = self._header_parts
        if not model_text:
            return
        now = self._now_ms()
        muted = self._colors.muted
        parts = [f"<b>{model_text}</b>",
                 f'<span style="color:{muted}">trained {age_text(trained_at, now)}</span>']
        if made_from is not None:
            parts.append(f'<span style="color:{muted}">from the {_utc(made_from)} UTC candle'
                         "</span>")
        if note:
            parts.append(f'<span style="color:{self._colors.warning}">{note}</span>')
        self._header.setText(" · ".join(parts))

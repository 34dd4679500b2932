"""Candlestick chart with a volume pane, in the style of a trading terminal.

The x coordinate is the bar index (0 is the oldest loaded bar), not time: exchange outages and
weekends then leave no holes in the chart, and zoom levels are whole numbers of bars. The time
axis maps indices back to open times, extrapolating on the timeframe's grid beyond the data.

Drawing cost is bounded by the view's width, not by the history's length: only the bars inside
the view are drawn, and when zoomed out so far that bars would be narrower than a couple of
pixels, neighbouring bars are merged (open of the first, extremes, close of the last, summed
volume) in power-of-two groups that are computed once and kept until the bars change.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QKeyEvent, QPainter
from PySide6.QtWidgets import (
    QGraphicsObject,
    QGraphicsSimpleTextItem,
    QLabel,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from terminal.core.model import Candle, Timeframe
from terminal.core.series import CandleSeries

#: Bars shown by :meth:`CandleChart.scroll_to_latest` (about a working day of 5m candles).
DEFAULT_VISIBLE_BARS = 140
#: Empty bars kept right of the newest one, so the forming candle is never glued to the axis.
RIGHT_MARGIN_BARS = 8
MIN_VISIBLE_BARS = 12
#: Zoomed out beyond this many pixels per bar, neighbouring bars are merged before drawing.
MIN_PX_PER_DRAWN_BAR = 2.0
AXIS_WIDTH_PX = 84
_TIME_LABEL_SPACING_PX = 110
_TAG_HEIGHT_PX = 20
_PRICE_LABEL_SPACING_PX = 64
_VOLUME_LABEL_SPACING_PX = 36
_PRICE_PADDING = 0.08
_FIELDS = ("open", "high", "low", "close", "volume")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_Scalar = TypeVar("_Scalar", bound=np.generic)


@dataclass(frozen=True, slots=True)
class ChartStyle:
    """Colours of the chart (CSS colour strings); the defaults are the dark terminal theme."""

    background: str = "#131722"
    text: str = "#d1d4dc"
    text_muted: str = "#787b86"
    grid: str = "#1c2030"
    border: str = "#2a2e39"
    up: str = "#26a69a"
    down: str = "#ef5350"
    crosshair: str = "#9598a1"
    tag_background: str = "#363a45"
    volume_alpha: float = 0.45


class _Level:
    """OHLCV of groups of ``factor`` consecutive bars; groups before ``valid`` are current."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.valid = 0
        self.columns: dict[str, FloatArray] = {name: np.empty(0) for name in _FIELDS}


class _Bars:
    """The chart's candles as columns with spare capacity, so live appends do not copy history."""

    def __init__(self) -> None:
        self.count = 0
        self._time: IntArray = np.empty(0, dtype=np.int64)
        self._columns: dict[str, FloatArray] = {name: np.empty(0) for name in _FIELDS}
        self._levels: dict[int, _Level] = {}

    @property
    def times(self) -> IntArray:
        return self._time[: self.count]

    def field(self, name: str) -> FloatArray:
        return self._columns[name][: self.count]

    def candle(self, index: int) -> Candle:
        values = (float(self._columns[name][index]) for name in _FIELDS)
        return Candle(int(self._time[index]), *values)

    def replace(self, series: CandleSeries) -> None:
        count = len(series)
        capacity = count + max(256, count // 8)
        self._time = np.empty(capacity, dtype=np.int64)
        self._time[:count] = series.open_time
        for name in _FIELDS:
            column = np.empty(capacity)
            column[:count] = getattr(series, name)
            self._columns[name] = column
        self.count = count
        self._levels.clear()

    def put(self, candle: Candle) -> bool:
        """Write ``candle`` over the last bar when it has the same open time, else after it.

        Returns True when the candle was appended.
        """
        last = self.count - 1
        index = last if self.count and candle.open_time == self._time[last] else self.count
        if index == len(self._time):
            self._time = _grown(self._time)
            self._columns = {name: _grown(column) for name, column in self._columns.items()}
        self._time[index] = candle.open_time
        for name in _FIELDS:
            self._columns[name][index] = getattr(candle, name)
        appended = index == self.count
        self.count = max(self.count, index + 1)
        for level in self._levels.values():
            level.valid = min(level.valid, index // level.factor)
        return appended

    def level(self, factor: int) -> dict[str, FloatArray]:
        """The bars merged in groups of ``factor`` (1: the bars themselves)."""
        if factor == 1:
            return {name: self.field(name) for name in _FIELDS}
        level = self._levels.setdefault(factor, _Level(factor))
        groups = -(-self.count // factor)
        if level.valid < groups:
            self._recompute(level, groups)
        return {name: column[:groups] for name, column in level.columns.items()}

    def _recompute(self, level: _Level, groups: int) -> None:
        start = level.valid * level.factor
        starts = np.arange(start, self.count, level.factor)
        offsets = starts - start
        ends = np.minimum(starts + level.factor, self.count) - 1
        merged = {
            "open": self._columns["open"][starts],
            "high": np.maximum.reduceat(self.field("high")[start:], offsets),
            "low": np.minimum.reduceat(self.field("low")[start:], offsets),
            "close": self._columns["close"][ends],
            "volume": np.add.reduceat(self.field("volume")[start:], offsets),
        }
        for name, values in merged.items():
            column = level.columns[name]
            if len(column) < groups:
                column = np.resize(column, groups + max(64, groups // 8))
                level.columns[name] = column
            column[level.valid:groups] = values
        level.valid = groups


def _grown(array: npt.NDArray[_Scalar]) -> npt.NDArray[_Scalar]:
    bigger = np.empty(max(256, len(array) * 2), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


def decimation_factor(px_per_bar: float) -> int:
    """Bars merged into one drawn bar at this zoom: a power of two, 1 when bars are wide."""
    if px_per_bar >= MIN_PX_PER_DRAWN_BAR:
        return 1
    return 1 << math.ceil(math.log2(MIN_PX_PER_DRAWN_BAR / px_per_bar))


def _rects(left: FloatArray, top: FloatArray, right: FloatArray,
           bottom: FloatArray) -> list[QRectF]:
    # drawRects() of a list is two orders of magnitude faster than filling one path of
    # rectangles, which goes through the general polygon rasteriser.
    return [QRectF(x, y, x2 - x, y2 - y) for x, y, x2, y2 in
            zip(left.tolist(), top.tolist(), right.tolist(), bottom.tolist(), strict=True)]


class _BarsItem(pg.GraphicsObject):
    """Candles (or volume bars) in the view, drawn in whole device pixels so edges stay crisp."""

    def __init__(self, bars: _Bars, *, volume: bool) -> None:
        super().__init__()
        self._bars = bars
        self._volume = volume
        self._colors = (QColor(), QColor())
        self._bounds = QRectF()
        #: Bars (or merged groups) drawn by the latest paint; bounded by the view's width.
        self.drawn_count = 0

    def set_colors(self, up: QColor, down: QColor) -> None:
        self._colors = (up, down)
        self.update()

    def data_changed(self) -> None:
        self.prepareGeometryChange()
        self._bounds = self._data_bounds()
        self.update()

    def _data_bounds(self) -> QRectF:
        count = self._bars.count
        if not count:
            return QRectF()
        if self._volume:
            top = float(self._bars.field("volume").max()) or 1.0
            return QRectF(-1.0, 0.0, count + 1.0, top)
        low = float(self._bars.field("low").min())
        high = float(self._bars.field("high").max())
        return QRectF(-1.0, low, count + 1.0, max(high - low, abs(high) * 1e-9, 1e-12))

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        self.drawn_count = 0
        view = self.getViewBox()
        if not self._bars.count or view is None:
            return
        transform = painter.transform()
        px_per_bar = transform.m11()
        if px_per_bar <= 0:
            return
        factor = decimation_factor(px_per_bar)
        data = self._bars.level(factor)
        x_min, x_max = view.viewRange()[0]
        first = max(0, math.floor(x_min / factor) - 1)
        last = min(len(data["open"]), math.ceil(x_max / factor) + 1)
        if last <= first:
            return
        window = {name: values[first:last] for name, values in data.items()}
        centers = np.floor((np.arange(first, last) * factor + (factor - 1) / 2) * px_per_bar
                           + transform.dx())
        spacing = px_per_bar * factor
        body = max(1, int(spacing * 0.7))
        if body > 2 and body % 2 == 0:
            body -= 1  # an odd body width centres the one-pixel wick exactly

        def to_y(values: FloatArray) -> FloatArray:
            return np.round(values * transform.m22() + transform.dy())

        rising = window["close"] >= window["open"]
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(Qt.PenStyle.NoPen)
        for mask, color in ((rising, self._colors[0]), (~rising, self._colors[1])):
            if not mask.any():
                continue
            painter.setBrush(color)
            center = centers[mask]
            left = center - body // 2
            if self._volume:
                base = float(np.round(transform.dy()))
                top = np.minimum(to_y(window["volume"][mask]), base - 1)
                painter.drawRects(_rects(left, top, left + body, np.full(len(top), base)))
                continue
            high, low = to_y(window["high"][mask]), to_y(window["low"][mask])
            painter.drawRects(_rects(center, high, center + 1, np.maximum(low, high + 1)))
            if body > 1:
                y_open, y_close = to_y(window["open"][mask]), to_y(window["close"][mask])
                body_top = np.minimum(y_open, y_close)
                body_bottom = np.maximum(np.maximum(y_open, y_close), body_top + 1)
                painter.drawRects(_rects(left, body_top, left + body, body_bottom))
        painter.restore()
        self.drawn_count = last - first


@dataclass(frozen=True, slots=True)
class _TimeStep:
    """A spacing of time-axis labels and how to tell which period a time falls in."""

    approx_ms: int
    unit: str
    size: int

    def buckets(self, times: IntArray) -> IntArray:
        if self.unit == "ms":
            return times // self.approx_ms
        moments = times.astype("datetime64[ms]")
        months = moments.astype("datetime64[M]")
        month_index = months.astype(np.int64)
        if self.unit == "month":
            return month_index // self.size
        day_of_month = (moments.astype("datetime64[D]") - months).astype(np.int64)
        parts = 28 // self.size  # 7 -> the 1st, 8th, 15th, 22nd; 14 -> the 1st and 15th
        return month_index * parts + np.minimum(day_of_month // self.size, parts - 1)


_MINUTE, _HOUR, _DAY = 60_000, 3_600_000, 86_400_000
_TIME_STEPS = (
    *(_TimeStep(m * _MINUTE, "ms", 1) for m in (1, 2, 5, 10, 15, 30)),
    *(_TimeStep(h * _HOUR, "ms", 1) for h in (1, 2, 3, 4, 6, 12)),
    *(_TimeStep(d * _DAY, "ms", 1) for d in (1, 2, 3)),
    _TimeStep(7 * _DAY, "day", 7),
    _TimeStep(14 * _DAY, "day", 14),
    *(_TimeStep(m * 30 * _DAY, "month", m) for m in (1, 3, 6, 12, 24, 60)),
)


def _utc(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC)


def time_label(time_ms: int) -> str:
    """Label of a time-axis tick: the largest calendar unit that starts at ``time_ms``."""
    moment = _utc(time_ms)
    if moment.hour or moment.minute:
        return moment.strftime("%H:%M")
    if moment.day != 1:
        return f"{moment.day} {moment:%b}"
    return str(moment.year) if moment.month == 1 else moment.strftime("%b")


def time_ticks(first: int, last: int, times_at: Callable[[IntArray], IntArray],
               px_per_bar: float, bar_ms: int) -> list[tuple[int, str]]:
    """Bar indices in ``[first, last]`` to label on the time axis, with their labels.

    Labels sit where a period (hour, day, month...) starts and are at least a label's width
    apart. Zoomed far out, only about one bar per pixel is examined, then each period start
    found is narrowed down to its exact bar.
    """
    if last <= first or px_per_bar <= 0:
        return []
    wanted = max(1.0, (last - first) * px_per_bar / _TIME_LABEL_SPACING_PX)
    ends = times_at(np.array([first, last], dtype=np.int64))
    span = int(ends[1] - ends[0])
    usable = [s for s in _TIME_STEPS if s.approx_ms >= bar_ms] or [_TIME_STEPS[-1]]
    step = next((s for s in usable if span / s.approx_ms <= wanted), usable[-1])
    stride = max(1, int(1.0 / px_per_bar))
    sampled = np.arange(first, last + 1, stride, dtype=np.int64)
    buckets = step.buckets(times_at(sampled))
    min_gap = 0.8 * _TIME_LABEL_SPACING_PX / px_per_bar
    ticks: list[tuple[int, str]] = []
    for position in np.flatnonzero(np.diff(buckets)) + 1:
        # The period starts somewhere after the previous sample: find the bar exactly.
        candidates = np.arange(sampled[position - 1] + 1, sampled[position] + 1, dtype=np.int64)
        times = times_at(candidates)
        exact = int(np.flatnonzero(step.buckets(times) != buckets[position - 1])[0])
        index = int(candidates[exact])
        if not ticks or index - ticks[-1][0] >= min_gap:
            ticks.append((index, time_label(int(times[exact]))))
    return ticks


def crosshair_time_label(time_ms: int, timeframe: Timeframe) -> str:
    """The full time of a bar, as the crosshair shows it on the time axis."""
    moment = _utc(time_ms)
    day = f"{moment:%a} {moment.day} {moment:%b} '{moment:%y}"
    return day if timeframe.ms >= _DAY else f"{day}  {moment:%H:%M}"


def nice_step(at_least: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least ``at_least``."""
    magnitude = 10.0 ** math.floor(math.log10(at_least))
    return next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= at_least)


def format_volume(value: float) -> str:
    """A volume in at most four significant figures with a K/M/B suffix."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= limit:
            return f"{value / limit:.4g}{suffix}"
    return f"{value:.4g}"


def auto_price_decimals(price: float) -> int:
    """Decimals worth showing for a price of this size (2 for BTC, more for small coins)."""
    if not math.isfinite(price) or price <= 0:
        return 2
    digits = math.floor(math.log10(price)) + 1
    return min(8, max(2, 4 - digits))


class _TimeAxis(pg.AxisItem):
    """Time axis over bar indices: labels at the starts of minutes, hours, days, months."""

    def __init__(self, bars: _Bars, *, show_values: bool) -> None:
        super().__init__("bottom")
        self._bars = bars
        self.timeframe = Timeframe.M1
        self._labels: dict[int, str] = {}
        self.setStyle(showValues=show_values)

    def times_at(self, indices: IntArray) -> IntArray:
        """Open times of bars at ``indices``, extended on the timeframe's grid past the data."""
        inside = np.clip(indices, 0, self._bars.count - 1)
        return self._bars.times[inside] + (indices - inside) * self.timeframe.ms

    def tickValues(self, minVal: float, maxVal: float,
                   size: float) -> list[tuple[float, list[float]]]:
        self._labels = {}
        if not self._bars.count or maxVal <= minVal:
            return []
        ticks = time_ticks(math.ceil(minVal), math.floor(maxVal), self.times_at,
                           size / (maxVal - minVal), self.timeframe.ms)
        self._labels = dict(ticks)
        return [(1.0, [float(index) for index, _ in ticks])]

    def tickStrings(self, values: list[float], scale: float,
                    spacing: float) -> list[str]:
        return [self._labels.get(round(value), "") for value in values]

    def refresh(self) -> None:
        """Redraw the labels after the bars changed (the view range may not have)."""
        self.picture = None
        self.update()


class _ValueAxis(pg.AxisItem):
    """Right-hand axis whose labels are formatted by the chart (prices or volumes)."""

    def __init__(self, chart: CandleChart, *, volume: bool) -> None:
        super().__init__("right")
        self._chart = chart
        self._volume = volume
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal: float, maxVal: float,
                   size: float) -> list[tuple[float, list[float]]]:
        if maxVal <= minVal or size <= 0 or not self._chart.bar_count:
            return []
        target = _VOLUME_LABEL_SPACING_PX if self._volume else _PRICE_LABEL_SPACING_PX
        step = nice_step((maxVal - minVal) * target / size)
        first = math.ceil(minVal / step)
        return [(step, [i * step for i in range(first, math.floor(maxVal / step) + 1)])]

    def tickStrings(self, values: list[float], scale: float,
                    spacing: float) -> list[str]:
        if self._volume:
            return [format_volume(value) if value > 0 else "" for value in values]
        # Labels the last-price tag would half cover are left out, as they would be unreadable.
        covered = self._chart.last_price_tag_value()
        span = self.range[1] - self.range[0]
        px_per_unit = self.height() / span if span else 0.0
        return ["" if covered is not None and abs(value - covered) * px_per_unit < _TAG_HEIGHT_PX
                else self._chart.format_price(value) for value in values]

    def refresh(self) -> None:
        """Redraw the labels (the last price moved, or the price format changed)."""
        self.picture = None
        self.update()


class _AxisTag(QGraphicsObject):
    """A filled label on an axis: the last price, or where the crosshair points."""

    def __init__(self, axis: pg.AxisItem, font: QFont) -> None:
        super().__init__(axis)
        self._axis = axis
        self._font = font
        self._text = ""
        self._fill = QColor()
        self._ink = QColor()
        self.setZValue(10)
        self.hide()

    @property
    def text(self) -> str:
        return self._text

    def show_at(self, position: float, text: str, fill: QColor, ink: QColor) -> None:
        """Show ``text`` centred on ``position`` (y on a right axis, x on a bottom one)."""
        self.prepareGeometryChange()
        self._text, self._fill, self._ink = text, fill, ink
        if self._axis.orientation == "right":
            self.setPos(0.0, position)
        else:
            self.setPos(position, 0.0)
        self.show()
        self.update()

    def boundingRect(self) -> QRectF:
        metrics = QFontMetricsF(self._font)
        height = max(metrics.height() + 6, _TAG_HEIGHT_PX)
        if self._axis.orientation == "right":
            return QRectF(0.0, -height / 2, float(self._axis.width()), height)
        width = metrics.horizontalAdvance(self._text) + 16
        return QRectF(-width / 2, 0.0, width, height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        rect = self.boundingRect()
        painter.fillRect(rect, self._fill)
        painter.setFont(self._font)
        painter.setPen(self._ink)
        if self._axis.orientation == "right":
            painter.drawText(rect.adjusted(7, 0, 0, 0),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             self._text)
        else:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._text)


class _CenteredText(QGraphicsSimpleTextItem):
    """Text fixed at the centre of a view box, behind the data (watermark, placeholder)."""

    def __init__(self, view: pg.ViewBox, font: QFont, color: QColor, z: float) -> None:
        super().__init__(view)
        self._view = view
        self.setFont(font)
        self.setBrush(color)
        self.setZValue(z)

    def set_text(self, text: str) -> None:
        self.setText(text)
        self.recenter()

    def recenter(self) -> None:
        area = self._view.boundingRect()
        own = self.boundingRect()
        self.setPos(area.center().x() - own.width() / 2, area.center().y() - own.height() / 2)


class CandleChart(QWidget):
    """Candlesticks over a volume pane, with a crosshair readout and live updates.

    Feed it with :meth:`set_history` (replaces everything) and :meth:`update_bar` (the forming
    candle, or the next one). The view follows new bars while the newest bar is in view.
    Mouse: drag to pan, wheel to zoom. Keys: ``+``/``-`` zoom, arrows pan, Home shows the latest.
    """

    def __init__(self, parent: QWidget | None = None, style: ChartStyle | None = None) -> None:
        super().__init__(parent)
        self._style = style or ChartStyle()
        self._bars = _Bars()
        self._timeframe = Timeframe.M1
        self._decimals: int | None = None
        self._title = ""
        self._crosshair_index: int | None = None
        self._cross_plot: pg.PlotItem | None = None
        self._cross_value = 0.0
        self._mouse_at: QPointF | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)

        self._graphics = pg.GraphicsLayoutWidget(self)
        self._graphics.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._graphics.setBackground(self._style.background)
        self._graphics.ci.setContentsMargins(0, 0, 0, 0)
        self._graphics.ci.setSpacing(0)
        self._graphics.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self._graphics.installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics)

        self._font = QFont(self.font())
        self._font.setPixelSize(11)
        self._price_axis = _ValueAxis(self, volume=False)
        self._volume_axis = _ValueAxis(self, volume=True)
        self._time_axis = _TimeAxis(self._bars, show_values=True)
        self._grid_axis = _TimeAxis(self._bars, show_values=False)
        self._price_plot = self._graphics.addPlot(
            row=0, col=0, axisItems={"right": self._price_axis, "bottom": self._grid_axis})
        self._volume_plot = self._graphics.addPlot(
            row=1, col=0, axisItems={"right": self._volume_axis, "bottom": self._time_axis})
        self._volume_plot.setXLink(self._price_plot)
        self._graphics.ci.layout.setRowStretchFactor(0, 4)
        self._graphics.ci.layout.setRowStretchFactor(1, 1)
        for plot in (self._price_plot, self._volume_plot):
            self._setup_plot(plot)
        self._grid_axis.setStyle(tickLength=0)
        self._grid_axis.setHeight(1)
        self._time_axis.setHeight(26)
        self._price_axis.setWidth(AXIS_WIDTH_PX)
        self._volume_axis.setWidth(AXIS_WIDTH_PX)

        self._candles = _BarsItem(self._bars, volume=False)
        self._volumes = _BarsItem(self._bars, volume=True)
        self._price_plot.addItem(self._candles)
        self._volume_plot.addItem(self._volumes)
        self._last_line = pg.InfiniteLine(angle=0, movable=False)
        self._last_line.setZValue(5)
        self._last_line.hide()
        self._price_plot.addItem(self._last_line, ignoreBounds=True)
        crosshair_pen = pg.mkPen(self._style.crosshair, width=1, style=Qt.PenStyle.DashLine)
        self._cross_x: list[pg.InfiniteLine] = []
        self._cross_y: dict[pg.PlotItem, pg.InfiniteLine] = {}
        for plot in (self._price_plot, self._volume_plot):
            vertical = pg.InfiniteLine(angle=90, movable=False, pen=crosshair_pen)
            horizontal = pg.InfiniteLine(angle=0, movable=False, pen=crosshair_pen)
            for line in (vertical, horizontal):
                line.setZValue(20)
                line.hide()
                plot.addItem(line, ignoreBounds=True)
            self._cross_x.append(vertical)
            self._cross_y[plot] = horizontal
        self._last_tag = _AxisTag(self._price_axis, self._font)
        self._price_tag = _AxisTag(self._price_axis, self._font)
        self._price_tag.setZValue(11)
        self._volume_tag = _AxisTag(self._volume_axis, self._font)
        self._time_tag = _AxisTag(self._time_axis, self._font)

        watermark_font = QFont(self.font())
        watermark_font.setPixelSize(44)
        watermark_font.setBold(True)
        watermark_color = QColor(self._style.text)
        watermark_color.setAlpha(16)
        self._watermark = _CenteredText(self._price_plot.vb, watermark_font, watermark_color,
                                        z=-100)
        placeholder_font = QFont(self.font())
        placeholder_font.setPixelSize(15)
        self._placeholder = _CenteredText(self._price_plot.vb, placeholder_font,
                                          QColor(self._style.text_muted), z=30)
        self._placeholder.set_text("No data")

        self._legend = QLabel(self._graphics)
        self._legend.setTextFormat(Qt.TextFormat.RichText)
        self._legend.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._legend.setStyleSheet("background: transparent; font-size: 12px;")
        self._legend.move(10, 6)

        self._apply_colors()
        self._price_plot.vb.sigXRangeChanged.connect(self._on_x_range_changed)
        self._price_plot.vb.sigYRangeChanged.connect(self._on_y_range_changed)
        self._volume_plot.vb.sigYRangeChanged.connect(self._follow_view_change)
        self._price_plot.vb.sigResized.connect(self._on_resized)
        self._volume_plot.vb.sigResized.connect(self._on_resized)
        self._graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._update_limits()
        self.scroll_to_latest()
        self._refresh_overlays()

    def _setup_plot(self, plot: pg.PlotItem) -> None:
        plot.hideAxis("left")
        plot.showAxis("right")
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.layout.setContentsMargins(0, 0, 0, 0)
        plot.showGrid(x=True, y=True)
        view = plot.vb
        view.setMouseEnabled(x=True, y=False)
        view.enableAutoRange(enable=False)
        view.setDefaultPadding(0.0)
        for name in ("right", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(self._style.border)
            axis.setTextPen(self._style.text_muted)
            axis.setTickPen(self._style.grid)
            axis.setStyle(tickLength=0, tickAlpha=1.0, tickFont=self._font,
                          tickTextOffset=8, autoExpandTextSpace=False)
            # Axes draw the grid lines: beneath the view box, so they never cross a candle.
            axis.setZValue(-200)

    def _apply_colors(self) -> None:
        up, down = QColor(self._style.up), QColor(self._style.down)
        self._candles.set_colors(up, down)
        up_volume, down_volume = QColor(up), QColor(down)
        alpha = round(255 * self._style.volume_alpha)
        up_volume.setAlpha(alpha)
        down_volume.setAlpha(alpha)
        self._volumes.set_colors(up_volume, down_volume)

    # -- data ---------------------------------------------------------------------------------

    def set_history(self, series: CandleSeries) -> None:
        """Show ``series``, replacing everything, and scroll to its newest bar."""
        self._timeframe = series.timeframe
        self._time_axis.timeframe = series.timeframe
        self._grid_axis.timeframe = series.timeframe
        self._bars.replace(series)
        self.set_crosshair(None)
        self._data_changed(appended=True)
        self.scroll_to_latest()
        self._refresh_overlays()

    def update_bar(self, candle: Candle) -> None:
        """Replace the last bar when ``candle`` has its open time, else append ``candle``.

        A candle older than the last bar is ignored: it can only be a late duplicate. When the
        newest bar was in view, the view moves along with an appended bar.
        """
        if self._bars.count and candle.open_time < int(self._bars.times[-1]):
            return
        following = self.is_following()
        appended = self._bars.put(candle)
        self._data_changed(appended=appended)
        if self._bars.count == 1:
            self.scroll_to_latest()
        elif appended and following:
            x_min, x_max = self.visible_range()
            self._price_plot.vb.setXRange(x_min + 1, x_max + 1, padding=0)
        self._autorange_y()
        self._refresh_overlays()

    def _data_changed(self, *, appended: bool) -> None:
        self._candles.data_changed()
        self._volumes.data_changed()
        if appended:
            self._update_limits()
            self._time_axis.refresh()
            self._grid_axis.refresh()

    @property
    def bar_count(self) -> int:
        return self._bars.count

    @property
    def timeframe(self) -> Timeframe:
        return self._timeframe

    def candle(self, index: int) -> Candle:
        """The bar at ``index`` (0 is the oldest; negative counts from the newest)."""
        if not -self._bars.count <= index < self._bars.count:
            raise IndexError(f"bar {index} of {self._bars.count}")
        return self._bars.candle(index % self._bars.count)

    @property
    def last_candle(self) -> Candle | None:
        return self._bars.candle(self._bars.count - 1) if self._bars.count else None

    @property
    def drawn_bars(self) -> int:
        """Candles drawn by the latest paint (merged groups count once)."""
        return self._candles.drawn_count

    # -- decoration ---------------------------------------------------------------------------

    def set_title(self, title: str) -> None:
        """The name shown at the start of the readout line, e.g. ``BTC/USDT · 1m``."""
        self._title = title
        self._update_legend()

    def set_watermark(self, text: str) -> None:
        """Large faint text in the background of the price pane."""
        self._watermark.set_text(text)

    @property
    def watermark(self) -> str:
        return self._watermark.text()

    def set_placeholder(self, text: str) -> None:
        """What the chart says while it has no bars (default: ``No data``)."""
        self._placeholder.set_text(text)

    @property
    def placeholder(self) -> str:
        """The message shown instead of bars, empty while there are bars."""
        return self._placeholder.text() if self._placeholder.isVisible() else ""

    def set_price_precision(self, decimals: int | None) -> None:
        """Decimals for prices (from the instrument's tick size); None picks from the price."""
        self._decimals = decimals
        self._price_axis.refresh()
        self._refresh_overlays()

    def last_price_tag_value(self) -> float | None:
        """The price the last-price tag marks on the axis, None while it is hidden."""
        last = self.last_candle
        return last.close if last is not None and self._last_tag.isVisible() else None

    def format_price(self, price: float) -> str:
        return f"{price:.{self._price_decimals(price)}f}"

    def _price_decimals(self, price: float) -> int:
        if self._decimals is not None:
            return self._decimals
        # Judged from the last price, so every label of the axis has the same decimals.
        last = self.last_candle
        return auto_price_decimals(last.close if last else price)

    # -- view ---------------------------------------------------------------------------------

    def visible_range(self) -> tuple[float, float]:
        """The x range in view, in bar indices."""
        x_min, x_max = self._price_plot.vb.viewRange()[0]
        return float(x_min), float(x_max)

    def is_following(self) -> bool:
        """True when the newest bar is in view, so new bars scroll the chart."""
        return not self._bars.count or self.visible_range()[1] >= self._bars.count - 1

    def scroll_to_latest(self) -> None:
        """Show the newest bars at the default zoom, with a little room on the right."""
        right = self._bars.count - 0.5 + RIGHT_MARGIN_BARS
        # A short history starts at the left edge instead of floating in empty space.
        width = max(min(DEFAULT_VISIBLE_BARS, right + 1.0), MIN_VISIBLE_BARS)
        self._price_plot.vb.setXRange(right - width, right, padding=0)
        self._autorange_y()

    def zoom(self, factor: float) -> None:
        """Scale the visible span by ``factor`` (< 1 zooms in); anchored right when following."""
        x_min, x_max = self.visible_range()
        width = (x_max - x_min) * factor
        if self.is_following():
            self._price_plot.vb.setXRange(x_max - width, x_max, padding=0)
        else:
            middle = (x_min + x_max) / 2
            self._price_plot.vb.setXRange(middle - width / 2, middle + width / 2, padding=0)

    def pan(self, fraction: float) -> None:
        """Move the view by ``fraction`` of its width (negative: back in time)."""
        x_min, x_max = self.visible_range()
        shift = (x_max - x_min) * fraction
        self._price_plot.vb.setXRange(x_min + shift, x_max + shift, padding=0)

    def _update_limits(self) -> None:
        count = self._bars.count
        self._price_plot.vb.setLimits(
            xMin=-DEFAULT_VISIBLE_BARS, xMax=count + DEFAULT_VISIBLE_BARS,
            minXRange=MIN_VISIBLE_BARS, maxXRange=count + DEFAULT_VISIBLE_BARS)

    def _visible_factor(self) -> int:
        x_min, x_max = self.visible_range()
        width = self._price_plot.vb.width()
        return decimation_factor(width / (x_max - x_min)) if width > 0 else 1

    def _autorange_y(self) -> None:
        if not self._bars.count:
            return
        factor = self._visible_factor()
        data = self._bars.level(factor)
        x_min, x_max = self.visible_range()
        first = max(0, math.floor(x_min / factor))
        last = min(len(data["open"]), math.ceil(x_max / factor) + 1)
        if last <= first:
            first, last = max(0, len(data["open"]) - 1), len(data["open"])
        low = float(data["low"][first:last].min())
        high = float(data["high"][first:last].max())
        pad = max(high - low, abs(high) * 1e-4) * _PRICE_PADDING
        self._price_plot.vb.setYRange(low - pad, high + pad, padding=0)
        volume = float(data["volume"][first:last].max())
        self._volume_plot.vb.setYRange(0.0, volume * 1.1 if volume > 0 else 1.0, padding=0)

    def _on_x_range_changed(self) -> None:
        self._autorange_y()
        self._place_tags()
        self._follow_view_change()

    def _on_y_range_changed(self) -> None:
        self._place_tags()
        self._follow_view_change()

    def _on_resized(self) -> None:
        self._watermark.recenter()
        self._placeholder.recenter()
        self._autorange_y()
        self._place_tags()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        actions = {
            Qt.Key.Key_Plus: lambda: self.zoom(0.8),
            Qt.Key.Key_Equal: lambda: self.zoom(0.8),
            Qt.Key.Key_Minus: lambda: self.zoom(1.25),
            Qt.Key.Key_Left: lambda: self.pan(-0.1),
            Qt.Key.Key_Right: lambda: self.pan(0.1),
            Qt.Key.Key_Home: self.scroll_to_latest,
        }
        action = actions.get(Qt.Key(event.key()))
        if action is None:
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    # -- crosshair and readout ----------------------------------------------------------------

    def set_crosshair(self, index: int | None) -> None:
        """Point the crosshair at bar ``index`` (None hides it; the readout shows the newest)."""
        self._mouse_at = None
        self._show_crosshair(index, None, 0.0)

    def readout_text(self) -> str:
        """The readout line as plain text: ``title time O … H … L … C … V … +1.2 (+0.12%)``."""
        return self._readout()[0]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._graphics and event.type() == QEvent.Type.Leave:
            self.set_crosshair(None)
        return super().eventFilter(watched, event)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        for plot in (self._price_plot, self._volume_plot):
            if plot.vb.sceneBoundingRect().contains(scene_pos):
                point = plot.vb.mapSceneToView(scene_pos)
                self._show_crosshair(round(point.x()), plot, point.y())
                self._mouse_at = QPointF(scene_pos)
                return
        self.set_crosshair(None)

    def _follow_view_change(self) -> None:
        """Keep the crosshair under a still mouse (or on its bar) while the view moves."""
        if self._mouse_at is not None:
            self._on_mouse_moved(self._mouse_at)
        elif self._crosshair_index is not None:
            self._place_cross_tags(self._cross_plot, self._cross_value)

    def _show_crosshair(self, index: int | None, plot: pg.PlotItem | None, value: float) -> None:
        visible = index is not None and self._bars.count > 0
        self._crosshair_index = index if visible else None
        self._cross_plot, self._cross_value = plot, value
        for line in self._cross_x:
            line.setVisible(visible)
            if visible:
                line.setPos(index)
        for owner, line in self._cross_y.items():
            line.setVisible(visible and owner is plot)
            if visible and owner is plot:
                line.setPos(value)
        self._update_legend()
        self._place_cross_tags(plot, value)

    def _legend_bar(self) -> int | None:
        if not self._bars.count:
            return None
        if self._crosshair_index is None:
            return self._bars.count - 1
        return min(max(self._crosshair_index, 0), self._bars.count - 1)

    def _readout(self) -> tuple[str, str]:
        """The readout line as plain text and as rich text for the legend label."""
        muted = self._style.text_muted
        plain: list[str] = []
        rich: list[str] = []
        if self._title:
            plain.append(self._title)
            rich.append(f'<span style="color:{self._style.text}; font-weight:600">'
                        f"{html.escape(self._title)}</span>")
        index = self._legend_bar()
        if index is None:
            return " ".join(plain), "".join(rich)
        bar = self._bars.candle(index)
        color = self._style.up if bar.close >= bar.open else self._style.down
        moment = crosshair_time_label(bar.open_time, self._timeframe)
        plain.append(moment)
        rich.append(f'<span style="color:{muted}">{moment}</span>')
        values = [(name, self.format_price(value)) for name, value in
                  (("O", bar.open), ("H", bar.high), ("L", bar.low), ("C", bar.close))]
        values.append(("V", format_volume(bar.volume)))
        for name, value in values:
            plain.append(f"{name} {value}")
            rich.append(f'<span style="color:{muted}">{name}</span>&nbsp;'
                        f'<span style="color:{color}">{value}</span>')
        reference = float(self._bars.field("close")[index - 1]) if index else bar.open
        change = bar.close - reference
        percent = change / reference * 100 if reference else 0.0
        difference = f"{change:+.{self._price_decimals(bar.close)}f} ({percent:+.2f}%)"
        plain.append(difference)
        rich.append(f'<span style="color:{color}">{difference}</span>')
        return " ".join(plain), "&nbsp;&nbsp;&nbsp;".join(rich)

    def _update_legend(self) -> None:
        self._legend.setText(self._readout()[1])
        self._legend.adjustSize()

    # -- overlays -----------------------------------------------------------------------------

    def _refresh_overlays(self) -> None:
        empty = not self._bars.count
        self._placeholder.setVisible(empty)
        self._update_legend()
        self._place_tags()

    def _place_tags(self) -> None:
        last = self.last_candle
        if last is None:
            self._last_line.hide()
            self._last_tag.hide()
            self._price_axis.refresh()
            return
        color = QColor(self._style.up if last.close >= last.open else self._style.down)
        self._last_line.setPen(pg.mkPen(color, width=1, style=Qt.PenStyle.DotLine))
        self._last_line.setPos(last.close)
        self._last_line.show()
        position = self._axis_position(self._price_plot, self._price_axis, last.close)
        if position is None:
            self._last_tag.hide()
        else:
            self._last_tag.show_at(position, self.format_price(last.close), color,
                                   QColor("#ffffff"))
        self._price_axis.refresh()

    def _place_cross_tags(self, plot: pg.PlotItem | None, value: float) -> None:
        fill, ink = QColor(self._style.tag_background), QColor(self._style.text)
        index = self._crosshair_index
        if index is None:
            for tag in (self._price_tag, self._volume_tag, self._time_tag):
                tag.hide()
            return
        view = self._volume_plot.vb
        x = self._time_axis.mapFromItem(view, view.mapFromView(QPointF(index, 0.0))).x()
        time_ms = int(self._time_axis.times_at(np.array([index], dtype=np.int64))[0])
        self._time_tag.show_at(x, crosshair_time_label(time_ms, self._timeframe), fill, ink)
        for owner, axis, tag in ((self._price_plot, self._price_axis, self._price_tag),
                                 (self._volume_plot, self._volume_axis, self._volume_tag)):
            position = self._axis_position(owner, axis, value) if owner is plot else None
            if position is None:
                tag.hide()
                continue
            text = format_volume(value) if owner is self._volume_plot else self.format_price(value)
            tag.show_at(position, text, fill, ink)

    @staticmethod
    def _axis_position(plot: pg.PlotItem, axis: pg.AxisItem, value: float) -> float | None:
        """Where ``value`` lies on ``axis`` (its local y), or None when it is out of view."""
        view = plot.vb
        y = axis.mapFromItem(view, view.mapFromView(QPointF(0.0, value))).y()
        return y if 0.0 <= y <= axis.height() else None

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QKeyEvent, QPainter, QTextDocument
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
from terminal.widgets.chart_layers import (
    PRICE_LINE_KINDS,
    BandLayer,
    Forecast,
    ForecastLayer,
    HistogramLayer,
    IndicatorCache,
    IndicatorSettings,
    LineLayer,
    MarkerLayer,
    PriceLine,
    TradeMarker,
    indicator_specs,
)

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
    sma: str = "#f7a600"
    ema: str = "#2962ff"
    bollinger: str = "#7e57c2"
    rsi: str = "#ab47bc"
    macd: str = "#2962ff"
    macd_signal: str = "#ff6d00"
    forecast_up: str = "#4dd0e1"
    forecast_down: str = "#ff8a65"
    forecast_band: str = "#4dd0e1"
    order_buy: str = "#26a69a"
    order_sell: str = "#ef5350"
    take_profit: str = "#26a69a"
    stop_loss: str = "#ef5350"
    trailing_stop: str = "#f7a600"
    entry: str = "#9598a1"


class _Level:
    """OHLCV of groups of ``factor`` consecutive bars; groups before ``valid`` are current."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.valid = 0
        self.columns: dict[str, FloatArray] = {name: np.empty(0) for name in _FIELDS}


class _Bars:
    """The chart's candles as columns with spare capacity, so live appends do not copy history.

    A history handed over is used as it is, not copied (a million candles are 48 MB per copy);
    the first live update copies it into columns with spare room, so the caller's series is
    never written to.
    """

    def __init__(self) -> None:
        self.count = 0
        self._time: IntArray = np.empty(0, dtype=np.int64)
        self._columns: dict[str, FloatArray] = {name: np.empty(0) for name in _FIELDS}
        self._levels: dict[int, _Level] = {}
        self._borrowed = False

    @property
    def times(self) -> IntArray:
        return self._time[: self.count]

    def field(self, name: str) -> FloatArray:
        return self._columns[name][: self.count]

    def candle(self, index: int) -> Candle:
        values = (float(self._columns[name][index]) for name in _FIELDS)
        return Candle(int(self._time[index]), *values)

    def replace(self, series: CandleSeries) -> None:
        self._time = np.ascontiguousarray(series.open_time, dtype=np.int64)
        self._columns = {name: np.ascontiguousarray(getattr(series, name), dtype=np.float64)
                         for name in _FIELDS}
        self._borrowed = True
        self.count = len(series)
        self._levels.clear()

    def _own(self) -> None:
        """Copy borrowed columns into ones of our own, with room for live appends."""
        capacity = self.count + max(256, self.count // 8)

        def copied(array: npt.NDArray[_Scalar]) -> npt.NDArray[_Scalar]:
            mine = np.empty(capacity, dtype=array.dtype)
            mine[: self.count] = array[: self.count]
            return mine

        self._time = copied(self._time)
        self._columns = {name: copied(column) for name, column in self._columns.items()}
        self._borrowed = False

    def put(self, candle: Candle) -> bool:
        """Write ``candle`` over the last bar when it has the same open time, else after it.

        Returns True when the candle was appended.
        """
        if self._borrowed:
            self._own()
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
    bigger = np.empty(len(array) + max(256, len(array) // 8), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


def _with_alpha(color: str, alpha: int) -> QColor:
    result = QColor(color)
    result.setAlpha(alpha)
    return result


def _blended(color: str, background: str, opacity: float) -> QColor:
    """``color`` at ``opacity`` over ``background``, as one opaque colour.

    Bars are filled with it instead of a translucent colour: blending every pixel makes
    filling rectangles about twenty times slower, and the bars only ever cover the background.
    """
    top, bottom = QColor(color), QColor(background)
    return QColor.fromRgbF(*(opacity * a + (1 - opacity) * b for a, b in (
        (top.redF(), bottom.redF()), (top.greenF(), bottom.greenF()),
        (top.blueF(), bottom.blueF()))))


def decimation_factor(px_per_bar: float) -> int:
    """Bars merged into one drawn bar at this zoom: a power of two, 1 when bars are wide."""
    if px_per_bar >= MIN_PX_PER_DRAWN_BAR:
        return 1
    return 1 << math.ceil(math.log2(MIN_PX_PER_DRAWN_BAR / px_per_bar))


def _rects(left: FloatArray, top: FloatArray, right: FloatArray,
           bottom: FloatArray) -> list[QRect]:
    # drawRects() of a list is two orders of magnitude faster than filling one path of
    # rectangles, which goes through the general polygon rasteriser; integer rectangles (the
    # edges are whole device pixels anyway) fill twice as fast again as QRectF ones.
    lefts, tops = left.astype(np.int64), top.astype(np.int64)
    widths, heights = right.astype(np.int64) - lefts, bottom.astype(np.int64) - tops
    return [QRect(x, y, w, h) for x, y, w, h in
            zip(lefts.tolist(), tops.tolist(), widths.tolist(), heights.tolist(), strict=True)]


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


class _IndicatorAxis(pg.AxisItem):
    """Right-hand axis of an indicator pane (RSI, MACD): a few plain numbers."""

    def __init__(self, chart: CandleChart, levels: tuple[float, ...] = ()) -> None:
        super().__init__("right")
        self._chart = chart
        self._levels = levels
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal: float, maxVal: float,
                   size: float) -> list[tuple[float, list[float]]]:
        if maxVal <= minVal or size <= 0 or not self._chart.bar_count:
            return []
        if self._levels:  # an oscillator's own levels (RSI: 30, 50, 70)
            return [(1.0, [level for level in self._levels if minVal <= level <= maxVal])]
        step = nice_step((maxVal - minVal) * _VOLUME_LABEL_SPACING_PX / size)
        first = math.ceil(minVal / step)
        return [(step, [i * step for i in range(first, math.floor(maxVal / step) + 1)])]

    def tickStrings(self, values: list[float], scale: float,
                    spacing: float) -> list[str]:
        return [format_indicator(value) for value in values]

    def refresh(self) -> None:
        self.picture = None
        self.update()


def format_indicator(value: float) -> str:
    """An indicator value in about four significant figures."""
    if not math.isfinite(value):
        return "—"
    return f"{value:.4g}" if abs(value) < 1e4 else format_volume(value)


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

    def attach(self, axis: pg.AxisItem) -> None:
        """Move the tag to ``axis`` (the time axis moves to the lowest visible pane)."""
        self.prepareGeometryChange()
        self._axis = axis
        self.setParentItem(axis)
        self.hide()

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
        self._grid_axis = _TimeAxis(self._bars, show_values=False)
        self._time_axis = _TimeAxis(self._bars, show_values=True)
        self._price_plot = pg.PlotItem(
            axisItems={"right": self._price_axis, "bottom": self._grid_axis})
        self._volume_plot = pg.PlotItem(
            axisItems={"right": self._volume_axis, "bottom": self._time_axis})
        self._rsi_axis = _IndicatorAxis(self, levels=(30.0, 50.0, 70.0))
        self._macd_axis = _IndicatorAxis(self)
        self._rsi_plot = pg.PlotItem(axisItems={
            "right": self._rsi_axis, "bottom": _TimeAxis(self._bars, show_values=False)})
        self._macd_plot = pg.PlotItem(axisItems={
            "right": self._macd_axis, "bottom": _TimeAxis(self._bars, show_values=False)})
        self._plots = (self._price_plot, self._volume_plot, self._rsi_plot, self._macd_plot)
        for plot in self._plots:
            self._setup_plot(plot)
            if plot is not self._price_plot:
                plot.setXLink(self._price_plot)
            plot.getAxis("right").setWidth(AXIS_WIDTH_PX)
        self._rsi_plot.vb.setYRange(0.0, 100.0, padding=0)

        self._candles = _BarsItem(self._bars, volume=False)
        self._volumes = _BarsItem(self._bars, volume=True)
        self._price_plot.addItem(self._candles)
        self._volume_plot.addItem(self._volumes)
        self._last_line = pg.InfiniteLine(angle=0, movable=False)
        self._last_line.setZValue(5)
        self._last_line.hide()
        self._price_plot.addItem(self._last_line, ignoreBounds=True)
        self._indicator_settings = IndicatorSettings()
        self._indicators = IndicatorCache(lambda: self._bars.field("close"))
        self._build_indicator_layers()
        self._markers = MarkerLayer(self._bar_indices)
        self._price_plot.addItem(self._markers, ignoreBounds=True)
        self._forecast = ForecastLayer(
            lambda: self._bars.count - 1,
            lambda: int(self._bars.times[-1]) if self._bars.count else None,
            lambda: float(self._bars.field("close")[-1]) if self._bars.count else None,
            lambda: self._timeframe.ms)
        self._price_plot.addItem(self._forecast, ignoreBounds=True)
        self._order_lines: list[PriceLine] = []
        self._protection_lines: list[PriceLine] = []
        self._line_items: list[tuple[PriceLine, pg.InfiniteLine, _AxisTag]] = []
        self._cross_x: list[pg.InfiniteLine] = []
        self._cross_y: dict[pg.PlotItem, pg.InfiniteLine] = {}
        for plot in self._plots:
            vertical = pg.InfiniteLine(angle=90, movable=False)
            horizontal = pg.InfiniteLine(angle=0, movable=False)
            for line in (vertical, horizontal):
                line.setZValue(20)
                line.hide()
                plot.addItem(line, ignoreBounds=True)
            self._cross_x.append(vertical)
            self._cross_y[plot] = horizontal
        self._rsi_levels = [pg.InfiniteLine(pos=level, angle=0, movable=False)
                            for level in (30.0, 70.0)]
        for line in self._rsi_levels:
            self._rsi_plot.addItem(line, ignoreBounds=True)
        self._macd_zero = pg.InfiniteLine(pos=0.0, angle=0, movable=False)
        self._macd_plot.addItem(self._macd_zero, ignoreBounds=True)
        self._last_tag = _AxisTag(self._price_axis, self._font)
        self._price_tag = _AxisTag(self._price_axis, self._font)
        self._price_tag.setZValue(11)
        self._volume_tag = _AxisTag(self._volume_axis, self._font)
        self._rsi_tag = _AxisTag(self._rsi_axis, self._font)
        self._macd_tag = _AxisTag(self._macd_axis, self._font)
        self._time_tag = _AxisTag(self._time_axis, self._font)
        self._value_tags: dict[pg.PlotItem, tuple[pg.AxisItem, _AxisTag]] = {
            self._price_plot: (self._price_axis, self._price_tag),
            self._volume_plot: (self._volume_axis, self._volume_tag),
            self._rsi_plot: (self._rsi_axis, self._rsi_tag),
            self._macd_plot: (self._macd_axis, self._macd_tag),
        }

        watermark_font = QFont(self.font())
        watermark_font.setPixelSize(44)
        watermark_font.setBold(True)
        self._watermark = _CenteredText(self._price_plot.vb, watermark_font, QColor(), z=-100)
        placeholder_font = QFont(self.font())
        placeholder_font.setPixelSize(15)
        self._placeholder = _CenteredText(self._price_plot.vb, placeholder_font, QColor(), z=30)
        self._placeholder.set_text("No data")

        self._legend = QLabel(self._graphics)
        self._legend.setTextFormat(Qt.TextFormat.RichText)
        self._legend.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._legend.setStyleSheet("background: transparent; font-size: 12px;")
        self._legend.move(10, 6)
        self._pane_legends: dict[pg.PlotItem, QLabel] = {}
        for plot in (self._rsi_plot, self._macd_plot):
            label = QLabel(self._graphics)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            label.setStyleSheet("background: transparent; font-size: 11px;")
            self._pane_legends[plot] = label

        self._arrange_panes()
        self._apply_colors()
        self._price_plot.vb.sigXRangeChanged.connect(self._on_x_range_changed)
        self._price_plot.vb.sigYRangeChanged.connect(self._on_y_range_changed)
        for plot in self._plots:
            if plot is not self._price_plot:
                plot.vb.sigYRangeChanged.connect(self._follow_view_change)
            plot.vb.sigResized.connect(self._on_resized)
        self._graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._update_limits()
        self.scroll_to_latest()
        self._refresh_overlays()

    def _build_indicator_layers(self) -> None:
        count = lambda: self._bars.count  # noqa: E731

        def line_of(name: str, position: int) -> Callable[[int, int], FloatArray | None]:
            def source(first: int, last: int) -> FloatArray | None:
                lines = self._indicators.lines(name, first, last)
                return None if lines is None else lines[position]
            return source

        def band(first: int, last: int) -> tuple[FloatArray, FloatArray] | None:
            lines = self._indicators.lines("bollinger", first, last)
            return None if lines is None else (lines[0], lines[2])

        factor = decimation_factor
        self._bollinger_band = BandLayer(band, count, factor, QColor())
        self._overlay_lines: dict[str, LineLayer] = {
            "sma": LineLayer(line_of("sma", 0), count, factor, QColor()),
            "ema": LineLayer(line_of("ema", 0), count, factor, QColor()),
            "bollinger_lower": LineLayer(line_of("bollinger", 0), count, factor, QColor(),
                                         width=1.0),
            "bollinger_middle": LineLayer(line_of("bollinger", 1), count, factor, QColor(),
                                          width=1.0, dashed=True),
            "bollinger_upper": LineLayer(line_of("bollinger", 2), count, factor, QColor(),
                                         width=1.0),
        }
        self._price_plot.addItem(self._bollinger_band, ignoreBounds=True)
        for layer in self._overlay_lines.values():
            self._price_plot.addItem(layer, ignoreBounds=True)
        self._rsi_line = LineLayer(line_of("rsi", 0), count, factor, QColor())
        self._rsi_plot.addItem(self._rsi_line, ignoreBounds=True)
        self._macd_histogram = HistogramLayer(line_of("macd", 2), count, factor)
        self._macd_line = LineLayer(line_of("macd", 0), count, factor, QColor())
        self._macd_signal = LineLayer(line_of("macd", 1), count, factor, QColor())
        for item in (self._macd_histogram, self._macd_line, self._macd_signal):
            self._macd_plot.addItem(item, ignoreBounds=True)
        self._indicators.configure(indicator_specs(self._indicator_settings))

    def _visible_plots(self) -> list[pg.PlotItem]:
        plots = [self._price_plot, self._volume_plot]
        if self._indicator_settings.rsi:
            plots.append(self._rsi_plot)
        if self._indicator_settings.macd:
            plots.append(self._macd_plot)
        return plots

    def _arrange_panes(self) -> None:
        """Stack the visible panes; the lowest one carries the time labels."""
        layout = self._graphics.ci
        for plot in self._plots:
            if plot in layout.items:
                layout.removeItem(plot)
        visible = self._visible_plots()
        stretch = {self._price_plot: 8, self._volume_plot: 2}
        for row in range(len(self._plots)):
            layout.layout.setRowStretchFactor(row, 0)
        for row, plot in enumerate(visible):
            layout.addItem(plot, row=row, col=0)
            layout.layout.setRowStretchFactor(row, stretch.get(plot, 3))
        for plot in self._plots:
            plot.setVisible(plot in visible)
            # An axis sizes itself to zero while hidden; shown again, it needs its width back.
            plot.getAxis("right").setWidth(AXIS_WIDTH_PX)
            axis = plot.getAxis("bottom")
            bottom = plot is visible[-1]
            axis.setStyle(showValues=bottom, tickLength=0)
            axis.setHeight(26 if bottom else 1)
            if isinstance(axis, _TimeAxis):
                axis.timeframe = self._timeframe
                axis.refresh()
            value_axis = plot.getAxis("right")
            if isinstance(value_axis, _IndicatorAxis):
                value_axis.refresh()
        time_axis = visible[-1].getAxis("bottom")
        assert isinstance(time_axis, _TimeAxis)
        self._time_axis = time_axis
        self._time_tag.attach(time_axis)
        for plot, label in self._pane_legends.items():
            label.setVisible(plot in visible)

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
            axis.setStyle(tickLength=0, tickAlpha=1.0, tickFont=self._font,
                          tickTextOffset=8, autoExpandTextSpace=False)
            # Axes draw the grid lines: beneath the view box, so they never cross a candle.
            axis.setZValue(-200)

    def set_style(self, style: ChartStyle) -> None:
        """Recolour everything (the application's theme changed)."""
        self._style = style
        self._apply_colors()
        self._refresh_overlays()

    def _apply_colors(self) -> None:
        style = self._style
        self._graphics.setBackground(style.background)
        for plot in self._plots:
            for name in ("right", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(style.border)
                axis.setTextPen(style.text_muted)
                axis.setTickPen(style.grid)
        up, down = QColor(style.up), QColor(style.down)
        self._candles.set_colors(up, down)
        self._volumes.set_colors(_blended(style.up, style.background, style.volume_alpha),
                                 _blended(style.down, style.background, style.volume_alpha))
        crosshair_pen = pg.mkPen(style.crosshair, width=1, style=Qt.PenStyle.DashLine)
        for line in (*self._cross_x, *self._cross_y.values()):
            line.setPen(crosshair_pen)
        level_pen = pg.mkPen(style.text_muted, width=1, style=Qt.PenStyle.DotLine)
        for line in (*self._rsi_levels, self._macd_zero):
            line.setPen(level_pen)
        self._overlay_lines["sma"].set_color(QColor(style.sma))
        self._overlay_lines["ema"].set_color(QColor(style.ema))
        for name in ("bollinger_lower", "bollinger_middle", "bollinger_upper"):
            self._overlay_lines[name].set_color(QColor(style.bollinger))
        self._bollinger_band.set_color(_with_alpha(style.bollinger, 26))
        self._rsi_line.set_color(QColor(style.rsi))
        self._macd_line.set_color(QColor(style.macd))
        self._macd_signal.set_color(QColor(style.macd_signal))
        self._macd_histogram.set_colors(_blended(style.up, style.background, 0.6),
                                        _blended(style.down, style.background, 0.6))
        self._markers.set_colors(up, down)
        self._forecast.set_colors(QColor(style.forecast_up), QColor(style.forecast_down),
                                  _with_alpha(style.forecast_band, 40))
        self._watermark.setBrush(_with_alpha(style.text, 16))
        self._placeholder.setBrush(QColor(style.text_muted))
        self._rebuild_price_lines()

    # -- data ---------------------------------------------------------------------------------

    def set_history(self, series: CandleSeries) -> None:
        """Show ``series``, replacing everything, and scroll to its newest bar."""
        self._timeframe = series.timeframe
        for plot in self._plots:
            axis = plot.getAxis("bottom")
            if isinstance(axis, _TimeAxis):
                axis.timeframe = series.timeframe
        self._bars.replace(series)
        self._indicators.invalidate()
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
        for layer in self._data_layers():
            layer.update()
        if appended:
            self._markers.bars_changed()
            self._update_limits()
            for plot in self._plots:
                for name in ("bottom", "right"):
                    axis = plot.getAxis(name)
                    if isinstance(axis, _TimeAxis | _IndicatorAxis):
                        axis.refresh()

    def _data_layers(self) -> list[pg.GraphicsObject]:
        return [self._bollinger_band, *self._overlay_lines.values(), self._rsi_line,
                self._macd_histogram, self._macd_line, self._macd_signal, self._forecast]

    def _bar_indices(self, times: IntArray) -> IntArray:
        """The bar each time falls in (times before the first bar map to -1)."""
        found = np.searchsorted(self._bars.times, times, side="right") - 1
        return found.astype(np.int64)

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

    # -- indicators, markers, lines, forecast -------------------------------------------------

    @property
    def indicator_settings(self) -> IndicatorSettings:
        return self._indicator_settings

    def set_indicators(self, settings: IndicatorSettings) -> None:
        """Show the overlays (SMA, EMA, Bollinger) and panes (RSI, MACD) ``settings`` switch on.

        Indicators are computed from the closes around the visible bars plus their warm-up,
        so the cost follows the view, not the history.
        """
        panes_changed = (settings.rsi, settings.macd) != (self._indicator_settings.rsi,
                                                            self._indicator_settings.macd)
        self._indicator_settings = settings
        self._indicators.configure(indicator_specs(settings))
        visible = {"sma": settings.sma, "ema": settings.ema,
                   "bollinger_lower": settings.bollinger, "bollinger_middle": settings.bollinger,
                   "bollinger_upper": settings.bollinger}
        for name, layer in self._overlay_lines.items():
            layer.setVisible(visible[name])
            layer.update()
        self._bollinger_band.setVisible(settings.bollinger)
        for layer in self._data_layers():
            layer.update()
        if panes_changed:
            self._arrange_panes()
            self._place_pane_legends()
        self._autorange_y()
        self._update_legend()

    def indicator_values(self, index: int) -> dict[str, float]:
        """The values of every shown indicator at bar ``index`` (NaN while warming up)."""
        names = {"sma": ("sma",), "ema": ("ema",),
                 "bollinger": ("bollinger_lower", "bollinger_middle", "bollinger_upper"),
                 "rsi": ("rsi",), "macd": ("macd", "macd_signal", "macd_histogram")}
        values: dict[str, float] = {}
        for indicator, keys in names.items():
            lines = self._indicators.lines(indicator, index, index + 1)
            if lines is None or not len(lines[0]):
                continue
            for key, line in zip(keys, lines, strict=False):
                values[key] = float(line[0])
        return values

    def set_trades(self, markers: Sequence[TradeMarker]) -> None:
        """Mark executions: buy arrows point up at their price, sell arrows down."""
        self._markers.set_markers(markers)

    @property
    def trade_marker_count(self) -> int:
        return self._markers.count

    def visible_trade_markers(self) -> int:
        """Markers drawn by the latest paint (only those in view are drawn)."""
        return self._markers.drawn_count

    def set_order_lines(self, lines: Sequence[PriceLine]) -> None:
        """Open orders as horizontal lines with a tag on the price axis (replaces the last set)."""
        self._order_lines = list(lines)
        self._rebuild_price_lines()

    def set_price_lines(self, lines: Sequence[PriceLine]) -> None:
        """Take-profit, stop-loss, trailing-stop and entry levels (replaces the last set)."""
        self._protection_lines = list(lines)
        self._rebuild_price_lines()

    def price_lines(self) -> list[PriceLine]:
        """Every horizontal line shown: open orders first, then protection levels."""
        return [line for line, _, _ in self._line_items]

    def _line_color(self, kind: str) -> QColor:
        return QColor({"buy": self._style.order_buy, "sell": self._style.order_sell,
                       "take_profit": self._style.take_profit,
                       "stop_loss": self._style.stop_loss,
                       "trailing_stop": self._style.trailing_stop,
                       "entry": self._style.entry}[kind])

    def _rebuild_price_lines(self) -> None:
        for _, item, tag in self._line_items:
            self._price_plot.removeItem(item)
            tag.setParentItem(None)
            if tag.scene() is not None:
                tag.scene().removeItem(tag)
        self._line_items = []
        for line in (*self._order_lines, *self._protection_lines):
            color = self._line_color(line.kind)
            style = Qt.PenStyle.DashLine if PRICE_LINE_KINDS[line.kind] else Qt.PenStyle.SolidLine
            item = pg.InfiniteLine(
                pos=line.price, angle=0, movable=False, pen=pg.mkPen(color, width=1, style=style),
                label=line.label, labelOpts={"position": 0.02, "color": color, "anchors":
                                             [(0, 1), (0, 1)], "fill": None})
            item.setZValue(7)
            self._price_plot.addItem(item, ignoreBounds=True)
            self._line_items.append((line, item, _AxisTag(self._price_axis, self._font)))
        self._place_tags()

    def set_forecast(self, forecast: Forecast | None) -> None:
        """Show the predicted path after the last candle (None removes it).

        Steps at or before the newest candle are not drawn, so as candles arrive the rest of
        the path stays attached to the live end until the next forecast replaces it.
        """
        following = self.is_following()
        self._forecast.set_forecast(forecast)
        self._update_limits()
        if following and forecast is not None:
            self.scroll_to_latest()
        self._autorange_y()

    @property
    def forecast(self) -> Forecast | None:
        return self._forecast.forecast

    def forecast_steps_ahead(self) -> int:
        """Steps of the forecast still ahead of the newest candle."""
        return len(self._forecast.pending()[0])

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

    def _right_margin(self) -> int:
        return max(RIGHT_MARGIN_BARS, self.forecast_steps_ahead() + 4)

    def scroll_to_latest(self) -> None:
        """Show the newest bars at the default zoom, with a little room on the right
        (room for the forecast too, when there is one)."""
        right = self._bars.count - 0.5 + self._right_margin()
        # A short history starts at the left edge instead of floating in empty space.
        width = max(min(DEFAULT_VISIBLE_BARS, right + 1.0), MIN_VISIBLE_BARS)
        self._price_plot.vb.setXRange(right - width, right, padding=0)
        self._autorange_y()

    def set_visible_range(self, x_min: float, x_max: float) -> None:
        """Show the bars from index ``x_min`` to ``x_max`` (fractions allowed)."""
        self._price_plot.vb.setXRange(x_min, x_max, padding=0)

    def scroll_to_time(self, time_ms: int) -> None:
        """Centre the view, at its current zoom, on the bar holding ``time_ms``."""
        if not self._bars.count:
            return
        index = int(self._bar_indices(np.array([time_ms], dtype=np.int64))[0])
        x_min, x_max = self.visible_range()
        half = (x_max - x_min) / 2
        self._price_plot.vb.setXRange(index - half, index + half, padding=0)

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
            xMin=-DEFAULT_VISIBLE_BARS, xMax=count + DEFAULT_VISIBLE_BARS + self._right_margin(),
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
        forecast = self._forecast.price_range()
        if forecast is not None and x_max >= self._bars.count:
            low, high = min(low, forecast[0]), max(high, forecast[1])
        pad = max(high - low, abs(high) * 1e-4) * _PRICE_PADDING
        self._price_plot.vb.setYRange(low - pad, high + pad, padding=0)
        volume = float(data["volume"][first:last].max())
        self._volume_plot.vb.setYRange(0.0, volume * 1.1 if volume > 0 else 1.0, padding=0)
        if self._indicator_settings.macd:
            self._autorange_macd(first * factor, min(self._bars.count, last * factor))

    def _autorange_macd(self, first: int, last: int) -> None:
        lines = self._indicators.lines("macd", first, last)
        if lines is None:
            return
        values = np.concatenate(lines)
        values = values[np.isfinite(values)]
        if not len(values):
            return
        low, high = float(values.min()), float(values.max())
        pad = max(high - low, 1e-12) * 0.1
        self._macd_plot.vb.setYRange(low - pad, high + pad, padding=0)

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
        self._place_pane_legends()

    def _place_pane_legends(self) -> None:
        for plot, label in self._pane_legends.items():
            if plot.isVisible():
                top_left = self._graphics.mapFromScene(plot.vb.sceneBoundingRect().topLeft())
                label.move(top_left.x() + 10, top_left.y() + 4)

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
        for plot in self._visible_plots():
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
        if self._crosshair_index is not None and self._crosshair_index >= self._bars.count:
            step = self._forecast_readout(self._crosshair_index)
            if step is not None:
                plain.append(step[0])
                rich.append(step[1])
                return " ".join(plain), "&nbsp;&nbsp;&nbsp;".join(rich)
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
        overlays = self._overlay_readout(index)
        text = " ".join(plain) + "".join(f" {name} {value}" for name, value, _ in overlays)
        line = "&nbsp;&nbsp;&nbsp;".join(rich)
        if overlays:
            line += "<br>" + "&nbsp;&nbsp;&nbsp;".join(
                f'<span style="color:{muted}">{html.escape(name)}</span>&nbsp;'
                f'<span style="color:{ink}">{value}</span>' for name, value, ink in overlays)
        return text, line

    def _overlay_readout(self, index: int) -> list[tuple[str, str, str]]:
        """(name, value, colour) of each price-pane overlay at bar ``index``."""
        settings, style = self._indicator_settings, self._style
        values = self.indicator_values(index)
        shown: list[tuple[str, str, str]] = []
        if "sma" in values:
            shown.append((f"SMA {settings.sma_period}", self._price_or_dash(values["sma"]),
                          style.sma))
        if "ema" in values:
            shown.append((f"EMA {settings.ema_period}", self._price_or_dash(values["ema"]),
                          style.ema))
        if "bollinger_middle" in values:
            band = " / ".join(self._price_or_dash(values[f"bollinger_{side}"])
                              for side in ("upper", "middle", "lower"))
            shown.append((f"BB {settings.bollinger_period} {settings.bollinger_width:g}", band,
                          style.bollinger))
        return shown

    def _price_or_dash(self, value: float) -> str:
        return self.format_price(value) if math.isfinite(value) else "—"

    def _forecast_readout(self, index: int) -> tuple[str, str] | None:
        indices, expected, low, high = self._forecast.pending()
        at = np.flatnonzero(indices == index)
        if not len(at):
            return None
        i = int(at[0])
        step = index - (self._bars.count - 1)
        time_ms = int(self._time_axis.times_at(np.array([index], dtype=np.int64))[0])
        moment = crosshair_time_label(time_ms, self._timeframe)
        forecast = self._forecast.forecast
        name = f"Forecast{' · ' + forecast.label if forecast and forecast.label else ''}"
        parts = [(f"+{step}", moment), ("E[C]", self.format_price(float(expected[i]))),
                 ("10%", self.format_price(float(low[i]))),
                 ("90%", self.format_price(float(high[i])))]
        plain = f"{name} " + " ".join(f"{k} {v}" for k, v in parts)
        ink, muted = self._style.forecast_up, self._style.text_muted
        rich = (f'<span style="color:{ink}">{html.escape(name)}</span>&nbsp;&nbsp;&nbsp;'
                + "&nbsp;&nbsp;&nbsp;".join(f'<span style="color:{muted}">{k}</span>&nbsp;'
                                            f'<span style="color:{ink}">{v}</span>'
                                            for k, v in parts))
        return plain, rich

    def _pane_readouts(self, index: int) -> dict[pg.PlotItem, str]:
        settings, style = self._indicator_settings, self._style
        values = self.indicator_values(index)
        muted = style.text_muted
        texts: dict[pg.PlotItem, str] = {}
        if "rsi" in values:
            texts[self._rsi_plot] = (
                f'<span style="color:{muted}">RSI {settings.rsi_period}</span>&nbsp;'
                f'<span style="color:{style.rsi}">{format_indicator(values["rsi"])}</span>')
        if "macd" in values:
            name = f"MACD {settings.macd_fast} {settings.macd_slow} {settings.macd_signal}"
            texts[self._macd_plot] = (
                f'<span style="color:{muted}">{name}</span>&nbsp;'
                f'<span style="color:{style.macd}">{format_indicator(values["macd"])}</span>'
                f'&nbsp;<span style="color:{style.macd_signal}">'
                f'{format_indicator(values["macd_signal"])}</span>&nbsp;'
                f'<span style="color:{muted}">{format_indicator(values["macd_histogram"])}'
                f"</span>")
        return texts

    def pane_readout_text(self, pane: str) -> str:
        """The readout of the ``rsi`` or ``macd`` pane as plain text (empty when hidden)."""
        plot = {"rsi": self._rsi_plot, "macd": self._macd_plot}[pane]
        label = self._pane_legends[plot]
        if not label.isVisible():
            return ""
        document = QTextDocument()
        document.setHtml(label.text())
        return document.toPlainText().replace("\xa0", " ")

    def _update_legend(self) -> None:
        self._legend.setText(self._readout()[1])
        self._legend.adjustSize()
        index = self._legend_bar()
        texts = {} if index is None else self._pane_readouts(index)
        for plot, label in self._pane_legends.items():
            label.setText(texts.get(plot, ""))
            label.adjustSize()

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
        for line, _, tag in self._line_items:
            position = self._axis_position(self._price_plot, self._price_axis, line.price)
            if position is None:
                tag.hide()
            else:
                tag.show_at(position, self.format_price(line.price), self._line_color(line.kind),
                            QColor("#ffffff"))
        self._price_axis.refresh()

    def _place_cross_tags(self, plot: pg.PlotItem | None, value: float) -> None:
        fill, ink = QColor(self._style.tag_background), QColor(self._style.text)
        index = self._crosshair_index
        if index is None:
            for _, tag in self._value_tags.values():
                tag.hide()
            self._time_tag.hide()
            return
        view = self._volume_plot.vb
        x = self._time_axis.mapFromItem(view, view.mapFromView(QPointF(index, 0.0))).x()
        time_ms = int(self._time_axis.times_at(np.array([index], dtype=np.int64))[0])
        self._time_tag.show_at(x, crosshair_time_label(time_ms, self._timeframe), fill, ink)
        for owner, (axis, tag) in self._value_tags.items():
            position = self._axis_position(owner, axis, value) if owner is plot else None
            if position is None:
                tag.hide()
                continue
            if owner is self._price_plot:
                text = self.format_price(value)
            elif owner is self._volume_plot:
                text = format_volume(value)
            else:
                text = format_indicator(value)
            tag.show_at(position, text, fill, ink)

    @staticmethod
    def _axis_position(plot: pg.PlotItem, axis: pg.AxisItem, value: float) -> float | None:
        """Where ``value`` lies on ``axis`` (its local y), or None when it is out of view."""
        view = plot.vb
        y = axis.mapFromItem(view, view.mapFromView(QPointF(0.0, value))).y()
        return y if 0.0 <= y <= axis.height() else None

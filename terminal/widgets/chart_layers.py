"""What the candle chart draws over and under its candles: indicator lines, trade markers,
order and protection lines, and forecast candles.

Each layer paints only what lies inside the view, in device pixels, from numpy arrays; none
keeps a graphics item per bar or per point, so their cost follows the view's width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from terminal.core.errors import InvalidArgument
from terminal.core.indicators import bollinger, ema, macd, rsi, sma, warmup_bars

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Below this many bars in view, indicators are recomputed from a window around the view;
#: the window reaches this far past each side so a pan reuses it.
_WINDOW_PAD_BARS = 2048
#: Longer ranges are computed in chunks of this many bars (see :func:`_compute`).
_CHUNK_BARS = 65_536


@dataclass(frozen=True, slots=True)
class IndicatorSettings:
    """Which indicators the chart shows and their periods."""

    sma: bool = True
    sma_period: int = 20
    ema: bool = True
    ema_period: int = 50
    bollinger: bool = False
    bollinger_period: int = 20
    bollinger_width: float = 2.0
    rsi: bool = False
    rsi_period: int = 14
    macd: bool = False
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9

    def __post_init__(self) -> None:
        for name in ("sma_period", "ema_period", "bollinger_period", "rsi_period", "macd_fast",
                     "macd_slow", "macd_signal"):
            value = getattr(self, name)
            if not 1 <= value <= 1000:
                raise InvalidArgument(f"{name.replace('_', ' ')} must be 1 to 1000 bars,"
                                      f" got {value}")
        if not 0 < self.bollinger_width <= 10:
            raise InvalidArgument(f"the Bollinger width must be above 0 and at most 10"
                                  f" deviations, got {self.bollinger_width:g}")
        if self.macd_fast >= self.macd_slow:
            raise InvalidArgument(f"the MACD's fast period ({self.macd_fast}) must be below its"
                                  f" slow period ({self.macd_slow})")


@dataclass(frozen=True, slots=True)
class _Spec:
    """One indicator: how to compute its lines from closes, and how far back it looks."""

    name: str
    compute: Callable[[FloatArray], tuple[FloatArray, ...]]
    warmup: int


def indicator_specs(settings: IndicatorSettings) -> dict[str, _Spec]:
    """The indicators ``settings`` switches on, by name (``sma``, ``ema``, ``bollinger``...)."""
    s = settings
    specs = {
        "sma": _Spec("sma", lambda c: (sma(c, s.sma_period),), warmup_bars("sma", s.sma_period)),
        "ema": _Spec("ema", lambda c: (ema(c, s.ema_period),), warmup_bars("ema", s.ema_period)),
        "bollinger": _Spec("bollinger", lambda c: bollinger(c, s.bollinger_period,
                                                            s.bollinger_width),
                           warmup_bars("sma", s.bollinger_period)),
        "rsi": _Spec("rsi", lambda c: (rsi(c, s.rsi_period),), warmup_bars("rsi", s.rsi_period)),
        "macd": _Spec("macd", lambda c: macd(c, s.macd_fast, s.macd_slow, s.macd_signal),
                      warmup_bars("ema", s.macd_slow + s.macd_signal)),
    }
    return {name: spec for name, spec in specs.items() if getattr(settings, name)}


@dataclass
class _Window:
    """Indicator lines for bars ``[start, end)``, computed when the chart had ``seen`` bars
    and the last of them closed at ``last_close``."""

    start: int
    end: int
    generation: int
    seen: int
    last_close: float
    lines: tuple[FloatArray, ...]


class IndicatorCache:
    """Indicator values for ranges of bars, computed over the range plus its warm-up.

    ``closes`` returns the chart's close column. :meth:`invalidate` is called when the history
    is replaced. Live updates only change the newest bar or append after it, and indicators
    are causal, so a cached window stays valid up to the bar before the newest one it saw and
    only its tail is recomputed.
    """

    def __init__(self, closes: Callable[[], FloatArray]) -> None:
        self._closes = closes
        self._specs: dict[str, _Spec] = {}
        self._windows: dict[str, _Window] = {}
        self._generation = 0

    def configure(self, specs: dict[str, _Spec]) -> None:
        self._specs = specs
        self._windows.clear()

    def invalidate(self) -> None:
        """The history was replaced: nothing cached is valid."""
        self._generation += 1
        self._windows.clear()

    def lines(self, name: str, first: int, last: int) -> tuple[FloatArray, ...] | None:
        """The lines of indicator ``name`` for bars ``[first, last)``; None when it is off."""
        spec = self._specs.get(name)
        if spec is None:
            return None
        closes = self._closes()
        count = len(closes)
        first, last = max(0, first), min(count, last)
        window = self._windows.get(name)
        if window is not None and window.generation == self._generation:
            if window.end == window.seen and count and (
                    count > window.seen or float(closes[-1]) != window.last_close):
                self._extend_tail(spec, window, closes)
            if window.start <= first and last <= window.end:
                return tuple(line[first - window.start: last - window.start]
                             for line in window.lines)
        pad = _WINDOW_PAD_BARS + (last - first)
        start, end = max(0, first - pad), min(count, last + pad)
        window = _Window(start, end, self._generation, count,
                         float(closes[-1]) if count else math.nan,
                         _compute(spec, closes, start, end))
        self._windows[name] = window
        return tuple(line[first - start: last - start] for line in window.lines)

    @staticmethod
    def _extend_tail(spec: _Spec, window: _Window, closes: FloatArray) -> None:
        count = len(closes)
        redo_from = max(window.start, window.seen - 1)
        fresh = _compute(spec, closes, redo_from, count)
        keep = redo_from - window.start
        window.lines = tuple(np.concatenate([old[:keep], new])
                             for old, new in zip(window.lines, fresh, strict=True))
        window.end = window.seen = count
        window.last_close = float(closes[-1])


def _compute(spec: _Spec, closes: FloatArray, start: int, end: int) -> tuple[FloatArray, ...]:
    """Lines for bars ``[start, end)``, from the closes since the warm-up before ``start``.

    A long range is computed in chunks, each with its own warm-up, into arrays of the range's
    length: the temporaries of one chunk are all that is ever held besides the result, so a
    zoomed-out view of a million bars does not need several times their memory.
    """
    if end - start > _CHUNK_BARS:
        result: tuple[FloatArray, ...] = ()
        for first in range(start, end, _CHUNK_BARS):
            last = min(end, first + _CHUNK_BARS)
            part = _compute(spec, closes, first, last)
            if not result:
                result = tuple(np.empty(end - start) for _ in part)
            for whole, piece in zip(result, part, strict=True):
                whole[first - start: last - start] = piece
        return result
    begin = max(0, start - spec.warmup)
    return tuple(line[start - begin:] for line in spec.compute(closes[begin:end]))


def view_slice(x_min: float, x_max: float, count: int, factor: int) -> tuple[int, int]:
    """The drawn groups ``[first, last)`` of ``factor`` bars that touch the view."""
    groups = -(-count // factor)
    first = max(0, math.floor(x_min / factor) - 1)
    last = min(groups, math.ceil(x_max / factor) + 1)
    return first, last


class _ViewLayer(pg.GraphicsObject):
    """A layer as large as the view, painting the visible bars of the chart in device pixels."""

    def boundingRect(self) -> QRectF:
        view = self.getViewBox()
        return QRectF() if view is None else QRectF(view.viewRect())

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()


@dataclass(frozen=True, slots=True)
class _Visible:
    """Where the visible bars of a series layer are: the sampled bars and their pixels."""

    indices: IntArray
    x: FloatArray
    px_per_group: float
    y_scale: float
    y_offset: float

    def y(self, values: FloatArray) -> FloatArray:
        return values * self.y_scale + self.y_offset


class _SeriesLayer(_ViewLayer):
    """A layer over per-bar values: ``source(first, last)`` gives bars ``[first, last)``.

    Zoomed out, it samples the last bar of each merged group, as the candles do.
    """

    def __init__(self, source: Callable[[int, int], Any], count: Callable[[], int],
                 factor: Callable[[float], int]) -> None:
        super().__init__()
        self._source = source
        self._count = count
        self._factor = factor

    def _visible(self, painter: QPainter) -> tuple[_Visible, Any] | None:
        """The visible bars and the source's values there, None when there is nothing."""
        view = self.getViewBox()
        count = self._count()
        transform = painter.transform()
        px_per_bar = transform.m11()
        if view is None or not count or px_per_bar <= 0:
            return None
        factor = self._factor(px_per_bar)
        first, last = view_slice(*view.viewRange()[0], count, factor)
        if last <= first:
            return None
        values = self._source(first * factor, min(count, last * factor))
        if values is None or not len(values) or not len(values[0] if isinstance(values, tuple)
                                                          else values):
            return None
        indices = np.minimum(np.arange(first, last) * factor + factor - 1, count - 1)
        offset = first * factor
        sampled = (tuple(line[indices - offset] for line in values)
                   if isinstance(values, tuple) else values[indices - offset])
        visible = _Visible(indices, indices * px_per_bar + transform.dx(), px_per_bar * factor,
                           transform.m22(), transform.dy())
        return visible, sampled


class LineLayer(_SeriesLayer):
    """One indicator line over the chart's bar-index x axis, drawn for the visible bars only."""

    def __init__(self, source: Callable[[int, int], FloatArray | None],
                 count: Callable[[], int], factor: Callable[[float], int],
                 color: QColor, *, width: float = 1.3, dashed: bool = False) -> None:
        super().__init__(source, count, factor)
        self._pen = QPen(color, width)
        self._pen.setCosmetic(True)
        if dashed:
            self._pen.setStyle(Qt.PenStyle.DashLine)
        self.setZValue(2)
        #: Points drawn by the latest paint (bounded by the view's width in pixels).
        self.drawn_points = 0

    def set_color(self, color: QColor) -> None:
        self._pen.setColor(color)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        self.drawn_points = 0
        found = self._visible(painter)
        if found is None:
            return
        visible, sampled = found
        path = pg.arrayToQPath(visible.x.astype(np.float64), visible.y(sampled),
                               connect="finite")
        painter.save()
        painter.resetTransform()
        # Antialiased strokes cost ten times more; when points are a pixel or two apart the
        # jagged edges cannot be seen anyway.
        dense = visible.px_per_group < 4.0
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, not dense)
        pen = self._pen
        if dense:
            pen = QPen(pen)
            pen.setWidthF(1.0)
        painter.setPen(pen)
        painter.drawPath(path)
        painter.restore()
        self.drawn_points = int(np.isfinite(sampled).sum())


class BandLayer(_SeriesLayer):
    """A shaded area between two lines (the Bollinger band), visible bars only."""

    def __init__(self, source: Callable[[int, int], tuple[FloatArray, FloatArray] | None],
                 count: Callable[[], int], factor: Callable[[float], int],
                 color: QColor) -> None:
        super().__init__(source, count, factor)
        self._brush = QBrush(color)
        self.setZValue(1)

    def set_color(self, color: QColor) -> None:
        self._brush = QBrush(color)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        found = self._visible(painter)
        if found is None:
            return
        visible, (low, high) = found
        finite = np.isfinite(low) & np.isfinite(high)
        if not finite.any():
            return
        polygon = _band_polygon(visible.x[finite], visible.y(low[finite]),
                                visible.y(high[finite]))
        painter.save()
        painter.resetTransform()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._brush)
        painter.drawPolygon(polygon)
        painter.restore()


def _band_polygon(x: FloatArray, low: FloatArray, high: FloatArray) -> QPolygonF:
    xs = np.concatenate([x, x[::-1]]).tolist()
    ys = np.concatenate([high, low[::-1]]).tolist()
    return QPolygonF([QPointF(a, b) for a, b in zip(xs, ys, strict=True)])


class HistogramLayer(_SeriesLayer):
    """Bars from zero (the MACD histogram), coloured by sign, visible bars only."""

    def __init__(self, source: Callable[[int, int], FloatArray | None],
                 count: Callable[[], int], factor: Callable[[float], int]) -> None:
        super().__init__(source, count, factor)
        self._colors = (QColor(), QColor())

    def set_colors(self, positive: QColor, negative: QColor) -> None:
        self._colors = (positive, negative)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        found = self._visible(painter)
        if found is None:
            return
        visible, sampled = found
        finite = np.isfinite(sampled)
        centers = np.floor(visible.x)
        body = max(1, int(visible.px_per_group * 0.6))
        base = round(visible.y_offset)
        tops = np.round(visible.y(sampled))
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(Qt.PenStyle.NoPen)
        for mask, color in ((finite & (sampled >= 0), self._colors[0]),
                            (finite & (sampled < 0), self._colors[1])):
            if not mask.any():
                continue
            painter.setBrush(color)
            left = (centers[mask] - body // 2).astype(np.int64)
            top = np.minimum(tops[mask], base).astype(np.int64)
            height = np.maximum(np.abs(tops[mask] - base), 1).astype(np.int64)
            painter.drawRects([QRect(a, b, body, h) for a, b, h in
                               zip(left.tolist(), top.tolist(), height.tolist(), strict=True)])
        painter.restore()


class Side(Enum):
    """Which way a trade or an order goes."""

    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class TradeMarker:
    """One execution to mark on the chart: an arrow at ``price`` in the bar holding ``time``."""

    time: int
    price: float
    side: Side
    label: str = ""


@dataclass(frozen=True, slots=True)
class PriceLine:
    """A horizontal line across the price pane with a tag on the price axis.

    ``kind`` picks the colour and dash: ``buy`` / ``sell`` (open orders), ``take_profit``,
    ``stop_loss``, ``trailing_stop``, ``entry``.
    """

    price: float
    label: str
    kind: str = "entry"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.price) and self.price > 0):
            raise InvalidArgument(f"a price line needs a positive price, got {self.price}")
        if self.kind not in PRICE_LINE_KINDS:
            raise InvalidArgument(f"unknown price line kind {self.kind!r}; one of"
                                  f" {', '.join(PRICE_LINE_KINDS)}")


#: Price-line kinds and whether they are drawn dashed.
PRICE_LINE_KINDS = {"buy": False, "sell": False, "take_profit": True, "stop_loss": True,
                    "trailing_stop": True, "entry": False}


@dataclass(frozen=True, slots=True)
class Forecast:
    """A predicted path of bars after ``first_time`` (the open time of the first predicted bar),
    one bar of the chart's timeframe per step: expected close and its 10% and 90% quantiles.
    """

    first_time: int
    expected: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    label: str = ""
    steps: int = field(init=False)

    def __post_init__(self) -> None:
        count = len(self.expected)
        if count == 0:
            raise InvalidArgument("a forecast needs at least one step")
        if len(self.low) != count or len(self.high) != count:
            raise InvalidArgument(f"a forecast's quantiles need one value per step: {count}"
                                  f" steps, {len(self.low)} low, {len(self.high)} high")
        for step, (low, mid, high) in enumerate(zip(self.low, self.expected, self.high,
                                                    strict=True), start=1):
            if not all(math.isfinite(v) and v > 0 for v in (low, mid, high)):
                raise InvalidArgument(f"forecast step {step} has a price that is not a positive"
                                      f" number")
            if not low <= mid <= high:
                raise InvalidArgument(f"forecast step {step}: the 10% quantile ({low:g}), the"
                                      f" expected close ({mid:g}) and the 90% quantile"
                                      f" ({high:g}) must be in that order")
        object.__setattr__(self, "steps", count)


class MarkerLayer(_ViewLayer):
    """Buy and sell arrows; only the markers inside the view are drawn.

    ``index_of(times)`` maps execution times to bar indices (the bar each time falls in).
    """

    def __init__(self, index_of: Callable[[IntArray], IntArray]) -> None:
        super().__init__()
        self._index_of = index_of
        self._times: IntArray = np.empty(0, dtype=np.int64)
        self._prices: FloatArray = np.empty(0)
        self._buy: npt.NDArray[np.bool_] = np.empty(0, dtype=bool)
        self._indices: IntArray | None = None
        self._colors = (QColor(), QColor())
        self.setZValue(8)
        #: Markers drawn by the latest paint.
        self.drawn_count = 0

    def set_markers(self, markers: Sequence[TradeMarker]) -> None:
        ordered = sorted(markers, key=lambda m: m.time)
        self._times = np.array([m.time for m in ordered], dtype=np.int64)
        self._prices = np.array([m.price for m in ordered], dtype=np.float64)
        self._buy = np.array([m.side is Side.BUY for m in ordered], dtype=bool)
        self.bars_changed()

    def bars_changed(self) -> None:
        self._indices = None
        self.update()

    @property
    def count(self) -> int:
        return len(self._times)

    def indices(self) -> IntArray:
        if self._indices is None:
            self._indices = self._index_of(self._times)
        return self._indices

    def set_colors(self, buy: QColor, sell: QColor) -> None:
        self._colors = (buy, sell)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        self.drawn_count = 0
        view = self.getViewBox()
        if view is None or not len(self._times):
            return
        transform = painter.transform()
        indices = self.indices()
        x_min, x_max = view.viewRange()[0]
        visible = (indices >= x_min - 1) & (indices <= x_max + 1) & (indices >= 0)
        if not visible.any():
            return
        xs = (indices[visible] * transform.m11() + transform.dx()).tolist()
        ys = (self._prices[visible] * transform.m22() + transform.dy()).tolist()
        buys = self._buy[visible].tolist()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        outline = QPen(QColor(0, 0, 0, 90), 1)
        painter.setPen(outline)
        for x, y, buy in zip(xs, ys, buys, strict=True):
            painter.setBrush(self._colors[0] if buy else self._colors[1])
            painter.drawPolygon(_arrow(x, y, up=buy))
        painter.restore()
        self.drawn_count = len(xs)


def _arrow(x: float, y: float, *, up: bool) -> QPolygonF:
    """An arrow whose tip touches the price: from below for buys, from above for sells."""
    sign = 1.0 if up else -1.0
    tip = y + 2 * sign
    points = [(0, 0), (7, 8), (3, 8), (3, 16), (-3, 16), (-3, 8), (-7, 8)]
    return QPolygonF([QPointF(x + dx, tip + sign * dy) for dx, dy in points])


class ForecastLayer(_ViewLayer):
    """Predicted bars drawn after the last candle: hollow, dashed candles over a shaded 10-90%
    band that starts at the last close.

    Steps whose time the chart already has real candles for are not drawn: the real bar
    replaced the prediction, and what is left stays attached to the live end.
    """

    def __init__(self, last_index: Callable[[], int], last_time: Callable[[], int | None],
                 last_close: Callable[[], float | None], bar_ms: Callable[[], int]) -> None:
        super().__init__()
        self._last_index = last_index
        self._last_time = last_time
        self._last_close = last_close
        self._bar_ms = bar_ms
        self._forecast: Forecast | None = None
        self._colors = (QColor(), QColor(), QColor())
        self.setZValue(6)

    @property
    def forecast(self) -> Forecast | None:
        return self._forecast

    def set_forecast(self, forecast: Forecast | None) -> None:
        self.prepareGeometryChange()
        self._forecast = forecast
        self.update()

    def set_colors(self, up: QColor, down: QColor, band: QColor) -> None:
        self._colors = (up, down, band)
        self.update()

    def pending(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """(bar index, expected, low, high) of the steps after the last candle."""
        empty = np.empty(0)
        forecast, last_time = self._forecast, self._last_time()
        if forecast is None or last_time is None:
            return empty, empty, empty, empty
        bar_ms = self._bar_ms()
        step_times = forecast.first_time + np.arange(forecast.steps) * bar_ms
        ahead = step_times > last_time
        offsets = (step_times[ahead] - last_time) // bar_ms
        index = self._last_index() + offsets.astype(np.float64)
        return (index, np.asarray(forecast.expected)[ahead], np.asarray(forecast.low)[ahead],
                np.asarray(forecast.high)[ahead])

    def price_range(self) -> tuple[float, float] | None:
        _, _, low, high = self.pending()
        return (float(low.min()), float(high.max())) if len(low) else None

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        index, expected, low, high = self.pending()
        last_close = self._last_close()
        if not len(index) or last_close is None:
            return
        transform = painter.transform()
        px_per_bar, dx = transform.m11(), transform.dx()
        if px_per_bar <= 0:
            return

        def to_y(values: FloatArray) -> list[float]:
            return (values * transform.m22() + transform.dy()).tolist()

        start = float(self._last_index())
        band_x = (np.concatenate([[start], index]) * px_per_bar + dx)
        band_low = np.concatenate([[last_close], low])
        band_high = np.concatenate([[last_close], high])
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._colors[2])
        painter.drawPolygon(_band_polygon(band_x, np.array(to_y(band_low)),
                                          np.array(to_y(band_high))))
        edge = QColor(self._colors[2])
        edge.setAlpha(min(255, edge.alpha() * 3))
        edge_pen = QPen(edge, 1, Qt.PenStyle.DotLine)
        painter.setPen(edge_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for side in (band_low, band_high):
            painter.drawPath(pg.arrayToQPath(band_x, np.array(to_y(side))))
        opens = np.concatenate([[last_close], expected[:-1]])
        body = max(3.0, px_per_bar * 0.7)
        xs = (index * px_per_bar + dx).tolist()
        for x, y_open, y_close, rising in zip(xs, to_y(opens), to_y(expected),
                                              (expected >= opens).tolist(), strict=True):
            pen = QPen(self._colors[0] if rising else self._colors[1], 1.2,
                       Qt.PenStyle.DashLine)
            painter.setPen(pen)
            top, bottom = min(y_open, y_close), max(y_open, y_close)
            painter.drawRect(QRectF(x - body / 2, top, body, max(bottom - top, 1.0)))
        painter.restore()

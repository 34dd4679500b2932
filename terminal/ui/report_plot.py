"""A backtest report as a PNG: equity against buy-and-hold above, price with the trades below.

Drawn with QPainter on a QImage, offscreen, so it needs neither a window nor a plotting
library. The command line imports this module only when a plot is asked for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen, QPolygonF

from terminal.core.backtest import BacktestResult
from terminal.core.errors import InvalidArgument
from terminal.core.timefmt import format_ms
from terminal.ui.theme import ACCENT, BACKGROUND, BORDER, DOWN, TEXT, TEXT_MUTED, UP

FloatArray = npt.NDArray[np.float64]
DEFAULT_SIZE = (1400, 900)
_MARGIN_LEFT, _MARGIN_RIGHT = 90.0, 24.0
_TICKS = 5
_app: QGuiApplication | None = None


def render_report(result: BacktestResult, path: Path,
                  size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    """Draw ``result`` into a PNG at ``path`` and return the path."""
    width, height = size
    with png_canvas(path, size) as painter:
        _title(painter, result, width)
        top = 56.0
        split = top + (height - top - 40) * 0.6
        equity_box = QRectF(_MARGIN_LEFT, top, width - _MARGIN_LEFT - _MARGIN_RIGHT,
                            split - top - 24)
        price_box = QRectF(_MARGIN_LEFT, split + 8, equity_box.width(), height - split - 48)
        hold = result.buy_and_hold.final_equity
        _panel(painter, equity_box, [
            (result.equity, QColor(ACCENT), f"strategy {result.metrics.final_equity:,.0f}"),
            (result.buy_and_hold_equity, QColor(TEXT_MUTED), f"buy & hold {hold:,.0f}")],
            log=True)
        _panel(painter, price_box, [(result.close, QColor(TEXT), f"{result.symbol} close")],
               log=True, markers=_trade_markers(result))
        _time_axis(painter, price_box, result)
    return path


@contextmanager
def png_canvas(path: Path, size: tuple[int, int]) -> Iterator[QPainter]:
    """A painter on a blank image of ``size`` in the report colours; the image is written to
    ``path`` as PNG when the block ends without an error."""
    _ensure_application()
    image = QImage(size[0], size[1], QImage.Format.Format_ARGB32)
    image.fill(QColor(BACKGROUND))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(QFont("Sans", 9))
        yield painter
    finally:
        painter.end()
    if not image.save(str(path), "PNG"):
        raise InvalidArgument(f"cannot write the plot to {path}")


def _ensure_application() -> None:
    """QPainter needs a GUI application for fonts; make an offscreen one if there is none."""
    global _app
    if QGuiApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app = QGuiApplication([])


def _title(painter: QPainter, result: BacktestResult, width: int) -> None:
    params = " ".join(f"{k}={v:g}" for k, v in result.params.items() if v)
    metrics = result.metrics
    painter.setPen(QColor(TEXT))
    font = painter.font()
    font.setPointSize(12)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QPointF(_MARGIN_LEFT, 24), f"{result.strategy} {params} ·"
                     f" {result.symbol} {result.timeframe}")
    font.setPointSize(9)
    font.setBold(False)
    painter.setFont(font)
    painter.setPen(QColor(TEXT_MUTED))
    painter.drawText(QPointF(_MARGIN_LEFT, 44),
                     f"return {metrics.total_return * 100:,.1f} % (buy & hold"
                     f" {result.buy_and_hold.total_return * 100:,.1f} %) · max drawdown"
                     f" {metrics.max_drawdown * 100:.1f} % · {metrics.trades} trades ·"
                     f" fees {metrics.fees_paid:,.0f}")


Markers = list[tuple[float, float, bool]]


def _trade_markers(result: BacktestResult) -> Markers:
    """(bar position, price, is entry) for every fill of every trade."""
    marks: Markers = []
    times = result.times
    for trade in result.trades:
        entry = float(np.searchsorted(times, trade.entry_time))
        marks.append((entry, trade.entry_price, True))
        if trade.exit_reason != "end_of_test":
            marks.append((float(np.searchsorted(times, trade.exit_time)), trade.exit_price,
                          False))
    return marks


def _panel(painter: QPainter, box: QRectF, lines: list[tuple[FloatArray, QColor, str]], *,
           log: bool, markers: Markers | None = None) -> None:
    """Lines sharing one y axis, logarithmic when ``log`` and the values span more than 4x."""
    values = np.concatenate([v for v, _, _ in lines])
    values = values[np.isfinite(values) & (values > 0 if log else True)]
    if not len(values):
        return
    low, high = float(values.min()), float(values.max())
    log = log and high / low > 4
    scale: Callable[[float], float] = math.log10 if log else float
    bottom, top = scale(low), scale(high)
    pad = (top - bottom) * 0.05 or abs(top) * 0.05 or 1.0
    bottom, top = bottom - pad, top + pad
    count = len(lines[0][0])

    def to_y(value: float) -> float:
        return box.bottom() - (scale(value) - bottom) / (top - bottom) * box.height()

    def to_x(position: float) -> float:
        return box.left() + position / max(count - 1, 1) * box.width()

    painter.setPen(QPen(QColor(BORDER), 1))
    painter.drawRect(box)
    inverse = (lambda level: 10 ** level) if log else float
    for value in _nice_ticks(inverse(bottom), inverse(top), log=log):
        y = to_y(value)
        painter.setPen(QPen(QColor(BORDER), 1, Qt.PenStyle.DotLine))
        painter.drawLine(QPointF(box.left(), y), QPointF(box.right(), y))
        painter.setPen(QColor(TEXT_MUTED))
        painter.drawText(QRectF(0, y - 8, _MARGIN_LEFT - 8, 16),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                         _compact(value))
    # The first line is the one that matters: drawn last, so the others never hide it.
    for index, (series, color, label) in reversed(list(enumerate(lines))):
        painter.setPen(QPen(color, 1.4))
        painter.drawPolyline(_envelope(series, box, to_x, to_y))
        painter.drawText(QPointF(box.left() + 10 + index * 220, box.top() + 18), label)
    # Hundreds of full-size markers would bury the price line.
    size = 6.0 if len(markers or []) <= 120 else 3.5
    for position, price, entry in markers or []:
        x, y = to_x(position), to_y(price)
        color = QColor(UP if entry else DOWN)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        tip = size if entry else -size
        painter.drawPolygon(QPolygonF([QPointF(x, y), QPointF(x - size * 2 / 3, y + tip),
                                       QPointF(x + size * 2 / 3, y + tip)]))
    painter.setBrush(Qt.BrushStyle.NoBrush)


def _nice_ticks(low: float, high: float, *, log: bool) -> list[float]:
    """Round axis values between ``low`` and ``high``: 1-2-5 steps on a linear axis, the
    1, 2 and 5 of each decade on a logarithmic one (fewer when the range spans many)."""
    if log:
        first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
        for mantissas in ((1, 2, 5), (1, 3), (1,)):
            ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in mantissas
                     if low <= m * 10.0 ** e <= high]
            if len(ticks) <= _TICKS + 3:
                break
        return ticks if len(ticks) >= 2 else [low, high]
    raw = (high - low) / _TICKS
    if not raw > 0:
        return [low]
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.ceil(low / step)
    return [k * step for k in range(start, math.floor(high / step) + 1)]


def _envelope(series: FloatArray, box: QRectF, to_x: Callable[[float], float],
              to_y: Callable[[float], float]) -> QPolygonF:
    """The line through ``series``, as the low and high of each pixel column when the series
    has more points than the box has pixels (a plain polyline would draw them all)."""
    count = len(series)
    columns = max(int(box.width()), 1)
    if count <= 2 * columns:
        return QPolygonF([QPointF(to_x(i), to_y(float(v))) for i, v in enumerate(series)])
    column = np.arange(count) * columns // count
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    lows = np.minimum.reduceat(series, starts)
    highs = np.maximum.reduceat(series, starts)
    points = []
    for start, low, high in zip(starts.tolist(), lows.tolist(), highs.tolist(), strict=True):
        x = to_x(start)
        points += [QPointF(x, to_y(high)), QPointF(x, to_y(low))]
    return QPolygonF(points)


def _time_axis(painter: QPainter, box: QRectF, result: BacktestResult) -> None:
    painter.setPen(QColor(TEXT_MUTED))
    count = len(result.times)
    for step in range(_TICKS + 1):
        position = (count - 1) * step // _TICKS
        x = box.left() + position / max(count - 1, 1) * box.width()
        label = format_ms(int(result.times[position]))[:10]
        # The outer labels line up with the panel's edges instead of running past them.
        left = x - (0 if step == 0 else 100 if step == _TICKS else 50)
        align = (Qt.AlignmentFlag.AlignLeft if step == 0 else Qt.AlignmentFlag.AlignRight
                 if step == _TICKS else Qt.AlignmentFlag.AlignHCenter)
        painter.drawText(QRectF(left, box.bottom() + 6, 100, 16), int(align), label)


def _compact(value: float) -> str:
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.1f}M"
    if size >= 1e4 or (size >= 1e3 and value % 1e3 == 0):
        return f"{value / 1e3:.0f}k"
    if size >= 100:
        return f"{value:,.0f}"
    return f"{value:.4g}"

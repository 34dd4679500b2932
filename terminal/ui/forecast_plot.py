"""A forecast evaluation as a PNG: predicted against realised returns with the 10-90 % band,
the calibration of the up-probability, and the long/flat strategy's equity net of fees against
buy-and-hold. Drawn offscreen with QPainter like :mod:`terminal.ui.report_plot`, whose panel
and axis helpers it shares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from terminal.ml.evaluate import CalibrationBin, Evaluation
from terminal.ui.report_plot import _panel, _time_axis, png_canvas
from terminal.ui.theme import ACCENT, BORDER, TEXT, TEXT_MUTED, UP, WARNING

DEFAULT_SIZE = (1400, 1000)
#: The returns panel shows the most recent bars only; thousands of overlapping returns are ink.
RECENT_BARS = 500
_LEFT = 90.0


def render_forecast_plot(evaluation: Evaluation, model: str, horizon_index: int, path: Path,
                         size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    """Draw ``model``'s figures at ``evaluation.horizons[horizon_index]`` into ``path``."""
    run = evaluation.run(model)
    metrics = run.metrics[horizon_index]
    backtest = run.backtests[horizon_index]
    width, height = size
    with png_canvas(path, size) as painter:
        _heading(painter, f"{model} · {metrics.horizon}-bar forecast · {metrics.verdict}",
                 f"MASE {metrics.mase:.4f} · MSE skill {metrics.mse_skill * 100:+.2f} % ·"
                 f" direction {metrics.dir_acc * 100:.1f} % (always up"
                 f" {metrics.always_up_acc * 100:.1f} %) · Brier skill"
                 f" {metrics.brier_skill * 100:+.2f} % · 10-90 % band holds"
                 f" {metrics.band_coverage * 100:.0f} %")
        inner = width - _LEFT - 24
        # _panel writes its value labels left of x = _LEFT, so line panels start there.
        panel_height = (height - 60 - 3 * 50 - 30) / 3
        returns_box = QRectF(_LEFT, 78, inner, panel_height)
        equity_box = QRectF(_LEFT, returns_box.bottom() + 60, inner, panel_height)
        calibration_box = QRectF(_LEFT, equity_box.bottom() + 60, panel_height, panel_height)
        _returns_panel(painter, evaluation, model, horizon_index, returns_box)
        _calibration_panel(painter, metrics.calibration, calibration_box)
        painter.setPen(QColor(TEXT))
        painter.drawText(QPointF(equity_box.left(), equity_box.top() - 8),
                         f"long/flat net of {evaluation.fee * 100:g} % fees:"
                         f" {metrics.strategy_return * 100:+.1f} %, exposure"
                         f" {metrics.strategy_exposure * 100:.0f} %, {metrics.strategy_trades}"
                         f" trades")
        _panel(painter, equity_box, [
            (backtest.equity, QColor(ACCENT), "strategy"),
            (backtest.buy_and_hold_equity, QColor(TEXT_MUTED),
             f"buy & hold {metrics.buy_and_hold_return * 100:+.1f} %")], log=True)
        _time_axis(painter, equity_box, backtest)
        _price_note(painter, metrics.r2_price, metrics.r2_price_persistence,
                    QPointF(calibration_box.right() + 40, calibration_box.top() + 20))
    return path


def _heading(painter: QPainter, title: str, subtitle: str) -> None:
    font = painter.font()
    font.setPointSize(12)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor(TEXT))
    painter.drawText(QPointF(_LEFT, 24), title)
    font.setPointSize(9)
    font.setBold(False)
    painter.setFont(font)
    painter.setPen(QColor(TEXT_MUTED))
    painter.drawText(QPointF(_LEFT, 44), subtitle)


def _returns_panel(painter: QPainter, evaluation: Evaluation, model: str, k: int,
                   box: QRectF) -> None:
    forecast = evaluation.run(model).forecast
    realised = evaluation.realised[:, k]
    known = np.flatnonzero(np.isfinite(realised))[-RECENT_BARS:]
    painter.setPen(QColor(TEXT))
    painter.drawText(QPointF(box.left(), box.top() - 8),
                     f"predicted vs realised {evaluation.horizons[k]}-bar log return, last"
                     f" {len(known)} test bars")
    _panel(painter, box, [
        (realised[known], QColor(TEXT_MUTED), "realised"),
        (forecast.quantile_10[known, k], QColor(WARNING), "10 %"),
        (forecast.quantile_90[known, k], QColor(WARNING), "90 %"),
        (forecast.expected[known, k], QColor(ACCENT), "expected")], log=False)


def _calibration_panel(painter: QPainter, bins: tuple[CalibrationBin, ...], box: QRectF) -> None:
    painter.setPen(QColor(TEXT))
    painter.drawText(QPointF(box.left(), box.top() - 8), "calibration: predicted P(up) vs"
                     " observed up-rate")
    painter.setPen(QPen(QColor(BORDER), 1))
    painter.drawRect(box)

    def point(x: float, y: float) -> QPointF:
        return QPointF(box.left() + x * box.width(), box.bottom() - y * box.height())

    painter.setPen(QPen(QColor(TEXT_MUTED), 1, Qt.PenStyle.DashLine))
    painter.drawLine(point(0, 0), point(1, 1))
    for step in range(6):
        level = step / 5
        painter.drawText(QRectF(box.left() - 44, point(0, level).y() - 8, 38, 16),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                         f"{level:.1f}")
        painter.drawText(QRectF(point(level, 0).x() - 19, box.bottom() + 4, 38, 16),
                         int(Qt.AlignmentFlag.AlignHCenter), f"{level:.1f}")
    total = sum(b.count for b in bins) or 1
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(UP))
    for b in bins:
        radius = 3 + 12 * float(np.sqrt(b.count / total))
        painter.drawEllipse(point(b.mean_prob, b.observed_up), radius, radius)
    painter.setBrush(Qt.BrushStyle.NoBrush)


def _price_note(painter: QPainter, model_r2: float, persistence_r2: float,
                at: QPointF) -> None:
    painter.setPen(QColor(TEXT_MUTED))
    painter.drawText(at, f"R² of the implied price level: model {model_r2:.5f}, persistence"
                         f" {persistence_r2:.5f} (next = now already scores this; only the"
                         " difference matters)")

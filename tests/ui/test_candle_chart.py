from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from terminal.core.model import DAY_MS, HOUR_MS, MINUTE_MS, Candle, Timeframe
from terminal.core.series import CandleSeries
from terminal.widgets.candle_chart import (
    MIN_PX_PER_DRAWN_BAR,
    CandleChart,
    _Bars,
    decimation_factor,
    format_volume,
    time_label,
    time_ticks,
)
from tests.factories import START_MS, make_series

pytestmark = pytest.mark.qt


def move_mouse(chart: CandleChart, position: QPoint) -> None:
    # Sent directly: QTest skips a move to where it believes the mouse already is.
    viewport = chart._graphics.viewport()
    point = QPointF(position)
    QApplication.sendEvent(viewport, QMouseEvent(
        QEvent.Type.MouseMove, point, viewport.mapToGlobal(point), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def next_candle(after: Candle, timeframe: Timeframe = Timeframe.M1) -> Candle:
    return Candle(after.open_time + timeframe.ms, after.close, after.close + 1,
                  after.close - 1, after.close + 0.5, 3.0)


def test_set_history_shows_the_newest_bars(chart: CandleChart) -> None:
    series = make_series(1_000)
    chart.set_history(series)
    assert chart.bar_count == 1_000
    assert chart.last_candle == series[999]
    assert chart.candle(0) == series[0]
    x_min, x_max = chart.visible_range()
    assert x_min < 999 < x_max
    assert chart.is_following()
    assert chart.placeholder == ""


def test_update_bar_replaces_the_forming_bar_and_appends_the_next(chart: CandleChart) -> None:
    series = make_series(500)
    chart.set_history(series)
    forming = replace(series[499], close=series[499].close + 5, high=series[499].high + 5)
    chart.update_bar(forming)
    assert chart.bar_count == 500
    assert chart.last_candle == forming
    following = next_candle(forming)
    chart.update_bar(following)
    assert chart.bar_count == 501
    assert chart.candle(-2) == forming
    assert chart.last_candle == following


def test_a_late_older_candle_is_ignored(chart: CandleChart) -> None:
    series = make_series(100)
    chart.set_history(series)
    chart.update_bar(replace(series[50], close=1.0, low=1.0))
    assert chart.bar_count == 100
    assert chart.candle(50) == series[50]


def test_the_view_follows_new_bars_only_from_the_right_edge(chart: CandleChart) -> None:
    chart.set_history(make_series(2_000))
    before = chart.visible_range()
    chart.update_bar(next_candle(chart.last_candle))
    assert chart.visible_range() == pytest.approx((before[0] + 1, before[1] + 1))

    chart.pan(-1.5)  # the user looks back in history
    assert not chart.is_following()
    looking_at = chart.visible_range()
    chart.update_bar(next_candle(chart.last_candle))
    assert chart.visible_range() == pytest.approx(looking_at)


def test_keys_zoom_pan_and_return_to_the_latest_bar(chart: CandleChart, qtbot) -> None:
    chart.set_history(make_series(5_000))
    start = chart.visible_range()
    width = start[1] - start[0]
    qtbot.keyClick(chart, Qt.Key.Key_Minus)
    assert chart.visible_range()[1] - chart.visible_range()[0] == pytest.approx(width * 1.25)
    qtbot.keyClick(chart, Qt.Key.Key_Plus)
    qtbot.keyClick(chart, Qt.Key.Key_Left)
    assert chart.visible_range()[1] < start[1]
    qtbot.keyClick(chart, Qt.Key.Key_Home)
    assert chart.visible_range() == pytest.approx(start)


def test_the_price_range_fits_the_visible_candles(chart: CandleChart) -> None:
    series = make_series(3_000)
    chart.set_history(series)
    view = chart._price_plot.vb
    x_min, x_max = chart.visible_range()
    visible = series.take(max(0, int(np.ceil(x_min))), int(x_max) + 1)
    y_min, y_max = view.viewRange()[1]
    assert y_min < visible.low.min() < visible.high.max() < y_max
    # A margin of a tenth of the range, not the whole history's range.
    assert y_max - y_min < 1.5 * (visible.high.max() - visible.low.min())


def test_zoomed_out_on_200k_bars_at_most_one_candle_per_two_pixels_is_drawn(
        chart: CandleChart) -> None:
    chart.set_history(make_series(200_000))
    chart.grab()
    assert 0 < chart.drawn_bars <= 200  # the default view: about 150 bars
    chart.zoom(10_000.0)  # the limits stop at the whole history
    x_min, x_max = chart.visible_range()
    assert x_max - x_min >= 200_000
    chart.grab()
    width = chart._price_plot.vb.width()
    assert 0 < chart.drawn_bars <= width / MIN_PX_PER_DRAWN_BAR + 4


def test_merged_bars_keep_the_extremes_and_the_total_volume() -> None:
    series = make_series(1_003)
    bars = _Bars()
    bars.replace(series)
    merged = bars.level(8)
    assert len(merged["open"]) == 126
    assert merged["open"][1] == series.open[8]
    assert merged["close"][1] == series.close[15]
    assert merged["high"][1] == series.high[8:16].max()
    assert merged["low"][1] == series.low[8:16].min()
    assert merged["volume"][-1] == pytest.approx(series.volume[1_000:].sum())
    # A live update refreshes only the newest group, with the new values.
    bars.put(Candle(int(series.open_time[-1]), 100.0, 1e6, 1.0, 100.0, 1e3))
    again = bars.level(8)
    assert again["high"][-1] == 1e6
    assert again["low"][-1] == 1.0
    assert again["high"][0] == merged["high"][0]


def test_decimation_factor_is_one_when_bars_are_wide_enough() -> None:
    assert decimation_factor(8.0) == 1
    assert decimation_factor(MIN_PX_PER_DRAWN_BAR) == 1
    assert decimation_factor(1.0) == 2
    assert decimation_factor(0.01) == 256


def test_crosshair_readout_shows_the_bar_under_it(chart: CandleChart) -> None:
    series = make_series(400, price=61_234.5)
    chart.set_history(series)
    chart.set_title("BTC/USDT · 1m")
    bar, previous = series[250], series[249]
    chart.set_crosshair(250)
    text = chart.readout_text()
    change = bar.close - previous.close
    assert text.startswith("BTC/USDT · 1m")
    for expected in (f"O {bar.open:.2f}", f"H {bar.high:.2f}", f"L {bar.low:.2f}",
                     f"C {bar.close:.2f}", f"V {format_volume(bar.volume)}",
                     f"{change:+.2f} ({change / previous.close * 100:+.2f}%)"):
        assert expected in text
    assert "Tue 14 Nov '23  04:10" in text  # bar 250 of 1-minute bars from 00:00


def test_moving_the_mouse_over_the_chart_moves_the_crosshair(chart: CandleChart) -> None:
    chart.set_history(make_series(400))
    view = chart._price_plot.vb
    position = chart._graphics.mapFromScene(view.sceneBoundingRect().center())
    move_mouse(chart, position)
    index = round(view.mapSceneToView(chart._graphics.mapToScene(position)).x())
    assert chart._crosshair_index == index
    bar = chart.candle(index)
    assert f"O {bar.open:.2f}" in chart.readout_text()
    QApplication.sendEvent(chart._graphics, QEvent(QEvent.Type.Leave))
    assert chart._crosshair_index is None
    assert f"C {chart.last_candle.close:.2f}" in chart.readout_text()


def test_the_crosshair_stays_under_a_still_mouse_when_the_view_moves(
        chart: CandleChart) -> None:
    chart.set_history(make_series(400))
    view = chart._price_plot.vb
    position = chart._graphics.mapFromScene(view.sceneBoundingRect().center())
    target = chart._graphics.mapToScene(position)
    move_mouse(chart, position)
    before = chart._crosshair_index
    assert before is not None
    chart.pan(-0.25)
    assert chart._crosshair_index == round(view.mapSceneToView(target).x()) < before


def test_an_empty_chart_says_so(chart: CandleChart) -> None:
    assert chart.placeholder == "No data"
    chart.set_history(make_series(10))
    assert chart.placeholder == ""
    chart.set_history(CandleSeries.empty(Timeframe.H1))
    assert chart.placeholder == "No data"
    assert chart.readout_text() == ""
    chart.set_placeholder("Loading market history…")
    assert chart.placeholder == "Loading market history…"
    chart.grab()  # paints without bars


def test_the_first_live_bar_into_an_empty_chart_is_shown(chart: CandleChart) -> None:
    chart.set_history(CandleSeries.empty(Timeframe.M1))
    chart.update_bar(Candle(START_MS, 10.0, 11.0, 9.0, 10.5, 1.0))
    assert chart.bar_count == 1
    x_min, x_max = chart.visible_range()
    assert x_min < 0 < x_max
    chart.grab()
    assert chart.drawn_bars == 1


def test_watermark_and_price_precision(chart: CandleChart) -> None:
    chart.set_watermark("BTC/USDT · 1m · SIMULATED")
    assert chart.watermark == "BTC/USDT · 1m · SIMULATED"
    chart.set_history(make_series(50, price=0.6))
    assert chart.format_price(0.61234567) == "0.6123"  # chosen from the price's size
    chart.set_price_precision(2)
    assert chart.format_price(0.61234567) == "0.61"


def test_time_labels_name_the_largest_unit_that_starts() -> None:
    assert time_label(START_MS + 14 * HOUR_MS + 30 * MINUTE_MS) == "14:30"
    assert time_label(START_MS) == "14 Nov"
    assert time_label(START_MS + 17 * DAY_MS) == "Dec"  # 2023-12-01
    assert time_label(START_MS + 48 * DAY_MS) == "2024"


def test_time_ticks_fall_on_round_times_and_do_not_crowd() -> None:
    def minutes(indices):
        return START_MS + indices * MINUTE_MS

    ticks = time_ticks(0, 599, minutes, px_per_bar=2.0, bar_ms=MINUTE_MS)  # 1200 px wide
    assert ticks == [(60 * h, f"{h:02}:00") for h in range(1, 10)]
    # Zoomed out to a fifth of a pixel per bar, labels still name exact period starts.
    zoomed_out = time_ticks(0, 200_000, minutes, px_per_bar=0.005, bar_ms=MINUTE_MS)
    labels = [label for _, label in zoomed_out]
    assert labels[:3] == ["Dec", "2024", "Feb"]
    assert all(time_label(int(minutes(np.int64(i)))) == label for i, label in zoomed_out)
    positions = [index for index, _ in zoomed_out]
    assert min(np.diff(positions)) * 0.005 >= 80


def test_the_mouse_wheel_zooms_time_and_the_prices_follow(chart: CandleChart, qtbot) -> None:
    chart.set_history(make_series(5_000))
    view = chart._price_plot.vb
    before_x, before_y = chart.visible_range(), view.viewRange()[1]
    viewport = chart._graphics.viewport()
    center = QPointF(viewport.width() / 2, viewport.height() / 3)
    wheel = QWheelEvent(center, viewport.mapToGlobal(center), QPoint(0, 0), QPoint(0, -480),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, wheel)
    after_x = chart.visible_range()
    assert after_x[1] - after_x[0] > 1.5 * (before_x[1] - before_x[0])  # zoomed out
    assert view.viewRange()[1] != before_y  # prices re-fitted to the wider range

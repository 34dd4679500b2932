"""Overlays, indicator panes, trade markers, price lines and forecast candles of the chart."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from terminal.core.errors import InvalidArgument
from terminal.core.indicators import bollinger, ema, macd, rsi, sma
from terminal.core.model import Candle, Timeframe
from terminal.widgets.candle_chart import AXIS_WIDTH_PX, CandleChart, ChartStyle
from terminal.widgets.chart_layers import (
    Forecast,
    IndicatorCache,
    IndicatorSettings,
    PriceLine,
    Side,
    TradeMarker,
    indicator_specs,
)
from tests.factories import make_series

pytestmark = pytest.mark.qt


def paint(chart: CandleChart) -> None:
    chart.grab()
    QApplication.processEvents()


def test_indicator_values_match_the_core_functions(chart: CandleChart) -> None:
    series = make_series(2_000)
    chart.set_history(series)
    chart.set_indicators(IndicatorSettings(bollinger=True, rsi=True, macd=True))
    values = chart.indicator_values(1_500)
    close = series.close
    assert values["sma"] == pytest.approx(sma(close, 20)[1_500])
    assert values["ema"] == pytest.approx(ema(close, 50)[1_500], rel=1e-6)
    lower, _middle, upper = bollinger(close, 20, 2.0)
    assert (values["bollinger_lower"], values["bollinger_upper"]) == pytest.approx(
        (lower[1_500], upper[1_500]))
    assert values["rsi"] == pytest.approx(rsi(close, 14)[1_500], rel=1e-6)
    line, signal, _ = macd(close)
    assert (values["macd"], values["macd_signal"]) == pytest.approx(
        (line[1_500], signal[1_500]), rel=1e-5)


def test_panes_are_toggled_and_show_their_readouts(chart: CandleChart) -> None:
    chart.set_history(make_series(500))
    assert chart.pane_readout_text("rsi") == ""
    chart.set_indicators(IndicatorSettings(rsi=True, macd=True))
    paint(chart)
    assert chart.pane_readout_text("rsi").startswith("RSI 14 ")
    for axis in (chart._rsi_axis, chart._macd_axis):
        assert axis.width() == AXIS_WIDTH_PX, "a pane shown again gets its axis labels back"
    assert chart._rsi_axis.tickValues(0.0, 100.0, 200.0) == [(1.0, [30.0, 50.0, 70.0])]
    assert chart.pane_readout_text("macd").startswith("MACD 12 26 9 ")
    assert "SMA 20" in chart.readout_text() and "EMA 50" in chart.readout_text()
    chart.set_indicators(IndicatorSettings(sma=False, ema=False))
    assert chart.pane_readout_text("macd") == ""
    assert "SMA" not in chart.readout_text()


def test_warming_up_indicators_read_as_a_dash(chart: CandleChart) -> None:
    chart.set_history(make_series(500))
    chart.set_crosshair(5)
    assert "SMA 20 —" in chart.readout_text()


def test_the_cache_follows_live_updates_like_a_full_recompute() -> None:
    series = make_series(3_000)
    closes = series.close.copy()
    current = {"closes": closes}
    cache = IndicatorCache(lambda: current["closes"])
    cache.configure(indicator_specs(IndicatorSettings(rsi=True, macd=True)))
    cache.lines("ema", 2_800, 3_000)
    cache.lines("rsi", 2_800, 3_000)
    current["closes"] = np.append(closes[:-1], [closes[-1] * 1.01, closes[-1] * 1.02])
    for name, full in (("ema", ema(current["closes"], 50)), ("rsi", rsi(current["closes"], 14))):
        lines = cache.lines(name, 2_900, 3_001)
        assert lines is not None
        np.testing.assert_allclose(lines[0], full[2_900:], rtol=1e-6)
    assert cache.lines("bollinger", 0, 10) is None  # switched off


def test_trade_markers_are_drawn_only_in_view(chart: CandleChart) -> None:
    series = make_series(5_000)
    chart.set_history(series)
    times = series.open_time
    chart.set_trades([TradeMarker(int(times[100]), float(series.low[100]), Side.BUY),
                      TradeMarker(int(times[4_990]) + 30_000, float(series.high[4_990]),
                                  Side.SELL, "exit")])
    paint(chart)
    assert chart.trade_marker_count == 2
    assert chart.visible_trade_markers() == 1, "the old entry is far out of view"
    chart.scroll_to_time(int(times[100]))
    paint(chart)
    assert chart.visible_trade_markers() == 1
    x_min, x_max = chart.visible_range()
    assert x_min < 100 < x_max


def test_order_and_protection_lines_get_axis_tags(chart: CandleChart) -> None:
    series = make_series(300)
    chart.set_history(series)
    last = float(series.close[-1])
    chart.set_order_lines([PriceLine(last * 0.9995, "Buy limit 0.5", "buy")])
    chart.set_price_lines([PriceLine(last * 1.0005, "TP", "take_profit"),
                           PriceLine(last * 0.5, "SL far away", "stop_loss")])
    paint(chart)
    lines = chart.price_lines()
    assert [line.kind for line in lines] == ["buy", "take_profit", "stop_loss"]
    tags = [tag for _, _, tag in chart._line_items]
    assert tags[0].isVisible() and tags[1].isVisible()
    assert not tags[2].isVisible(), "a level outside the view has no tag"
    chart.set_order_lines([])
    assert [line.kind for line in chart.price_lines()] == ["take_profit", "stop_loss"]
    with pytest.raises(InvalidArgument, match="positive price"):
        PriceLine(0.0, "bad")
    with pytest.raises(InvalidArgument, match="unknown price line kind"):
        PriceLine(1.0, "bad", "moon")


def _forecast(after: Candle, steps: int, bar_ms: int) -> Forecast:
    expected = tuple(after.close * (1 + 0.001 * k) for k in range(1, steps + 1))
    return Forecast(after.open_time + bar_ms, expected,
                    tuple(e * 0.99 for e in expected), tuple(e * 1.01 for e in expected), "m1")


def test_forecast_candles_stay_attached_to_the_live_end(chart: CandleChart) -> None:
    series = make_series(400)
    chart.set_history(series)
    last = series[399]
    chart.set_forecast(_forecast(last, 12, Timeframe.M1.ms))
    paint(chart)
    assert chart.forecast_steps_ahead() == 12
    _x_min, x_max = chart.visible_range()
    assert x_max >= 399 + 12, "the view makes room for the whole forecast"
    chart.set_crosshair(399 + 3)
    assert "Forecast · m1 +3" in chart.readout_text()
    assert "E[C]" in chart.readout_text()
    chart.update_bar(Candle(last.open_time + 60_000, last.close, last.close + 1,
                            last.close - 1, last.close, 1.0))
    assert chart.forecast_steps_ahead() == 11, "the realised bar replaced its forecast"
    chart.set_forecast(None)
    assert chart.forecast_steps_ahead() == 0


def test_a_forecast_with_unordered_quantiles_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="must be in that order"):
        Forecast(0, (100.0,), (101.0,), (102.0,))
    with pytest.raises(InvalidArgument, match="one value per step"):
        Forecast(0, (100.0, 101.0), (99.0,), (102.0, 103.0))
    with pytest.raises(InvalidArgument, match="at least one step"):
        Forecast(0, (), (), ())


def test_bad_indicator_settings_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="fast period"):
        IndicatorSettings(macd_fast=30, macd_slow=26)
    with pytest.raises(InvalidArgument, match="sma period"):
        IndicatorSettings(sma_period=0)


def test_zoomed_out_lines_draw_one_point_per_group(chart: CandleChart) -> None:
    chart.set_history(make_series(200_000))
    chart.zoom(10_000.0)
    paint(chart)
    drawn = chart._overlay_lines["sma"].drawn_points
    assert 0 < drawn <= chart.width() * 2


def test_restyling_recolours_the_chart(chart: CandleChart) -> None:
    chart.set_history(make_series(100))
    light = ChartStyle(background="#ffffff", text="#131722", up="#089981")
    chart.set_style(light)
    paint(chart)
    assert chart._candles._colors[0].name() == "#089981"
    assert chart._graphics.backgroundBrush().color().name() == "#ffffff"


def test_live_updates_never_write_into_the_history_handed_over(chart: CandleChart) -> None:
    series = make_series(300)
    before = series.close.copy()
    chart.set_history(series)
    last = series[299]
    chart.update_bar(Candle(last.open_time, last.open, last.high + 5, last.low, last.close + 5,
                            last.volume))
    np.testing.assert_array_equal(series.close, before)
    assert chart.last_candle.close == last.close + 5


def test_long_ranges_are_computed_in_chunks_like_in_one_piece() -> None:
    series = make_series(200_000)
    cache = IndicatorCache(lambda: series.close)
    cache.configure(indicator_specs(IndicatorSettings(bollinger=True, rsi=True, macd=True)))
    for name, full in (("sma", (sma(series.close, 20),)), ("ema", (ema(series.close, 50),)),
                       ("rsi", (rsi(series.close, 14),)), ("macd", macd(series.close)),
                       ("bollinger", bollinger(series.close, 20, 2.0))):
        lines = cache.lines(name, 0, 200_000)
        assert lines is not None
        for mine, theirs in zip(lines, full, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-9, equal_nan=True)

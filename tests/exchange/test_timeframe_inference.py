from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from terminal.core.model import Timeframe
from terminal.core.series import CandleSeries
from terminal.exchange.importers import ImportRejected, read_candle_file
from tests.factories import binance_lines, cdd_lines, generic_lines, make_series, write_lines


def without(series: CandleSeries, rows: list[int]) -> CandleSeries:
    return CandleSeries.from_records(np.delete(series.to_records(), rows), series.timeframe)


@pytest.mark.parametrize("timeframe", [Timeframe.M1, Timeframe.M15, Timeframe.H4, Timeframe.D1,
                                       Timeframe.W1])
@pytest.mark.parametrize("layout", ["cryptodatadownload", "binance", "generic"])
def test_every_format_tells_its_timeframe(tmp_path: Path, timeframe: Timeframe,
                                          layout: str) -> None:
    series = make_series(40, timeframe)
    lines = {"cryptodatadownload": cdd_lines, "binance": binance_lines,
             "generic": generic_lines}[layout](series)
    path = write_lines(tmp_path / "candles.csv", lines)
    parsed = read_candle_file(path, symbol="BTC/USDT", timeframe=None)
    assert parsed.series.timeframe is timeframe
    assert np.array_equal(parsed.series.open_time, series.open_time)


def test_gaps_and_duplicates_do_not_mislead_the_inference(tmp_path: Path) -> None:
    # Every third hour missing: steps of 1h and 2h, 1h the most common.
    series = without(make_series(60, Timeframe.H1), list(range(2, 60, 3)))
    lines = generic_lines(series)
    lines.insert(5, lines[4])
    parsed = read_candle_file(write_lines(tmp_path / "holes.csv", lines), symbol="BTC/USDT",
                              timeframe=None)
    assert parsed.series.timeframe is Timeframe.H1
    assert len(parsed.duplicates) == 1 and parsed.gaps


def test_equally_common_steps_choose_the_shorter(tmp_path: Path) -> None:
    # Three steps of 1h and three of 2h: read as 2h candles, the rows at odd hours would be
    # off the grid; read as 1h candles, every row fits and three hours are missing.
    series = without(make_series(10, Timeframe.H1), [2, 5, 8])
    path = write_lines(tmp_path / "tie.csv", generic_lines(series))
    assert read_candle_file(path, symbol="BTC/USDT",
                            timeframe=None).series.timeframe is Timeframe.H1


@pytest.mark.parametrize(("minutes", "message"), [
    ([0], "one candle says nothing about the candle length"),
    ([0, 0], "one candle says nothing about the candle length"),
    ([0, 7, 14, 21], "most rows are 7m apart, which is no timeframe"),
])
def test_spacing_that_is_no_timeframe_is_refused(tmp_path: Path, minutes: list[int],
                                                 message: str) -> None:
    base = make_series(len(minutes), Timeframe.M1)
    lines = ["timestamp,open,high,low,close,volume"] + [
        ",".join([str(int(base.open_time[0]) + minute * 60_000),
                  *(repr(float(getattr(base, f)[i]))
                    for f in ("open", "high", "low", "close", "volume"))])
        for i, minute in enumerate(minutes)]
    with pytest.raises(ImportRejected, match=message):
        read_candle_file(write_lines(tmp_path / "odd.csv", lines), symbol="BTC/USDT",
                         timeframe=None)

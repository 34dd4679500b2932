"""Builders for test data shared across the suite."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from terminal.core.clock import SystemClock
from terminal.core.model import Candle, Timeframe
from terminal.core.series import CandleSeries

START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000  # a UTC midnight
#: 2026-03-02 13:37:21 UTC: 21 seconds into a minute; where ``moment`` holds the wall clock.
FROZEN_NOW = 1_772_458_641_000


class Moment:
    """The wall clock (``SystemClock``), held still at ``now`` and moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = FROZEN_NOW
        monkeypatch.setattr(SystemClock, "now_ms", lambda _self: self.now)


def make_series(count: int, timeframe: Timeframe = Timeframe.M1, *, start_ms: int = START_MS,
                seed: int = 7, price: float = 100.0) -> CandleSeries:
    """A random-walk series of valid candles on the timeframe's grid."""
    rng = np.random.default_rng(seed)
    times = timeframe.floor(start_ms) + np.arange(count, dtype=np.int64) * timeframe.ms
    close = price * np.exp(np.cumsum(rng.normal(0, 0.001, count)))
    open_ = np.r_[price, close[:-1]]
    spread = np.abs(rng.normal(0, 0.0005, count)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.gamma(2.0, 5.0, count)
    return CandleSeries(timeframe, times, open_, high, low, close, volume)


# --- candle files in the formats the importers read -------------------------------------------

CDD_URL_LINE = "https://www.CryptoDataDownload.com"


def utc(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC)


def write_lines(path: Path, lines: Iterable[str], *, newline: str = "\n") -> Path:
    """Write ``lines`` as a text file ending in a newline; returns ``path``."""
    path.write_bytes("".join(f"{line}{newline}" for line in lines).encode())
    return path


def cdd_header(symbol: str = "BTC/USDT", *, unix: bool = True, tradecount: bool = True) -> str:
    base, quote = symbol.split("/")
    names = ["unix"] if unix else []
    names += ["date", "symbol", "open", "high", "low", "close", f"Volume {base}",
              f"Volume {quote}"]
    return ",".join(names + (["tradecount"] if tradecount else []))


def cdd_row(candle: Candle, *, symbol: str = "BTC/USDT", unix: bool = True,
            seconds: bool = False, am_pm: bool = False, tradecount: bool = True,
            swapped: bool = False) -> str:
    """One CryptoDataDownload row. ``seconds`` writes ``unix`` as seconds with ``.0`` and
    NULL as the trade count, as the vendor does for old rows; ``am_pm`` the old date format."""
    moment = utc(candle.open_time)
    date = moment.strftime("%Y-%m-%d %I-%p") if am_pm else moment.strftime("%Y-%m-%d %H:%M:%S")
    # A volume-weighted price inside [low, high], as in real data.
    quote_volume = candle.volume * (candle.low + candle.high) / 2
    volumes = [repr(candle.volume), repr(quote_volume)]
    cells = [f"{candle.open_time // 1000}.0" if seconds else str(candle.open_time)] if unix else []
    cells += [date, symbol.replace("/", "") if seconds else symbol, repr(candle.open),
              repr(candle.high), repr(candle.low), repr(candle.close),
              *(volumes[::-1] if swapped else volumes)]
    if tradecount:
        cells.append("NULL" if seconds else "42")
    return ",".join(cells)


def cdd_lines(series: CandleSeries, *, symbol: str = "BTC/USDT", url_line: bool = True,
              unix: bool = True, tradecount: bool = True,
              old_before: int | None = None, swapped_before: int | None = None) -> list[str]:
    """A CryptoDataDownload export, newest row first. Rows opening before ``old_before`` use
    the vendor's old style (seconds, NULL trade count, AM/PM dates); rows before
    ``swapped_before`` have their two volume columns swapped."""
    lines = [CDD_URL_LINE] if url_line else []
    lines.append(cdd_header(symbol, unix=unix, tradecount=tradecount))
    for candle in reversed(list(series)):
        old = old_before is not None and candle.open_time < old_before
        swapped = swapped_before is not None and candle.open_time < swapped_before
        lines.append(cdd_row(candle, symbol=symbol, unix=unix, seconds=old, am_pm=old,
                             tradecount=tradecount, swapped=swapped))
    return lines


def binance_row(candle: Candle, timeframe: Timeframe, *, micro: bool = False) -> str:
    """One data.binance.vision kline row (times in µs when ``micro``, as from 2025 on)."""
    scale = 1000 if micro else 1
    close_time = candle.open_time + timeframe.ms - 1
    quote_volume = candle.volume * candle.close
    return ",".join([
        str(candle.open_time * scale), repr(candle.open), repr(candle.high), repr(candle.low),
        repr(candle.close), repr(candle.volume), str(close_time * scale), repr(quote_volume),
        "17", repr(candle.volume / 2), repr(quote_volume / 2), "0",
    ])


def binance_lines(series: CandleSeries, *, micro_from: int | None = None) -> list[str]:
    """A headerless Binance kline file; rows opening at or after ``micro_from`` use µs."""
    return [binance_row(c, series.timeframe,
                        micro=micro_from is not None and c.open_time >= micro_from)
            for c in series]


def generic_lines(series: CandleSeries, *, delimiter: str = ",",
                  names: tuple[str, ...] = ("timestamp", "open", "high", "low", "close",
                                            "volume"),
                  time_text: Callable[[int], str] = str) -> list[str]:
    """A CSV with a header; ``names`` label the time, open, high, low, close and volume
    columns in that order, ``time_text`` writes an open time."""
    lines = [delimiter.join(names)]
    for c in series:
        lines.append(delimiter.join([time_text(c.open_time), repr(c.open), repr(c.high),
                                     repr(c.low), repr(c.close), repr(c.volume)]))
    return lines

"""History download into the store, from the exchange emulator and the simulated market."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from terminal.cli import main
from terminal.core.clock import ManualClock
from terminal.core.errors import InvalidArgument
from terminal.core.marketdata import find_gaps
from terminal.core.model import DAY_MS, MINUTE_MS, Timeframe
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.storage import Store
from terminal.core.timefmt import format_ms
from terminal.exchange.ccxt_venue import CcxtVenue
from terminal.exchange.feeds import (
    DownloadProgress,
    DownloadReport,
    download_history,
    missing_ranges,
)
from terminal.exchange.simulated import SimulatedMarket
from tests.exchange.conftest import VenueFactory
from tests.exchange.emulator import ExchangeEmulator
from tests.factories import START_MS, make_series

M1 = Timeframe.M1
KEY = SeriesKey("binance", "BTC/USDT", M1)
BARS = 3000
KLINES = "GET /api/v3/klines"


@pytest.fixture
def history(emulator: ExchangeEmulator) -> CandleSeries:
    series = make_series(BARS)
    emulator.set_candles("BTCUSDT", "1m", series)
    return series


def download(store: Store, venue: CcxtVenue | SimulatedMarket, start: int, end: int | None,
             *, now: int, progress: list[DownloadProgress] | None = None,
             page_bars: int | None = None) -> DownloadReport:
    async def scenario() -> DownloadReport:
        try:
            return await download_history(
                store, venue, "BTC/USDT", M1, start, end, clock=ManualClock(now),
                page_bars=page_bars, progress=None if progress is None else progress.append)
        finally:
            await venue.close()

    return asyncio.run(scenario())


def end_of(series: CandleSeries) -> int:
    return int(series.open_time[-1]) + M1.ms


def without(series: CandleSeries, drop: list[int]) -> CandleSeries:
    keep = np.ones(len(series), dtype=bool)
    keep[drop] = False
    return CandleSeries(series.timeframe, *(getattr(series, name)[keep] for name in
                                            ("open_time", "open", "high", "low", "close",
                                             "volume")))


def test_missing_ranges_cover_head_holes_and_tail() -> None:
    times = np.array([START_MS + 2 * MINUTE_MS, START_MS + 3 * MINUTE_MS,
                      START_MS + 6 * MINUTE_MS])
    gaps = missing_ranges(times, M1, START_MS, START_MS + 8 * MINUTE_MS)
    assert [((g.start_ms - START_MS) // MINUTE_MS, (g.end_ms - START_MS) // MINUTE_MS, g.missing)
            for g in gaps] == [(0, 2, 2), (4, 6, 2), (7, 8, 1)]
    assert missing_ranges(times[:0], M1, START_MS, START_MS + MINUTE_MS)[0].missing == 1


def test_a_candle_is_not_taken_as_closed_until_a_few_seconds_after_its_end(
        data_dir: Path, history: CandleSeries, make_venue: VenueFactory) -> None:
    with Store.open(data_dir) as store:
        early = download(store, make_venue(), START_MS, None, now=end_of(history) + 4_999)
        assert early.end_ms == end_of(history) - M1.ms
        assert store.candles.load(KEY) == history.take(0, BARS - 1)


def test_download_fills_the_store_then_has_nothing_left_to_do(
        data_dir: Path, history: CandleSeries, emulator: ExchangeEmulator,
        make_venue: VenueFactory) -> None:
    progress: list[DownloadProgress] = []
    with Store.open(data_dir) as store:
        report = download(store, make_venue(), START_MS, None, now=end_of(history) + 30_000,
                          progress=progress)
        assert store.candles.load(KEY) == history
        assert (report.stored, report.pages, report.unavailable) == (BARS, 3, 0)
        assert [p.done for p in progress] == [1000, 2000, 3000]
        again = download(store, make_venue(), START_MS, None, now=end_of(history) + 30_000)
    assert (again.already_stored, again.pages, again.stored) == (BARS, 0, 0)
    assert emulator.calls[KLINES] == 3


def test_download_resumes_where_the_store_ends(data_dir: Path, history: CandleSeries,
                                               emulator: ExchangeEmulator,
                                               make_venue: VenueFactory) -> None:
    with Store.open(data_dir) as store:
        store.candles.upsert(KEY, history.take(0, 2500))
        report = download(store, make_venue(), START_MS, None, now=end_of(history) + 5_000)
        assert store.candles.load(KEY) == history
    assert (report.already_stored, report.missing_before, report.stored) == (2500, 500, 500)
    assert emulator.calls[KLINES] == 1


def test_holes_inside_the_stored_range_are_requested_again(
        data_dir: Path, history: CandleSeries, emulator: ExchangeEmulator,
        make_venue: VenueFactory) -> None:
    holes = [10, 11, 500, 1500, 1501, 1502, 2999]
    with Store.open(data_dir) as store:
        store.candles.upsert(KEY, without(history, holes))
        report = download(store, make_venue(), START_MS, end_of(history), now=10**13)
        assert store.candles.load(KEY) == history
    assert (report.holes_found, report.holes_repaired, report.stored) == (3, 3, len(holes))
    assert emulator.calls[KLINES] == 4  # three holes inside, one missing tail candle


def test_exchange_outages_are_reported_not_retried(
        data_dir: Path, history: CandleSeries, emulator: ExchangeEmulator,
        make_venue: VenueFactory) -> None:
    outage = list(range(1200, 1260))
    emulator.set_candles("BTCUSDT", "1m", without(history, outage))
    with Store.open(data_dir) as store:
        first = download(store, make_venue(), START_MS, end_of(history), now=10**13)
        calls_after_first = emulator.calls[KLINES]
        second = download(store, make_venue(), START_MS, end_of(history), now=10**13)
        stored = store.candles.load(KEY)
    expected_gap = (int(history.open_time[1200]), int(history.open_time[1260]), 60)
    assert [(g.start_ms, g.end_ms, g.missing) for g in first.empty_at_venue] == [expected_gap]
    assert [(g.start_ms, g.end_ms, g.missing) for g in second.empty_at_venue] == [expected_gap]
    assert second.holes_found == 1 and second.holes_repaired == 0
    assert emulator.calls[KLINES] - calls_after_first == 1  # asked once more, not forever
    assert len(stored) == BARS - 60 and len(find_gaps(stored)) == 1


def test_an_interrupted_download_resumes_without_duplicates_or_holes(
        data_dir: Path, history: CandleSeries, make_venue: VenueFactory) -> None:
    class Interrupt(Exception):
        pass

    def stop_after_two_pages(progress: DownloadProgress) -> None:
        if progress.done >= 2 * 700:
            raise Interrupt

    async def interrupted(store: Store) -> None:
        venue = make_venue()
        try:
            await download_history(store, venue, "BTC/USDT", M1, START_MS, None,
                                   clock=ManualClock(10**13), page_bars=700,
                                   progress=stop_after_two_pages)
        finally:
            await venue.close()

    with Store.open(data_dir) as store:
        with pytest.raises(Interrupt):
            asyncio.run(interrupted(store))
        partial = store.candles.load(KEY)
        assert partial == history.take(0, 1400)  # each finished page was kept
        report = download(store, make_venue(), START_MS, None, now=10**13, page_bars=700)
        stored = store.candles.load(KEY)
    assert report.stored == BARS - 1400
    assert stored == history and find_gaps(stored) == []


def test_download_from_the_simulated_market_through_the_same_api(data_dir: Path) -> None:
    start = 1_735_689_600_000  # 2025-01-01
    end = start + DAY_MS
    with Store.open(data_dir) as store:
        report = download(store, SimulatedMarket(), start, end, now=end + DAY_MS)
        stored = store.candles.load(SeriesKey("simulated", "BTC/USDT", M1))
    assert report.stored == 1440 and len(stored) == 1440 and find_gaps(stored) == []


def test_bad_ranges_and_symbols_are_refused(data_dir: Path, history: CandleSeries,
                                           make_venue: VenueFactory) -> None:
    with Store.open(data_dir) as store:
        with pytest.raises(InvalidArgument, match="nothing to download"):
            download(store, make_venue(), START_MS, START_MS, now=10**13)

        async def unknown_symbol() -> None:
            venue = make_venue()
            try:
                await download_history(store, venue, "DOGE/USDT", M1, START_MS, None,
                                       clock=ManualClock(10**13))
            finally:
                await venue.close()

        with pytest.raises(InvalidArgument, match="does not list DOGE/USDT"):
            asyncio.run(unknown_symbol())


def test_download_command_against_the_emulator(
        data_dir: Path, history: CandleSeries, emulator: ExchangeEmulator,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data-dir", str(data_dir), "download", "--exchange", "binance", "--symbol",
            "btcusdt", "--timeframe", "1m", "--since", format_ms(START_MS), "--until",
            format_ms(end_of(history)), "--api-url", emulator.base_url]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["venue"], report["stored"], report["unavailable"]) == ("binance", BARS, 0)
    assert "3,000 of 3,000 missing candles requested" in captured.err
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "already stored:  3,000 candles" in text and "downloaded:      0 new" in text
    with Store.open(data_dir) as store:
        assert store.candles.load(KEY) == history


def test_download_command_errors(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--data-dir", str(data_dir), "download", "--symbol", "BTC/USDT", "--timeframe",
            "1m"]
    assert main([*base, "--exchange", "nosuchexchange", "--since", "2024-01-01"]) == 1
    assert "unknown exchange 'nosuchexchange'" in capsys.readouterr().err
    assert main([*base, "--exchange", "binance", "--since", "2024-02-01", "--until",
                 "2024-01-01"]) == 1
    assert "is not after --since" in capsys.readouterr().err
    assert main([*base, "--exchange", "kraken", "--sandbox", "--since", "2024-01-01"]) == 1
    assert "kraken has no sandbox" in capsys.readouterr().err


def test_download_command_from_the_simulated_market(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data_dir), "download", "--exchange", "simulated",
                 "--symbol", "ETH/USDT", "--timeframe", "1h", "--since", "2025-01-01",
                 "--until", "2025-01-08", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["venue"], report["stored"], report["pages"]) == ("simulated", 168, 1)
    with Store.open(data_dir) as store:
        stored = store.candles.load(SeriesKey("simulated", "ETH/USDT", Timeframe.H1))
    assert len(stored) == 168


def test_ctrl_c_stops_the_download_command_and_a_rerun_completes_it(
        data_dir: Path, emulator: ExchangeEmulator) -> None:
    series = make_series(30_000)
    emulator.set_candles("BTCUSDT", "1m", series)
    args = [sys.executable, "-m", "terminal", "--data-dir", str(data_dir), "download",
            "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m", "--since",
            format_ms(START_MS), "--until", format_ms(end_of(series)), "--api-url",
            emulator.base_url]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    first_progress = child.stderr.readline()  # written after the first page was stored
    child.send_signal(signal.SIGINT)
    _, rest = child.communicate(timeout=60)
    assert "missing candles requested" in first_progress
    assert child.returncode == 130 and "interrupted" in rest
    with Store.open(data_dir) as store:
        partial = store.candles.load(KEY)
    assert 0 < len(partial) < len(series) and partial == series.take(0, len(partial))
    finish = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120,
                            check=True)
    assert json.loads(finish.stdout)["stored"] == len(series) - len(partial)
    with Store.open(data_dir) as store:
        assert store.candles.load(KEY) == series

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.core.errors import ImportRejected, InvalidArgument
from terminal.core.model import HOUR_MS, MINUTE_MS, Timeframe
from terminal.core.series import CandleSeries, SeriesKey, concat
from terminal.core.storage import CandleRepository, SeriesSummary, Store
from terminal.exchange.importers import (
    FORMAT_BINANCE_KLINES,
    FORMAT_CRYPTODATADOWNLOAD,
    FORMAT_GENERIC,
    ImportFailed,
    ParsedFile,
    import_file,
    read_candle_file,
)
from tests.factories import (
    START_MS,
    binance_lines,
    cdd_lines,
    cdd_row,
    generic_lines,
    make_series,
    utc,
    write_lines,
)

H1 = Timeframe.H1


def hourly(count: int, seed: int = 7) -> CandleSeries:
    return make_series(count, H1, seed=seed)


def drop(series: CandleSeries, *positions: int) -> CandleSeries:
    return CandleSeries.from_records(np.delete(series.to_records(), list(positions)),
                                     series.timeframe)


def read(path: Path, symbol: str = "BTC/USDT", timeframe: Timeframe = H1,
         **options: bool) -> ParsedFile:
    return read_candle_file(path, symbol=symbol, timeframe=timeframe, **options)


def iso(time_ms: int) -> str:
    return utc(time_ms).strftime("%Y-%m-%d %H:%M:%S")


def stored(store: Store) -> list[tuple[SeriesSummary, CandleSeries]]:
    """Everything in the store, to compare before and after a failed import."""
    return [(s, store.candles.load(s.key)) for s in store.candles.summaries()]


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    with Store.open(data_dir) as opened:
        yield opened


# --- CryptoDataDownload ------------------------------------------------------------------------


def test_cryptodatadownload_newest_first_with_url_line_and_mixed_units(tmp_path: Path) -> None:
    series = hourly(48)
    old_before = int(series.open_time[20])
    path = write_lines(tmp_path / "Binance_BTCUSDT_1h.csv",
                       cdd_lines(series, old_before=old_before))
    parsed = read(path)
    assert parsed.format == FORMAT_CRYPTODATADOWNLOAD
    assert parsed.series == series
    assert parsed.rows_read == 48
    assert (parsed.duplicates, parsed.gaps, parsed.rejected) == ((), (), ())
    assert parsed.venue_hint == "binance"
    assert "rows were newest first; sorted oldest first" in parsed.notes
    assert "open times: 20 rows in epoch seconds, 28 rows in epoch milliseconds" in parsed.notes


def test_cryptodatadownload_without_unix_column_reads_both_date_formats(tmp_path: Path) -> None:
    series = hourly(30)
    lines = cdd_lines(series, unix=False, url_line=False, old_before=int(series.open_time[12]))
    assert lines[-1].startswith("2023-11-14 12-AM,")
    parsed = read(write_lines(tmp_path / "dates.csv", lines))
    assert parsed.series == series
    assert ("open times: 18 rows in ISO-8601 text, 12 rows in 'YYYY-MM-DD HH-AM/PM' text"
            in parsed.notes)


def test_am_pm_dates_around_midnight_and_noon(tmp_path: Path) -> None:
    series = hourly(26)  # starts at a UTC midnight, so it covers 12-AM, 12-PM and 11-PM
    lines = cdd_lines(series, unix=False, old_before=int(series.open_time[-1]) + 1)
    dates = {line.split(",")[0] for line in lines[2:]}
    assert {"2023-11-14 12-AM", "2023-11-14 12-PM", "2023-11-14 11-PM"} <= dates
    assert read(write_lines(tmp_path / "ampm.csv", lines)).series == series


def test_duplicates_keep_the_first_row_in_file_order(tmp_path: Path) -> None:
    series = hourly(10)
    lines = cdd_lines(series)  # line 1 URL, line 2 header, candle i on line 12 - i
    changed = dataclasses.replace(series[4], close=series[4].close * 1.001)
    changed = dataclasses.replace(changed, high=max(changed.high, changed.close))
    # An identical copy of candle 7 (line 5) right after it, on line 6; a different candle 4
    # on line 7, which pushes the original candle 4 down to line 10.
    lines.insert(5, cdd_row(series[7]))
    lines.insert(6, cdd_row(changed))
    path = write_lines(tmp_path / "dups.csv", lines)
    parsed = read(path)
    assert parsed.rows_read == 12
    assert len(parsed.series) == 10
    by_time = {d.open_time: d for d in parsed.duplicates}
    assert set(by_time) == {int(series.open_time[4]), int(series.open_time[7])}
    identical = by_time[int(series.open_time[7])]
    assert (identical.kept_line, identical.dropped_line, identical.conflicting) == (5, 6, False)
    conflicting = by_time[int(series.open_time[4])]
    assert (conflicting.kept_line, conflicting.dropped_line, conflicting.conflicting) == (
        7, 10, True)
    assert parsed.series[4] == changed


def test_a_time_three_times_gives_two_duplicates(tmp_path: Path) -> None:
    series = hourly(5)
    lines = generic_lines(series)
    lines += [lines[2], lines[2]]
    parsed = read(write_lines(tmp_path / "three.csv", lines))
    assert [(d.kept_line, d.dropped_line, d.conflicting) for d in parsed.duplicates] == [
        (3, 7, False), (3, 8, False)]


def test_gaps_are_listed_not_filled(tmp_path: Path) -> None:
    series = drop(hourly(20), 5, 6, 12)
    parsed = read(write_lines(tmp_path / "gaps.csv", cdd_lines(series)))
    t0 = START_MS
    assert [(g.start_ms, g.end_ms, g.missing) for g in parsed.gaps] == [
        (t0 + 5 * HOUR_MS, t0 + 7 * HOUR_MS, 2), (t0 + 12 * HOUR_MS, t0 + 13 * HOUR_MS, 1)]
    assert len(parsed.series) == 17


def test_swapped_volume_columns_are_detected_fixed_and_reported(tmp_path: Path) -> None:
    series = hourly(30)
    lines = cdd_lines(series, swapped_before=int(series.open_time[8]))
    parsed = read(write_lines(tmp_path / "swapped.csv", lines))
    assert parsed.series == series
    swapped_notes = [n for n in parsed.notes if "volume columns swapped" in n]
    assert len(swapped_notes) == 1
    assert swapped_notes[0].startswith("8 rows with the two volume columns swapped (lines 25, ")


def test_null_tradecount_and_empty_quote_volume_are_accepted(tmp_path: Path) -> None:
    series = hourly(6)
    lines = cdd_lines(series, old_before=int(series.open_time[-1]) + 1)
    assert all(line.endswith(",NULL") for line in lines[2:])
    cells = lines[4].split(",")
    cells[8] = ""
    lines[4] = ",".join(cells)
    cells = lines[5].split(",")
    cells[8] = "nan"
    lines[5] = ",".join(cells)
    parsed = read(write_lines(tmp_path / "null.csv", lines))
    assert parsed.series == series
    assert parsed.rejected == ()
    assert any(n.startswith("2 rows without a Volume USDT value (lines 5, 6)")
               for n in parsed.notes)


def test_an_empty_base_volume_cell_rejects_the_row(tmp_path: Path) -> None:
    series = hourly(6)
    lines = cdd_lines(series)
    cells = lines[3].split(",")
    cells[7] = ""
    lines[3] = ",".join(cells)
    path = write_lines(tmp_path / "empty.csv", lines)
    with pytest.raises(ImportRejected, match=r"1 of 6 rows rejected.*line 4: empty Volume BTC"):
        read(path)
    parsed = read(path, skip_bad_rows=True)
    assert [(r.line, r.reason) for r in parsed.rejected] == [(4, "empty Volume BTC cell")]
    assert parsed.series == drop(series, 4)


def test_symbol_column_must_match(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "btc.csv", cdd_lines(hourly(5)))
    with pytest.raises(ImportRejected, match=r"BTC/USDT candles .* symbol given is ETH/USDT"):
        read(path, symbol="ETH/USDT")
    assert read(path, symbol="btcusdt").symbol == "BTC/USDT"


def test_unix_date_disagreement_is_noted(tmp_path: Path) -> None:
    series = hourly(5)
    lines = cdd_lines(series)
    cells = lines[2].split(",")
    cells[1] = iso(int(series.open_time[4]) - 4 * HOUR_MS)
    lines[2] = ",".join(cells)
    parsed = read(write_lines(tmp_path / "tz.csv", lines))
    assert parsed.series == series
    assert any(n.startswith("1 row with a date that disagrees with the unix time (1 4h behind;"
                            " lines 3)") for n in parsed.notes)


def test_volume_columns_are_found_by_asset_name(tmp_path: Path) -> None:
    series = hourly(4)
    lines = cdd_lines(series, url_line=False, tradecount=False)
    header = lines[0].split(",")
    # The same file with its two volume columns the other way round.
    order = [0, 1, 2, 3, 4, 5, 6, 8, 7]
    lines = [",".join(line.split(",")[i] for i in order) for line in lines]
    assert lines[0].endswith("Volume USDT,Volume BTC") and header[7] == "Volume BTC"
    assert read(write_lines(tmp_path / "order.csv", lines)).series == series


# --- Binance klines ----------------------------------------------------------------------------


def test_binance_klines_in_milliseconds_and_microseconds(tmp_path: Path) -> None:
    series = make_series(40, Timeframe.M1)
    lines = binance_lines(series, micro_from=int(series.open_time[25]))
    assert len(lines[-1].split(",")[0]) == 16
    parsed = read(write_lines(tmp_path / "BTCUSDT-1m-2025-01.csv", lines),
                  timeframe=Timeframe.M1)
    assert parsed.format == FORMAT_BINANCE_KLINES
    assert parsed.venue_hint == "binance"
    assert parsed.series == series
    assert "open times: 25 rows in epoch milliseconds, 15 rows in epoch microseconds" in (
        parsed.notes)


def test_binance_klines_with_a_header(tmp_path: Path) -> None:
    series = make_series(5, Timeframe.M1)
    header = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
              "taker_buy_volume,taker_buy_quote_volume,ignore")
    parsed = read(write_lines(tmp_path / "k.csv", [header, *binance_lines(series)]),
                  timeframe=Timeframe.M1)
    assert (parsed.format, parsed.series) == (FORMAT_BINANCE_KLINES, series)


# --- generic CSV -------------------------------------------------------------------------------


def test_generic_semicolons_iso_dates_with_zones(tmp_path: Path) -> None:
    series = hourly(6)

    def berlin(time_ms: int) -> str:
        return utc(time_ms + 2 * HOUR_MS).strftime("%Y-%m-%dT%H:%M:%S+02:00")

    lines = generic_lines(series, delimiter=";", names=("Date", "Open", "High", "Low", "Close",
                                                        "Vol"), time_text=berlin)
    parsed = read(write_lines(tmp_path / "semi.csv", lines))
    assert parsed.format == FORMAT_GENERIC
    assert parsed.venue_hint is None
    assert parsed.series == series


@pytest.mark.parametrize(("time_text", "label"), [
    (iso, "ISO-8601 text"),
    (lambda t: utc(t).strftime("%Y-%m-%d %H:%M"), "ISO-8601 text"),
    (lambda t: utc(t).strftime("%Y-%m-%dT%H:%M:%SZ"), "ISO-8601 text"),
    (lambda t: str(t // 1000), "epoch seconds"),
    (lambda t: str(t * 1000), "epoch microseconds"),
])
def test_generic_time_encodings_and_tabs(tmp_path: Path, time_text, label: str) -> None:
    series = hourly(5)
    lines = generic_lines(series, delimiter="\t", names=("time", "open", "high", "low", "close",
                                                         "volume"), time_text=time_text)
    parsed = read(write_lines(tmp_path / "tabs.tsv", lines[:1] + lines[1:][::-1]))
    assert parsed.series == series
    assert any(label in note for note in parsed.notes)


def test_generic_reads_the_data_export_layout_with_crlf(tmp_path: Path) -> None:
    series = hourly(5)
    lines = ["open_time,date,open,high,low,close,volume"] + [
        f"{c.open_time},{iso(c.open_time)},{c.open!r},{c.high!r},{c.low!r},{c.close!r},"
        f"{c.volume!r}" for c in series]
    parsed = read(write_lines(tmp_path / "export.csv", lines, newline="\r\n"))
    assert parsed.series == series
    assert parsed.notes == ()


def test_generic_separate_date_and_time_columns(tmp_path: Path) -> None:
    series = hourly(4)
    lines = ["Date,Time,Open,High,Low,Close,Volume"] + [
        f"{utc(c.open_time):%Y-%m-%d},{utc(c.open_time):%H:%M},{c.open!r},{c.high!r},{c.low!r},"
        f"{c.close!r},{c.volume!r}" for c in series]
    assert read(write_lines(tmp_path / "split.csv", lines)).series == series


def test_quoted_cells_keep_physical_line_numbers(tmp_path: Path) -> None:
    series = hourly(4)
    lines = ['"time","open","high","low","close","volume"'] + [
        f'"{iso(c.open_time)}","{c.open!r}","{c.high!r}","{c.low!r}","{c.close!r}",'
        f'"{c.volume!r}"' for c in series]
    # A record whose quoted close spans lines 3 and 4, then a short one on line 5.
    lines[2:2] = ['"2023-11-14 01:00:00","1","2","1","1', '.5","5"', '"x","y"']
    parsed = read(write_lines(tmp_path / "quoted.csv", lines), skip_bad_rows=True)
    assert parsed.series == series
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (3, "cannot read close '1\\n.5' as a number"),
        (5, "wrong column count: expected 6, found 2")]


def test_single_volume_files_with_a_symbol_column_are_checked(tmp_path: Path) -> None:
    series = hourly(4)
    rows = [f"{c.open_time},{iso(c.open_time)},BTCUSD,{c.open!r},{c.high!r},{c.low!r},"
            f"{c.close!r},{c.volume!r}" for c in series]
    lines = ["Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume", *rows[::-1]]
    path = write_lines(tmp_path / "gemini.csv", lines)
    assert read(path, symbol="BTC/USD").series == series
    with pytest.raises(ImportRejected, match="holds BTC/USD candles"):
        read(path, symbol="BTC/USDT")


def test_cryptodatadownload_unix_timestamp_header(tmp_path: Path) -> None:
    series = hourly(4)
    lines = cdd_lines(series)
    lines[1] = lines[1].replace("unix,", "Unix Timestamp,")
    parsed = read(write_lines(tmp_path / "old.csv", lines))
    assert (parsed.format, parsed.series) == (FORMAT_CRYPTODATADOWNLOAD, series)


def test_out_of_order_rows_and_blank_lines(tmp_path: Path) -> None:
    series = hourly(5)
    lines = generic_lines(series)
    lines = [lines[0], lines[3], "", lines[1], lines[5], "  ", lines[2], lines[4]]
    parsed = read(write_lines(tmp_path / "order.csv", lines))
    assert parsed.series == series
    assert parsed.rows_read == 5
    assert "rows were out of time order; sorted oldest first" in parsed.notes
    assert "2 blank lines ignored" in parsed.notes


# --- rejected rows -----------------------------------------------------------------------------


def bad_file(tmp_path: Path) -> tuple[Path, CandleSeries]:
    """A generic file whose lines 3-12 are each bad in a different way."""
    series = hourly(20)
    lines = generic_lines(series)
    t = int(series.open_time[0])
    lines[2:12] = [
        f"{t + 1 * HOUR_MS},abc,2,1,1.5,10",                 # 3 unparseable number
        "yesterday,1,2,1,1.5,10",                          # 4 unparseable time
        f"{t + 3 * HOUR_MS},1,2,1,1.5",                      # 5 wrong column count
        f"{t + 4 * HOUR_MS},1.5,1,2,1.5,10",                 # 6 high below low
        f"{t + 5 * HOUR_MS},3,2,1,1.5,10",                   # 7 open outside [low, high]
        f"{t + 6 * HOUR_MS},1,2,1,2.5,10",                   # 8 close outside [low, high]
        f"{t + 7 * HOUR_MS},0,2,0,1,10",                     # 9 non-positive price
        f"{t + 8 * HOUR_MS},1,2,1,1.5,-1",                   # 10 negative volume
        f"{t + 9 * HOUR_MS + MINUTE_MS},1,2,1,1.5,10",       # 11 off the grid
        f"{t + 10 * HOUR_MS},1,2,1,inf,10",                  # 12 not finite
    ]
    return write_lines(tmp_path / "bad.csv", lines), drop(series, *range(1, 11))


EXPECTED_REASONS = [
    (3, "cannot read open 'abc' as a number"),
    (4, "cannot read the time 'yesterday'"),
    (5, "wrong column count: expected 6, found 5"),
    (6, "high 1.0 is below low 2.0"),
    (7, "open and close must lie between low and high"),
    (8, "open and close must lie between low and high"),
    (9, "prices must be positive"),
    (10, "volume -1.0 is negative"),
    (11, "open time 2023-11-14T09:01:00Z (1699952460000) is not on the 1h grid"),
    (12, "a price or the volume is not a finite number"),
]


def test_every_rejection_reason_with_its_line(tmp_path: Path) -> None:
    path, valid = bad_file(tmp_path)
    with pytest.raises(ImportRejected) as caught:
        read(path)
    message = str(caught.value)
    assert "10 of 20 rows rejected, nothing imported" in message
    assert "line 3: cannot read open 'abc' as a number; line 4:" in message
    assert "and 5 more" in message
    parsed = read(path, skip_bad_rows=True)
    assert [(r.line, r.reason) for r in parsed.rejected] == EXPECTED_REASONS
    assert parsed.series == valid


def test_implausible_epoch_times_are_rejected(tmp_path: Path) -> None:
    series = hourly(4)
    lines = [*generic_lines(series), "20231114,1,2,1,1.5,10"]
    parsed = read(write_lines(tmp_path / "digits.csv", lines), skip_bad_rows=True)
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (6, "time '20231114' is not a plausible candle time (before 2009 or after 2100)")]


def test_file_of_another_timeframe_is_rejected_as_a_whole(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "hourly.csv", generic_lines(drop(hourly(30), 4, 9)))
    with pytest.raises(ImportRejected, match=r"1h apart, so the file looks like 1h candles, not"
                                             r" 1m; import it with --timeframe 1h"):
        read(path, timeframe=Timeframe.M1)
    minutes = write_lines(tmp_path / "minutes.csv", generic_lines(make_series(90)))
    with pytest.raises(ImportRejected, match=r"looks like 1m candles, not 1h"):
        read(minutes, skip_bad_rows=True)


def test_a_few_rows_off_grid_do_not_make_another_timeframe(tmp_path: Path) -> None:
    series = hourly(30)
    half_past = int(series.open_time[-1]) + 30 * MINUTE_MS
    lines = [*generic_lines(series), f"{half_past},1,2,1,1,1"]
    parsed = read(write_lines(tmp_path / "half.csv", lines), skip_bad_rows=True)
    assert [r.line for r in parsed.rejected] == [32]


# --- unreadable files --------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"\n  \n", "is empty"),
    (b"unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT\n", "no data rows"),
    (b"https://www.CryptoDataDownload.com\n", "no CSV header or data"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
    (b"caf\xe9,ol\xe9\n1,2\n", "not a UTF-8 text file"),
    (b"name,price\nbtc,3\n", "unrecognised file format.*no time, open, high, low, close, volume"),
    (b"time,open,high,low,close\n1,2,3,4,5\n", "no volume column"),
    (b"1700000000000,1,2,1,1,5\n", "6 numeric columns and no header"),
])
def test_unreadable_content_is_rejected_with_the_path(tmp_path: Path, content: bytes,
                                                      message: str) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(ImportRejected, match=message) as caught:
        read(path)
    assert str(path) in str(caught.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected, match="no such file"):
        read(tmp_path / "missing.csv")
    with pytest.raises(ImportRejected, match="it is a folder"):
        read(tmp_path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_lines(tmp_path / "locked.csv", generic_lines(hourly(3)))

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    # Patched rather than chmod-ed because the suite may run as root, who can read anything.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ImportRejected, match=r"cannot read .*locked\.csv: permission denied"):
        read(path)


def test_bad_symbol_and_timeframe_arguments(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "ok.csv", generic_lines(hourly(3)))
    with pytest.raises(InvalidArgument, match="invalid symbol"):
        read(path, symbol="bitcoin")
    with pytest.raises(InvalidArgument, match="unknown timeframe"):
        read_candle_file(path, symbol="BTC/USDT", timeframe="7m")


# --- importing into the store ------------------------------------------------------------------


def test_import_stores_once_and_reimport_stores_nothing(tmp_path: Path, store: Store) -> None:
    series = drop(hourly(50), 7)
    path = write_lines(tmp_path / "Binance_BTCUSDT_1h.csv",
                       cdd_lines(series, old_before=int(series.open_time[10])))
    report = import_file(store, path, symbol="BTCUSDT", timeframe="1h")
    assert (report.venue, report.symbol, report.timeframe) == ("binance", "BTC/USDT", H1)
    assert (report.rows_read, report.candles, report.stored, report.unchanged) == (49, 49, 49, 0)
    assert (report.first_time, report.last_time) == (series.first_time, series.last_time)
    assert store.candles.load(SeriesKey("binance", "BTC/USDT", H1)) == series
    again = import_file(store, path, symbol="BTC/USDT", timeframe=H1)
    assert (again.stored, again.unchanged) == (0, 49)
    data = report.to_json()
    assert {"rows_read", "stored", "unchanged", "duplicates", "gaps", "rejected", "notes",
            "first_time", "last_time", "format", "venue", "dry_run"} <= set(data)
    assert data["gaps"] == [{"start": START_MS + 7 * HOUR_MS, "end": START_MS + 8 * HOUR_MS,
                             "missing": 1, "start_utc": "2023-11-14T07:00:00Z",
                             "end_utc": "2023-11-14T08:00:00Z"}]
    assert data["first_utc"] == "2023-11-14T00:00:00Z"


def test_venue_defaults_and_override(tmp_path: Path, store: Store) -> None:
    series = hourly(5)
    plain = write_lines(tmp_path / "btc_hourly.csv", cdd_lines(series))
    assert import_file(store, plain, symbol="BTC/USDT", timeframe=H1).venue == "imported"
    named = write_lines(tmp_path / "export.csv",
                        ["Binance data from https://www.CryptoDataDownload.com",
                         *cdd_lines(series, url_line=False)])
    assert import_file(store, named, symbol="BTC/USDT", timeframe=H1).venue == "binance"
    assert import_file(store, plain, symbol="BTC/USDT", timeframe=H1,
                       venue=" Kraken ").venue == "kraken"
    with pytest.raises(InvalidArgument, match="invalid venue"):
        import_file(store, plain, symbol="BTC/USDT", timeframe=H1, venue="my venue!")


def test_dry_run_stores_nothing(tmp_path: Path, store: Store) -> None:
    path = write_lines(tmp_path / "a.csv", generic_lines(hourly(8)))
    report = import_file(store, path, symbol="BTC/USDT", timeframe=H1, dry_run=True)
    assert (report.dry_run, report.candles, report.stored) == (True, 8, 0)
    assert report.to_json()["imported"] is False
    assert store.candles.summaries() == []


def test_a_bad_row_rejects_the_whole_file_and_leaves_the_store_unchanged(
        tmp_path: Path, store: Store) -> None:
    good = hourly(20, seed=3)
    import_file(store, write_lines(tmp_path / "good.csv", generic_lines(good)),
                symbol="BTC/USDT", timeframe=H1)
    before = stored(store)
    path, valid = bad_file(tmp_path)
    with pytest.raises(ImportFailed) as caught:
        import_file(store, path, symbol="BTC/USDT", timeframe=H1)
    report = caught.value.report
    assert [(r.line, r.reason) for r in report.rejected] == EXPECTED_REASONS
    assert (report.stored, report.rows_read, report.error) == (0, 20, str(caught.value))
    assert report.to_json()["rejected"][0] == {"line": 3,
                                               "reason": "cannot read open 'abc' as a number"}
    assert stored(store) == before

    skipped = import_file(store, path, symbol="BTC/USDT", timeframe=H1, skip_bad_rows=True)
    assert (skipped.stored, len(skipped.rejected)) == (10, 10)
    # The rejected rows' times keep what the first import stored.
    assert store.candles.load(SeriesKey("imported", "BTC/USDT", H1)) == concat(
        [valid.take(0, 1), good.take(1, 11), valid.take(1, 10)])


def test_file_level_rejections_carry_a_report(tmp_path: Path, store: Store) -> None:
    path = write_lines(tmp_path / "btc.csv", cdd_lines(hourly(5)))
    with pytest.raises(ImportFailed) as caught:
        import_file(store, path, symbol="ETH/USDT", timeframe=H1)
    assert caught.value.report.rows_read == 5
    with pytest.raises(ImportFailed) as missing:
        import_file(store, tmp_path / "nope.csv", symbol="ETH/USDT", timeframe=H1)
    assert missing.value.report.format == "unknown"
    assert "no such file" in missing.value.report.to_json()["error"]
    assert store.candles.summaries() == []


def test_an_import_is_one_transaction(tmp_path: Path, store: Store,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    original = CandleRepository.upsert

    def upsert_then_fail(self: CandleRepository, key: SeriesKey, series: CandleSeries) -> None:
        original(self, key, series)
        raise OSError("disk unplugged")

    monkeypatch.setattr(CandleRepository, "upsert", upsert_then_fail)
    with pytest.raises(OSError, match="disk unplugged"):
        import_file(store, write_lines(tmp_path / "a.csv", generic_lines(hourly(8))),
                    symbol="BTC/USDT", timeframe=H1)
    monkeypatch.undo()
    assert store.candles.summaries() == []


# --- round trip over random files --------------------------------------------------------------


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(3, 40), seed=st.integers(0, 1000), layout=st.sampled_from(
    ["cdd", "cdd-dates", "binance", "generic-iso", "generic-seconds"]),
       holes=st.sets(st.integers(2, 38), max_size=4))
def test_any_valid_file_reads_back_its_candles(tmp_path: Path, count: int, seed: int,
                                               layout: str, holes: set[int]) -> None:
    series = drop(hourly(count, seed), *sorted(h for h in holes if h < count - 1))
    middle = int(series.open_time[len(series) // 2])
    lines = {
        "cdd": lambda: cdd_lines(series, old_before=middle, swapped_before=middle),
        "cdd-dates": lambda: cdd_lines(series, unix=False, old_before=middle),
        "binance": lambda: binance_lines(series, micro_from=middle),
        "generic-iso": lambda: generic_lines(series, time_text=iso),
        "generic-seconds": lambda: generic_lines(series, delimiter=";",
                                                 time_text=lambda t: f"{t / 1000:.1f}"),
    }[layout]()
    path = write_lines(tmp_path / f"{layout}.csv", lines)
    parsed = read(path)
    assert parsed.series == series
    assert sum(g.missing for g in parsed.gaps) == (
        (series.last_time - series.first_time) // HOUR_MS + 1 - len(series))


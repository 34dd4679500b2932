"""Reading candle files into a :class:`CandleSeries` and importing them into the store.

Three CSV layouts are recognised from the file's content, never from its name:

* **CryptoDataDownload** exports (``unix,date,symbol,open,high,low,close,Volume BTC,Volume
  USDT[,tradecount]``, sometimes with a URL line above the header and sometimes without the
  ``unix`` column). Rows are newest first, ``unix`` switches from milliseconds to seconds part
  way, ``date`` switches from ``2021-08-11 00:00:00`` to ``2017-08-17 05-AM``, timestamps appear
  twice and some vendors swap the two volume columns in their oldest rows.
* **Binance public klines** (data.binance.vision): twelve columns, usually no header, open
  times in milliseconds or, from 2025 on, microseconds.
* **Generic OHLCV** with a header naming the time, open, high, low, close and volume columns,
  delimited by ``,``, ``;`` or tabs, times as epoch numbers or ISO-8601 text.

Nothing is guessed silently: duplicates, gaps, rejected rows (with their physical line numbers)
and every repair (swapped volumes, unit switches) end up in the report. A file with any bad row
is rejected as a whole unless bad rows are explicitly skipped, and an import is one store
transaction, so a file is either fully imported or not at all.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from terminal.core.errors import ImportRejected, InvalidArgument
from terminal.core.marketdata import Gap, find_gaps
from terminal.core.model import Candle, Timeframe, normalize_symbol
from terminal.core.series import CandleSeries, SeriesKey
from terminal.core.timefmt import format_ms

if TYPE_CHECKING:
    # Only for annotations: reading a file (a CSV backtest) should not load the database layer.
    from terminal.core.storage import Store

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FORMAT_CRYPTODATADOWNLOAD = "cryptodatadownload"
FORMAT_BINANCE_KLINES = "binance-klines"
FORMAT_GENERIC = "generic-csv"

BINANCE_VENUE = "binance"
DEFAULT_VENUE = "imported"

#: How many line/reason pairs a rejection message quotes; the report lists all of them.
MESSAGE_EXAMPLES = 5

_BINANCE_COLUMNS = 12
# Exchanges started in 2009 at the earliest; an epoch number outside this window is far more
# likely a date written as digits (20210811) or a wrong unit than a real candle time.
_EARLIEST_MS = 1_230_768_000_000  # 2009-01-01
_LATEST_MS = 4_102_444_800_000  # 2100-01-01
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_AM_PM_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{1,2})-?([AaPp][Mm])")
_CLOCK = re.compile(r"\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?")
_VENUE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
_BINANCE_NAME = re.compile(r"(^|[^a-z])binance([^a-z]|$)", re.IGNORECASE)
# Quote volume cells a vendor leaves without a value; the quote volume is not stored, so such a
# cell only costs the swap check for that row.
_MISSING_CELLS = frozenset({"", "nan", "null", "none", "na", "n/a"})

# Names are compared lower-cased with spaces and dashes turned into underscores.
_TIME_NAMES = ("unix", "unix_timestamp", "timestamp", "open_time", "time", "datetime", "date")
_VOLUME_NAMES = ("volume", "vol")
# Older CryptoDataDownload files call their epoch column "Unix Timestamp"; some have none.
_CDD_TIME_NAMES = ("unix", "unix_timestamp", "date")

# Per-row time encodings, used for the report's notes.
_KIND_NAMES = {
    1: "epoch seconds",
    2: "epoch milliseconds",
    3: "epoch microseconds",
    4: "epoch nanoseconds",
    5: "ISO-8601 text",
    6: "'YYYY-MM-DD HH-AM/PM' text",
}
_KIND_MS = 2


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A data row that cannot become a candle: its 1-based physical line and why."""

    line: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A second row for an open time already seen; the first row in file order is kept."""

    open_time: int
    kept_line: int
    dropped_line: int
    conflicting: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.open_time,
            "time_utc": format_ms(self.open_time),
            "kept_line": self.kept_line,
            "dropped_line": self.dropped_line,
            "conflicting": self.conflicting,
        }


@dataclass(frozen=True)
class ParsedFile:
    """A candle file read and checked, before anything is stored.

    ``series`` holds the valid rows, ascending and without duplicates. ``venue_hint`` is the
    venue the file itself names (Binance), if any.
    """

    path: Path
    format: str
    symbol: str
    series: CandleSeries
    rows_read: int
    duplicates: tuple[Duplicate, ...]
    gaps: tuple[Gap, ...]
    rejected: tuple[RejectedRow, ...]
    notes: tuple[str, ...]
    venue_hint: str | None


@dataclass(frozen=True)
class ImportReport:
    """What an import found and did. ``stored`` counts candles inserted or changed.

    ``error`` is set, and nothing was stored, when the file was rejected.
    """

    path: Path
    format: str
    venue: str
    symbol: str
    timeframe: Timeframe
    rows_read: int
    candles: int
    stored: int
    unchanged: int
    duplicates: tuple[Duplicate, ...]
    gaps: tuple[Gap, ...]
    rejected: tuple[RejectedRow, ...]
    notes: tuple[str, ...]
    first_time: int | None
    last_time: int | None
    dry_run: bool
    error: str | None = None

    @property
    def conflicting_duplicates(self) -> int:
        return sum(1 for d in self.duplicates if d.conflicting)

    @property
    def missing_bars(self) -> int:
        return sum(g.missing for g in self.gaps)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "venue": self.venue,
            "symbol": self.symbol,
            "timeframe": self.timeframe.code,
            "dry_run": self.dry_run,
            "imported": self.error is None and not self.dry_run,
            "error": self.error,
            "rows_read": self.rows_read,
            "candles": self.candles,
            "stored": self.stored,
            "unchanged": self.unchanged,
            "first_time": self.first_time,
            "first_utc": None if self.first_time is None else format_ms(self.first_time),
            "last_time": self.last_time,
            "last_utc": None if self.last_time is None else format_ms(self.last_time),
            "duplicate_count": len(self.duplicates),
            "conflicting_duplicates": self.conflicting_duplicates,
            "duplicates": [d.to_json() for d in self.duplicates],
            "missing_bars": self.missing_bars,
            "gaps": [
                {**g.to_json(), "start_utc": format_ms(g.start_ms), "end_utc": format_ms(g.end_ms)}
                for g in self.gaps
            ],
            "rejected": [r.to_json() for r in self.rejected],
            "notes": list(self.notes),
        }


class ImportFailed(ImportRejected):
    """A file was rejected and nothing was stored; ``report`` says everything that was found."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


def read_candle_file(path: Path | str, *, symbol: str, timeframe: Timeframe | str | None,
                     skip_bad_rows: bool = False) -> ParsedFile:
    """Read and check a candle file without storing it (for imports and CSV backtests).

    ``timeframe`` None infers it from the file's candle spacing (see :func:`infer_timeframe`);
    ``parsed.series.timeframe`` says which it is. Raises :class:`ImportRejected` when the
    file cannot be read, has an unknown layout, is for another symbol or timeframe, has a bad
    row (unless ``skip_bad_rows``), or its timeframe was to be inferred and cannot be.
    """
    frame = None if timeframe is None else _timeframe(timeframe)
    parsed, problem = _parse(Path(path), normalize_symbol(symbol), frame)
    message = problem or _rows_problem(parsed, skip_bad_rows)
    if message:
        raise ImportRejected(message)
    return parsed


def import_file(store: Store, path: Path | str, *, symbol: str, timeframe: Timeframe | str,
                venue: str | None = None, dry_run: bool = False,
                skip_bad_rows: bool = False) -> ImportReport:
    """Import a candle file into ``store`` as one transaction and report what happened.

    The venue defaults to ``binance`` for files that say they come from Binance, otherwise
    ``imported``. ``dry_run`` reads and checks the file but leaves the store alone. Raises
    :class:`ImportFailed` (with the report) when the file is rejected; nothing is stored then.
    """
    file_path = Path(path)
    pair = normalize_symbol(symbol)
    frame = _timeframe(timeframe)
    chosen_venue = None if venue is None else venue_id(venue)
    try:
        parsed, problem = _parse(file_path, pair, frame)
    except ImportRejected as error:
        report = ImportReport(
            path=file_path, format="unknown", venue=chosen_venue or DEFAULT_VENUE, symbol=pair,
            timeframe=frame, rows_read=0, candles=0, stored=0, unchanged=0, duplicates=(),
            gaps=(), rejected=(), notes=(), first_time=None, last_time=None, dry_run=dry_run,
            error=str(error))
        raise ImportFailed(str(error), report) from error
    key = SeriesKey(chosen_venue or parsed.venue_hint or DEFAULT_VENUE, pair, frame)
    message = problem or _rows_problem(parsed, skip_bad_rows)
    if message:
        raise ImportFailed(message, _report(parsed, key, 0, 0, dry_run, message))
    if dry_run:
        return _report(parsed, key, 0, 0, dry_run, None)
    with store.transaction() as tx:
        result = tx.candles.upsert(key, parsed.series)
    return _report(parsed, key, result.changed, result.unchanged, dry_run, None)


def venue_id(text: str) -> str:
    """The lower-case venue id for ``text`` (letters, digits, ``_``, ``.``, ``-``)."""
    cleaned = text.strip().lower()
    if not _VENUE_ID.match(cleaned):
        raise InvalidArgument(f"invalid venue {text!r}: use letters, digits, '_', '.' or '-',"
                              " such as binance")
    return cleaned


def _timeframe(value: Timeframe | str) -> Timeframe:
    return value if isinstance(value, Timeframe) else Timeframe.parse(value)


def _report(parsed: ParsedFile, key: SeriesKey, stored: int, unchanged: int, dry_run: bool,
            error: str | None) -> ImportReport:
    return ImportReport(
        path=parsed.path, format=parsed.format, venue=key.venue, symbol=key.symbol,
        timeframe=key.timeframe, rows_read=parsed.rows_read, candles=len(parsed.series),
        stored=stored, unchanged=unchanged, duplicates=parsed.duplicates, gaps=parsed.gaps,
        rejected=parsed.rejected, notes=parsed.notes, first_time=parsed.series.first_time,
        last_time=parsed.series.last_time, dry_run=dry_run, error=error)


def _rows_problem(parsed: ParsedFile, skip_bad_rows: bool) -> str | None:
    """Why the file must be rejected as a whole because of its rows, if it must."""
    total = parsed.rows_read
    if parsed.rejected and not skip_bad_rows:
        examples = "; ".join(f"line {r.line}: {r.reason}"
                             for r in parsed.rejected[:MESSAGE_EXAMPLES])
        more = len(parsed.rejected) - MESSAGE_EXAMPLES
        tail = f"; and {more:,} more" if more > 0 else ""
        return (f"{parsed.path}: {len(parsed.rejected):,} of {total:,} rows rejected, nothing"
                f" imported ({examples}{tail}); skipping bad rows (--skip-bad-rows) would import"
                f" the other {len(parsed.series):,} candles")
    if not len(parsed.series):
        return f"{parsed.path}: none of the {total:,} rows is a valid candle, nothing imported"
    return None


# --- reading the file ----------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    if path.is_dir():
        raise ImportRejected(f"cannot import {path}: it is a folder, not a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportRejected(f"cannot import {path}: no such file") from None
    except PermissionError:
        raise ImportRejected(f"cannot read {path}: permission denied") from None
    except OSError as error:
        raise ImportRejected(f"cannot read {path}: {error.strerror or error}") from None
    if b"\x00" in data[:65536]:
        raise ImportRejected(f"{path} is not a text file (it holds binary data); expected a CSV"
                             " candle file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRejected(f"{path} is not a UTF-8 text file (undecodable byte at offset"
                             f" {error.start}); expected a CSV candle file") from None
    if not text.strip():
        raise ImportRejected(f"{path} is empty")
    # Split on newlines only: str.splitlines also breaks on form feeds and other characters,
    # which would shift the line numbers the report quotes.
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@dataclass
class _Layout:
    format: str
    delimiter: str
    names: list[str]  # normalised header names; empty for a headerless Binance file
    data_start: int  # index of the first line after the header
    preamble: str = ""


def _normalise_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _guess_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d])


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _detect_layout(path: Path, lines: list[str]) -> _Layout:
    content: list[int] = []  # the first two non-blank lines
    for i, line in enumerate(lines):
        if line.strip():
            content.append(i)
            if len(content) == 2:
                break
    first = content[0]
    preamble = ""
    delimiter = _guess_delimiter(lines[first])
    if lines[first].count(delimiter) == 0 or "://" in lines[first]:
        # A vendor line (URL, copyright) above the header.
        if len(content) < 2:
            raise ImportRejected(f"{path} holds no CSV header or data, only {lines[first]!r}")
        preamble = lines[first].strip()
        first = content[1]
        delimiter = _guess_delimiter(lines[first])
    cells = _split(lines[first], delimiter)
    if all(_is_number(c) for c in cells):
        if len(cells) == _BINANCE_COLUMNS and delimiter == ",":
            return _Layout(FORMAT_BINANCE_KLINES, ",", [], first, preamble)
        raise ImportRejected(
            f"{path}: line {first + 1} has {len(cells)} numeric columns and no header; only"
            f" Binance kline files ({_BINANCE_COLUMNS} columns) may come without a header, other"
            " files need a header naming the time, open, high, low, close and volume columns")
    names = [_normalise_name(c) for c in cells]
    if len(names) == _BINANCE_COLUMNS and names[0] == "open_time" and "close_time" in names:
        return _Layout(FORMAT_BINANCE_KLINES, delimiter, names, first + 1, preamble)
    has_prices = all(n in names for n in ("open", "high", "low", "close"))
    has_time = any(n in names for n in _TIME_NAMES)
    if has_prices and "symbol" in names and any(n in names for n in _CDD_TIME_NAMES) and any(
            n.startswith("volume_") for n in names):
        return _Layout(FORMAT_CRYPTODATADOWNLOAD, delimiter, names, first + 1, preamble)
    if has_prices and has_time and any(n in names for n in _VOLUME_NAMES):
        return _Layout(FORMAT_GENERIC, delimiter, names, first + 1, preamble)
    wanted = ["time", "open", "high", "low", "close", "volume"]
    found = {"time": has_time, "volume": any(n in names for n in _VOLUME_NAMES)}
    missing = [w for w in wanted if not found.get(w, w in names)]
    raise ImportRejected(
        f"{path}: unrecognised file format; the header on line {first + 1} ({lines[first][:120]!r})"
        f" has no {', '.join(missing)} column. Expected a CryptoDataDownload export, a Binance"
        " kline file or a CSV whose header names time, open, high, low, close and volume")


@dataclass
class _Rows:
    """The data rows with the expected column count, as columns of text."""

    lines: IntArray
    columns: list[list[str]]
    rows_read: int
    wrong_count: list[RejectedRow]
    blank_lines: int


def _read_rows(lines: list[str], layout: _Layout, width: int, wanted: Sequence[int]) -> _Rows:
    body = lines[layout.data_start:]
    # The last piece of a file ending in a newline is not a line of its own.
    if body and body[-1] == "":
        body.pop()
    if any('"' in line for line in body):
        cells, numbers = _split_quoted(body, layout)
    else:
        # Without quotes every line is one record, and str.split is several times faster
        # than the csv module.
        cells = [line.split(layout.delimiter) for line in body]
        numbers = list(range(layout.data_start + 1, layout.data_start + 1 + len(body)))
    widths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    fits = widths == width
    wrong: list[RejectedRow] = []
    blank = 0
    for i in np.flatnonzero(~fits):
        row = cells[i]
        if len(row) <= 1 and not "".join(row).strip():
            blank += 1
        else:
            wrong.append(RejectedRow(numbers[i], f"wrong column count: expected {width}, found"
                                                 f" {len(row)}"))
    good = cells if fits.all() else [cells[i] for i in np.flatnonzero(fits)]
    columns = [list(map(itemgetter(i), good)) for i in wanted]
    return _Rows(np.asarray(numbers, dtype=np.int64)[fits], columns, len(good) + len(wrong),
                 wrong, blank)


def _split_quoted(body: list[str], layout: _Layout) -> tuple[list[list[str]], list[int]]:
    """Records and their first physical line numbers, read with CSV quoting rules."""
    # The line ends go back in so that a quoted cell spanning lines keeps its line break.
    reader = csv.reader((f"{line}\n" for line in body), delimiter=layout.delimiter)
    cells = []
    numbers = []
    previous = 0
    for row in reader:
        cells.append(row)
        numbers.append(layout.data_start + previous + 1)
        previous = reader.line_num
    return cells, numbers


# --- cell parsing ----------------------------------------------------------------------------


def _to_floats(texts: Sequence[str]) -> tuple[FloatArray, BoolArray]:
    """Numbers from text cells, NaN where a cell is no number, and which cells those were."""
    try:
        return np.array(texts, dtype=np.float64), np.zeros(len(texts), dtype=bool)
    except ValueError:
        values = np.empty(len(texts), dtype=np.float64)
        bad = np.zeros(len(texts), dtype=bool)
        for i, text in enumerate(texts):
            try:
                values[i] = float(text)
            except ValueError:
                values[i] = np.nan
                bad[i] = True
        return values, bad


def _epoch_to_ms(values: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Epoch numbers to milliseconds, choosing the unit of each row by its magnitude."""
    magnitude = np.abs(values)
    kinds = np.select([magnitude < 1e11, magnitude < 1e14, magnitude < 1e17], [1, 2, 3], 4)
    # Dividing keeps integral results exact where multiplying by 1e-3 would not.
    ms = values * np.array([1.0, 1e3, 1.0, 1.0, 1.0])[kinds] / np.array(
        [1.0, 1.0, 1.0, 1e3, 1e6])[kinds]
    return ms, kinds.astype(np.int8)


def _iso_to_ms(texts: list[str]) -> FloatArray:
    """ISO-8601 dates to ms, NaN where unreadable; a date without a zone is UTC."""
    try:
        # numpy parses zone-less ISO text in C; it only warns about zones, and those rows take
        # the exact path below instead.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            stamps = np.array(texts, dtype="datetime64[us]")
    except (ValueError, Warning):
        return np.array([_one_iso_to_ms(text) for text in texts], dtype=np.float64)
    ms = stamps.astype(np.int64) / 1000.0
    ms[np.isnat(stamps)] = np.nan
    return ms


def _one_iso_to_ms(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return np.nan
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) / _ONE_MS


def _am_pm_to_ms(texts: list[str]) -> FloatArray:
    """``2017-08-17 05-AM`` style dates to ms, NaN where unreadable."""
    parts = [_AM_PM_DATE.fullmatch(text) for text in texts]
    days = [m[1] if m else "" for m in parts]
    clock = np.array([int(m[2]) if m else -1 for m in parts], dtype=np.float64)
    afternoon = np.array([m is not None and m[3][0] in "Pp" for m in parts], dtype=bool)
    hours: FloatArray = np.where((clock >= 1) & (clock <= 12), clock % 12 + 12 * afternoon,
                                 np.nan)
    return _iso_to_ms(days) + hours * 3_600_000


def _parse_dates(texts: Sequence[str]) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Date cells to ms with their kinds (5 ISO, 6 AM/PM); NaN and kind 0 when unreadable."""
    # Only text starting with a digit may reach numpy, which would read "now" as a date.
    cleaned = [text.strip() if text[:1].isdigit() else "" for text in texts]
    am_pm = np.array([text[-2:].upper() in ("AM", "PM") for text in cleaned], dtype=bool)
    ms = np.full(len(cleaned), np.nan)
    iso_rows, am_pm_rows = np.flatnonzero(~am_pm), np.flatnonzero(am_pm)
    if len(iso_rows):
        ms[iso_rows] = _iso_to_ms([cleaned[i] for i in iso_rows])
    if len(am_pm_rows):
        ms[am_pm_rows] = _am_pm_to_ms([cleaned[i] for i in am_pm_rows])
    kinds = np.where(np.isfinite(ms), np.where(am_pm, 6, 5), 0).astype(np.int8)
    return ms, kinds


def _parse_times(texts: Sequence[str]) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Open times in (possibly fractional) ms with their kinds; NaN and kind 0 when unreadable."""
    numbers, bad = _to_floats(texts)
    ms, kinds = _epoch_to_ms(numbers)
    dates = np.flatnonzero(bad | ~np.isfinite(numbers))
    if len(dates):
        ms[dates], kinds[dates] = _parse_dates([texts[int(i)] for i in dates])
    return ms, kinds


# --- the per-format readers ----------------------------------------------------------------


@dataclass
class _Table:
    """Parsed columns of the rows with the right width; ``reasons`` holds row-level faults."""

    rows: _Rows
    time_texts: list[str]
    times: FloatArray
    kinds: npt.NDArray[np.int8]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    reasons: dict[int, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


def _numbers(texts: list[str], label: str, reasons: dict[int, list[str]]) -> FloatArray:
    """A column as numbers; each cell that is no number gets a reason."""
    values, bad = _to_floats(texts)
    for i in np.flatnonzero(bad):
        cell = texts[i]
        reasons.setdefault(int(i), []).append(
            f"empty {label} cell" if not cell.strip()
            else f"cannot read {label} {cell!r} as a number")
    return values


def _table(rows: _Rows, volume_label: str = "volume") -> _Table:
    """Parse the first six columns of ``rows``: time, open, high, low, close, volume."""
    reasons: dict[int, list[str]] = {}
    time_texts = rows.columns[0]
    times, kinds = _parse_times(time_texts)
    for i in np.flatnonzero(kinds == 0):
        reasons.setdefault(int(i), []).append(f"cannot read the time {time_texts[i]!r}")
    o, h, low, c, v = (_numbers(rows.columns[k], label, reasons) for k, label in
                       enumerate(("open", "high", "low", "close", volume_label), 1))
    return _Table(rows, time_texts, times, kinds, o, h, low, c, v, reasons=reasons)


def _read_binance(lines: list[str], layout: _Layout) -> _Table:
    return _table(_read_rows(lines, layout, _BINANCE_COLUMNS, range(6)))


def _read_generic(path: Path, lines: list[str], layout: _Layout, symbol: str) -> _Table:
    names = layout.names
    time_name = next(n for n in _TIME_NAMES if n in names)
    volume_name = next(n for n in _VOLUME_NAMES if n in names)
    wanted = [names.index(n) for n in (time_name, "open", "high", "low", "close", volume_name)]
    extras = [n for n in ("date", "symbol") if n in names and n != time_name]
    rows = _read_rows(lines, layout, len(names), wanted + [names.index(n) for n in extras])
    extra = dict(zip(extras, rows.columns[6:], strict=True))
    times = rows.columns[0]
    if time_name == "time" and "date" in extra and times and _CLOCK.fullmatch(times[0].strip()):
        # Separate date and time-of-day columns.
        rows.columns[0] = [f"{day.strip()} {clock.strip()}"
                           for day, clock in zip(extra["date"], times, strict=True)]
    table = _table(rows)
    if "symbol" in extra:
        table.problem = _symbol_problem(path, extra["symbol"], symbol)
    return table


def _read_cryptodatadownload(path: Path, lines: list[str], layout: _Layout,
                             symbol: str) -> _Table:
    names = layout.names
    time_name = next(n for n in _CDD_TIME_NAMES if n in names)
    volumes = [(i, n.removeprefix("volume_").upper()) for i, n in enumerate(names)
               if n.startswith("volume_")]
    base_asset, quote_asset = symbol.split("/")
    base = next((i for i, asset in volumes if asset == base_asset), None)
    quote = next((i for i, asset in volumes if asset == quote_asset), None)
    notes = []
    if base is None or quote is None or base == quote:
        if len(volumes) != 2:
            found = ", ".join(f"'Volume {asset}'" for _, asset in volumes)
            raise ImportRejected(
                f"{path}: cannot tell the {base_asset} volume column from {found}")
        base, quote = volumes[0][0], volumes[1][0]
        notes.append(f"volume columns {volumes[0][1]!r} and {volumes[1][1]!r} do not name"
                     f" {symbol}'s assets; took the first as the {base_asset} volume")
    wanted = [names.index(n) for n in (time_name, "open", "high", "low", "close")]
    wanted += [base, quote, names.index("symbol")]
    if time_name != "date" and "date" in names:
        wanted.append(names.index("date"))
    rows = _read_rows(lines, layout, len(names), wanted)
    table = _table(rows, f"Volume {base_asset}")
    table.notes.extend(notes)
    table.problem = _symbol_problem(path, rows.columns[7], symbol)
    _check_volumes(table, rows.columns[6], f"Volume {quote_asset}")
    if len(rows.columns) > 8:
        _compare_dates(table, rows.columns[8])
    return table


def _compare_dates(table: _Table, date_texts: list[str]) -> None:
    """Note rows whose ``date`` text disagrees with their ``unix`` time, which is what is used.

    Some vendors wrote the older ``date`` cells in US Eastern time instead of UTC.
    """
    dates, _ = _parse_dates(date_texts)
    with np.errstate(invalid="ignore"):
        offsets = dates - table.times
        differs = np.isfinite(offsets) & (offsets != 0)
    if not differs.any():
        return
    values, counts = np.unique(offsets[differs], return_counts=True)
    parts = [f"{int(count):,} {_duration(abs(value))} {'behind' if value < 0 else 'ahead'}"
             for value, count in zip(values, counts, strict=True)]
    table.notes.append(
        f"{_rows(int(differs.sum()))} with a date that disagrees with the unix time"
        f" ({', '.join(parts)}; lines {_line_list(table.rows.lines[differs])}); the unix time"
        " was used")


def _symbol_problem(path: Path, cells: list[str], symbol: str) -> str | None:
    seen = sorted(set(cells))
    found: list[str] = []
    for cell in seen:
        try:
            found.append(normalize_symbol(cell))
        except InvalidArgument:
            found.append(cell.strip())
    other = sorted({f for f in found if f != symbol})
    if not other:
        return None
    return (f"{path} holds {', '.join(other)} candles (its symbol column), but the symbol given"
            f" is {symbol}; nothing imported")


def _check_volumes(table: _Table, quote_texts: list[str], quote_label: str) -> None:
    """Undo swapped volume columns and note the rows whose volumes cannot be checked.

    A bar's volume-weighted price, quote volume / base volume, lies within [low, high]. When
    base / quote lies there instead, the vendor swapped the two columns in that row.
    """
    quote, bad = _to_floats(quote_texts)
    lines = table.rows.lines
    missing = np.zeros(len(quote), dtype=bool)
    for i in np.flatnonzero(bad | np.isnan(quote)):
        if quote_texts[i].strip().lower() in _MISSING_CELLS:
            missing[i] = True
        else:
            table.reasons.setdefault(int(i), []).append(
                f"cannot read {quote_label} {quote_texts[i]!r} as a number")
    if missing.any():
        table.notes.append(
            f"{_rows(int(missing.sum()))} without a {quote_label} value (lines"
            f" {_line_list(lines[missing])}); only the base volume is stored, so they were kept,"
            " but their volumes could not be checked for swapped columns")
    base = table.volume
    low, high = table.low, table.high
    with np.errstate(divide="ignore", invalid="ignore"):
        checkable = (base > 0) & (quote > 0) & np.isfinite(base) & np.isfinite(quote)
        vwap, inverse = quote / base, base / quote
    as_given = (vwap >= low) & (vwap <= high)
    swapped = checkable & ~as_given & (inverse >= low) & (inverse <= high)
    neither = checkable & ~as_given & ~swapped
    if swapped.any():
        table.volume = np.where(swapped, quote, base)
        table.notes.append(
            f"{_rows(int(swapped.sum()))} with the two volume columns swapped (lines"
            f" {_line_list(lines[swapped])}); their volumes were swapped back")
    if neither.any():
        table.notes.append(
            f"{_rows(int(neither.sum()))} with a volume-weighted price ({quote_label} / base"
            f" volume) outside their low-high range, probably from rounded volumes (lines"
            f" {_line_list(lines[neither])}); kept as given")


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


def _line_list(lines: IntArray) -> str:
    shown = ", ".join(str(int(n)) for n in lines[:MESSAGE_EXAMPLES])
    return f"{shown}, ..." if len(lines) > MESSAGE_EXAMPLES else shown


def _time_kinds_note(kinds: npt.NDArray[np.int8]) -> str | None:
    present = [(int(k), int(c)) for k, c in zip(*np.unique(kinds[kinds > 0], return_counts=True),
                                                strict=True)]
    if not present or (len(present) == 1 and present[0][0] == _KIND_MS):
        return None
    parts = [f"{_rows(count)} in {_KIND_NAMES[kind]}" for kind, count in present]
    return "open times: " + ", ".join(parts)


# --- checks shared by every format ---------------------------------------------------------


def _parse(path: Path, symbol: str,
           timeframe: Timeframe | None) -> tuple[ParsedFile, str | None]:
    """Read ``path`` and check its rows; returns the result and a file-level problem, if any.
    ``timeframe`` None infers it from the rows' spacing."""
    lines = _read_lines(path)
    layout = _detect_layout(path, lines)
    if layout.format == FORMAT_BINANCE_KLINES:
        table = _read_binance(lines, layout)
    elif layout.format == FORMAT_CRYPTODATADOWNLOAD:
        table = _read_cryptodatadownload(path, lines, layout, symbol)
    else:
        table = _read_generic(path, lines, layout, symbol)
    rows = table.rows
    if rows.rows_read == 0:
        raise ImportRejected(f"{path} has a header but no data rows")
    if timeframe is None:
        timeframe = infer_timeframe(path, table.times)
    venue_hint = None
    if layout.format == FORMAT_BINANCE_KLINES or (
            layout.format == FORMAT_CRYPTODATADOWNLOAD
            and (_BINANCE_NAME.search(path.name) or "binance" in layout.preamble.lower())):
        venue_hint = BINANCE_VENUE
    spacing = _spacing_problem(path, table.times, timeframe)
    problem = table.problem or spacing
    _check_candles(table, timeframe, check_grid=spacing is None)
    notes = list(table.notes)
    time_note = _time_kinds_note(table.kinds)
    if time_note:
        notes.insert(0, time_note)
    if rows.blank_lines:
        notes.append(f"{rows.blank_lines:,} blank lines ignored")
    valid = np.ones(len(rows.lines), dtype=bool)
    valid[list(table.reasons)] = False
    rejected = sorted(
        [*rows.wrong_count,
         *(RejectedRow(int(rows.lines[i]), "; ".join(r)) for i, r in table.reasons.items())],
        key=lambda r: r.line)
    series, duplicates, order_note = _assemble(table, valid, timeframe)
    if order_note:
        notes.insert(0, order_note)
    # Gaps measured in bars of the wrong length would only mislead.
    gaps = () if spacing else tuple(find_gaps(series))
    parsed = ParsedFile(
        path=path, format=layout.format, symbol=symbol, series=series,
        rows_read=rows.rows_read, duplicates=tuple(duplicates), gaps=gaps,
        rejected=tuple(rejected), notes=tuple(notes), venue_hint=venue_hint)
    return parsed, problem


def _check_candles(table: _Table, timeframe: Timeframe, *, check_grid: bool) -> None:
    """Add a reason for each row that is not a valid candle on the timeframe's grid."""
    o, h, low, c, v = table.open, table.high, table.low, table.close, table.volume
    unread = np.zeros(len(o), dtype=bool)
    unread[list(table.reasons)] = True
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(low) & np.isfinite(c) & \
            np.isfinite(v)
        broken = ~finite | (np.minimum(np.minimum(o, h), np.minimum(low, c)) <= 0) | (h < low) \
            | (o < low) | (o > h) | (c < low) | (c > h) | (v < 0)
    for i in np.flatnonzero(broken & ~unread):
        candle = Candle(0, float(o[i]), float(h[i]), float(low[i]), float(c[i]), float(v[i]))
        table.reasons.setdefault(int(i), []).extend(candle.problems())
    times = table.times
    known = np.isfinite(times)
    with np.errstate(invalid="ignore"):
        implausible = known & ((times < _EARLIEST_MS) | (times >= _LATEST_MS))
    for i in np.flatnonzero(implausible):
        table.reasons.setdefault(int(i), []).append(
            f"time {table.time_texts[i]!r} is not a plausible candle time (before 2009 or after"
            " 2100)")
    if not check_grid:
        return
    candidates = np.flatnonzero(known & ~implausible)
    whole = times[candidates] == np.floor(times[candidates])
    as_int = times[candidates].astype(np.int64)
    aligned = whole & ((as_int - timeframe.origin_ms) % timeframe.ms == 0)
    for i in candidates[~aligned]:
        stamp = int(times[i])
        shown = format_ms(stamp) if times[i] == stamp else f"{times[i]!r} ms"
        table.reasons.setdefault(int(i), []).append(
            f"open time {shown} ({table.time_texts[i].strip()}) is not on the {timeframe} grid")


def infer_timeframe(path: Path, times: FloatArray) -> Timeframe:
    """The timeframe whose length is the most common step between the distinct open times.

    Exchanges leave gaps, so the most common step, not the smallest, is the candle length;
    of equally common steps the shortest wins. Raises :class:`ImportRejected` when there are
    fewer than two open times or the step is no timeframe's length.
    """
    distinct = np.unique(times[np.isfinite(times)])
    if len(distinct) < 2:
        raise ImportRejected(f"{path}: one candle says nothing about the candle length; give"
                             " the timeframe")
    values, counts = np.unique(np.diff(distinct), return_counts=True)
    typical = float(values[int(np.argmax(counts))])
    found = next((tf for tf in Timeframe if tf.ms == typical), None)
    if found is None:
        known = ", ".join(tf.code for tf in Timeframe)
        raise ImportRejected(f"{path}: most rows are {_duration(typical)} apart, which is no"
                             f" timeframe ({known}); cannot infer the timeframe")
    return found


def _spacing_problem(path: Path, times: FloatArray, timeframe: Timeframe) -> str | None:
    """Why the file's rows cannot be ``timeframe`` candles, judged by their spacing."""
    distinct = np.unique(times[np.isfinite(times)])
    if len(distinct) < 3:
        return None
    steps = np.diff(distinct)
    values, counts = np.unique(steps, return_counts=True)
    typical = float(values[int(np.argmax(counts))])
    # Exchanges leave gaps, so a coarser look needs every step to be longer than a bar; a
    # finer file is recognised by its most common step.
    if typical == timeframe.ms or (typical > timeframe.ms and steps.min() <= timeframe.ms):
        return None
    guess = next((tf for tf in Timeframe if tf.ms == typical), None)
    looks = f"looks like {guess} candles" if guess else "matches no timeframe"
    hint = f"; import it with --timeframe {guess}" if guess else ""
    return (f"{path}: most rows are {_duration(typical)} apart, so the file {looks}, not"
            f" {timeframe}{hint}; nothing imported")


def _duration(ms: float) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{int(ms // size)}{unit}"
    return f"{ms:g} ms"


def _assemble(table: _Table, valid: BoolArray,
              timeframe: Timeframe) -> tuple[CandleSeries, list[Duplicate], str | None]:
    """The valid rows as an ascending series, keeping the first row of each open time."""
    index = np.flatnonzero(valid)
    times = table.times[index].astype(np.int64)
    order_note = None
    if len(times) > 1:
        steps = np.diff(times)
        if bool(np.all(steps <= 0)):
            order_note = "rows were newest first; sorted oldest first"
        elif not bool(np.all(steps >= 0)):
            order_note = "rows were out of time order; sorted oldest first"
    # A stable sort keeps file order among equal times, so each run starts with the first row.
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    first_of_run = np.r_[True, sorted_times[1:] != sorted_times[:-1]]
    keep = index[order[first_of_run]]
    columns = (table.open, table.high, table.low, table.close, table.volume)
    duplicates = []
    run_start = np.maximum.accumulate(np.where(first_of_run, np.arange(len(order)), 0))
    lines = table.rows.lines
    for position in np.flatnonzero(~first_of_run):
        kept = index[order[run_start[position]]]
        dropped = index[order[position]]
        duplicates.append(Duplicate(
            open_time=int(sorted_times[position]),
            kept_line=int(lines[kept]),
            dropped_line=int(lines[dropped]),
            conflicting=any(col[kept] != col[dropped] for col in columns),
        ))
    series = CandleSeries(
        timeframe=timeframe,
        open_time=table.times[keep].astype(np.int64),
        open=table.open[keep], high=table.high[keep], low=table.low[keep],
        close=table.close[keep], volume=table.volume[keep],
    )
    return series, duplicates, order_note

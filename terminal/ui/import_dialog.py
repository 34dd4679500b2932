"""File → Import candles: choose a CSV file, say which pair it holds, import it off the GUI
thread and show the whole report.

The importer (``terminal.exchange.importers``) validates the complete file before it writes
anything and stores it in one transaction, so a rejected file stores nothing; the report then
says why, with every rejected row's line number.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from terminal.commands.import_command import summary_lines
from terminal.core.errors import TerminalError
from terminal.core.model import Timeframe, normalize_symbol
from terminal.core.series import SeriesKey
from terminal.core.storage import Store
from terminal.exchange.importers import (
    ImportFailed,
    ImportReport,
    import_file,
    read_candle_file,
    venue_id,
)
from terminal.widgets.forms import FieldBox, show_state

log = logging.getLogger(__name__)

#: The timeframe combo's first choice: take it from the file's candle spacing.
DETECT = "detect"
_PAIR_IN_NAME = re.compile(r"([A-Z0-9]{2,10}[-_/]?(?:USDT|USDC|BUSD|FDUSD|USD|EUR|BTC|ETH|BNB))",
                           re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ImportRequest:
    path: Path
    symbol: str
    timeframe: Timeframe | None
    venue: str | None
    skip_bad_rows: bool


class _Signals(QObject):
    finished = Signal(object, str)  # ImportReport, how the timeframe was chosen
    failed = Signal(object, str)  # ImportReport or None, message


class _ImportJob(QRunnable):
    def __init__(self, store: Store, request: ImportRequest, signals: _Signals) -> None:
        super().__init__()
        self._store = store
        self._request = request
        self._signals = signals

    def run(self) -> None:
        request = self._request
        try:
            timeframe, how = request.timeframe, "as chosen"
            if timeframe is None:
                # Bad rows must not hide the spacing of the good ones; the import itself
                # still rejects the file for them unless asked to skip them.
                parsed = read_candle_file(request.path, symbol=request.symbol, timeframe=None,
                                          skip_bad_rows=True)
                timeframe, how = parsed.series.timeframe, "detected from the candle spacing"
            report = import_file(self._store, request.path, symbol=request.symbol,
                                 timeframe=timeframe, venue=request.venue,
                                 skip_bad_rows=request.skip_bad_rows)
        except ImportFailed as failure:
            self._signals.failed.emit(failure.report, str(failure))
        except TerminalError as error:
            self._signals.failed.emit(None, str(error))
        except Exception as error:
            log.exception("import failed")
            self._signals.failed.emit(None, f"the import failed: {error!r} (details in the log)")
        else:
            self._signals.finished.emit(report, how)


def guess_symbol(path: Path) -> str | None:
    """The pair a file's name suggests (``Binance_BTCUSDT_1h.csv`` → ``BTC/USDT``)."""
    for match in _PAIR_IN_NAME.finditer(path.stem):
        try:
            return normalize_symbol(match.group(1))
        except TerminalError:
            continue
    return None


class ImportDialog(QDialog):
    """Non-modal import form; emits :attr:`imported` with the stored series' key."""

    imported = Signal(object)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import candles")
        self.setMinimumWidth(640)
        self._store = store
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._running = False

        self._path = QLineEdit()
        self._path.setPlaceholderText("CSV file: CryptoDataDownload, Binance klines or generic"
                                      " OHLCV")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.choose_file)
        path_row = QWidget()
        row = QHBoxLayout(path_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._path, 1)
        row.addWidget(browse)
        self._path_box = FieldBox(path_row)
        self._symbol = QLineEdit()
        self._symbol.setPlaceholderText("BTC/USDT")
        self._symbol_box = FieldBox(self._symbol)
        self._timeframe = QComboBox()
        self._timeframe.addItem("Detect from the file", DETECT)
        for timeframe in Timeframe:
            self._timeframe.addItem(timeframe.code, timeframe.code)
        self._venue = QLineEdit()
        self._venue.setPlaceholderText("binance for Binance files, otherwise imported")
        self._venue_box = FieldBox(self._venue, "Imported series are kept apart from the live"
                                                " market's and listed in the symbol box.")
        self._skip = QCheckBox("Import the valid rows of a file with bad rows (they are listed)")
        form = QFormLayout()
        form.addRow("File", self._path_box.box)
        form.addRow("Symbol", self._symbol_box.box)
        form.addRow("Timeframe", self._timeframe)
        form.addRow("Venue", self._venue_box.box)
        form.addRow("", self._skip)

        self._status = QLabel("")
        self._status.setObjectName("ImportStatus")
        self._status.setWordWrap(True)
        self._report = QPlainTextEdit()
        self._report.setObjectName("ImportReport")
        self._report.setReadOnly(True)
        self._report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._report.setPlaceholderText("The report appears here.")
        self._report.setMinimumHeight(220)
        buttons = QDialogButtonBox()
        self._import_button = buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self._import_button.setObjectName("Primary")
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self.start_import)
        buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addWidget(self._status)
        column.addWidget(self._report, 1)
        column.addWidget(buttons)
        self._path.textChanged.connect(self._on_path_changed)

    # -- input ------------------------------------------------------------------------------

    def choose_file(self) -> QFileDialog:
        dialog = QFileDialog(self, "Import candles", str(Path.home()),
                             "CSV files (*.csv *.txt);;All files (*)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.set_path)
        dialog.open()
        return dialog

    def set_path(self, path: str | Path) -> None:
        self._path.setText(str(path))

    def set_symbol(self, symbol: str) -> None:
        self._symbol.setText(symbol)

    def set_timeframe(self, code: str | None) -> None:
        index = self._timeframe.findData(code or DETECT)
        self._timeframe.setCurrentIndex(max(0, index))

    def _on_path_changed(self, text: str) -> None:
        guessed = guess_symbol(Path(text)) if text.strip() else None
        if guessed and not self._symbol.text().strip():
            self._symbol.setText(guessed)

    def request(self) -> ImportRequest | None:
        """The form as an import request, or None with the errors shown at the fields."""
        ok = True
        path = Path(self._path.text().strip()).expanduser()
        if not self._path.text().strip():
            self._path_box.set_error("choose the file to import")
            ok = False
        elif not path.is_file():
            self._path_box.set_error(f"no such file: {path}")
            ok = False
        else:
            self._path_box.set_error(None)
        symbol = ""
        try:
            symbol = normalize_symbol(self._symbol.text())
            self._symbol_box.set_error(None)
        except TerminalError as error:
            self._symbol_box.set_error(str(error))
            ok = False
        venue = None
        if self._venue.text().strip():
            try:
                venue = venue_id(self._venue.text())
                self._venue_box.set_error(None)
            except TerminalError as error:
                self._venue_box.set_error(str(error))
                ok = False
        else:
            self._venue_box.set_error(None)
        if not ok:
            return None
        code = self._timeframe.currentData()
        timeframe = None if code == DETECT else Timeframe(code)
        return ImportRequest(path, symbol, timeframe, venue, self._skip.isChecked())

    # -- running ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def start_import(self) -> bool:
        """Start importing in the background; False when the form has errors or an import
        is already running."""
        if self._running:
            return False
        request = self.request()
        if request is None:
            return False
        self._running = True
        self._import_button.setEnabled(False)
        self._set_status(f"Importing {request.path.name}…", None)
        self._report.clear()
        self._pool.start(_ImportJob(self._store, request, self._signals))
        return True

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the import job has finished (tests and closing only)."""
        return self._pool.waitForDone(timeout_ms)

    def _on_finished(self, report: ImportReport, how: str) -> None:
        self._running = False
        self._import_button.setEnabled(True)
        self._set_status(f"Imported {report.candles:,} {report.timeframe.code} candles of"
                         f" {report.symbol} ({report.stored:,} new or changed); timeframe"
                         f" {how}", True)
        self._report.setPlainText("\n".join(summary_lines(report, shown=len(report.rejected)
                                                          + len(report.duplicates))))
        self.imported.emit(SeriesKey(report.venue, report.symbol, report.timeframe))

    def _on_failed(self, report: ImportReport | None, message: str) -> None:
        self._running = False
        self._import_button.setEnabled(True)
        # The importer names the command line's option; here it is the check box.
        message = message.replace("(--skip-bad-rows)", "(the check box above)")
        self._set_status(f"Rejected, nothing stored: {message}", False)
        if report is not None:
            self._report.setPlainText("\n".join(summary_lines(report, shown=len(report.rejected)
                                                              + len(report.duplicates))))

    def _set_status(self, text: str, ok: bool | None) -> None:
        show_state(self._status, text, "ok", ok)

    @property
    def status_text(self) -> str:
        return self._status.text()

    @property
    def report_text(self) -> str:
        return self._report.toPlainText()

    def field_error(self, name: str) -> str:
        """The error shown at ``path``, ``symbol`` or ``venue``."""
        return {"path": self._path_box, "symbol": self._symbol_box,
                "venue": self._venue_box}[name].error_text

    def done(self, result: int) -> None:
        self.wait()
        super().done(result)


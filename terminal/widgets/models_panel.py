"""The models panel: the charted series' registered models with their out-of-sample figures,
training with progress, a live loss curve and cancel, the retraining schedule, activation and
rollback, and the explicit "trade on it despite no skill" override.

It only shows and asks: every action is a signal the forecasting controller carries out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pyqtgraph as pg
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from terminal.core.forecasts import ModelRecord, RetrainSchedule
from terminal.widgets.prediction_panel import verdict_tone

_Index = QModelIndex | QPersistentModelIndex
MODEL_COLUMNS = ("#", "Model", "Horizons", "Training window", "MSE skill", "DM p", "Dir. acc",
                 "Verdict", "Active", "Trading")
DEFAULT_EPOCHS = 20
MAX_EPOCHS = 500


def _day(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _number(value: object, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) and math.isfinite(
        value) else "—"


def _scaled(share: object, pattern: str) -> str:
    """A share (0.006) as a percentage with ``pattern``; a dash when it is missing."""
    return _number(share * 100 if isinstance(share, int | float) else share, pattern)


def model_versions(records: Sequence[ModelRecord]) -> dict[int, int]:
    """Each model's version: its place among its series' models of the same architecture."""
    counts: dict[str, int] = {}
    versions: dict[int, int] = {}
    for record in sorted(records, key=lambda r: r.id):
        counts[record.architecture] = counts.get(record.architecture, 0) + 1
        versions[record.id] = counts[record.architecture]
    return versions


class ModelTableModel(QAbstractTableModel):
    """Registered models, newest first; figures are those of the shortest horizon, every
    horizon's in the tooltip."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._records: list[ModelRecord] = []
        self._versions: dict[int, int] = {}
        self._colors = ("#26a69a", "#ef5350", "#f7a600", "#787b86")
        self._bold = QFont()
        self._bold.setBold(True)

    def set_colors(self, up: str, down: str, warning: str, muted: str) -> None:
        self._colors = (up, down, warning, muted)
        self._refresh_all()

    def set_records(self, records: Sequence[ModelRecord]) -> None:
        self.beginResetModel()
        self._records = sorted(records, key=lambda r: r.id, reverse=True)
        self._versions = model_versions(records)
        self.endResetModel()

    def record(self, row: int) -> ModelRecord:
        return self._records[row]

    @property
    def records(self) -> list[ModelRecord]:
        return list(self._records)

    def version(self, model_id: int) -> int:
        return self._versions.get(model_id, 1)

    def row_of(self, model_id: int) -> int | None:
        return next((row for row, r in enumerate(self._records) if r.id == model_id), None)

    def _refresh_all(self) -> None:
        if self._records:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._records) - 1, len(MODEL_COLUMNS) - 1))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(MODEL_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return MODEL_COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole and section in (4, 5, 6):
            return ("Walk-forward, out of sample, at the model's shortest horizon (hover a row"
                    " for every horizon): MSE skill against persistence, Diebold-Mariano"
                    " p-value, direction accuracy")
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        record, column = self._records[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record, column)
        if role == Qt.ItemDataRole.FontRole and record.active:
            return self._bold
        if role == Qt.ItemDataRole.ForegroundRole:
            up, down, warning, muted = self._colors
            if column == 7:
                tone = verdict_tone(record.verdict)
                return QColor(up if tone == "good" else warning if "leak" in record.verdict
                              else down if tone == "alarm" else muted)
            if column == 9:
                return QColor(up if record.has_skill else warning if record.trading_override
                              else muted)
            if column == 8 and record.active:
                return QColor(up)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(record)
        return None

    def _first(self, record: ModelRecord) -> dict[str, object]:
        metrics = record.metrics.get(str(min(record.horizons)), {})
        return metrics if isinstance(metrics, dict) else {}

    def _text(self, record: ModelRecord, column: int) -> str:
        first = self._first(record)
        if column == 0:
            return str(record.id)
        if column == 1:
            return f"{record.architecture} v{self.version(record.id)}"
        if column == 2:
            return ", ".join(str(h) for h in record.horizons)
        if column == 3:
            return f"{_day(record.train_start)} → {_day(record.train_end)}"
        if column == 4:
            return _scaled(first.get("mse_skill"), "{:+.2f}%")
        if column == 5:
            return _number(first.get("dm_pvalue"), "{:.2g}")
        if column == 6:
            return _scaled(first.get("dir_acc"), "{:.1f}%")
        if column == 7:
            return record.verdict
        if column == 8:
            return "● active" if record.active else ""
        if record.has_skill:
            return "allowed"
        return "override" if record.trading_override else "off (no skill)"

    @staticmethod
    def _tooltip(record: ModelRecord) -> str:
        lines = [f"model #{record.id}: {record.architecture}, trained on"
                 f" {_day(record.train_start)} → {_day(record.train_end)}"
                 f" ({record.data_fingerprint.split(':')[0]} candles)"]
        for horizon in record.horizons:
            m = record.metrics.get(str(horizon), {})
            if not isinstance(m, dict):
                continue
            skill = _scaled(m.get("mse_skill"), "{:+.2f}%")
            accuracy = _scaled(m.get("dir_acc"), "{:.1f}%")
            lines.append(f"{horizon} bars: MSE skill {skill}, DM p"
                         f" {_number(m.get('dm_pvalue'), '{:.2g}')}, direction {accuracy},"
                         f" MASE {_number(m.get('mase'), '{:.3f}')} — {m.get('verdict', '')}")
        return "\n".join(lines)


class ModelsPanel(QWidget):
    """Registered models, training, schedules and activation for the charted series."""

    #: Train (architecture, epochs or 0 for the model's default, activate when done).
    train_requested = Signal(str, int, bool)
    cancel_requested = Signal()
    activate_requested = Signal(int)
    rollback_requested = Signal()
    #: Allow automated trading on a model without skill (confirmed) or take it back.
    override_requested = Signal(int, bool)
    #: Save the retraining schedule: (architecture, "daily" or "candles", HH:MM or N,
    #: refresh data first).
    schedule_requested = Signal(str, str, str, bool)
    unschedule_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._neural: tuple[str, ...] = ()
        self._schedule: RetrainSchedule | None = None
        self._loss_points: list[tuple[int, float | None, float | None]] = []
        self._confirm: QMessageBox | None = None
        self._training = False
        self._has_series = False

        self.model = ModelTableModel(self)
        self._table = QTableView(self)
        self._table.setModel(self.model)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.verticalHeader().hide()
        self._table.verticalHeader().setDefaultSectionSize(22)
        self._table.setShowGrid(False)
        header = self._table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self._table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self._empty = QLabel(self)
        self._empty.setWordWrap(True)

        self._activate = QPushButton("Activate", self)
        self._activate.setToolTip("Forecast this series with the selected model")
        self._activate.clicked.connect(self._on_activate)
        self._rollback = QPushButton("Roll back", self)
        self._rollback.setToolTip("Go back to the model that was active before this one")
        self._rollback.clicked.connect(self.rollback_requested)
        self._override = QCheckBox("Use for automated trading despite no skill", self)
        self._override.setToolTip(
            "A model that has not beaten persistence out of sample is never traded on"
            " automatically unless you allow it here (asks for confirmation)")
        self._override.clicked.connect(self._on_override_clicked)
        actions = QHBoxLayout()
        actions.addWidget(self._activate)
        actions.addWidget(self._rollback)
        actions.addSpacing(12)
        actions.addWidget(self._override)
        actions.addStretch(1)

        training = QGroupBox("Train", self)
        self._architecture = QComboBox(training)
        self._architecture.setToolTip("ridge: fast linear model (seconds); the networks train"
                                      " for minutes on a CPU")
        self._architecture.currentTextChanged.connect(lambda _: self._update_buttons())
        self._epochs = QSpinBox(training)
        self._epochs.setRange(1, MAX_EPOCHS)
        self._epochs.setValue(DEFAULT_EPOCHS)
        self._epochs.setSuffix(" epochs")
        self._activate_when_done = QCheckBox("Activate when done", training)
        self._activate_when_done.setChecked(True)
        self._train = QPushButton("Train now", training)
        self._train.clicked.connect(self._on_train)
        self._cancel = QPushButton("Cancel", training)
        self._cancel.clicked.connect(self.cancel_requested)
        self._progress = QProgressBar(training)
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        self._progress.setTextVisible(False)  # the status line below says it in words
        self._progress.setStyleSheet("QProgressBar { max-width: 16777215px; }")
        self._status = QLabel("Idle", training)
        self._status.setWordWrap(True)
        self._loss = pg.PlotWidget(training)
        self._loss.setMinimumHeight(80)
        self._loss.setMenuEnabled(False)
        self._loss.setMouseEnabled(x=False, y=False)
        self._loss.hideButtons()
        plot = self._loss.getPlotItem()
        plot.showAxis("right")
        plot.hideAxis("left")
        self._loss.setToolTip("Loss per epoch on the training rows and on the validation"
                              " holdout (early stopping watches the latter)")
        self._legend = plot.addLegend(offset=(-6, 4), colCount=2)
        self._train_curve = self._loss.plot([], [], name="train loss")
        self._validation_curve = self._loss.plot([], [], name="validation loss")
        train_row = QHBoxLayout()
        for widget in (self._architecture, self._epochs, self._activate_when_done):
            train_row.addWidget(widget)
        train_row.addStretch(1)
        train_row.addWidget(self._train)
        train_row.addWidget(self._cancel)
        training_layout = QVBoxLayout(training)
        training_layout.setSpacing(4)
        training_layout.addLayout(train_row)
        training_layout.addWidget(self._progress)
        training_layout.addWidget(self._status)
        training_layout.addWidget(self._loss, 1)

        scheduling = QGroupBox("Retrain schedule", self)
        self._next_run = QLabel("No schedule", scheduling)
        self._next_run.setWordWrap(True)
        self._schedule_kind = QComboBox(scheduling)
        self._schedule_kind.addItem("Daily at (UTC)", "daily")
        self._schedule_kind.addItem("Every N candles", "candles")
        self._schedule_kind.currentIndexChanged.connect(lambda _: self._show_schedule_field())
        self._daily_at = QLineEdit("03:00", scheduling)
        self._daily_at.setPlaceholderText("HH:MM")
        self._daily_at.setMaximumWidth(70)
        self._every = QSpinBox(scheduling)
        self._every.setRange(1, 100_000)
        self._every.setValue(24)
        self._every.setSuffix(" candles")
        self._refresh_data = QCheckBox("Fetch new data first", scheduling)
        self._save_schedule = QPushButton("Save schedule", scheduling)
        self._save_schedule.clicked.connect(self._on_save_schedule)
        self._remove_schedule = QPushButton("Remove", scheduling)
        self._remove_schedule.clicked.connect(self._on_remove_schedule)
        schedule_row = QHBoxLayout()
        for widget in (self._schedule_kind, self._daily_at, self._every, self._refresh_data):
            schedule_row.addWidget(widget)
        schedule_row.addStretch(1)
        schedule_row.addWidget(self._save_schedule)
        schedule_row.addWidget(self._remove_schedule)
        schedule_layout = QVBoxLayout(scheduling)
        schedule_layout.addWidget(self._next_run)
        schedule_layout.addLayout(schedule_row)

        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self._empty)
        top_layout.addWidget(self._table, 1)
        top_layout.addLayout(actions)
        bottom = QWidget(self)
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(training, 1)
        bottom_layout.addWidget(scheduling)
        # Side by side: the panel docks below the chart, where width is plentiful.
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self.set_colors("#2962ff", "#26a69a", "#ef5350", "#f7a600", "#787b86", "#131722",
                        "#d1d4dc")
        self._show_schedule_field()
        self.set_series(None)

    # -- what the controller sets -------------------------------------------------------------

    def set_architectures(self, names: Sequence[str], neural: Sequence[str],
                          default: str) -> None:
        """The architectures offered; ``neural`` ones train for a number of epochs."""
        self._neural = tuple(neural)
        self._architecture.clear()
        self._architecture.addItems(list(names))
        self._architecture.setCurrentText(default)
        self._update_buttons()

    def set_series(self, series: str | None) -> None:
        """The charted series (None: none yet); the models are set separately."""
        self._has_series = series is not None
        self._series = series or ""
        self._update_buttons()

    def set_models(self, records: Sequence[ModelRecord]) -> None:
        selected = self.selected_model
        self.model.set_records(records)
        row = self.model.row_of(selected.id) if selected is not None else None
        if row is None:
            row = next((r for r, record in enumerate(self.model.records) if record.active), None)
        if row is not None:
            self._table.selectRow(row)
        if records:
            self._empty.hide()
        else:
            self._empty.setText(f"No models for {self._series} yet. Train one below: ridge takes"
                                " seconds and is the honest yardstick the networks must beat."
                                if self._series else "Waiting for the market's instruments…")
            self._empty.show()
        self._update_buttons()

    def set_schedule(self, schedule: RetrainSchedule | None, next_run: str) -> None:
        """The series' retraining schedule (or None) and when it runs next, in words."""
        self._schedule = schedule
        if schedule is None:
            self._next_run.setText("No retraining scheduled.")
        else:
            self._next_run.setText(f"Retrains {schedule.architecture} {next_run}")
            self._schedule_kind.setCurrentIndex(0 if schedule.daily_at else 1)
            if schedule.daily_at:
                self._daily_at.setText(schedule.daily_at)
            if schedule.every_candles:
                self._every.setValue(schedule.every_candles)
            self._refresh_data.setChecked(schedule.refresh_data)
            self._architecture.setCurrentText(schedule.architecture)
        self._update_buttons()

    def training_started(self, architecture: str) -> None:
        self._training = True
        self._loss_points = []
        self._train_curve.setData([], [])
        self._validation_curve.setData([], [])
        self._progress.setRange(0, 0)  # busy until the first epoch or stage says more
        self._status.setText(f"Training {architecture}: starting…")
        self._update_buttons()

    def training_progress(self, stage: str, epoch: int, epochs: int, train_loss: float | None,
                          validation_loss: float | None, eta_seconds: float | None) -> None:
        if epochs:
            self._progress.setRange(0, epochs)
            self._progress.setValue(epoch)
            self._loss_points.append((epoch, train_loss, validation_loss))
            self._draw_loss()
        else:
            self._progress.setRange(0, 0)
        eta = "" if eta_seconds is None else f", about {_duration(eta_seconds)} left"
        losses = "" if train_loss is None else f" — train loss {train_loss:.4g}" + (
            "" if validation_loss is None else f", validation {validation_loss:.4g}")
        where = f"epoch {epoch}/{epochs}" if epochs else stage
        self._status.setText(f"{stage.capitalize()}: {where}{eta}{losses}"
                             if epochs else f"{stage.capitalize()}…")

    def training_ended(self, text: str) -> None:
        self._training = False
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        self._status.setText(text)
        self._update_buttons()

    def set_colors(self, accent: str, up: str, down: str, warning: str, muted: str,
                   background: str, text: str) -> None:
        self.model.set_colors(up, down, warning, muted)
        self._loss.setBackground(background)
        plot = self._loss.getPlotItem()
        for name in ("right", "bottom"):
            plot.getAxis(name).setPen(muted)
            plot.getAxis(name).setTextPen(muted)
        self._train_curve.setPen(pg.mkPen(accent, width=1.6))
        self._validation_curve.setPen(pg.mkPen(warning, width=1.4))
        self._legend.setLabelTextColor(text)
        self._empty.setStyleSheet(f"color: {muted};")
        self._next_run.setStyleSheet(f"color: {muted};")

    # -- state for tests and the controller ---------------------------------------------------

    @property
    def selected_model(self) -> ModelRecord | None:
        rows = self._table.selectionModel().selectedRows()
        return self.model.record(rows[0].row()) if rows else None

    def select_model(self, model_id: int) -> None:
        row = self.model.row_of(model_id)
        if row is not None:
            self._table.selectRow(row)

    @property
    def status_text(self) -> str:
        return self._status.text()

    @property
    def next_run_text(self) -> str:
        return self._next_run.text()

    @property
    def loss_points(self) -> list[tuple[int, float | None, float | None]]:
        return list(self._loss_points)

    @property
    def confirmation(self) -> QMessageBox | None:
        """The open override confirmation, if any."""
        return self._confirm

    def choose_training(self, architecture: str, epochs: int = DEFAULT_EPOCHS, *,
                        activate: bool = True) -> None:
        self._architecture.setCurrentText(architecture)
        self._epochs.setValue(epochs)
        self._activate_when_done.setChecked(activate)

    def choose_schedule(self, *, daily_at: str | None = None, every: int | None = None,
                        refresh: bool = False) -> None:
        self._schedule_kind.setCurrentIndex(0 if daily_at is not None else 1)
        if daily_at is not None:
            self._daily_at.setText(daily_at)
        if every is not None:
            self._every.setValue(every)
        self._refresh_data.setChecked(refresh)

    @property
    def buttons(self) -> dict[str, QPushButton]:
        return {"train": self._train, "cancel": self._cancel, "activate": self._activate,
                "rollback": self._rollback, "save_schedule": self._save_schedule,
                "remove_schedule": self._remove_schedule}

    @property
    def override_box(self) -> QCheckBox:
        return self._override

    # -- internals ----------------------------------------------------------------------------

    def _on_train(self) -> None:
        architecture = self._architecture.currentText()
        epochs = self._epochs.value() if architecture in self._neural else 0
        self.train_requested.emit(architecture, epochs, self._activate_when_done.isChecked())

    def _on_activate(self) -> None:
        record = self.selected_model
        if record is not None:
            self.activate_requested.emit(record.id)

    def _on_override_clicked(self, checked: bool) -> None:
        record = self.selected_model
        if record is None:
            return
        self._override.setChecked(record.trading_override)  # until confirmed
        if not checked:
            self.override_requested.emit(record.id, False)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Trade on a model without skill?",
                          f"{record.architecture} v{self.model.version(record.id)} (#{record.id})"
                          f" has not beaten persistence out of sample ({record.verdict}).\n\n"
                          "Automated trading would act on forecasts that have not been shown"
                          " to be better than 'no change'. Allow it anyway?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                          self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        model_id = record.id

        def answered(result: int) -> None:
            self._confirm = None
            if result == QMessageBox.StandardButton.Yes:
                self.override_requested.emit(model_id, True)

        box.finished.connect(answered)
        self._confirm = box
        box.open()  # never exec(): a nested loop would stall the asyncio steps

    def _on_save_schedule(self) -> None:
        kind = self._schedule_kind.currentData()
        value = self._daily_at.text().strip() if kind == "daily" else str(self._every.value())
        self.schedule_requested.emit(self._architecture.currentText(), kind, value,
                                     self._refresh_data.isChecked())

    def _on_remove_schedule(self) -> None:
        if self._schedule is not None:
            self.unschedule_requested.emit(self._schedule.id)

    def _show_schedule_field(self) -> None:
        daily = self._schedule_kind.currentData() == "daily"
        self._daily_at.setVisible(daily)
        self._every.setVisible(not daily)

    def _draw_loss(self) -> None:
        epochs = [float(e) for e, _t, _v in self._loss_points]
        train = [math.nan if t is None else t for _e, t, _v in self._loss_points]
        validation = [math.nan if v is None else v for _e, _t, v in self._loss_points]
        self._train_curve.setData(epochs, train, connect="finite")
        self._validation_curve.setData(epochs, validation, connect="finite")

    def _update_buttons(self) -> None:
        record = self.selected_model
        architecture = self._architecture.currentText()
        self._epochs.setEnabled(architecture in self._neural)
        self._train.setEnabled(self._has_series and not self._training and bool(architecture))
        self._cancel.setEnabled(self._training)
        self._activate.setEnabled(record is not None and not record.active)
        self._rollback.setEnabled(any(r.active for r in self.model.records))
        self._override.setEnabled(record is not None and not record.has_skill)
        self._override.setChecked(record is not None and record.trading_override)
        self._save_schedule.setEnabled(self._has_series and bool(architecture))
        self._remove_schedule.setEnabled(self._schedule is not None)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

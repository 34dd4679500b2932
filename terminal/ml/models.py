"""Neural forecasters in torch: the seeds' LSTM, GRU, BiLSTM, CNN-LSTM and a small transformer.

Each network reads a window of standardised feature rows and has one head per output kind and
horizon: the expected return (squared error), the 10/50/90 % quantiles (pinball loss) and the
logit of "up" (binary cross-entropy); returns are divided by their training spread so the
three losses weigh alike. Training uses the most recent ``max_samples`` training rows, the
calibration holdout (later rows, after a gap of the longest horizon) for early stopping, and
fixed seeds, so the same data and settings give the same model. It runs on the GPU when torch
sees one, else on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from terminal.core.errors import Cancelled, InvalidArgument
from terminal.ml.datasets import DEFAULT_WINDOW, Dataset, Scaler, windows
from terminal.ml.forecasters import QUANTILES, Forecaster

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ARCHITECTURES = ("lstm", "gru", "bilstm", "cnn_lstm", "transformer")
_OUTPUTS = 5  # expected, three quantiles, up-logit
_PREDICT_BATCH = 4096


class TrainingCancelled(Cancelled):
    """Training was cancelled by the user; nothing was stored."""


@dataclass(frozen=True)
class TrainingSettings:
    """How a network is trained. ``device`` None picks CUDA when available, else the CPU."""

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    window: int = DEFAULT_WINDOW
    max_samples: int = 8_760
    patience: int = 3
    dropout: float = 0.2
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InvalidArgument(f"train for at least one epoch, got {self.epochs}")
        if self.window < 2 or self.batch_size < 1 or self.max_samples < 1:
            raise InvalidArgument("window, batch size and sample count must be positive")
        if not 0.0 <= self.dropout < 1.0 or not self.learning_rate > 0:
            raise InvalidArgument("dropout is in [0, 1) and the learning rate positive")


@dataclass(frozen=True)
class EpochProgress:
    """One finished epoch: losses on the training rows and the validation holdout."""

    epoch: int
    epochs: int
    train_loss: float
    validation_loss: float
    seconds: float
    eta_seconds: float


#: Called after every epoch; returning False cancels the training.
EpochCallback = Callable[[EpochProgress], bool]


class _Recurrent(nn.Module):
    """Two stacked recurrent layers (64 then 32 units) with dropout between, as in the seeds;
    ``conv`` puts a 1-D convolution over time in front (CNN-LSTM)."""

    def __init__(self, kind: str, features: int, outputs: int, dropout: float) -> None:
        super().__init__()
        cell: type[nn.LSTM] | type[nn.GRU] = nn.GRU if kind == "gru" else nn.LSTM
        both = kind == "bilstm"
        self.conv: nn.Module | None = None
        width = features
        if kind == "cnn_lstm":
            self.conv = nn.Sequential(nn.Conv1d(features, 32, kernel_size=3, padding=1),
                                      nn.ReLU())
            width = 32
        self.first = cell(width, 64, batch_first=True, bidirectional=both)
        self.dropout = nn.Dropout(dropout)
        self.second = cell(64 * (2 if both else 1), 32, batch_first=True, bidirectional=both)
        self.head = nn.Sequential(nn.Linear(32 * (2 if both else 1), 16), nn.ReLU(),
                                  nn.Linear(16, outputs))

    def forward(self, x: Tensor) -> Tensor:
        if self.conv is not None:
            x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        hidden, _ = self.first(x)
        hidden, _ = self.second(self.dropout(hidden))
        return self.head(hidden[:, -1])  # type: ignore[no-any-return]


class _Transformer(nn.Module):
    """A small encoder: 32-wide embeddings with learnt positions, two layers of 4 heads."""

    def __init__(self, features: int, outputs: int, window: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(features, 32)
        self.position = nn.Parameter(torch.zeros(1, window, 32))
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, outputs))

    def forward(self, x: Tensor) -> Tensor:
        encoded = self.encoder(self.embed(x) + self.position[:, -x.shape[1]:])
        return self.head(encoded[:, -1])  # type: ignore[no-any-return]


def build_network(architecture: str, features: int, horizons: int,
                  settings: TrainingSettings) -> nn.Module:
    """The untrained network for ``architecture`` with outputs for ``horizons`` horizons."""
    outputs = _OUTPUTS * horizons
    if architecture == "transformer":
        return _Transformer(features, outputs, settings.window, settings.dropout)
    if architecture in ARCHITECTURES:
        return _Recurrent(architecture, features, outputs, settings.dropout)
    raise InvalidArgument(f"unknown architecture {architecture!r}; choose from:"
                          f" {', '.join(ARCHITECTURES)}")


def pick_device(requested: str | None) -> torch.device:
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidArgument("CUDA was requested but torch sees no GPU")
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class NeuralForecaster(Forecaster):
    """A torch network behind the :class:`Forecaster` contract (see the module docstring)."""

    description = "torch sequence model"

    def __init__(self, architecture: str, settings: TrainingSettings | None = None,
                 on_epoch: EpochCallback | None = None) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise InvalidArgument(f"unknown architecture {architecture!r}; choose from:"
                                  f" {', '.join(ARCHITECTURES)}")
        self.architecture = architecture
        self.settings = settings or TrainingSettings()
        self.window = self.settings.window
        self.on_epoch = on_epoch
        self.device = pick_device(self.settings.device)
        self.network: nn.Module | None = None
        self.scaler: Scaler | None = None
        self.target_scale: FloatArray | None = None
        self.history: list[EpochProgress] = []

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.architecture

    def hyperparameters(self) -> dict[str, Any]:
        return {"architecture": self.architecture, **asdict(self.settings), "device": None}

    def _fit_core(self, data: Dataset, rows: IntArray, holdout: IntArray | None) -> None:
        settings = self.settings
        rows = rows[-settings.max_samples:]
        torch.manual_seed(settings.seed)
        self.scaler = Scaler.fit(data.features[rows])
        targets = data.targets[rows]
        self.target_scale = np.maximum(targets.std(axis=0), 1e-12)
        network = build_network(self.architecture, data.features.shape[1], len(data.horizons),
                                 settings).to(self.device)
        self.network = network
        x, y = self._inputs(data, rows), self._targets(data, rows)
        validation = None
        if holdout is not None and len(holdout):
            validation = (self._inputs(data, holdout), self._targets(data, holdout))
        optimiser = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
        generator = torch.Generator().manual_seed(settings.seed)
        best_loss, best_state, waited = math.inf, None, 0
        started = time.perf_counter()
        self.history = []
        for epoch in range(1, settings.epochs + 1):
            network.train()
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), settings.batch_size):
                batch = order[start:start + settings.batch_size].to(self.device)
                optimiser.zero_grad()
                loss = self._loss(network(x[batch]), y[batch])
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            train_loss = total / len(x)
            validation_loss = (self._evaluate(*validation) if validation is not None
                               else train_loss)
            elapsed = time.perf_counter() - started
            progress = EpochProgress(epoch, settings.epochs, train_loss, validation_loss,
                                     elapsed, elapsed / epoch * (settings.epochs - epoch))
            self.history.append(progress)
            if self.on_epoch is not None and not self.on_epoch(progress):
                raise TrainingCancelled(f"training {self.architecture} was cancelled at epoch"
                                        f" {epoch} of {settings.epochs}")
            if validation_loss < best_loss - 1e-6:
                best_loss, waited = validation_loss, 0
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            else:
                waited += 1
                if waited >= settings.patience:
                    break
        if best_state is not None:
            network.load_state_dict(best_state)

    def _predict_core(self, data: Dataset,
                      rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        if self.network is None or self.target_scale is None:
            raise InvalidArgument(f"{self.architecture} has not been trained")
        horizons = len(self.target_scale)
        self.network.eval()
        parts = []
        with torch.no_grad():
            for start in range(0, len(rows), _PREDICT_BATCH):
                chunk = rows[start:start + _PREDICT_BATCH]
                parts.append(self.network(self._inputs(data, chunk)).double().cpu().numpy())
        raw = (np.concatenate(parts) if parts
               else np.empty((0, _OUTPUTS * horizons))).reshape(-1, _OUTPUTS, horizons)
        scale = self.target_scale
        quantiles = (raw[:, 1:4, :] * scale[None, None, :]).transpose(0, 2, 1)
        return raw[:, 0, :] * scale, raw[:, 4, :], np.ascontiguousarray(quantiles)

    def _core_state(self) -> dict[str, Any]:
        if self.network is None or self.scaler is None or self.target_scale is None:
            raise InvalidArgument(f"{self.architecture} has not been trained")
        return {"mean": self.scaler.mean, "scale": self.scaler.scale,
                "target_scale": self.target_scale,
                "network": {k: v.detach().cpu() for k, v in self.network.state_dict().items()}}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        self.scaler = Scaler(np.asarray(state["mean"]), np.asarray(state["scale"]))
        self.target_scale = np.asarray(state["target_scale"], dtype=np.float64)
        network = build_network(self.architecture, len(self.scaler.mean),
                                len(self.target_scale), self.settings)
        network.load_state_dict(state["network"])
        self.network = network.to(self.device)

    def _refit_after_calibration(self) -> bool:
        # The holdout chose the epoch; a refit without it could not stop early.
        return False

    def _inputs(self, data: Dataset, rows: IntArray) -> Tensor:
        assert self.scaler is not None
        # Scale the windows, not the whole history: a forecast reads one window.
        batch = self.scaler.transform(windows(data.features, rows, self.window))
        return torch.from_numpy(np.nan_to_num(batch).astype(np.float32)).to(self.device)

    def _targets(self, data: Dataset, rows: IntArray) -> Tensor:
        assert self.target_scale is not None
        scaled = data.targets[rows] / self.target_scale
        return torch.from_numpy(scaled.astype(np.float32)).to(self.device)

    def _loss(self, output: Tensor, target: Tensor) -> Tensor:
        out = output.view(len(output), _OUTPUTS, -1)
        loss = nn.functional.mse_loss(out[:, 0], target)
        for index, level in enumerate(QUANTILES, start=1):
            error = target - out[:, index]
            loss = loss + torch.maximum(level * error, (level - 1) * error).mean()
        up = (target > 0).float()
        return loss + nn.functional.binary_cross_entropy_with_logits(out[:, 4], up)

    def _evaluate(self, x: Tensor, y: Tensor) -> float:
        assert self.network is not None
        self.network.eval()
        with torch.no_grad():
            return float(self._loss(self.network(x), y))

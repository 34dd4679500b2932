"""Every model the terminal can train, by the name the CLI and the registry use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from terminal.core.errors import InvalidArgument
from terminal.ml.forecasters import BASELINES, Forecaster

if TYPE_CHECKING:
    from terminal.ml.models import EpochCallback

#: The torch architectures (see :mod:`terminal.ml.models`); imported only when one is asked for.
NEURAL = ("lstm", "gru", "bilstm", "cnn_lstm", "transformer")
MODEL_NAMES = (*BASELINES, *NEURAL)
#: Yardsticks are evaluated against, never trained, registered or traded on.
YARDSTICKS = ("persistence", "always_up")


def check_trainable(name: str) -> None:
    """Refuse to train, register or schedule a yardstick."""
    if name in YARDSTICKS:
        raise InvalidArgument(f"{name} is a yardstick, not a model to trade on; train one of:"
                              f" {', '.join(n for n in MODEL_NAMES if n not in YARDSTICKS)}")
DEFAULT_EVALUATION_MODELS = ("persistence", "drift", "always_up", "ridge")


def parse_model_names(text: str) -> tuple[str, ...]:
    """``"persistence,ridge"`` as names, refusing unknown or repeated ones."""
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not names:
        raise InvalidArgument("give at least one model name")
    for name in names:
        if name not in MODEL_NAMES:
            raise InvalidArgument(f"unknown model {name!r}; choose from: {', '.join(MODEL_NAMES)}")
    if len(set(names)) != len(names):
        raise InvalidArgument("each model may be named only once")
    return names


def model_factory(name: str, *, epochs: int | None = None, seed: int = 0,
                  on_epoch: EpochCallback | None = None) -> Callable[[], Forecaster]:
    """A function that builds a fresh, untrained ``name`` model (for every refit);
    ``on_epoch`` hears every epoch of a neural model and may cancel it."""
    if name in BASELINES:
        return BASELINES[name]
    if name not in NEURAL:
        raise InvalidArgument(f"unknown model {name!r}; choose from: {', '.join(MODEL_NAMES)}")
    from terminal.ml.models import NeuralForecaster, TrainingSettings

    settings = TrainingSettings(seed=seed) if epochs is None else TrainingSettings(
        epochs=epochs, seed=seed)

    def build() -> Forecaster:
        return NeuralForecaster(name, settings, on_epoch=on_epoch)

    return build


def parse_horizons(text: str) -> tuple[int, ...]:
    """``"1,4,12"`` as bar counts."""
    from terminal.ml.features import check_horizons

    try:
        values: Sequence[int] = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidArgument(f"horizons are whole numbers of bars separated by commas,"
                              f" got {text!r}") from None
    return check_horizons(values)

"""Small MLP runs on the digits that produce learning curves, healthy and not (chapter 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from ..data.digits import Data, digits_data
from ..models.mlp import ACTIVATIONS, mlp
from ..plot import plot_learning_curves  # noqa: F401 (re-exported: chapter 3.1 and lab 3 import it from here)
from ..train import History, TensorBatches, fit


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run of an MLP with minibatch SGD."""

    hidden: tuple[int, ...] = (64,)  # widths of the hidden layers
    activation: str = "relu"  # relu, tanh or sigmoid
    init_std: float | None = None  # None: PyTorch's default; else every weight ~ N(0, init_std^2)
    lr: float = 0.05  # initial learning rate
    momentum: float = 0.9
    weight_decay: float = 0.0  # L2 penalty coefficient
    num_epochs: int = 20
    batch_size: int = 64
    decay_epochs: tuple[int, ...] = ()  # epochs at whose start the learning rate is divided
    decay_factor: float = 10.0
    n_train: int | None = None  # use only the first n_train training examples

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}: expected one of {', '.join(ACTIVATIONS)}")
        if not self.hidden or any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints, got {self.hidden!r}")
        for name in ("lr", "decay_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("weight_decay must be >= 0 and momentum in [0, 1), "
                             f"got {self.weight_decay!r} and {self.momentum!r}")
        for name in ("num_epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")


def make_mlp(config: RunConfig, in_features: int = 64, num_classes: int = 10) -> nn.Sequential:
    """The MLP a config describes (``dlcourse.models.mlp.mlp``), initialised from the global torch RNG."""
    return mlp(in_features, config.hidden, num_classes, config.activation, init_std=config.init_std)


@torch.no_grad()
def _measure(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    logits = model(X)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train_run(config: RunConfig, data: Data, *, seed: int = 0,
              device: torch.device | str = "cpu") -> History:
    """Train the config's MLP on ``data`` with ``dlcourse.train.fit``; return its ``History``.

    Per step: ``step_loss`` (minibatch loss) and ``step_lr``. Per epoch: ``train_loss`` (fit's
    mean minibatch loss during the epoch), and measured on the whole sets after the epoch:
    ``train_eval_loss``, ``train_eval_acc``, ``val_loss``, ``val_acc``, with ``lr``. A run whose
    loss stops being finite ends early with ``history.diverged`` set.
    """
    if not isinstance(data, Data):
        raise TypeError(f"data must be a dlcourse.data.digits.Data (see digits_data()), got {type(data).__name__}")
    X, y = data.X_train, data.y_train
    if config.n_train is not None:
        if not 1 <= config.n_train <= len(X):
            raise ValueError(f"n_train must be between 1 and {len(X)}, got {config.n_train}")
        X, y = X[:config.n_train], y[:config.n_train]
    X, y = X.to(device), y.to(device)
    X_val, y_val = data.X_val.to(device), data.y_val.to(device)
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left alone
        torch.manual_seed(seed)
        model = make_mlp(config, X.shape[1], int(data.y_train.max()) + 1).to(device)
    batches = TensorBatches(X, y, batch_size=config.batch_size, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)

    def step_decay(epoch: int, optimizer: torch.optim.Optimizer) -> None:
        if epoch in config.decay_epochs:
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] / config.decay_factor

    def measure(epoch: int, history: History) -> None:
        model.eval()
        train_loss, train_acc = _measure(model, X, y)
        val_loss, val_acc = _measure(model, X_val, y_val)
        history.log(train_eval_loss=train_loss, train_eval_acc=train_acc, val_loss=val_loss, val_acc=val_acc,
                    lr=optimizer.param_groups[0]["lr"])

    return fit(model, batches, optimizer=optimizer, num_epochs=config.num_epochs, device=device,
               stop_on_divergence=True, on_epoch_start=step_decay, on_epoch_end=measure, progress=False)


def digits_objective(data: Data | None = None, *, num_epochs: int = 5, batch_size: int = 64,
                     hidden: tuple[int, ...] = (64,), momentum: float = 0.0) -> Callable[[dict, int], float]:
    """Validation accuracy of a digits MLP trained with SGD at the point's ``lr`` and ``weight_decay``.

    An objective ``(params, seed) -> score`` for ``dlcourse.topics.hpsearch`` (chapter 3.2).
    """
    data = digits_data() if data is None else data

    def objective(params: dict, seed: int) -> float:
        unknown = set(params) - {"lr", "weight_decay"}
        if unknown or "lr" not in params:
            raise ValueError(f"digits_objective takes lr and optionally weight_decay, got {sorted(params)}")
        config = RunConfig(hidden=hidden, lr=params["lr"], weight_decay=params.get("weight_decay", 0.0),
                           momentum=momentum, num_epochs=num_epochs, batch_size=batch_size)
        return train_run(config, data, seed=seed)["val_acc"][-1]

    return objective


HEALTHY = RunConfig(decay_epochs=(12,))

# Each pathology of the seed's list, produced by a real run that differs from HEALTHY in
# one or two settings (chapter 3.1 shows the curves; lab 3 asks for the diagnosis).
PATHOLOGIES: dict[str, RunConfig] = {
    "healthy": HEALTHY,
    "bad initialisation": replace(HEALTHY, hidden=(64,) * 4, init_std=0.05, decay_epochs=()),
    "needs decay": replace(HEALTHY, lr=0.3, decay_epochs=()),
    "decay too early": replace(HEALTHY, decay_epochs=(1,), decay_factor=100.0),
    "overfitting": replace(HEALTHY, hidden=(256, 256), n_train=100, num_epochs=100, decay_epochs=()),
    "underfitting": replace(HEALTHY, weight_decay=0.3, decay_epochs=()),
}

# What to change when a curve shows each pathology (the seed's advice).
REMEDIES: dict[str, str] = {
    "healthy": "nothing: train longer or search nearby settings",
    "bad initialisation": "initialise for the activation (He for ReLU) or normalise",
    "needs decay": "decay the learning rate once the loss stops falling",
    "decay too early": "keep the initial learning rate longer, then decay",
    "overfitting": "more data, stronger regularisation, or a smaller model",
    "underfitting": "a larger model or weaker regularisation",
}


@dataclass
class Mystery:
    """Learning curves under letters, for a diagnosis exercise; the answers stay inside."""

    curves: dict[str, dict] = field(repr=False)
    _answers: dict[str, str] = field(repr=False)

    def letters(self) -> list[str]:
        return sorted(self.curves)


def mystery_answers(seed: int = 1) -> dict[str, str]:
    """Which pathology hides under each letter for ``seed`` (a shuffle only; nothing is trained)."""
    names = sorted(PATHOLOGIES)
    order = np.random.default_rng(seed).permutation(len(names))
    return {letter: names[i] for letter, i in zip("ABCDEFGH", order)}


def mystery_curves(seed: int = 1, data: Data | None = None) -> Mystery:
    """Run every pathology (training seed ``seed``) and hand the curves out under shuffled letters."""
    data = data if data is not None else digits_data()
    answers = mystery_answers(seed)
    curves = {letter: train_run(PATHOLOGIES[name], data, seed=seed) for letter, name in answers.items()}
    return Mystery(curves, answers)

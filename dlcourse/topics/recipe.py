"""Small MLP runs on the digits that produce learning curves, healthy and not (chapter 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from ..data.digits import Data, digits_data

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


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
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}")
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
    """The MLP a config describes, initialised from the global torch RNG."""
    layers, n = [], in_features
    for width in config.hidden:
        layers += [nn.Linear(n, width), ACTIVATIONS[config.activation]()]
        n = width
    model = nn.Sequential(*layers, nn.Linear(n, num_classes))
    if config.init_std is not None:
        for module in model:
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=config.init_std)
                nn.init.zeros_(module.bias)
    return model


@torch.no_grad()
def _measure(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    logits = model(X)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train_run(config: RunConfig, data: Data, *, seed: int = 0,
              device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Train the config's MLP on ``data`` and return its learning curves.

    Per step: ``step_loss`` (minibatch loss) and ``step_lr``. Per epoch: ``lr``, and
    ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` measured on the whole sets after
    the epoch. A run whose loss stops being finite ends early with ``diverged`` set.
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
    gen = torch.Generator().manual_seed(seed)  # minibatch order
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    history = {k: [] for k in ("step_loss", "step_lr", "lr", "train_loss", "train_acc", "val_loss", "val_acc")}
    history["diverged"] = False
    lr = config.lr
    for epoch in range(config.num_epochs):
        if epoch in config.decay_epochs:
            lr /= config.decay_factor
            for group in optimizer.param_groups:
                group["lr"] = lr
        model.train()
        for idx in torch.randperm(len(X), generator=gen).to(device).split(config.batch_size):
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history["step_loss"].append(loss.item())
            history["step_lr"].append(lr)
            if not math.isfinite(history["step_loss"][-1]):
                history["diverged"] = True
                break
        model.eval()
        for part, (A, b) in {"train": (X, y), "val": (X_val, y_val)}.items():
            loss_value, acc = _measure(model, A, b)
            history[f"{part}_loss"].append(loss_value)
            history[f"{part}_acc"].append(acc)
        history["lr"].append(lr)
        if history["diverged"]:
            break
    return history


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


def plot_learning_curves(history: dict, *, title: str = "", axes=None):
    """Two panels: minibatch and validation loss (with the learning rate), and accuracy per epoch."""
    import matplotlib.pyplot as plt

    from ..plot import PALETTE

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    ax_loss, ax_acc = axes
    fig = ax_loss.figure
    steps = np.arange(1, len(history["step_loss"]) + 1)
    ax_loss.plot(steps, history["step_loss"], color=PALETTE[0], lw=0.8, label="minibatch loss")
    n_epochs = len(history["val_loss"])
    epoch_ends = np.linspace(len(steps) / n_epochs, len(steps), n_epochs)  # the step that ends each epoch
    ax_loss.plot(epoch_ends, history["val_loss"], color=PALETTE[2], lw=1.5, label="validation loss")
    ax_loss.legend(loc="upper right", fontsize=8)
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats)", ylim=(0, 2.6))
    ax_lr = ax_loss.twinx()
    ax_lr.plot(steps, history["step_lr"], color=PALETTE[3], lw=1.2, ls="--", label="learning rate")
    ax_lr.set_yscale("log")
    ax_lr.set_ylim(1e-4, 2.0)  # one scale for every run, so schedules compare across panels
    ax_lr.set_ylabel("learning rate (log)", color=PALETTE[3])
    ax_lr.grid(False)
    epochs = np.arange(1, len(history["train_acc"]) + 1)
    ax_acc.plot(epochs, history["train_acc"], color=PALETTE[1], label="training")
    ax_acc.plot(epochs, history["val_acc"], color=PALETTE[2], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax_acc.legend(loc="lower right", fontsize=8)
    ax_loss.set_title(f"{title}: loss" if title else "loss and learning rate")
    ax_acc.set_title(f"{title}: accuracy" if title else "accuracy")
    return fig

"""A compact training loop with progress bars (introduced in chapter 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` (N, C) whose argmax equals the label ``y`` (N,)."""
    if logits.ndim != 2 or y.ndim != 1 or logits.shape[0] != y.shape[0]:
        raise ValueError(
            f"accuracy expects logits of shape (N, C) and labels of shape (N,), "
            f"got {tuple(logits.shape)} and {tuple(y.shape)}"
        )
    return (logits.argmax(dim=1) == y).float().mean().item()


def make_loader(X: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                generator: torch.Generator | None = None) -> torch.utils.data.DataLoader:
    """Wrap tensors ``X`` (N, ...) and ``y`` (N, ...) in a DataLoader."""
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    dataset = torch.utils.data.TensorDataset(X, y)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                       generator=generator)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: Callable,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (classification)."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        logits = model(X)
        total_loss += loss_fn(logits, y).item() * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        count += len(y)
    if count == 0:
        raise ValueError("evaluate got an empty loader")
    return {"loss": total_loss / count, "acc": correct / count}


def fit(model: nn.Module, train_loader: Iterable, *, optimizer: torch.optim.Optimizer,
        num_epochs: int, loss_fn: Callable = nn.functional.cross_entropy,
        val_loader: Iterable | None = None, device: torch.device | str = "cpu",
        scheduler=None, progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` for ``num_epochs`` and return the history.

    The history holds per-step ``step_loss`` and per-epoch ``train_loss``, and, when a
    ``val_loader`` is given, per-epoch ``val_loss`` and ``val_acc``.
    """
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    model.to(device)
    history: dict[str, list[float]] = {"step_loss": [], "train_loss": []}
    if val_loader is not None:
        history.update(val_loss=[], val_acc=[])
    bar = tqdm(range(num_epochs), desc="epochs", disable=not progress)
    for _ in bar:
        model.train()
        epoch_loss, count = 0.0, 0
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            loss = loss_fn(model(X), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history["step_loss"].append(loss.item())
            epoch_loss += loss.item() * len(y)
            count += len(y)
        if count == 0:
            raise ValueError("fit got an empty train_loader")
        history["train_loss"].append(epoch_loss / count)
        postfix = {"train_loss": f"{history['train_loss'][-1]:.3f}"}
        if val_loader is not None:
            metrics = evaluate(model, val_loader, loss_fn, device)
            history["val_loss"].append(metrics["loss"])
            history["val_acc"].append(metrics["acc"])
            postfix["val_acc"] = f"{metrics['acc']:.3f}"
        bar.set_postfix(postfix)
    return history

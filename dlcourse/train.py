"""The course's one training loop, its history format and batch helpers (introduced in chapter 1).

``fit`` trains any model: by default a classifier on ``(X, y)`` batches; with
``compute_loss`` any loss of a batch (a sequence model's, a language model's). Hooks cover
what a chapter needs around the loop (a learning-rate schedule at the start of an epoch,
measurements at its end, an evaluation every k steps) so that no notebook rewrites the loop
unless the loop itself is the lesson.

A ``History`` is a dict of lists: keys starting with ``step_`` hold one value per optimiser
step (``step_loss``, ``step_lr``, ``step_grad_norm`` when clipping), the others one value per
epoch (``train_loss``, ``val_loss``, ``val_acc``, or whatever a hook measures), and
``history.diverged`` says whether training stopped on a non-finite loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from .progress import progress as progress_bar


class History(dict):
    """Training curves: ``step_*`` keys per optimiser step, other keys per epoch (lists of floats)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.diverged = False

    def log(self, **values: float) -> None:
        """Append each value to the list under its name (created on first use)."""
        for name, value in values.items():
            self.setdefault(name, []).append(float(value))


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` (N, C) whose argmax equals the label ``y`` (N,)."""
    if logits.ndim != 2 or y.ndim != 1 or logits.shape[0] != y.shape[0]:
        raise ValueError(
            f"accuracy expects logits of shape (N, C) and labels of shape (N,), "
            f"got {tuple(logits.shape)} and {tuple(y.shape)}"
        )
    return (logits.argmax(dim=1) == y).float().mean().item()


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def make_loader(X: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                generator: torch.Generator | None = None) -> torch.utils.data.DataLoader:
    """Wrap tensors ``X`` (N, ...) and ``y`` (N, ...) in a DataLoader."""
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    _check_batch_size(batch_size)
    dataset = torch.utils.data.TensorDataset(X, y)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                       generator=generator)


class TensorBatches:
    """Minibatches of tensors already in memory (on any device), reshuffled every epoch.

    Iterating yields ``tuple(t[idx] for t in tensors)`` for consecutive slices ``idx`` of
    ``torch.randperm(N, generator=generator)``: the order a shuffling ``DataLoader`` with the
    same generator gives, without its per-example collation (much faster for small models).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
                 generator: torch.Generator | None = None):
        if not tensors:
            raise ValueError("TensorBatches needs at least one tensor")
        lengths = {len(t) for t in tensors}
        if len(lengths) != 1:
            raise ValueError(f"all tensors must have the same length (first axis), got {sorted(lengths)}")
        _check_batch_size(batch_size)
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for idx in order.to(self.tensors[0].device).split(self.batch_size):
            yield tuple(t[idx] for t in self.tensors)


class RandomBatches:
    """``num_batches`` minibatches drawn with replacement: indices ``torch.randint(N, (batch_size,))``.

    For step-based training (``fit(..., num_epochs=1)``): iterating yields
    ``tuple(t[idx] for t in tensors)``, one fresh ``idx`` from ``generator`` per batch.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, num_batches: int,
                 generator: torch.Generator | None = None):
        if not tensors:
            raise ValueError("RandomBatches needs at least one tensor")
        lengths = {len(t) for t in tensors}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"all tensors must have the same, non-zero length (first axis), got {sorted(lengths)}")
        _check_batch_size(batch_size)
        if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 0:
            raise ValueError(f"num_batches must be an int >= 0, got {num_batches!r}")
        self.tensors, self.batch_size, self.num_batches = tensors, batch_size, num_batches
        self.generator = generator

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n, device = len(self.tensors[0]), self.tensors[0].device
        for _ in range(self.num_batches):
            idx = torch.randint(n, (self.batch_size,), generator=self.generator).to(device)
            yield tuple(t[idx] for t in self.tensors)


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def _batch_len(batch) -> int:
    first = batch[0] if isinstance(batch, (list, tuple)) else batch
    return len(first) if isinstance(first, torch.Tensor) and first.ndim > 0 else 1


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: Callable = nn.functional.cross_entropy,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean loss and accuracy of a classifier ``model`` over the ``(X, y)`` batches of ``loader``."""
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


def fit(model: nn.Module, batches: Iterable, *, optimizer: torch.optim.Optimizer, num_epochs: int = 1,
        loss_fn: Callable = nn.functional.cross_entropy,
        compute_loss: Callable[[nn.Module, Sequence], torch.Tensor] | None = None,
        val_loader: Iterable | None = None, device: torch.device | str = "cpu", scheduler=None,
        max_grad_norm: float | None = None, stop_on_divergence: bool = False,
        on_epoch_start: Callable[[int, torch.optim.Optimizer], None] | None = None,
        on_step: Callable[[int, History], None] | None = None,
        on_epoch_end: Callable[[int, History], None] | None = None,
        progress: bool = True) -> History:
    """Train ``model`` on ``batches`` for ``num_epochs`` epochs; return its ``History``.

    Every epoch iterates ``batches`` once (a DataLoader, ``TensorBatches``, or any iterable;
    for step-based training pass ``num_epochs=1`` and an iterable of that many batches).
    Each step: move the batch to ``device``; loss = ``compute_loss(model, batch)`` if given,
    else ``loss_fn(model(X), y)`` for a batch ``(X, y)``; zero the gradients, backward,
    clip to ``max_grad_norm`` if given, ``optimizer.step()``, ``scheduler.step()`` if given.

    Logged: ``step_loss`` and ``step_lr`` (the rate the step used) per step (``step_grad_norm``, the norm before
    clipping, when clipping); ``train_loss`` per epoch (mean minibatch loss, weighted by
    batch size), and ``val_loss``, ``val_acc`` with a ``val_loader`` (a classifier's).

    Hooks: ``on_epoch_start(epoch, optimizer)`` before an epoch (a schedule);
    ``on_step(step, history)`` after each step, counted from 1 across epochs;
    ``on_epoch_end(epoch, history)`` after an epoch's logging (extra measurements go in with
    ``history.log``). With ``stop_on_divergence`` a non-finite loss ends the epoch at once,
    sets ``history.diverged`` and ends training after that epoch's ``on_epoch_end``.
    """
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be positive (or None for no clipping), got {max_grad_norm!r}")
    model.to(device)
    history = History(step_loss=[], step_lr=[], train_loss=[])
    step = 0
    bar = progress_bar(range(num_epochs), desc="epochs", disable=not progress or num_epochs == 1)
    for epoch in bar:
        if on_epoch_start is not None:
            on_epoch_start(epoch, optimizer)
        model.train()
        epoch_loss, count = 0.0, 0
        for batch in progress_bar(batches, desc="steps", disable=not progress or num_epochs > 1,
                                  leave=num_epochs == 1):
            batch = _to(batch, device)
            if compute_loss is not None:
                loss = compute_loss(model, batch)
            else:
                X, y = batch
                loss = loss_fn(model(X), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                history.log(step_grad_norm=nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm))
            optimizer.step()
            value, n = loss.item(), _batch_len(batch)
            history.log(step_loss=value, step_lr=optimizer.param_groups[0]["lr"])  # the rate this step used
            if scheduler is not None:
                scheduler.step()
            epoch_loss += value * n
            count += n
            step += 1
            if stop_on_divergence and not math.isfinite(value):
                history.diverged = True
                break
            if on_step is not None:
                on_step(step, history)
        if count == 0:
            raise ValueError("fit got no batches: the training iterable is empty")
        history.log(train_loss=epoch_loss / count)
        postfix = {"train_loss": f"{history['train_loss'][-1]:.3f}"}
        if val_loader is not None:
            metrics = evaluate(model, val_loader, loss_fn, device)
            history.log(val_loss=metrics["loss"], val_acc=metrics["acc"])
            postfix["val_acc"] = f"{metrics['acc']:.3f}"
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        bar.set_postfix(postfix)
        if history.diverged:
            break
    return history

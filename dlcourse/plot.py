"""Plotting helpers: a colour-blind-safe palette, the house style, the one curve plotter (chapter 1)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

# Okabe & Ito (2008): distinguishable under the common forms of colour blindness.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def use_style() -> None:
    """Apply the course's figure style (palette, sizes, light grid)."""
    mpl.rcParams.update({
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "figure.figsize": (6.4, 3.6),
        "figure.dpi": 96,
        "savefig.dpi": 96,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.size": 10,
        "axes.titlesize": 11,
        "legend.frameon": False,
    })


def subplots_grid(n: int, ncols: int = 3, *, panel_size: tuple[float, float] = (3.0, 2.4),
                  **kwargs):
    """A figure with ``n`` panels on a grid of ``ncols`` columns; unused panels are hidden.

    Returns ``(fig, axes)`` with ``axes`` a flat list of length ``n``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (number of panels), got {n!r}")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size[0] * ncols, panel_size[1] * nrows), **kwargs)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot_curves(curves: Mapping[str, Sequence[float]], *, xlabel: str, ylabel: str,
                title: str, logy: bool = False, ax=None, colors: Sequence[str] | None = None,
                legend: Mapping | None = None, **line_kw):
    """Draw one line per entry of ``curves`` (label -> values, at x = 1, 2, ...) with labelled axes.

    ``colors`` gives the lines' colours in order (default: the style's cycle), ``legend`` the
    keyword arguments of the legend drawn when there are several lines, ``line_kw`` those of
    every line. Returns the figure. Every curve must be a non-empty sequence of numbers.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping of label -> sequence of values")
    for label, values in curves.items():
        if len(values) == 0:
            raise ValueError(f"curve {label!r} is empty: each curve needs at least one value")
    if colors is not None and len(colors) < len(curves):
        raise ValueError(f"colors names {len(colors)} colours for {len(curves)} curves")
    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    for i, (label, values) in enumerate(curves.items()):
        colour = {} if colors is None else {"color": colors[i]}
        ax.plot(range(1, len(values) + 1), list(values), label=str(label), **colour, **line_kw)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if len(curves) > 1:
        ax.legend(**(legend or {}))
    return fig


LEARNING_CURVE_KEYS = ("step_loss", "step_lr", "val_loss", "val_acc")


def plot_learning_curves(history: Mapping[str, Sequence[float]], *, title: str = "", axes=None):
    """Two panels of a ``dlcourse.train.History`` (chapter 3.1): loss with learning rate, and accuracy.

    Left: the minibatch loss of every step, the validation loss at each epoch's end and the
    learning rate (dashed, log scale on the right axis, one scale for every run). Right: the
    accuracy per epoch on the validation set, and on the training set when the history has
    ``train_eval_acc`` (measured on the whole training set after each epoch).
    """
    missing = [key for key in LEARNING_CURVE_KEYS if not history.get(key)]
    if missing:
        raise ValueError(f"plot_learning_curves needs a history with {', '.join(LEARNING_CURVE_KEYS)}; "
                         f"missing or empty: {', '.join(missing)}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    ax_loss, ax_acc = axes
    fig = ax_loss.figure
    num_steps, num_epochs = len(history["step_loss"]), len(history["val_loss"])
    plot_curves({"minibatch loss": history["step_loss"]}, xlabel="step", ylabel="cross-entropy (nats)",
                title=f"{title}: loss" if title else "loss and learning rate", ax=ax_loss,
                colors=[PALETTE[0]], lw=0.8)
    epoch_ends = np.linspace(num_steps / num_epochs, num_steps, num_epochs)  # the step that ends each epoch
    ax_loss.plot(epoch_ends, history["val_loss"], color=PALETTE[2], lw=1.5, label="validation loss")
    ax_loss.legend(loc="upper right", fontsize=8)
    ax_loss.set(ylim=(0, 2.6))
    ax_lr = ax_loss.twinx()
    ax_lr.plot(np.arange(1, num_steps + 1), history["step_lr"], color=PALETTE[3], lw=1.2, ls="--",
               label="learning rate")
    ax_lr.set_yscale("log")
    ax_lr.set_ylim(1e-4, 2.0)  # one scale for every run, so schedules compare across panels
    ax_lr.set_ylabel("learning rate (log)", color=PALETTE[3])
    ax_lr.grid(False)
    accuracies = {"training": history.get("train_eval_acc"), "validation": history["val_acc"]}
    accuracies = {label: values for label, values in accuracies.items() if values}
    plot_curves(accuracies, xlabel="epoch", ylabel="accuracy", ax=ax_acc,
                title=f"{title}: accuracy" if title else "accuracy",
                colors=[PALETTE[1], PALETTE[2]][-len(accuracies):], legend=dict(loc="lower right", fontsize=8))
    ax_acc.set(ylim=(0, 1.02))
    return fig

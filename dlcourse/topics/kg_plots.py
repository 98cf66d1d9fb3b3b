"""Figures for knowledge-graph embeddings: per-relation scatters, score differences, spread over seeds (chapter 9).

Every function takes plain numbers (lists, NumPy arrays or CPU/GPU tensors), draws on a new
figure or on the ``ax`` it is given, and returns the figure:

* ``plot_relation_scatter``: one point per relation, a property measured in the graph
  (for example the share of its facts whose reversal is also a fact) against a quantity
  measured in a model, with the names of chosen relations written beside their points;
* ``plot_score_differences``: histograms of score differences, one per model, such as
  score(h, r, t) - score(t, r, h) for true facts whose reversal is false;
* ``plot_seed_spread``: one column per model with a dot per seed (or draw) and its mean, for
  any figure of merit measured several times (an MRR, a share, a rank).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..plot import PALETTE


def _values(values, name: str) -> np.ndarray:
    """A non-empty 1-D float array of finite-or-NaN numbers (NaN marks a missing value)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a 1-D sequence of numbers: {err}") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    if np.isinf(array).any():
        raise ValueError(f"{name} contains infinite values; use NaN for a missing value")
    return array


def _axes(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def plot_relation_scatter(x, y, names: Sequence[str], *, highlight: Sequence[str] = (), xlabel: str, ylabel: str,
                          title: str = "", ax=None, color: str = PALETTE[0], size=None) -> Figure:
    """One point per relation at (``x[i]``, ``y[i]``); the relations in ``highlight`` are labelled.

    ``names`` gives the relations' names in the order of ``x`` and ``y``. Points whose ``x`` or
    ``y`` is NaN (a property that cannot be measured for that relation) are left out. ``size``
    (optional, one number per relation, such as its number of facts) scales the markers.
    """
    xs, ys = _values(x, "x"), _values(y, "y")
    names = [str(name) for name in names]
    if not len(xs) == len(ys) == len(names):
        raise ValueError(f"x, y and names must have the same length, got {len(xs)}, {len(ys)} and {len(names)}")
    unknown = sorted(set(highlight) - set(names))
    if unknown:
        raise ValueError(f"highlight names relations that are not in names: {', '.join(unknown)}")
    sizes = np.full(len(xs), 20.0)
    if size is not None:
        weights = _values(size, "size")
        if len(weights) != len(xs):
            raise ValueError(f"size must have one value per relation ({len(xs)}), got {len(weights)}")
        sizes = 8 + 60 * np.sqrt(np.nan_to_num(weights) / max(np.nanmax(weights), 1e-12))
    fig, ax = _axes(ax, (4.2, 3.4))
    keep = ~(np.isnan(xs) | np.isnan(ys))
    ax.scatter(xs[keep], ys[keep], s=sizes[keep], color=color, alpha=0.7, edgecolor="white", linewidth=0.5)
    for i, name in enumerate(names):
        if name in highlight and keep[i]:
            ax.annotate(name, (xs[i], ys[i]), xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return fig


def plot_score_differences(differences: Mapping[str, Sequence[float]], *, xlabel: str, title: str = "",
                           bins: int = 40, ax=None, colors: Sequence[str] = PALETTE) -> Figure:
    """Overlaid histograms of score differences, one per entry of ``differences`` (label -> values).

    A dotted line marks zero; the legend gives each label the share of its values above zero
    (ties at exactly zero count half), the share a ranking by that score would get right.
    """
    if not isinstance(differences, Mapping) or not differences:
        raise ValueError("differences must be a non-empty mapping of label -> sequence of numbers")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    if len(colors) < len(differences):
        raise ValueError(f"colors names {len(colors)} colours for {len(differences)} histograms")
    arrays = {label: _values(values, f"differences[{label!r}]") for label, values in differences.items()}
    for label, array in arrays.items():
        if np.isnan(array).any():
            raise ValueError(f"differences[{label!r}] contains NaN")
    fig, ax = _axes(ax, (5.2, 3.4))
    everything = np.concatenate(list(arrays.values()))
    low, high = float(everything.min()), float(everything.max())
    edges = np.linspace(low, high, bins + 1) if high > low else np.linspace(low - 1, high + 1, bins + 1)
    for colour, (label, array) in zip(colors, arrays.items()):
        ahead = float((array > 0).mean() + 0.5 * (array == 0).mean())
        ax.hist(array, bins=edges, color=colour, alpha=0.45, label=f"{label}: {ahead:.0%} above 0")
    ax.axvline(0, color="0.3", ls=":", lw=1)
    ax.set(xlabel=xlabel, ylabel="count", title=title)
    ax.legend(fontsize=8)
    return fig


def plot_seed_spread(results: Mapping[str, Sequence[float]], *, ylabel: str, title: str = "",
                     reference: float | None = None, reference_label: str = "chance", ax=None,
                     colors: Sequence[str] = PALETTE) -> Figure:
    """One column per entry of ``results`` (label -> one value per seed): a dot per seed and a bar at the mean.

    ``reference`` (optional) draws a dashed horizontal line, such as the value of a random guess.
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty mapping of label -> sequence of values (one per seed)")
    if len(colors) < len(results):
        raise ValueError(f"colors names {len(colors)} colours for {len(results)} columns")
    arrays = {label: _values(values, f"results[{label!r}]") for label, values in results.items()}
    fig, ax = _axes(ax, (1.2 + 1.1 * len(arrays), 3.2))
    for i, (colour, (label, array)) in enumerate(zip(colors, arrays.items())):
        ax.bar(i, np.nanmean(array), width=0.6, color=colour, alpha=0.35)
        jitter = np.linspace(-0.12, 0.12, len(array)) if len(array) > 1 else np.zeros(1)
        ax.scatter(i + jitter, array, color=colour, s=22, zorder=3)
    if reference is not None:
        ax.axhline(reference, color="0.4", ls="--", lw=1, label=reference_label)
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(arrays)), list(arrays))
    ax.set(ylabel=ylabel, title=title)
    return fig

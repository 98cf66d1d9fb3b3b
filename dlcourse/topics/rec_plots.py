"""Figures of a rating matrix: sparsity, long tails, rating histogram, regularisation curve (chapter 8, section 8.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..plot import PALETTE


def _counts(values, name: str) -> np.ndarray:
    """A 1-D array of non-negative integer counts."""
    array = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer) or (array < 0).any():
        raise ValueError(f"{name} must be a non-empty 1-D sequence of non-negative integer counts, "
                         f"got {array.dtype} of shape {array.shape}")
    return array


def plot_long_tail(user_counts, item_counts) -> Figure:
    """Two log-log panels: how many users / movies have n ratings, and the n-th largest count against its rank.

    ``user_counts`` (U,) and ``item_counts`` (I,) are ratings per user and per movie (zeros,
    users or movies without ratings, are left out of both panels).
    """
    series = {"users": _counts(user_counts, "user_counts"), "movies": _counts(item_counts, "item_counts")}
    fig, (ax_freq, ax_rank) = plt.subplots(1, 2, figsize=(9.5, 3.6), layout="constrained")
    for colour, marker, (name, counts) in zip(PALETTE, "os", series.items()):
        counts = counts[counts > 0]
        n, how_many = np.unique(counts, return_counts=True)
        ax_freq.scatter(n, how_many, s=12, color=colour, marker=marker, alpha=0.8, label=name)
        ranked = np.sort(counts)[::-1]
        ax_rank.plot(np.arange(1, len(ranked) + 1), ranked, color=colour, lw=1.6, label=name)
    ax_freq.set(xscale="log", yscale="log", xlabel="ratings n (log)", ylabel="how many have exactly n (log)",
                title="Most users and movies have very few ratings")
    ax_rank.set(xscale="log", yscale="log", xlabel="rank (1 = most ratings, log)", ylabel="ratings (log)",
                title="A few have very many: the long tail")
    for ax in (ax_freq, ax_rank):
        ax.legend()
    return fig


def plot_rating_matrix(user: torch.Tensor, item: torch.Tensor, num_users: int, num_items: int, *, size: int = 200,
                       generator: torch.Generator | None = None) -> Figure:
    """Two views of the rating matrix: ``size`` random users x ``size`` random movies, and the most active x most rated.

    A dot marks a rating. The random block shows what a typical corner of the matrix looks
    like; even the densest block is mostly empty.
    """
    if not isinstance(user, torch.Tensor) or not isinstance(item, torch.Tensor) or user.shape != item.shape \
            or user.ndim != 1:
        raise ValueError("user and item must be 1-D id tensors of one length")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(num_users, num_items):
        raise ValueError(f"size must be an int from 1 to min(num_users, num_items) = {min(num_users, num_items)}, "
                         f"got {size!r}")
    user, item = user.cpu(), item.cpu()
    user_counts = torch.bincount(user, minlength=num_users)
    item_counts = torch.bincount(item, minlength=num_items)
    blocks = {"random users x random movies": (torch.randperm(num_users, generator=generator)[:size],
                                                torch.randperm(num_items, generator=generator)[:size]),
              "most active users x most rated movies": (user_counts.argsort(descending=True, stable=True)[:size],
                                                        item_counts.argsort(descending=True, stable=True)[:size])}
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.2), layout="constrained")
    for ax, (title, (rows, cols)) in zip(axes, blocks.items()):
        row_of = torch.full((num_users,), -1, dtype=torch.long)
        row_of[rows] = torch.arange(size)
        col_of = torch.full((num_items,), -1, dtype=torch.long)
        col_of[cols] = torch.arange(size)
        keep = (row_of[user] >= 0) & (col_of[item] >= 0)
        ax.scatter(col_of[item[keep]], row_of[user[keep]], s=2, color=PALETTE[0], marker="s")
        ax.set(xlim=(-0.5, size - 0.5), ylim=(size - 0.5, -0.5), aspect="equal", xlabel=f"{size} movies",
               ylabel=f"{size} users", title=f"{title}\n{int(keep.sum())} ratings, {float(keep.sum()) / size ** 2:.2%} "
                                          "of the cells")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    return fig


def plot_rating_histogram(ratings: Mapping[str, torch.Tensor], *, scale: Sequence[int] = tuple(range(11))) -> Figure:
    """Share of each rating value (0-10 by default), one group of bars per entry of ``ratings`` (label -> ratings)."""
    if not isinstance(ratings, Mapping) or not ratings:
        raise ValueError("ratings must be a non-empty mapping of label -> tensor of ratings")
    scale = np.asarray(scale)
    fig, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    width = 0.8 / len(ratings)
    for k, (label, values) in enumerate(ratings.items()):
        values = np.asarray(torch.as_tensor(values).cpu()).round().astype(int)
        if values.size == 0:
            raise ValueError(f"ratings[{label!r}] is empty")
        shares = np.array([(values == s).mean() for s in scale])
        ax.bar(scale + (k - (len(ratings) - 1) / 2) * width, shares, width=width, color=PALETTE[k % len(PALETTE)],
               label=f"{label} (mean {values.mean():.2f})")
    ax.set(xticks=scale, xlabel="rating", ylabel="share of ratings", title="How the ratings are distributed")
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.legend()
    return fig


def plot_regularisation_curve(lams: Sequence[float], curves: Mapping[str, Sequence[float]], *,
                              chosen: Mapping[str, float] | None = None, baseline: float | None = None,
                              ylabel: str = "validation RMSE") -> Figure:
    """Validation RMSE against the L2 strength lambda (symmetric-log x axis, so lambda = 0 fits), one line per model.

    ``chosen`` (label -> lambda) circles each model's choice; ``baseline`` draws a dashed line
    (the global mean's RMSE).
    """
    lams = np.asarray(lams, dtype=float)
    if lams.ndim != 1 or lams.size == 0 or (lams < 0).any():
        raise ValueError("lams must be a non-empty 1-D sequence of non-negative numbers")
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping of label -> one value per lambda")
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for k, (label, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=float)
        if values.shape != lams.shape:
            raise ValueError(f"curve {label!r} has {values.size} values for {lams.size} lambdas")
        colour = PALETTE[k % len(PALETTE)]
        ax.plot(lams, values, "o-", color=colour, ms=4, label=label)
        if chosen and label in chosen:
            best = int(np.argmin(np.abs(lams - chosen[label])))
            ax.plot(lams[best], values[best], "o", ms=11, mfc="none", mec=colour, mew=1.8)
    if baseline is not None:
        ax.axhline(baseline, color="0.5", ls="--", lw=1, label="global mean")
    ax.set_xscale("symlog", linthresh=max(float(lams[lams > 0].min()) if (lams > 0).any() else 1.0, 1e-3))
    ax.set_xlim(float(lams.min()), float(lams.max()) * 1.15 + 1e-9)
    ax.set_xticks(lams, [f"{lam:g}" for lam in lams])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set(xlabel="λ (L2 strength; symmetric log scale)", ylabel=ylabel,
           title="Choosing the regularisation on validation ratings")
    ax.legend()
    return fig

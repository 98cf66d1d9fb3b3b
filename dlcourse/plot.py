"""Plotting helpers: a colour-blind-safe palette, the house style, learning curves (chapter 1)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt

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
                title: str, logy: bool = False, ax=None):
    """Draw one line per entry of ``curves`` (label -> values) with labelled axes.

    Returns the figure. Every curve must be a non-empty sequence of numbers.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping of label -> sequence of values")
    for label, values in curves.items():
        if len(values) == 0:
            raise ValueError(f"curve {label!r} is empty: each curve needs at least one value")
    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), list(values), label=str(label))
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if len(curves) > 1:
        ax.legend()
    return fig

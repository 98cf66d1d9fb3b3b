"""Plots of hyperparameter searches and the search-curves widget (chapter 3)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .hpsearch import LABELS, METHODS, Param, SearchComparison, SearchResult


def plot_search_curves(comparison: SearchComparison, budget: int, *, ax=None, highlight_seed: int | None = None):
    """Best-so-far score against trials for each method: median over seeds, min-max band."""
    import matplotlib.pyplot as plt

    from ..plot import PALETTE

    if ax is None:
        _, ax = plt.subplots()
    for method, colour in zip(METHODS, PALETTE):
        curves = [comparison.result(method, s, budget).best_so_far for s in comparison.seeds]
        trials = np.arange(1, len(curves[0]) + 1)
        stack = np.stack(curves)  # (seeds, trials)
        ax.fill_between(trials, stack.min(0), stack.max(0), color=colour, alpha=0.18, lw=0)
        ax.plot(trials, np.median(stack, 0), color=colour, lw=2,
                label=f"{LABELS[method]} (median {np.median(stack[:, -1]):.1%})")
        if highlight_seed is not None:
            ax.plot(trials, comparison.result(method, highlight_seed, budget).best_so_far,
                    color=colour, lw=1, ls=":")
    ax.set_xlim(1, budget)
    finals = [comparison.result(m, s, budget).best_score for m in METHODS for s in comparison.seeds]
    ax.set_ylim(max(0.0, min(finals) - 0.1), min(1.0, max(finals) + 0.02))  # zoom on where searches end
    seeds_note = f", seed {highlight_seed} dotted" if highlight_seed is not None else ""
    ax.set(xlabel="trials", ylabel="best validation accuracy so far",
           title=f"Best so far over {len(comparison.seeds)} seeds (band: min-max{seeds_note})")
    ax.legend(loc="lower right", fontsize=8)
    return ax.figure


def plot_search_scatter(result: SearchResult, space: Mapping[str, Param], *, ax=None,
                        vmin: float | None = None, vmax: float | None = None, colorbar: bool = True):
    """The trials of one search in the plane of its first two parameters, coloured by score."""
    import matplotlib.pyplot as plt

    if len(space) < 2:
        raise ValueError("a scatter needs a space with at least two parameters")
    if ax is None:
        _, ax = plt.subplots()
    (nx, px), (ny, py) = list(space.items())[:2]
    xs = [p[nx] for p in result.params]
    ys = [p[ny] for p in result.params]
    points = ax.scatter(xs, ys, c=result.scores, cmap="viridis", vmin=vmin, vmax=vmax, s=36,
                        edgecolors="black", linewidths=0.4)
    best = result.best_params
    ax.scatter([best[nx]], [best[ny]], marker="*", s=260, facecolors="none", edgecolors="#D55E00",
               linewidths=1.6, label=f"best: {result.best_score:.1%}")
    ax.set_xscale("log" if px.log else "linear")
    ax.set_yscale("log" if py.log else "linear")
    pad = lambda p: (p.low / 1.6, p.high * 1.6) if p.log else (p.low - 0.03 * (p.high - p.low),  # noqa: E731
                                                                 p.high + 0.03 * (p.high - p.low))
    ax.set(xlim=pad(px), ylim=pad(py), xlabel=f"{nx} (log scale)" if px.log else nx,
           ylabel=f"{ny} (log scale)" if py.log else ny,
           title=f"{LABELS.get(result.method, result.method)}, seed {result.seed}: {len(result)} trials")
    ax.legend(loc="upper left", fontsize=8)
    if colorbar:
        ax.figure.colorbar(points, ax=ax, label="validation accuracy", extend="min" if vmin is not None else "neither")
    return ax.figure


def plot_search_comparison(comparison: SearchComparison, method: str = "random", budget: int = 16,
                           seed: int | None = None):
    """The widget's figure: best-so-far curves of all methods, and one search's scatter."""
    import matplotlib.pyplot as plt

    seed = comparison.seeds[0] if seed is None else seed
    result = comparison.result(method, seed, budget)
    scores = comparison.all_scores()
    vmin = float(np.quantile(scores, 0.5))  # the worse half of all trials shares one colour
    fig, (ax_c, ax_s) = plt.subplots(1, 2, figsize=(11.5, 4.0), layout="constrained")
    plot_search_curves(comparison, budget, ax=ax_c, highlight_seed=seed)
    plot_search_scatter(result, comparison.space, ax=ax_s, vmin=vmin, vmax=float(scores.max()))
    fig.suptitle(f"Hyperparameter search with a budget of {budget} trials")
    return fig


def plot_search_budgets(comparison: SearchComparison, budgets=(16, 25), seed: int | None = None):
    """Small multiples of the widget's view: one row per budget, the best-so-far curves, then each method's scatter.

    All scatters share one colour scale (the worse half of all trials share the darkest colour).
    """
    import matplotlib.pyplot as plt

    seed = comparison.seeds[0] if seed is None else seed
    budgets = list(budgets)
    if not budgets:
        raise ValueError("budgets must name at least one budget, e.g. budgets=(16, 25)")
    results = {(b, m): comparison.result(m, seed, b) for b in budgets for m in METHODS}  # errors before drawing
    scores = comparison.all_scores()
    vmin, vmax = float(np.quantile(scores, 0.5)), float(scores.max())
    fig, axes = plt.subplots(len(budgets), 1 + len(METHODS), squeeze=False, layout="constrained",
                             figsize=(3.6 * (1 + len(METHODS)), 3.5 * len(budgets)))
    for row, budget in zip(axes, budgets):
        plot_search_curves(comparison, budget, ax=row[0], highlight_seed=seed)
        row[0].set_title(f"Best so far, {budget} trials", fontsize=10)
        for ax, method in zip(row[1:], METHODS):
            plot_search_scatter(results[(budget, method)], comparison.space, ax=ax, vmin=vmin, vmax=vmax,
                                colorbar=method == METHODS[-1])
            ax.title.set_fontsize(10)
    fig.suptitle(f"Seed {seed}'s searches at {' and '.join(map(str, budgets))} trials (band: min-max over "
                 f"{len(comparison.seeds)} seeds; colour: validation accuracy)")
    return fig


def search_widget(comparison: SearchComparison, *, method: str = "random", budget: int = 16,
                  seed: int | None = None):
    """The search-curves widget (an ``InteractiveFigure``): the default comparison, and controls that redraw it."""
    import ipywidgets as w

    from ..widgets import interactive_figure

    seed = comparison.seeds[0] if seed is None else seed
    comparison.result(method, seed, budget)  # a clear error now rather than in the first redraw
    controls = {
        "method": w.Dropdown(options=[(LABELS[m], m) for m in METHODS], value=method, description="method"),
        "budget": w.IntSlider(value=budget, min=2 ** len(comparison.space), max=comparison.max_budget,
                              description="budget", continuous_update=False),
        "seed": w.Dropdown(options=comparison.seeds, value=seed, description="seed"),
    }

    def draw(method, budget, seed):
        return plot_search_comparison(comparison, method, budget, seed)

    return interactive_figure(draw, controls)

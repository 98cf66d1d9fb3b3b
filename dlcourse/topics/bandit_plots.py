"""Figures of section 8.4: cumulative-regret curves over seeds, and the greedy feedback loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from ..plot import PALETTE
from .bandit_simulator import LoopResult, Simulator


def plot_regret_curves(curves: Mapping[str, torch.Tensor], *, ax=None, title: str = "",
                       xlabel: str = "round (one user visit)", ylabel: str = "cumulative regret (clicks lost)",
                       colors: Sequence[str] | None = None) -> Figure:
    """Mean cumulative regret of each policy (label -> ``(steps, seeds)``) with a band from the lowest to the highest seed.

    ``colors`` gives the policies' colours in order (default: the course palette).
    """
    if not curves:
        raise ValueError("curves must map at least one policy name to a (steps, seeds) tensor")
    colors = list(PALETTE if colors is None else colors)
    if len(colors) < len(curves):
        raise ValueError(f"colors names {len(colors)} colours for {len(curves)} curves")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
    fig = ax.figure
    for colour, (label, c) in zip(colors, curves.items()):
        if c.ndim != 2:
            raise ValueError(f"curve {label!r} must be (steps, seeds), got shape {tuple(c.shape)}")
        c = c.detach().cpu().float()
        steps = torch.arange(1, c.shape[0] + 1)
        ax.plot(steps, c.mean(1), color=colour, label=f"{label} ({c[-1].mean():.1f})")
        ax.fill_between(steps, c.min(1).values, c.max(1).values, color=colour, alpha=0.2, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(title="policy (final mean)", loc="upper left")
    return fig


def plot_feedback_loop(sim: Simulator, results: Mapping[str, LoopResult]) -> Figure:
    """Three panels, one colour per way of collecting the log: impressions per item against its true click
    rate; the model's estimate of each item's click rate against the truth (means over users); the click
    rate of each round's recommendations."""
    fig, (shows_ax, est_ax, rate_ax) = plt.subplots(1, 3, figsize=(12.0, 3.8), layout="constrained")
    true = sim.click_prob.mean(0)
    best = int(true.argmax())
    for colour, (name, res) in zip(PALETTE, results.items()):
        shows = res.shows.sum(0)
        shows_ax.scatter(true, shows.clamp(min=0.5), s=14, color=colour, alpha=0.7, label=name)
        est_ax.scatter(true, res.estimate.mean(0), s=14, color=colour, alpha=0.7, label=name)
        est_ax.scatter(true[best], res.estimate.mean(0)[best], s=80, facecolor="none", edgecolor=colour)
        rate_ax.plot(range(1, len(res.round_click_rate) + 1), res.round_click_rate, "o-", color=colour, label=name)
    shows_ax.set(yscale="log", xlabel="true click rate of the item (mean over users)",
                 ylabel="impressions logged (0 drawn at 0.5)", title="Where the log looks")
    lo, hi = float(true.min()), float(true.max())
    est_ax.plot([lo, hi], [lo, hi], color="0.5", ls="--", lw=1, label="estimate = truth")
    est_ax.set(xlabel="true click rate of the item (mean over users)", ylabel="model's estimate",
               title="What the model believes (circle: best item)")
    rate_ax.set(xlabel="round", ylabel="click rate of the round's recommendations",
                title="Clicks collected while learning")
    for ax in (shows_ax, est_ax, rate_ax):
        ax.legend(fontsize=8)
    return fig

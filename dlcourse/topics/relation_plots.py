"""Figures of section 9.1: a knowledge graph's degrees and relation sizes, and a drawn neighbourhood."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from ..plot import PALETTE


def plot_graph_statistics(degrees: torch.Tensor, relation_counts: torch.Tensor, *, title: str = "") -> Figure:
    """Left: entities sorted by degree (log scale). Right: relations sorted by number of facts."""
    degrees, relation_counts = torch.as_tensor(degrees), torch.as_tensor(relation_counts)
    if degrees.ndim != 1 or relation_counts.ndim != 1:
        raise ValueError("degrees and relation_counts must be 1-D tensors (one count per entity / relation)")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    d = degrees.sort(descending=True).values.clamp(min=1)
    axes[0].plot(range(1, len(d) + 1), d.tolist(), color=PALETTE[0])
    axes[0].set(yscale="log", xlabel="entities, by falling degree", ylabel="facts it takes part in")
    c = relation_counts.sort(descending=True).values
    axes[1].bar(range(1, len(c) + 1), c.tolist(), color=PALETTE[1], width=0.8)
    axes[1].set(yscale="log", xlabel="relations, by falling size", ylabel="facts")
    if title:
        fig.suptitle(title)
    return fig


def plot_neighbourhood(triples: Sequence[tuple[str, str, str]], centre: str, *, ax=None,
                       max_edges: int = 12) -> Figure:
    """Draw the facts (head, relation, tail) around ``centre`` as labelled arrows on a circle."""
    triples = [t for t in triples if centre in (t[0], t[2])][:max_edges]
    if not triples:
        raise ValueError(f"no fact mentions {centre!r}: pass triples whose head or tail is the centre entity")
    labels: dict[tuple[str, str], list[str]] = {}  # several relations between one ordered pair share an arrow
    for h, r, t in triples:
        labels.setdefault((h, t), []).append(r)
    others = sorted({x for h, t in labels for x in (h, t) if x != centre})
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
    else:
        fig = ax.figure
    pos = {centre: (0.0, 0.0)}
    for k, name in enumerate(others):
        angle = 2 * math.pi * k / max(len(others), 1)
        radius = 1.0 if k % 2 == 0 else 0.75  # alternate radii so that neighbouring labels do not collide
        pos[name] = (1.3 * radius * math.cos(angle), radius * math.sin(angle))
    for (h, t), rels in labels.items():
        (x0, y0), (x1, y1) = pos[h], pos[t]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color=PALETTE[0], shrinkA=18, shrinkB=18, lw=1.2))
        outer = (x1, y1) if h == centre else (x0, y0)  # labels sit out where the arrows fan apart
        ax.text(0.62 * outer[0], 0.62 * outer[1], "\n".join(rels), fontsize=8, color=PALETTE[3], ha="center", zorder=5,
                va="center", bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=0.5))
    for name, (x, y) in pos.items():
        ax.text(x, y, name.replace("_", " "), ha="center", va="center", fontsize=9,
                fontweight="bold" if name == centre else "normal",
                bbox=dict(boxstyle="round", facecolor="#eef3fb" if name == centre else "white",
                          edgecolor=PALETTE[0]))
    ax.set(xlim=(-1.8, 1.8), ylim=(-1.2, 1.2))
    ax.axis("off")
    return fig

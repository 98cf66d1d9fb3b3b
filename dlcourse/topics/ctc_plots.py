"""Figures for CTC (chapter 6, section 4): a log-mel spectrogram with the network's posteriogram under it."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..plot import PALETTE

DIGIT_COLOURS = tuple(PALETTE[:7]) + ("#999999", "#882255", "#44AA99")  # 10 distinguishable colours


def _describe(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def plot_posteriogram(features: torch.Tensor, log_probs: torch.Tensor, *, frame_seconds: float,
                      output_frame_seconds: float, starts: Sequence[float] = (), digits: Sequence[int] = (),
                      blank: int = 0, title: str = ""):
    """Log-mel spectrogram (top) over the per-frame class probabilities of a CTC model (bottom).

    ``features`` (F, T) are the input frames, ``frame_seconds`` apart; ``log_probs`` (T', C)
    the model's outputs, ``output_frame_seconds`` apart, with class ``blank`` the blank and
    class d + 1 the digit d. ``starts`` (seconds) and ``digits`` mark where each recording of
    the utterance begins and what it says: dashed lines in both panels. Returns the figure.
    """
    if not isinstance(features, torch.Tensor) or features.ndim != 2:
        raise ValueError(f"features must be one utterance's (F, T) tensor, got {_describe(features)}")
    if not isinstance(log_probs, torch.Tensor) or log_probs.ndim != 2 or log_probs.shape[1] < 2:
        raise ValueError("log_probs must be one utterance's (T', C) tensor with C >= 2 (blank + labels), got "
                         f"{_describe(log_probs)}")
    if frame_seconds <= 0 or output_frame_seconds <= 0:
        raise ValueError(f"frame durations must be positive, got {frame_seconds} and {output_frame_seconds}")
    if len(digits) and len(digits) != len(starts):
        raise ValueError(f"need one start per digit, got {len(starts)} starts and {len(digits)} digits")
    features = features.detach().float().cpu().numpy()
    probs = log_probs.detach().float().exp().cpu().numpy()
    fig, (ax_spec, ax_post) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, layout="constrained",
                                           height_ratios=(1.1, 1))
    duration = features.shape[1] * frame_seconds
    ax_spec.imshow(features, origin="lower", aspect="auto", cmap="magma", extent=(0, duration, 0, features.shape[0]))
    ax_spec.set(ylabel="mel band", title=title or "log-mel spectrogram and CTC outputs")
    ax_spec.grid(False)
    t = (np.arange(probs.shape[0]) + 0.5) * output_frame_seconds  # centre of every output frame
    ax_post.fill_between(t, probs[:, blank], color="0.85", step="mid", label="blank")
    labels = [c for c in range(probs.shape[1]) if c != blank]
    for k, c in enumerate(labels):
        if probs[:, c].max() < 0.05:
            continue  # a class that never rises only clutters the legend
        colour = DIGIT_COLOURS[k % len(DIGIT_COLOURS)]
        ax_post.plot(t, probs[:, c], color=colour, lw=1.4, drawstyle="steps-mid", label=f"digit {c - 1}")
    ax_post.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1.05), xlim=(0, duration))
    ax_post.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for k, start in enumerate(starts):
        for ax in (ax_spec, ax_post):
            ax.axvline(start, color="white" if ax is ax_spec else "0.3", ls="--", lw=1)
        if len(digits):
            ax_spec.text(start + 0.02, features.shape[0] - 1, str(digits[k]), color="white", va="top",
                         fontsize=12, fontweight="bold")
    return fig

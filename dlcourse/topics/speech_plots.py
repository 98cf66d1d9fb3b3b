"""Figures of speech signals and their features: waveforms, spectrograms, log-mel, MFCC, filterbanks (chapter 6).

Feature images use the layout of ``speech_features``: frequency (or band, or coefficient)
along the first axis, frames along the second, one frame every ``hop`` samples. The time
axis of every figure is in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..plot import PALETTE
from .speech_features import HOP, N_FFT, N_MELS, SAMPLE_RATE, log_mel, mfcc, stft_power


def _check_image(feats: torch.Tensor) -> np.ndarray:
    if not isinstance(feats, torch.Tensor) or feats.ndim != 2:
        got = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(f"features must be a 2-D tensor (n_features, n_frames) of one recording, got {got}")
    return feats.detach().float().cpu().numpy()


def show_features(ax, feats: torch.Tensor, *, title: str, ylabel: str, hop: int = HOP,
                  sample_rate: int = SAMPLE_RATE, y_range: tuple[float, float] | None = None,
                  boundaries: Sequence[float] = (), cmap: str = "magma", colorbar: str | None = None,
                  vmin: float | None = None, vmax: float | None = None):
    """Draw features (F, T) on ``ax`` as an image, time in seconds on x; returns the image.

    ``y_range`` gives the values of the first and last row (e.g. (0, 4000) Hz for a power
    spectrogram; default: row indices). ``boundaries`` (seconds) draws dashed vertical lines,
    e.g. where each digit of a concatenated utterance starts. ``colorbar`` labels a colour bar.
    """
    array = _check_image(feats)
    n_rows, n_frames = array.shape
    low, high = (-0.5, n_rows - 0.5) if y_range is None else y_range
    half = (high - low) / max(n_rows - 1, 1) / 2 if y_range is not None else 0.0
    extent = (0.0, n_frames * hop / sample_rate, low - half, high + half)
    image = ax.imshow(array, origin="lower", aspect="auto", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                      interpolation="nearest")
    for t in boundaries:
        ax.axvline(t, color="white", linestyle="--", linewidth=1.0)
    ax.set(title=title, xlabel="time (s)", ylabel=ylabel)
    ax.grid(False)
    if colorbar is not None:
        ax.figure.colorbar(image, ax=ax, label=colorbar, pad=0.02)
    return image


def plot_waveforms(recordings: Sequence, *, ncols: int = 3, title: str | None = None,
                   sample_rate: int = SAMPLE_RATE) -> Figure:
    """One panel per recording (objects with ``audio``, ``digit``, ``speaker``, ``take``), shared y axis."""
    recordings = list(recordings)
    if not recordings:
        raise ValueError("plot_waveforms needs at least one recording")
    ncols = min(ncols, len(recordings))
    nrows = -(-len(recordings) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.3 * nrows), sharey=True, squeeze=False,
                             layout="constrained")
    for i, (ax, rec) in enumerate(zip(axes.ravel(), recordings)):
        audio = rec.audio.detach().float().cpu().numpy()
        ax.plot(np.arange(len(audio)) / sample_rate, audio, color=PALETTE[i % len(PALETTE)], linewidth=0.6)
        ax.set(title=f"'{rec.digit}' by {rec.speaker} (take {rec.take})", xlabel="time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("amplitude")
    for ax in axes.ravel()[len(recordings):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def plot_filterbank(fb: torch.Tensor, *, sample_rate: int = SAMPLE_RATE, ax=None, every: int = 1) -> Figure:
    """Each triangular filter (n_mels, n_fft // 2 + 1) against frequency in Hz; ``every`` thins the set."""
    weights = _check_image(fb)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.0), layout="constrained")
    freqs = np.linspace(0, sample_rate / 2, weights.shape[1])
    for i in range(0, weights.shape[0], every):
        ax.plot(freqs, weights[i], color=PALETTE[i % 2], linewidth=1.0)
    ax.set(title=f"{weights.shape[0]} triangular mel filters", xlabel="frequency (Hz)", ylabel="weight",
           xlim=(0, sample_rate / 2))
    return ax.figure


def plot_feature_grid(recordings: Sequence, *, n_fft: int = N_FFT, hop: int = HOP, n_mels: int = N_MELS,
                      n_mfcc: int = 13, sample_rate: int = SAMPLE_RATE) -> Figure:
    """A row per recording: power spectrogram in dB, log-mel, and MFCC, computed with ``speech_features``."""
    recordings = list(recordings)
    if not recordings:
        raise ValueError("plot_feature_grid needs at least one recording")
    fig, axes = plt.subplots(len(recordings), 3, figsize=(11, 2.4 * len(recordings)), squeeze=False,
                             layout="constrained")
    kwargs = dict(sample_rate=sample_rate, n_fft=n_fft, hop=hop, n_mels=n_mels)
    for row, rec in zip(axes, recordings):
        x = rec.audio
        power_db = 10 * torch.log10(stft_power(x, n_fft, hop) + 1e-10)
        name = f"'{rec.digit}' by {rec.speaker}"
        show_features(row[0], power_db, title=f"{name}: power (dB)", ylabel="frequency (Hz)", hop=hop,
                      sample_rate=sample_rate, y_range=(0, sample_rate / 2), vmin=float(power_db.max()) - 80)
        show_features(row[1], log_mel(x, **kwargs), title=f"{name}: log-mel", ylabel="mel band", hop=hop,
                      sample_rate=sample_rate)
        coeffs = mfcc(x, n_mfcc, **kwargs)[1:]  # c0 (the log energy) dwarfs the others
        limit = float(coeffs.abs().max())
        show_features(row[2], coeffs, title=f"{name}: MFCC 1-{n_mfcc - 1}", ylabel="coefficient", hop=hop,
                      sample_rate=sample_rate, y_range=(1, n_mfcc - 1), cmap="RdBu_r", vmin=-limit, vmax=limit)
    return fig

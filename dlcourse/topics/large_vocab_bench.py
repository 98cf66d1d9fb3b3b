"""Timing the output layers of ``large_vocab`` against the full softmax (chapter 7, section 3).

``step_time_table`` times one training step (forward, backward and an SGD step) of each
output layer on a fixed batch of hidden vectors, with targets drawn from a Zipf law, for
several vocabulary sizes, beside PyTorch's ``nn.AdaptiveLogSoftmaxWithLoss``. The methods are
timed in turns (one step of each, repeated), so that a busy moment of a shared machine does
not favour one of them, and the median of the repeats is kept. ``plot_speedups`` draws the
speed-up over the full softmax against |V|. ``unigram_init_`` starts every output layer
from the same unigram model, so that short training runs compare fairly.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from ..device import Timer
from ..plot import PALETTE
from .large_vocab import (NCE, ClassSoftmax, FullSoftmax, ImportanceSampledSoftmax, RankingLoss, ShortList,
                          _SampledOutput, frequency_classes)

METHODS = ("full", "class", "importance", "nce", "ranking", "adaptive")
LABELS = {"full": "full softmax", "class": "class (hierarchical) softmax", "importance": "importance sampling",
          "nce": "NCE", "ranking": "ranking loss", "adaptive": "adaptive softmax (PyTorch)"}


def unigram_init_(layer: nn.Module, counts: torch.Tensor) -> nn.Module:
    """Set the biases of ``layer`` so that, for h = 0, it predicts the unigram distribution of ``counts``.

    Works for ``FullSoftmax``, ``ClassSoftmax``, ``ShortList``, the sampled layers (whose
    biases start at log q anyway) and ``nn.AdaptiveLogSoftmaxWithLoss(..., head_bias=True)``
    (its head only: inside a tail cluster the words start equally likely); returns the layer.
    Starting every layer from the same unigram model makes a short training run a fair comparison.
    """
    if not isinstance(counts, torch.Tensor) or counts.ndim != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("counts must be a 1-D non-negative tensor with a positive total (e.g. WordVocab.counts)")
    log_p = (counts.double() / counts.double().sum()).clamp(min=1e-30).log()
    params = list(layer.parameters())
    log_p = log_p.to(params[0].device) if params else log_p
    with torch.no_grad():
        if isinstance(layer, FullSoftmax) and counts.numel() == layer.vocab_size:
            layer.linear.bias.copy_(log_p)
        elif isinstance(layer, ClassSoftmax) and counts.numel() == layer.vocab_size:
            log_class = torch.logsumexp(torch.full((len(layer.biases), counts.numel()), -math.inf, dtype=torch.float64)
                                        .scatter(0, layer.word_class[None], log_p[None]), dim=1)
            layer.class_layer.bias.copy_(log_class)
            for c, b in enumerate(layer.biases):
                b.copy_(log_p[layer.order[layer.word_class[layer.order] == c]] - log_class[c])
        elif isinstance(layer, ShortList) and counts.numel() == layer.vocab_size:
            L = layer.shortlist_size
            layer.linear.bias.copy_(torch.cat([log_p[:L], torch.logsumexp(log_p[L:], 0, keepdim=True)]))
        elif isinstance(layer, _SampledOutput) and counts.numel() == layer.vocab_size:
            layer.bias.weight.copy_(log_p[:, None])
        elif (isinstance(layer, nn.AdaptiveLogSoftmaxWithLoss) and layer.head_bias
              and counts.numel() == layer.n_classes):   # tail clusters have no biases: uniform inside a cluster
            cuts = layer.cutoffs
            clusters = [torch.logsumexp(log_p[a:b], 0) for a, b in zip(cuts[:-1], cuts[1:])]
            layer.head.bias.copy_(torch.cat([log_p[: cuts[0]], torch.stack(clusters)]))
        else:
            raise ValueError(f"cannot unigram-initialise {type(layer).__name__} with {counts.numel()} counts: expected "
                             "FullSoftmax, ClassSoftmax, ShortList, a sampled layer or an adaptive softmax with "
                             "head_bias=True over the same vocabulary")
    return layer


def zipf_probs(vocab_size: int, exponent: float = 1.0) -> torch.Tensor:
    """(V,) Zipf probabilities p_i proportional to 1 / (i + 1)^exponent: id 0 is the most frequent word."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
    if not exponent > 0:
        raise ValueError(f"exponent must be positive, got {exponent!r}")
    p = 1.0 / torch.arange(1, vocab_size + 1, dtype=torch.float64) ** exponent
    return (p / p.sum()).float()


def frequency_cutoffs(probs: torch.Tensor, masses: Sequence[float] = (0.7, 0.9)) -> list[int]:
    """Cutoffs for ``nn.AdaptiveLogSoftmaxWithLoss``: the ids (sorted by falling frequency) where the
    cumulative probability first reaches each of ``masses``, kept strictly increasing inside 1..V-1."""
    cum = torch.cumsum(probs.double(), 0) / probs.double().sum()
    cuts = []
    for m in masses:
        c = int(torch.searchsorted(cum, torch.tensor(float(m), dtype=torch.float64))) + 1
        c = min(max(c, (cuts[-1] + 1) if cuts else 1), probs.numel() - 1)
        if not cuts or c > cuts[-1]:
            cuts.append(c)
    return cuts


def make_layer(method: str, hidden_dim: int, probs: torch.Tensor, *, num_samples: int = 256,
               num_classes: int | None = None, seed: int = 0, sparse: bool = True) -> nn.Module:
    """One output layer for a vocabulary with unigram ``probs`` (V,); ``method`` is one of ``METHODS``.

    The class softmax uses ``frequency_classes`` with ``num_classes`` (default round(sqrt(V)));
    the sampled methods draw ``num_samples`` words from the unigram (uniformly for the ranking
    loss) and, with ``sparse``, get sparse gradients (train them with SGD or SparseAdam).
    """
    V = probs.numel()
    if method == "full":
        return FullSoftmax(hidden_dim, V)
    if method == "class":
        return ClassSoftmax(hidden_dim, frequency_classes(probs, num_classes or round(V ** 0.5)))
    if method == "importance":
        return ImportanceSampledSoftmax(hidden_dim, V, probs, num_samples, seed=seed, sparse=sparse)
    if method == "nce":
        return NCE(hidden_dim, V, probs, num_samples, seed=seed, sparse=sparse)
    if method == "ranking":
        return RankingLoss(hidden_dim, V, num_samples, seed=seed, sparse=sparse)
    if method == "adaptive":
        return nn.AdaptiveLogSoftmaxWithLoss(hidden_dim, V, cutoffs=frequency_cutoffs(probs), div_value=4.0)
    raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")


def layer_loss(layer: nn.Module, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of any layer from ``make_layer`` (the adaptive softmax returns a named tuple)."""
    if isinstance(layer, nn.AdaptiveLogSoftmaxWithLoss):
        return layer(h, y).loss
    return layer.loss(h, y)


def step_time_table(vocab_sizes: Sequence[int] = (1_000, 5_000, 10_000, 50_000), *,
                    methods: Sequence[str] = METHODS, batch_size: int = 256, hidden_dim: int = 128,
                    num_samples: int = 256, repeats: int = 5, warmup: int = 2, min_seconds: float = 0.02,
                    lr: float = 0.1,
                    device: torch.device | str = "cpu", seed: int = 0, progress=None) -> pd.DataFrame:
    """Median seconds per training step of each method and vocabulary size, and the speed-up over "full".

    A step is forward, backward and ``torch.optim.SGD`` (no momentum, so sparse gradients
    are allowed) on a fixed (batch_size, hidden_dim) batch of hidden vectors; targets are drawn
    from ``zipf_probs``. ``warmup`` turns are run and discarded, then ``repeats`` timed turns
    in which every method takes as many steps as fill about ``min_seconds`` (1 to 20, fixed
    after the warm-up), so that the quick methods are not timed by a single noisy step. Returns a long table with columns
    ``vocab_size, method, label, seconds, speedup`` (median full-softmax seconds / median
    seconds) and ``speedup_low``, a cautious bound: the full softmax's lower quartile over the
    method's upper quartile.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "full" not in methods:
        raise ValueError(f"methods must be a subset of {METHODS} including 'full', got {tuple(methods)}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for V in (progress(vocab_sizes) if progress else vocab_sizes):
        probs = zipf_probs(int(V))
        h = torch.randn(batch_size, hidden_dim, generator=g).to(device)
        layers = {m: make_layer(m, hidden_dim, probs, num_samples=num_samples, seed=seed).to(device)
                  for m in methods}
        opts = {m: torch.optim.SGD(layer.parameters(), lr=lr) for m, layer in layers.items()}
        times = {m: [] for m in methods}
        calls = {m: 1 for m in methods}  # steps per measurement: about min_seconds, set after the warm-up
        for turn in range(warmup + repeats):
            y = torch.multinomial(probs, batch_size, replacement=True, generator=g).to(device)
            for m in methods:
                with Timer(device) as t:
                    for _ in range(calls[m]):
                        opts[m].zero_grad(set_to_none=True)
                        layer_loss(layers[m], h, y).backward()
                        opts[m].step()
                if turn >= warmup:
                    times[m].append(t.seconds / calls[m])
                elif turn == warmup - 1:
                    calls[m] = max(1, min(20, round(min_seconds / max(t.seconds, 1e-6))))
        full, full_q1 = statistics.median(times["full"]), _quantile(times["full"], 0.25)
        for m in methods:
            sec = statistics.median(times[m])
            rows.append({"vocab_size": int(V), "method": m, "label": LABELS[m], "seconds": sec, "speedup": full / sec,
                         "speedup_low": full_q1 / _quantile(times[m], 0.75)})
        del layers, opts
    return pd.DataFrame(rows)


def _quantile(values: Sequence[float], q: float) -> float:
    return float(torch.quantile(torch.tensor(values, dtype=torch.float64), q))


def speedup_table(table: pd.DataFrame) -> pd.DataFrame:
    """Wide view of ``step_time_table``: one row per method, one column per |V|, speed-ups over the full softmax."""
    wide = table.pivot(index="label", columns="vocab_size", values="speedup")
    order = [LABELS[m] for m in METHODS if LABELS[m] in wide.index]
    wide = wide.loc[order]
    wide.columns = [f"|V|={v:,}" for v in wide.columns]
    return wide


def plot_speedups(table: pd.DataFrame, ax=None, title: str = ""):
    """Speed-up over the full softmax against |V| (log-log), one line per method; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.6))
    for i, (m, part) in enumerate(table.groupby("method", sort=False)):
        part = part.sort_values("vocab_size")
        style = "--" if m == "full" else "-"
        ax.plot(part["vocab_size"], part["speedup"], style, marker="o", color=PALETTE[i % len(PALETTE)],
                label=LABELS.get(m, m))
    ax.set(xscale="log", yscale="log", xlabel="vocabulary size |V|", ylabel="speed-up over the full softmax",
           title=title)
    ax.legend(fontsize=8)
    return ax

"""Connectionist temporal classification (CTC): decoding and scoring (chapter 6, section 4).

A CTC model emits, at every frame t, a distribution over C classes: the labels plus a
*blank* (class ``blank``, 0 by default). A *path* is one class per frame; the many-to-one map
B turns a path into a label sequence by merging repeated classes and then dropping blanks
(``collapse``): B(-33-355-) = 335 with "-" the blank. The probability of a label sequence y
is the sum over all paths that collapse to it, P(y | X) = sum_{pi in B^-1(y)} prod_t p_t(pi_t),
which the forward recursion (``ctc_log_prob``) computes in O(T |y|) time.

* ``greedy_decode``: the best class per frame, collapsed (best path decoding); ``emissions``
  says at which frames it emits its labels.
* ``beam_search``: CTC prefix beam search, which keeps the ``beam_width`` most probable label
  prefixes and, for each, the log-probability of the paths ending in a blank and in a label.
* ``edit_distance`` and ``error_rate``: Levenshtein distance and the (digit, word) error rate
  sum of distances / total reference length.

Layouts follow ``nn.CTCLoss``: log-probabilities (T, C) for one line or (T, B, C) for a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

NEG_INF = float("-inf")


def _check_blank(blank: int, num_classes: int | None = None) -> None:
    if not isinstance(blank, int) or blank < 0 or (num_classes is not None and blank >= num_classes):
        where = f" of the {num_classes} classes" if num_classes is not None else ""
        raise ValueError(f"blank must be the index{where} used for the CTC blank (0 <= blank), got {blank!r}")


def collapse(path: Sequence[int], blank: int = 0) -> list[int]:
    """The CTC map B: merge runs of the same class, then drop blanks. [0,3,3,0,3,5,5,0] -> [3,3,5]."""
    _check_blank(blank)
    if isinstance(path, torch.Tensor):
        if path.ndim != 1:
            raise ValueError(f"path must be one class index per frame, shape (T,), got {tuple(path.shape)}")
        path = path.tolist()
    out, previous = [], None
    for c in path:
        c = int(c)
        if c != previous and c != blank:
            out.append(c)
        previous = c
    return out


def _check_log_probs(log_probs: torch.Tensor, ndims: tuple[int, ...], name: str) -> None:
    if not isinstance(log_probs, torch.Tensor) or log_probs.ndim not in ndims or not log_probs.is_floating_point():
        got = f"{tuple(log_probs.shape)} {log_probs.dtype}" if isinstance(log_probs, torch.Tensor) \
            else type(log_probs).__name__
        shapes = " or ".join({2: "(T, C)", 3: "(T, B, C)"}[d] for d in ndims)
        raise ValueError(f"{name} expects float log-probabilities of shape {shapes} (the nn.CTCLoss layout: "
                         f"frames first), got {got}")
    if log_probs.shape[0] < 1 or log_probs.shape[-1] < 2:
        raise ValueError(f"{name} needs at least 1 frame and 2 classes (blank + a label), got shape "
                         f"{tuple(log_probs.shape)}")


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | None = None, blank: int = 0) -> list[list[int]]:
    """Best class per frame, collapsed: one list of class ids (blank removed) per line.

    ``log_probs`` is (T, C) for one line (the result is then a one-element list) or (T, B, C);
    ``lengths`` (B,) gives each line's real frames (default: all T frames).
    """
    _check_log_probs(log_probs, (2, 3), "greedy_decode")
    _check_blank(blank, log_probs.shape[-1])
    if log_probs.ndim == 2:
        log_probs = log_probs.unsqueeze(1)
    T, B = log_probs.shape[:2]
    if lengths is None:
        lengths = torch.full((B,), T)
    lengths = torch.as_tensor(lengths).reshape(-1)
    if lengths.shape != (B,) or (B and (int(lengths.min()) < 0 or int(lengths.max()) > T)):
        raise ValueError(f"lengths must hold one frame count between 0 and T = {T} per line ({B} lines), "
                         f"got {lengths.tolist()}")
    best = log_probs.argmax(-1).cpu()  # (T, B)
    return [collapse(best[: int(n), b], blank) for b, n in enumerate(lengths.tolist())]


def emissions(log_probs: torch.Tensor, blank: int = 0) -> list[tuple[int, int]]:
    """Where best path decoding emits its labels: (frame, class) at the first frame of every non-blank run.

    ``log_probs`` is one line (T, C); ``[c for _, c in emissions(lp)] == greedy_decode(lp)[0]``.
    """
    _check_log_probs(log_probs, (2,), "emissions")
    _check_blank(blank, log_probs.shape[1])
    best = log_probs.argmax(-1).tolist()
    return [(t, c) for t, c in enumerate(best) if c != blank and (t == 0 or best[t - 1] != c)]


def _logaddexp(*xs: float) -> float:
    m = max(xs)
    if m == NEG_INF:
        return NEG_INF
    return m + math.log(sum(math.exp(x - m) for x in xs))


def beam_search(log_probs: torch.Tensor, beam_width: int = 8, blank: int = 0,
                prune: float | None = None) -> list[int]:
    """CTC prefix beam search over one line's log-probabilities (T, C): the most probable label sequence found.

    For every kept prefix the search tracks log P(prefix, path ends in blank) and log P(prefix,
    path ends in a label), so paths that collapse to the same prefix are added up rather than
    compared; after each frame only the ``beam_width`` most probable prefixes survive. Classes
    with log-probability below ``prune`` at a frame are skipped (None: try every class).
    """
    _check_log_probs(log_probs, (2,), "beam_search")
    C = log_probs.shape[1]
    _check_blank(blank, C)
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be a positive int, got {beam_width!r}")
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, NEG_INF]}  # prefix -> [log p_blank, log p_label]
    for frame in log_probs.detach().double().cpu().tolist():
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix, slot, value):
            entry = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            entry[slot] = _logaddexp(entry[slot], value)

        classes = range(C) if prune is None else [c for c in range(C) if frame[c] >= prune or c == blank]
        for prefix, (p_b, p_nb) in beams.items():
            for c in classes:
                p = frame[c]
                if c == blank:  # the prefix is unchanged; the path now ends in a blank
                    add(prefix, 0, _logaddexp(p_b, p_nb) + p)
                elif prefix and c == prefix[-1]:
                    add(prefix + (c,), 1, p_b + p)  # a repeat needs a blank in between ...
                    add(prefix, 1, p_nb + p)  # ... otherwise it merges into the last label
                else:
                    add(prefix + (c,), 1, _logaddexp(p_b, p_nb) + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = dict(ranked[:beam_width])
    best = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]))
    return list(best[0])


def ctc_log_prob(log_probs: torch.Tensor, labels: Sequence[int], blank: int = 0) -> torch.Tensor:
    """log P(labels | X) for one line (T, C) by the CTC forward recursion (a teaching version of ``nn.CTCLoss``).

    The labels are interleaved with blanks, z = (-, y1, -, y2, ..., yU, -), and alpha_t(s) is the
    log-probability of all path prefixes of length t + 1 that end in z_s having produced z_1..z_s.
    alpha_t(s) = (alpha_{t-1}(s) + alpha_{t-1}(s-1) [+ alpha_{t-1}(s-2) if z_s is a label differing
    from z_{s-2}]) * p_t(z_s), in log space. The answer adds the last two states. -inf if impossible.
    """
    _check_log_probs(log_probs, (2,), "ctc_log_prob")
    T, C = log_probs.shape
    _check_blank(blank, C)
    labels = [int(c) for c in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    if any(c == blank or not 0 <= c < C for c in labels):
        raise ValueError(f"labels must be class indices in [0, {C}) other than the blank {blank}, got {labels}")
    z = [blank]
    for c in labels:
        z += [c, blank]
    S = len(z)
    lp = log_probs[:, z]  # (T, S): p_t(z_s)
    neg = torch.full((1,), NEG_INF, dtype=log_probs.dtype, device=log_probs.device)
    skip = torch.tensor([s >= 2 and z[s] != blank and z[s] != z[s - 2] for s in range(S)], device=log_probs.device)
    alpha = torch.cat([lp[0, :2], neg.expand(S - 2)]) if S > 1 else lp[0, :1]
    for t in range(1, T):
        stay, step = alpha, torch.cat([neg, alpha[:-1]])
        jump = torch.where(skip, torch.cat([neg, neg, alpha[:-2]]) if S > 2 else neg.expand(S), neg)
        alpha = torch.logsumexp(torch.stack([stay, step, jump]), dim=0) + lp[t]
    return torch.logsumexp(alpha[-2:], dim=0) if S > 1 else alpha[-1]


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions turning ``ref`` into ``hyp``."""
    ref, hyp = list(ref), list(hyp)
    row = list(range(len(hyp) + 1))  # distances from ref[:0] to every prefix of hyp
    for i, r in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> float:
    """Sum of edit distances / total reference length: the digit (or word) error rate; it can exceed 1."""
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"need one hypothesis per reference, got {len(refs)} references and {len(hyps)} hypotheses")
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("the references hold no symbols at all, so the error rate is undefined")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / total

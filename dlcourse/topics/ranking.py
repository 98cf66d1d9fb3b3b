"""Implicit feedback and top-k ranking (chapter 8, section 3).

With implicit feedback a recommender sees only that a user interacted with an item (rated,
clicked, bought) and must rank the catalogue for each user. This module holds

- the ranking itself: ``top_k`` (already-seen items excluded) and ``history_mask``;
- the metrics, on a (users, items) score matrix: ``recall_at_k`` and ``ndcg_at_k`` with
  binary relevance, DCG = sum_i rel_i / log2(i + 1) over the top k positions, divided by the
  DCG of an ideal list that puts min(k, |relevant|) relevant items first;
- the losses: ``bpr_loss`` (Rendle et al. 2009, -log sigmoid(s_pos - s_neg)) and
  ``sampled_softmax_loss`` (a softmax over the positive and a few sampled negatives, with the
  optional log-q correction for non-uniform sampling);
- a factorisation scorer for implicit feedback, ``ImplicitMF``, its trainer ``train_ranker``
  with uniformly sampled negatives, ``evaluate_ranking`` (per-user metrics, scored in chunks
  of users) and ``bootstrap_interval`` (a percentile interval of a mean over users).

Relevance (``held_out``) may be a (U, I) bool tensor, a (U,) LongTensor with one relevant
item per user (the leave-last-out case), or a sequence of U collections of item ids.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..train import History, TensorBatches, fit

REDUCTIONS = ("mean", "none")
LOSSES = ("bpr", "softmax")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_scores(scores) -> None:
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or not scores.is_floating_point():
        got = f"{tuple(scores.shape)} {scores.dtype}" if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a (users, items) float tensor, one row of item scores per user, got {got}")


def _check_exclude(exclude, shape) -> None:
    if exclude is not None and (not isinstance(exclude, torch.Tensor) or exclude.dtype != torch.bool
                                or tuple(exclude.shape) != tuple(shape)):
        got = f"{tuple(exclude.shape)} {exclude.dtype}" if isinstance(exclude, torch.Tensor) else type(exclude).__name__
        raise ValueError(f"exclude must be a bool tensor of the scores' shape {tuple(shape)} "
                         f"(True = already seen, never recommended), got {got}")


def relevance_mask(held_out, shape: tuple[int, int], device=None) -> torch.Tensor:
    """(U, I) bool mask of the relevant (held-out) items from any accepted form of ``held_out``."""
    U, I = shape
    if isinstance(held_out, torch.Tensor) and held_out.dtype == torch.bool:
        if tuple(held_out.shape) != (U, I):
            raise ValueError(f"a bool held_out must have the scores' shape {(U, I)}, got {tuple(held_out.shape)}")
        return held_out.to(device)
    if isinstance(held_out, torch.Tensor):
        if held_out.shape != (U,) or held_out.is_floating_point():
            raise ValueError(f"a tensor held_out must be a (U, I) bool mask or a ({U},) LongTensor with one item "
                             f"per user, got {tuple(held_out.shape)} {held_out.dtype}")
        rows, cols = torch.arange(U), held_out.long().cpu()
    else:
        if len(held_out) != U:
            raise ValueError(f"held_out must hold one collection of item ids per user ({U}), got {len(held_out)}")
        pairs = [(u, int(i)) for u, items in enumerate(held_out) for i in items]
        rows = torch.tensor([p[0] for p in pairs], dtype=torch.long)
        cols = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    if len(cols) and (int(cols.min()) < 0 or int(cols.max()) >= I):
        raise ValueError(f"held-out item ids must lie in 0..{I - 1}, got {int(cols.min())}..{int(cols.max())}")
    mask = torch.zeros(U, I, dtype=torch.bool)
    mask[rows, cols] = True
    return mask.to(device)


def top_k(scores: torch.Tensor, k: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """(U, k) ids of each user's k highest-scoring items, best first, never an item marked in ``exclude``.

    Ties are broken by ``torch.topk``. A user with fewer than k candidates left raises.
    """
    _check_scores(scores)
    _positive_int("k", k)
    _check_exclude(exclude, scores.shape)
    if k > scores.shape[1]:
        raise ValueError(f"k = {k} is larger than the number of items ({scores.shape[1]})")
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    top = scores.topk(k, dim=1).indices
    if exclude is not None and exclude.gather(1, top).any():  # only when a user has fewer than k candidates
        left = int((~exclude).sum(1).min())
        raise ValueError(f"some user has only {left} candidate items after the exclusion, fewer than k = {k}")
    return top


def _metrics_of_top(top: torch.Tensor, relevant: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-user recall and NDCG of the (U, k) lists ``top`` given the (U, I) bool ``relevant`` (NaN: none relevant)."""
    k = top.shape[1]
    hits = relevant.gather(1, top).float()
    num_relevant = relevant.sum(1)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=top.device, dtype=torch.float32))
    ideal = torch.cumsum(discount, 0)[num_relevant.clamp(min=1, max=k) - 1]
    none = num_relevant == 0  # undefined without a relevant item
    return {"recall": (hits.sum(1) / num_relevant.clamp(min=1)).masked_fill(none, float("nan")),
            "ndcg": ((hits * discount).sum(1) / ideal).masked_fill(none, float("nan"))}


def _metric(name: str, scores, held_out, k, exclude, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose 'mean' or 'none' (per user)")
    top = top_k(scores, k, exclude)
    per_user = _metrics_of_top(top, relevance_mask(held_out, tuple(scores.shape), scores.device))[name]
    if reduction == "none":
        return per_user
    if per_user.isnan().all():
        raise ValueError("no user has a relevant item: recall and NDCG are undefined")
    return per_user.nanmean().item()


def recall_at_k(scores: torch.Tensor, held_out, k: int, exclude: torch.Tensor | None = None,
                reduction: str = "mean"):
    """Recall@k: the share of each user's relevant items found in their top k, averaged over users.

    ``reduction="none"`` returns the (U,) per-user values (NaN for a user with no relevant
    item; the mean skips those users).
    """
    return _metric("recall", scores, held_out, k, exclude, reduction)


def ndcg_at_k(scores: torch.Tensor, held_out, k: int, exclude: torch.Tensor | None = None,
              reduction: str = "mean"):
    """NDCG@k with binary relevance: sum_i rel_i / log2(i + 1) over positions i = 1..k, over its ideal value.

    The ideal DCG places min(k, |relevant|) relevant items first. ``reduction`` as in ``recall_at_k``.
    """
    return _metric("ndcg", scores, held_out, k, exclude, reduction)


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: mean of -log sigmoid(s_pos - s_neg) (Rendle et al. 2009).

    ``pos_scores`` (B,); ``neg_scores`` (B,) or (B, N) with N negatives per positive.
    """
    if pos_scores.ndim != 1 or neg_scores.ndim not in (1, 2) or neg_scores.shape[0] != pos_scores.shape[0]:
        raise ValueError(f"bpr_loss expects pos_scores (B,) and neg_scores (B,) or (B, N), "
                         f"got {tuple(pos_scores.shape)} and {tuple(neg_scores.shape)}")
    pos = pos_scores if neg_scores.ndim == 1 else pos_scores[:, None]
    return -F.logsigmoid(pos - neg_scores).mean()


def sampled_softmax_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor,
                         log_q_pos: torch.Tensor | None = None, log_q_neg: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the positive in a softmax over itself and N sampled negatives.

    ``pos_scores`` (B,), ``neg_scores`` (B, N). With a non-uniform sampler pass the log
    sampling probabilities (``log_q_pos`` (B,), ``log_q_neg`` (B, N)): each score is reduced
    by its log q (the logQ correction), so frequently sampled items are not over-penalised.
    """
    if pos_scores.ndim != 1 or neg_scores.ndim != 2 or neg_scores.shape[0] != pos_scores.shape[0]:
        raise ValueError(f"sampled_softmax_loss expects pos_scores (B,) and neg_scores (B, N), "
                         f"got {tuple(pos_scores.shape)} and {tuple(neg_scores.shape)}")
    if (log_q_pos is None) != (log_q_neg is None):
        raise ValueError("pass both log_q_pos and log_q_neg (or neither, for uniform sampling)")
    if log_q_pos is not None:
        pos_scores, neg_scores = pos_scores - log_q_pos, neg_scores - log_q_neg
    logits = torch.cat([pos_scores[:, None], neg_scores], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


class ImplicitMF(nn.Module):
    """A dot-product scorer for implicit feedback: s(u, i) = p_u . q_i + b_i.

    Unlike the rating model ``BiasedMF`` it has no global mean and no user bias: a ranking
    compares items for one user, and both would add the same number to all of them.
    ``score_all(users)`` scores the whole catalogue for a batch of users with one matrix product.
    With ``sparse=True`` the embeddings return sparse gradients, which touch only the rows of
    a batch (``train_ranker`` then uses ``torch.optim.SparseAdam``: much faster steps).
    """

    def __init__(self, num_users: int, num_items: int, dim: int, init_std: float = 0.1, sparse: bool = False):
        super().__init__()
        for name, value in {"num_users": num_users, "num_items": num_items, "dim": dim}.items():
            _positive_int(name, value)
        self.user_factors = nn.Embedding(num_users, dim, sparse=sparse)
        self.item_factors = nn.Embedding(num_items, dim, sparse=sparse)
        self.item_bias = nn.Embedding(num_items, 1, sparse=sparse)
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.item_factors.weight, std=init_std)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Scores of (user, item) pairs: ``user`` (B,) with ``item`` (B,) or (B, N) -> same shape as ``item``."""
        p = self.user_factors(user)
        if item.ndim == 2:
            p = p[:, None, :]
        return (p * self.item_factors(item)).sum(-1) + self.item_bias(item).squeeze(-1)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """(B, I) scores of every item for the users ``users`` (B,)."""
        return self.user_factors(users) @ self.item_factors.weight.T + self.item_bias.weight.T


def train_ranker(model: ImplicitMF, user: torch.Tensor, item: torch.Tensor, *, epochs: int, batch_size: int,
                 lr: float, reg: float = 0.0, loss: str = "bpr", num_negatives: int = 1,
                 device: torch.device | str = "cpu", generator: torch.Generator | None = None,
                 on_epoch_end: Callable[[int, History], None] | None = None, progress: bool = True) -> History:
    """Train ``model`` on positive pairs (``user``, ``item``) with uniformly sampled negative items.

    ``loss="bpr"`` uses ``bpr_loss``, ``"softmax"`` ``sampled_softmax_loss``. ``reg`` is an
    L2 penalty on the factors and biases of the rows in each batch, as in BPR's SGD. A sampled
    negative can be one of the user's positives; with thousands of items that is rare and is
    ignored. Negatives are drawn on the CPU from ``generator``, so runs agree across devices.
    The optimiser is Adam, or ``SparseAdam`` (lazy Adam: only the rows in a batch move) for a
    model built with ``sparse=True``.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose 'bpr' or 'softmax'")
    if user.shape != item.shape or user.ndim != 1:
        raise ValueError(f"user and item must be (N,) id tensors of one length, got {tuple(user.shape)}, "
                         f"{tuple(item.shape)}")
    _positive_int("num_negatives", num_negatives)
    num_items = model.item_factors.num_embeddings

    def compute_loss(m: ImplicitMF, batch) -> torch.Tensor:
        u, pos = batch
        neg = torch.randint(num_items, (len(u), num_negatives), generator=generator).to(u.device)
        s_pos, s_neg = m(u, pos), m(u, neg)
        value = bpr_loss(s_pos, s_neg) if loss == "bpr" else sampled_softmax_loss(s_pos, s_neg)
        if reg:
            rows = [m.user_factors(u), m.item_factors(pos), m.item_factors(neg), m.item_bias(pos), m.item_bias(neg)]
            value = value + reg * sum(r.pow(2).sum() for r in rows) / len(u)
        return value

    model.to(device)
    batches = TensorBatches(user.to(device), item.to(device), batch_size=batch_size, generator=generator)
    sparse = model.user_factors.sparse
    optimizer = (torch.optim.SparseAdam if sparse else torch.optim.Adam)(list(model.parameters()), lr=lr)
    return fit(model, batches, optimizer=optimizer, num_epochs=epochs, compute_loss=compute_loss, device=device,
               on_epoch_end=on_epoch_end, progress=progress)


def history_mask(users: torch.Tensor, hist_user: torch.Tensor, hist_item: torch.Tensor, num_items: int,
                 num_users: int | None = None) -> torch.Tensor:
    """(len(users), num_items) bool: True where the user of that row has ``(hist_user, hist_item)`` pairs."""
    size = int(max(users.max(), hist_user.max())) + 1 if num_users is None else num_users
    row_of = torch.full((size,), -1, dtype=torch.long, device=users.device)
    row_of[users] = torch.arange(len(users), device=users.device)
    rows = row_of[hist_user.to(users.device)]
    keep = rows >= 0
    mask = torch.zeros(len(users), num_items, dtype=torch.bool, device=users.device)
    mask[rows[keep], hist_item.to(users.device)[keep]] = True
    return mask


@torch.no_grad()
def evaluate_ranking(score_fn: Callable[[torch.Tensor], torch.Tensor], users: torch.Tensor,
                     held_out_items: torch.Tensor, history: tuple[torch.Tensor, torch.Tensor], num_items: int,
                     k: int = 10, batch_size: int = 1024) -> dict[str, torch.Tensor]:
    """Per-user Recall@k and NDCG@k (CPU tensors of shape (U,)) of one held-out item per user.

    ``score_fn(users_chunk) -> (B, num_items)`` scores the catalogue; ``history`` = (user, item)
    pairs that are excluded from each user's candidates (their training items). The same as
    ``recall_at_k`` / ``ndcg_at_k`` with ``history_mask``, computed chunk by chunk without the
    dense mask.
    """
    if users.shape != held_out_items.shape or users.ndim != 1:
        raise ValueError(f"users and held_out_items must be (U,) tensors of one length, got {tuple(users.shape)} "
                         f"and {tuple(held_out_items.shape)}")
    _positive_int("k", k)
    hist_user, hist_item = (t.cpu() for t in history)
    row_of = torch.full((int(max(users.max(), hist_user.max())) + 1,), -1, dtype=torch.long)
    out = {"recall": [], "ndcg": []}
    for idx in torch.arange(len(users)).split(batch_size):
        row_of[users[idx]] = torch.arange(len(idx))
        rows = row_of[hist_user]
        keep = rows >= 0
        scores = score_fn(users[idx]).float()
        _check_scores(scores)
        seen_rows, seen_items = rows[keep].to(scores.device), hist_item[keep].to(scores.device)
        scores = scores.index_put((seen_rows, seen_items), torch.tensor(float("-inf"), device=scores.device))
        top = scores.topk(k, dim=1).indices
        if torch.isinf(scores.gather(1, top[:, -1:])).any():
            raise ValueError(f"some user has fewer than k = {k} candidate items after the exclusion")
        relevant = relevance_mask(held_out_items[idx], tuple(scores.shape), scores.device)
        for name, values in _metrics_of_top(top, relevant).items():
            out[name].append(values.cpu())
        row_of[users[idx]] = -1
    return {name: torch.cat(parts) for name, parts in out.items()}


def bootstrap_interval(values, num_samples: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` (one per user) and its percentile bootstrap interval.

    For a paired comparison of two models pass the per-user differences.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or np.isnan(values).any():
        raise ValueError(f"values must be a non-empty 1-D array without NaN, got shape {values.shape}")
    _positive_int("num_samples", num_samples)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    means = np.concatenate([values[rng.integers(len(values), size=(len(chunk), len(values)))].mean(1)
                            for chunk in np.array_split(np.arange(num_samples), max(1, num_samples * len(values) // 10**7))])
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(low), float(high)

"""Lab 8 exercises 3 and 4: Recall@k and NDCG@k with the items a user has already seen excluded."""

from __future__ import annotations

import math

import numpy as np
import torch

from ....topics import ranking
from .. import CheckFailed, Mistake, as_float, call, diagnose, expect_unchanged, fresh, passed

# Exercises 3 and 4 ------------------------------------------------------------------------


def _ranked_relevance(scores, seen, relevant, k, exclude: bool = True) -> torch.Tensor:
    """(U, k) float: 1 where the item at each rank of a user's top k is relevant."""
    masked = scores.masked_fill(seen, float("-inf")) if exclude else scores
    top = masked.topk(k, dim=1).indices
    return relevant.gather(1, top).double()


def reference_recall(scores, seen, relevant, k, *, exclude: bool = True, denominator: str = "relevant",
                     empty: str = "skip", package: bool = True) -> float:
    """Mean Recall@k over users with a held-out item; keywords build the typical mistakes.

    The right value is the package's ``ranking.recall_at_k`` of the scores with seen items
    masked. ``exclude=False`` ranks seen items too; ``denominator="k"`` divides the hits by k
    (precision); ``empty="zero"`` averages over every user, those with nothing held out as 0.
    """
    if package and (exclude, denominator, empty) == (True, "relevant", "skip"):
        return ranking.recall_at_k(scores, relevant, k, exclude=seen)
    hits = _ranked_relevance(scores, seen, relevant, k, exclude).sum(1)
    size = relevant.sum(1).double()
    value = hits / (k if denominator == "k" else size.clamp(min=1))
    return float(value.mean() if empty == "zero" else value[size > 0].mean())


def _discount(k: int, discount: str) -> torch.Tensor:
    rank = torch.arange(1, k + 1, dtype=torch.float64)
    if discount == "shift":
        return 1 / torch.log2(rank + 2)
    if discount == "log2 r":
        return 1 / torch.log2(rank)  # 1 / 0 at rank 1
    if discount == "first free":
        return 1 / torch.log2(rank).clamp(min=1)  # the older form: ranks 1 and 2 undiscounted
    return 1 / torch.log2(rank + 1)


def reference_ndcg(scores, seen, relevant, k, *, exclude: bool = True, discount: str = "log2(r+1)",
                   ideal: str = "relevant", mixed_base: bool = False, package: bool = True) -> float:
    """Mean NDCG@k (binary relevance) over users with a held-out item; keywords build the typical mistakes.

    The right value is the package's ``ranking.ndcg_at_k`` of the scores with seen items
    masked. ``discount`` ``"shift"`` uses 1/log2(r+2), ``"log2 r"`` 1/log2(r), ``"first free"``
    1/max(1, log2 r); ``ideal="k"`` takes the ideal DCG of k relevant items whatever the user
    has, ``ideal="hits"`` sorts the retrieved list (the ideal of the hits); ``mixed_base`` uses
    natural logs in the DCG and base 2 in the ideal DCG.
    """
    if package and (exclude, discount, ideal, mixed_base) == (True, "log2(r+1)", "relevant", False):
        return ranking.ndcg_at_k(scores, relevant, k, exclude=seen)
    gains = _ranked_relevance(scores, seen, relevant, k, exclude)
    weights = _discount(k, discount)
    dcg = (gains * (weights * math.log(2) if mixed_base else weights)).sum(1)
    size = relevant.sum(1)
    count = {"relevant": size.clamp(max=k), "k": torch.full_like(size, k), "hits": gains.sum(1).long()}[ideal]
    ideal_dcg = (torch.arange(k)[None, :] < count[:, None]).double() @ weights
    with np.errstate(divide="ignore", invalid="ignore"):
        value = dcg / ideal_dcg
    return float(value[size > 0].mean())


def _ranking_case(num_users, num_items, seed):
    """Scores without ties, seen items that tend to score high, held-out sets of 0 to 7 items."""
    g = torch.Generator().manual_seed(fresh(seed))
    scores = torch.randn(num_users, num_items, generator=g, dtype=torch.float64)
    seen = torch.rand(num_users, num_items, generator=g) < 0.3
    scores = scores + 1.5 * seen  # a model scores what a user already has highly
    relevant = torch.zeros(num_users, num_items, dtype=torch.bool)
    for u, size in enumerate([0, 1, 2, 3, 7] + [int(s) for s in torch.randint(1, 6, (num_users - 5,), generator=g)]):
        candidates = (~seen[u]).nonzero().flatten()
        order = torch.randperm(len(candidates), generator=g)
        relevant[u, candidates[order[:size]]] = True
    return scores, seen, relevant


RECALL_MISTAKES = [
    Mistake(dict(exclude=False), "you ranked items the user has already seen: mask them (scores set to -inf where "
                                 "seen is True) before taking the top k, as a recommender would"),
    Mistake(dict(denominator="k"), "you divided the hits by k, which is Precision@k; Recall@k divides by the number "
                                   "of the user's held-out items, |relevant|"),
    Mistake(dict(empty="zero"), "you averaged over every user, counting those with nothing held out as 0; average "
                                "only over users with at least one held-out item"),
]

NDCG_MISTAKES = [
    Mistake(dict(exclude=False), "you ranked items the user has already seen: mask them (scores set to -inf where "
                                 "seen is True) before taking the top k"),
    Mistake(dict(discount="shift"), "your discount is off by one: the item at rank r = 1, 2, ... counts "
                                    "1 / log2(r + 1), so the first one counts fully (1 / log2 2 = 1); you used "
                                    "1 / log2(r + 2)"),
    Mistake(dict(discount="first free"), "you used the older discount 1 / max(1, log2 r), which counts ranks 1 and "
                                         "2 fully; this lab's (and the package's) NDCG uses 1 / log2(r + 1)"),
    Mistake(dict(mixed_base=True), "you used natural logarithms in the DCG and base 2 in the ideal DCG. The base "
                                   "cancels in the ratio only if both use the same one"),
    Mistake(dict(ideal="k"), "your ideal DCG assumes k relevant items; a user with fewer than k held-out items can "
                             "at best place all |relevant| of them first, so the ideal DCG sums min(k, |relevant|) "
                             "discounts"),
    Mistake(dict(ideal="hits"), "you computed the ideal DCG from the items your ranking retrieved (re-sorting the "
                                "top k); the ideal ranking places all of the user's held-out items first, found "
                                "or not: it sums min(k, |relevant|) discounts"),
]


def _check_ranking(metric, name, reference, mistakes, what) -> list[float]:
    values = []
    for num_users, num_items, k, seed in [(6, 12, 3, 0), (9, 15, 5, 1), (12, 20, 4, 2)]:
        args = _ranking_case(num_users, num_items, seed)
        copies = [a.clone() for a in args]
        got = as_float(call(metric, name, *copies, k), f"{name}(scores, seen, relevant, k)")
        expect_unchanged(args, copies, f"{name} changed its inputs in place (masked_fill_ on scores?); use "
                                       "scores.masked_fill(seen, float('-inf')), which returns a copy")
        want = reference(*args, k)
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            values.append(got)
            continue
        if not math.isfinite(got):
            raise CheckFailed(f"{name} returned {got}" + (": with the discount 1 / log2(r) the first rank divides by "
                                                          "log2(1) = 0. Ranks start at r = 1 and count 1 / log2(r + 1)"
                                                          if name == "ndcg_at_k" else ""))
        diagnose(mistakes, lambda **kw: math.isclose(got, reference(*args, k, **kw), rel_tol=1e-6, abs_tol=1e-9),
                 otherwise=f"for {num_users} users, {num_items} items and k = {k}, {name} should be {want:.6f}, "
                           f"got {got:.6f}: {what}")
    return values


def check_recall_at_k(recall_at_k) -> None:
    """Against the package's ``recall_at_k`` with seen items masked; the typical mistakes named."""
    values = _check_ranking(recall_at_k, "recall_at_k", reference_recall, RECALL_MISTAKES,
                            "the share of each user's held-out items found in their top k (seen items excluded), "
                            "averaged over users with a held-out item")
    passed(f"recall_at_k matches the package on three cases ({', '.join(f'{v:.3f}' for v in values)})")


def check_ndcg_at_k(ndcg_at_k) -> None:
    """Against the package's ``ndcg_at_k`` with seen items masked; a perfect ranking scores 1."""
    values = _check_ranking(ndcg_at_k, "ndcg_at_k", reference_ndcg, NDCG_MISTAKES,
                            "DCG = sum over the top k of rel / log2(r + 1), divided by the DCG of the ideal ranking")
    scores, seen, relevant = _ranking_case(8, 14, 3)
    perfect = relevant.double() - 2.0 * seen
    got = as_float(call(ndcg_at_k, "ndcg_at_k", perfect, seen, relevant, 5), "ndcg_at_k")
    if not math.isclose(got, 1.0, rel_tol=1e-6):
        raise CheckFailed(f"a ranking that puts every held-out item first should score NDCG 1, yours gives {got:.6f}")
    passed(f"ndcg_at_k matches the package on three cases ({', '.join(f'{v:.3f}' for v in values)}) and gives a "
           "perfect ranking 1")

"""Lab 9 exercises 1 and 2: the TransE score of a batch of triples, and the margin ranking loss."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ....models.kg_embeddings import TransE
from .. import (CheckFailed, Mistake, as_float, call, close, diagnose, expect_tensor, expect_unchanged, fresh, passed)

# Exercise 1 -----------------------------------------------------------------------------


def _package_transe(head, relation, tail, p) -> torch.Tensor:
    """The package's ``TransE.score`` of the triples (b, b, B + b) of a model holding these vectors."""
    batch, dim = head.shape
    model = TransE(2 * batch, batch, dim, p=p, reciprocal=False).double()
    with torch.no_grad():
        model.entity.copy_(torch.cat([head, tail]))
        model.relation.copy_(relation)
        ids = torch.arange(batch)
        return model.score(ids, ids, ids + batch)


def reference_transe_score(head, relation, tail, p, *, sign: float = -1.0, squared: bool = False,
                           norm_p: int | None = None, direction: str = "h+r-t", reduce: str = "sum",
                           package: bool = True) -> torch.Tensor:
    """-|e_h + w_r - e_t|_p for each row (B,); keywords build the typical mistakes.

    ``sign=+1`` returns the distance itself; ``squared`` the squared L2 distance (for p = 2);
    ``norm_p`` uses that norm whatever ``p``; ``direction="t+r-h"`` translates the tail;
    ``reduce="mean"`` averages |x|^p over the coordinates instead of summing. The right score is
    the package's ``TransE.score`` (``package=False``: the formula here).
    """
    if package and (sign, squared, norm_p, direction, reduce) == (-1.0, False, None, "h+r-t", "sum"):
        return _package_transe(head, relation, tail, p)
    p = norm_p or p
    diff = head + relation - tail if direction == "h+r-t" else tail + relation - head
    total = diff.abs().pow(p)
    total = total.mean(-1) if reduce == "mean" else total.sum(-1)
    distance = total if (squared and p == 2) else total.pow(1 / p)
    return sign * distance


def _transe_case(batch, dim, seed):
    g = torch.Generator().manual_seed(fresh(seed))
    return tuple(torch.randn(batch, dim, generator=g, dtype=torch.float64) for _ in range(3))


TRANSE_MISTAKES = [
    Mistake(dict(sign=1.0), "your score is the distance |e_h + w_r - e_t|_p itself; the TransE score is its "
                            "NEGATIVE, so that a higher score means a more plausible triple (a true triple, whose "
                            "head translated by the relation lands near its tail, scores close to 0)"),
    Mistake(dict(sign=1.0, squared=True), "your score is the squared L2 distance, with the wrong sign: the score is "
                                          "-|e_h + w_r - e_t|_2, minus the square root of the sum of squares"),
    Mistake(dict(squared=True), "for p = 2 you returned minus the SQUARED distance (the sum of squares); the "
                                "L2 norm is the square root of it: -|x|_2 = -sqrt(sum x^2)"),
    Mistake(dict(norm_p=2), "with p = 1 you used the L2 norm: use the p you are given (p = 1: sum of absolute "
                            "values; p = 2: square root of the sum of squares)"),
    Mistake(dict(norm_p=1), "with p = 2 you used the L1 norm: use the p you are given (p = 1: sum of absolute "
                            "values; p = 2: square root of the sum of squares)"),
    Mistake(dict(direction="t+r-h"), "you translated the tail: TransE moves the HEAD by the relation onto the tail, "
                                     "e_h + w_r ≈ e_t, so the distance is |e_h + w_r - e_t|_p"),
    Mistake(dict(reduce="mean"), "you averaged over the coordinates: the p-norm SUMS |x_k|^p over the k "
                                 "coordinates (then takes the p-th root)"),
]


def check_transe_score(transe_score) -> None:
    """Against the package's ``TransE.score`` for p = 1 and p = 2; shape (B,); inputs unchanged."""
    for batch, dim, p, seed in [(6, 3, 2, 1), (5, 4, 1, 0), (8, 6, 2, 2), (7, 5, 1, 3)]:
        args = _transe_case(batch, dim, seed)
        copies = [a.clone() for a in args]
        got = call(transe_score, "transe_score", *copies, p)
        got = expect_tensor(got, (batch,), f"transe_score of {batch} triples (one score per row)").double()
        expect_unchanged(args, copies, "transe_score changed the embeddings it was given; use out-of-place operations")
        want = reference_transe_score(*args, p)
        if close(got, want, 1e-7):
            continue
        diagnose(TRANSE_MISTAKES, lambda **kw: close(got, reference_transe_score(*args, p, **kw), 1e-7))
        raise CheckFailed(f"for p = {p}, transe_score differs from -|e_h + w_r - e_t|_p by up to "
                          f"{(got - want).abs().max():.3g}: take the p-norm of each row (dim=-1) and negate it")
    passed("transe_score matches the package's TransE for p = 1 and p = 2")


# Exercise 2 -----------------------------------------------------------------------------


def reference_margin_loss(positive, negative, margin, *, flip: bool = False, margin_sign: float = 1.0,
                          reduction: str = "mean", hinge: bool = True, average_negatives: bool = False,
                          package: bool = True) -> torch.Tensor:
    """mean over the (B, K) pairs of max(0, margin - s⁺ + s⁻); keywords build the typical mistakes.

    ``flip`` swaps the two scores (max(0, margin + s⁺ - s⁻)); ``margin_sign=-1`` subtracts the
    margin; ``reduction`` ``"sum"`` sums every pair, ``"rows"`` sums the negatives of a row and
    averages the rows; ``hinge=False`` leaves out the max(0, .); ``average_negatives`` averages
    the negatives' scores before the hinge. The right loss is torch's ``margin_ranking_loss``.
    """
    pos = positive.unsqueeze(1).expand_as(negative)
    if package and (flip, margin_sign, reduction, hinge, average_negatives) == (False, 1.0, "mean", True, False):
        return F.margin_ranking_loss(pos, negative, torch.ones_like(negative), margin=margin)
    if average_negatives:
        negative, pos = negative.mean(1, keepdim=True), positive.unsqueeze(1)
    gap = margin_sign * margin + (pos - negative if flip else negative - pos)
    loss = gap.clamp(min=0) if hinge else gap
    return {"mean": loss.mean(), "sum": loss.sum(), "rows": loss.sum(1).mean()}[reduction]


def _margin_case(batch, negatives, seed):
    """Positive scores around -1, negatives around -2: some pairs inside the margin, some beyond it."""
    g = torch.Generator().manual_seed(fresh(seed))
    positive = -1.0 + 0.8 * torch.randn(batch, generator=g, dtype=torch.float64)
    negative = -2.0 + 0.8 * torch.randn(batch, negatives, generator=g, dtype=torch.float64)
    return positive, negative


MARGIN_MISTAKES = [
    Mistake(dict(flip=True), "your hinge pushes the wrong way: the loss should be zero once the true triple scores "
                             "at least `margin` ABOVE the corrupted one, max(0, margin - s_pos + s_neg); you wrote "
                             "max(0, margin + s_pos - s_neg), which rewards scoring the negatives higher"),
    Mistake(dict(margin_sign=-1.0), "your margin has the wrong sign: max(0, margin - s_pos + s_neg) asks the true "
                                    "triple to win by at least the margin; with -margin it may lose by that much "
                                    "at no cost"),
    Mistake(dict(reduction="sum"), "you summed the hinge over every pair; the loss is the MEAN over the B x K "
                                   "(positive, negative) pairs, so that its size does not depend on the batch size "
                                   "or the number of negatives"),
    Mistake(dict(reduction="rows"), "you summed over each row's negatives and averaged over the rows; the loss is "
                                    "the mean over all B x K pairs (divide by K as well)"),
    Mistake(dict(hinge=False), "you left out the hinge max(0, .): a pair that is already separated by more than the "
                               "margin should add 0, not a negative amount"),
    Mistake(dict(average_negatives=True), "you averaged the negatives' scores before the hinge; apply the hinge to "
                                          "each (positive, negative) pair, then average: every negative that comes "
                                          "within the margin must be pushed down on its own"),
]


def check_margin_ranking_loss(margin_ranking_loss) -> None:
    """Against torch's ``margin_ranking_loss`` over all pairs; a differentiable scalar; inputs unchanged."""
    values = []
    for batch, negatives, margin, seed in [(6, 4, 1.0, 0), (9, 5, 0.5, 1), (4, 7, 2.0, 2)]:
        args = _margin_case(batch, negatives, seed)
        copies = [a.clone().requires_grad_() for a in args]
        out = call(margin_ranking_loss, "margin_ranking_loss", *copies, margin)
        if not (isinstance(out, torch.Tensor) and out.grad_fn is not None):
            got = type(out).__name__ + (" without a grad_fn" if isinstance(out, torch.Tensor) else "")
            raise CheckFailed(f"margin_ranking_loss should return a torch scalar that autograd can differentiate (got "
                              f"{got}): compute it with torch operations and do not call .item() or float()")
        got = as_float(out, "margin_ranking_loss(positive, negative, margin)")
        expect_unchanged(args, [c.detach() for c in copies], "margin_ranking_loss changed its inputs in place")
        want = float(reference_margin_loss(*args, margin))
        if math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-10):
            values.append(got)
            continue
        diagnose(MARGIN_MISTAKES, lambda **kw: math.isclose(got, float(reference_margin_loss(*args, margin, **kw)),
                                                            rel_tol=1e-7, abs_tol=1e-10),
                 otherwise=f"for {batch} positives, {negatives} negatives each and margin {margin} the loss should "
                           f"be {want:.6f}, got {got:.6f}: the mean over all pairs of max(0, margin - s_pos + s_neg)")
    passed(f"margin_ranking_loss matches torch's margin ranking loss ({', '.join(f'{v:.4f}' for v in values)})")

"""Lab 9 exercises 3 and 4: the filtered, realistic rank of each answer, and MRR and Hits@k."""

from __future__ import annotations

import math

import torch

from ....topics.link_prediction import rank_metrics, rank_of_target
from .. import CheckFailed, Mistake, call, close, diagnose, expect_tensor, expect_unchanged, fresh, passed

# Exercise 3 -----------------------------------------------------------------------------


def reference_rank(scores, target, known, *, filtered: bool = True, filter_target: bool = False,
                   ties: str = "realistic", self_tie: bool = False, start: int = 1,
                   package: bool = True) -> torch.Tensor:
    """Realistic filtered rank of ``target[b]`` in row b of ``scores`` (B,); keywords build the typical mistakes.

    ``filtered=False`` ranks raw; ``filter_target`` masks the known entities with -inf before
    reading the target's own score, so a target that is a known fact is filtered too; ``ties``
    ``"optimistic"`` or ``"pessimistic"`` puts the target at the top or bottom of its tied
    block; ``self_tie`` counts the target among its own ties; ``start=0`` counts from 0. The
    right rank is the package's ``rank_of_target``.
    """
    right = (filtered, filter_target, ties, self_tie, start) == (True, False, "realistic", False, 1)
    if package and right:
        return rank_of_target(scores, target, known)
    competitor = ~known if filtered else torch.ones_like(known)
    if filter_target and filtered:
        masked = scores.masked_fill(known, float("-inf"))
        own = masked.gather(1, target[:, None])
        higher = (masked > own).sum(1)
        tied = (masked == own).sum(1) - 1
    else:
        competitor = competitor.scatter(1, target[:, None], False)
        own = scores.gather(1, target[:, None])
        higher = ((scores > own) & competitor).sum(1)
        tied = ((scores == own) & competitor).sum(1) + int(self_tie)
    weight = {"realistic": 0.5, "optimistic": 0.0, "pessimistic": 1.0}[ties]
    return start + higher.double() + weight * tied.double()


def _rank_case(batch, num_entities, seed):
    """Integer scores (many ties), other known answers, and the target itself known in most rows."""
    g = torch.Generator().manual_seed(fresh(seed))
    scores = torch.randint(0, 5, (batch, num_entities), generator=g).double()
    target = torch.randint(num_entities, (batch,), generator=g)
    known = torch.rand(batch, num_entities, generator=g) < 0.3
    known[torch.arange(batch), target] = torch.arange(batch) % 3 != 2  # the test triple is itself a known fact
    return scores, target, known


RANK_MISTAKES = [
    Mistake(dict(filter_target=True), "you filtered out the target itself: the known facts include the test triple, "
                                      "so its own answer is in `known` too. Remove only the OTHER known answers (set "
                                      "known[b, target[b]] to False, or read the target's score before masking) "
                                      "and keep the target in the ranking"),
    Mistake(dict(filtered=False), "you did not filter: entities marked in `known` are other correct answers and must "
                                  "not count against the target, however high they score"),
    Mistake(dict(ties="optimistic"), "you counted ties optimistically (the target above every entity with the same "
                                     "score): a model that scores everything alike would rank every answer first. "
                                     "Count the tied entities half: rank = 1 + #higher + #tied / 2"),
    Mistake(dict(ties="pessimistic"), "you counted ties pessimistically (the target below every entity with the same "
                                      "score). The realistic rank counts them half: rank = 1 + #higher + #tied / 2"),
    Mistake(dict(self_tie=True), "the target ties with itself: you counted it among its own ties, which adds 0.5 to "
                                 "every rank. Count only the OTHER unfiltered entities with the target's score"),
    Mistake(dict(start=0), "your ranks start at 0; the best rank is 1 (rank = 1 + #higher + #tied / 2), so that the "
                           "reciprocal rank of a perfect answer is 1"),
    Mistake(dict(filtered=False, ties="optimistic"), "you neither filtered the other known answers nor counted ties "
                                                     "half: rank = 1 + #higher + #tied / 2 over the entities that "
                                                     "are not known answers (the target itself is never filtered)"),
]


def check_filtered_rank(filtered_rank) -> None:
    """Against the package's ``rank_of_target``: ties, a known target, other known answers; inputs unchanged."""
    for batch, num_entities, seed in [(6, 8, 0), (9, 12, 1), (12, 20, 2)]:
        args = _rank_case(batch, num_entities, seed)
        copies = [a.clone() for a in args]
        got = call(filtered_rank, "filtered_rank", *copies)
        got = expect_tensor(got, (batch,), f"filtered_rank of {batch} questions (one rank per row)")
        expect_unchanged(args, copies, "filtered_rank changed its inputs in place (masked_fill_ on scores, or "
                                       "known[b, target] = False on the mask you were given?); work on copies")
        want = reference_rank(*args)
        if not got.is_floating_point():
            raise CheckFailed(f"filtered_rank returned {got.dtype} ranks; with ties counted half a rank can be x.5, "
                              "so return a float tensor (e.g. 1 + higher + tied / 2 with float division)")
        if close(got.double(), want):
            continue
        diagnose(RANK_MISTAKES, lambda **kw: close(got.double(), reference_rank(*args, **kw)))
        row = int((got.double() - want).abs().argmax())
        raise CheckFailed(f"question {row} of a {batch} x {num_entities} case: rank {float(got[row]):g}, expected "
                          f"{float(want[row]):g} (rank = 1 + #higher + #tied / 2 over entities that are not known "
                          "answers; the target itself is never filtered)")
    passed("filtered_rank matches the package's rank_of_target: other known answers filtered, the target kept, "
           "ties counted half")


# Exercise 4 -----------------------------------------------------------------------------


def reference_metrics(ranks, ks=(1, 3, 10), *, mrr: str = "mean of reciprocals", hits: str = "<=",
                      package: bool = True) -> dict[str, float]:
    """{"MRR", "Hits@k" for k in ks}; keywords build the typical mistakes.

    ``mrr="reciprocal of mean"`` is 1 / mean rank; ``hits`` ``"<"`` counts ranks strictly
    below k, ``"count"`` returns the number of hits instead of their share. The right values
    come from the package's ``rank_metrics``.
    """
    if package and (mrr, hits) == ("mean of reciprocals", "<="):
        values = rank_metrics(ranks, ks)
        return {key: values[key] for key in ["MRR", *(f"Hits@{k}" for k in ks)]}
    ranks = ranks.double()
    out = {"MRR": float(1 / ranks.mean()) if mrr == "reciprocal of mean" else float((1 / ranks).mean())}
    for k in ks:
        inside = ranks < k if hits == "<" else ranks <= k
        out[f"Hits@{k}"] = float(inside.sum()) if hits == "count" else float(inside.double().mean())
    return out


def _ranks_case(size, seed):
    """Realistic ranks: many small ones, some halves (ties), a long tail; exactly 1, 3 and 10 occur."""
    g = torch.Generator().manual_seed(fresh(seed))
    ranks = 1 + torch.floor(torch.rand(size, generator=g, dtype=torch.float64).pow(3) * 40 * 2) / 2
    ranks[:4] = torch.tensor([1.0, 3.0, 10.0, 1.5], dtype=torch.float64)
    return ranks


METRIC_MISTAKES = [
    Mistake(dict(mrr="reciprocal of mean"), "your MRR is 1 / (mean rank), the reciprocal of the mean; the MRR is the "
                                            "MEAN of the reciprocal ranks, mean(1 / rank), which is dominated by the "
                                            "answers near the top rather than by the worst ranks"),
    Mistake(dict(hits="<"), "Hits@k counts the ranks AT MOST k (rank <= k): an answer at rank 10 is a hit for "
                            "Hits@10; you counted rank < k"),
    Mistake(dict(hits="count"), "Hits@k is the SHARE of questions whose answer ranks at most k (a number between 0 "
                                "and 1), not their count: divide by the number of ranks"),
    Mistake(dict(mrr="reciprocal of mean", hits="<"), "two mistakes: the MRR is mean(1 / rank), not 1 / mean(rank), "
                                                      "and Hits@k counts rank <= k, not rank < k"),
]


def check_mrr_and_hits(mrr_and_hits) -> None:
    """Against the package's ``rank_metrics``: the dictionary's keys and values; the ranks unchanged."""
    values = []
    for size, ks, seed in [(12, (1, 3, 10), 0), (40, (1, 3, 10), 1), (25, (1, 5), 2)]:
        ranks = _ranks_case(size, seed)
        copy = ranks.clone()
        got = call(mrr_and_hits, "mrr_and_hits", copy, ks)
        want = reference_metrics(ranks, ks)
        if not isinstance(got, dict) or set(want) - set(got):
            raise CheckFailed(f"mrr_and_hits(ranks, ks={ks}) should return a dict with the keys {sorted(want)}, "
                              f"got {sorted(got) if isinstance(got, dict) else type(got).__name__}")
        expect_unchanged([ranks], [copy], "mrr_and_hits changed the ranks it was given")
        try:
            got = {key: float(got[key]) for key in want}
        except (TypeError, ValueError) as err:
            raise CheckFailed(f"every value of mrr_and_hits should be a number: {err}") from err
        if all(math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-12) for k in want):
            values.append(got["MRR"])
            continue
        diagnose(METRIC_MISTAKES, lambda **kw: all(math.isclose(got[k], v, rel_tol=1e-9, abs_tol=1e-12)
                                                   for k, v in reference_metrics(ranks, ks, **kw).items()))
        wrong = [k for k in want if not math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-12)]
        raise CheckFailed(f"for {size} ranks, " + "; ".join(f"{k} should be {want[k]:.6f}, got {got[k]:.6f}"
                                                            for k in wrong))
    passed(f"mrr_and_hits matches the package's rank_metrics (MRR {', '.join(f'{v:.3f}' for v in values)})")

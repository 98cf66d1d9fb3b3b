"""Link prediction: ranking every entity as the answer to (h, r, ?) and (?, r, t), filtered MRR and Hits@k (9.3).

For a test triple (h, r, t) the model scores every entity as the tail of (h, r, ?); the rank
of the true tail t among them is the triple's rank. In the *filtered* setting (Bordes et
al. 2013) the other entities t' for which (h, r, t') is a known fact (in the training,
validation or test triples) are removed from the ranking first: ranking a different true
answer above t is not an error. Heads are ranked the same way through inverse relations:
(?, r, t) is (t, r + R, ?).

Ties are counted *realistically* (the mean of the best and the worst position among the
tied entities), as PyKEEN does: a model that gives every entity the same score gets the
middle rank, not rank 1. The mean reciprocal rank (MRR) is the mean of 1/rank; Hits@k is
the share of ranks ≤ k.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.knowledge_graphs import KnowledgeGraph, with_inverses


class FilterIndex:
    """The known tails of every (head, relation) pair of ``triples`` (n, 3), for filtered ranking."""

    def __init__(self, triples: torch.Tensor, num_entities: int):
        triples = torch.as_tensor(triples).long()
        if triples.ndim != 2 or triples.shape[1] != 3:
            raise ValueError(f"triples must have shape (n, 3), got {tuple(triples.shape)}")
        self.num_entities = num_entities
        self.tails: dict[tuple[int, int], list[int]] = {}
        for h, r, t in triples.tolist():
            self.tails.setdefault((h, r), []).append(t)

    def mask(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """(B, E) boolean: True where (h[b], r[b], e) is a known fact."""
        rows, cols = [], []
        for b, key in enumerate(zip(h.tolist(), r.tolist())):
            known = self.tails.get(key, ())
            rows.extend([b] * len(known))
            cols.extend(known)
        out = torch.zeros(len(h), self.num_entities, dtype=torch.bool)
        out[torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)] = True
        return out


def rank_of_target(scores: torch.Tensor, target: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
    """Realistic rank (1 = best) of ``target[b]`` in row b of ``scores`` (B, E), ignoring ``known`` entities.

    ``known`` (B, E) boolean marks other true answers to filter out; the target itself is
    never filtered. Tied scores count half: rank = 1 + #higher + #tied / 2.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (B, E), got {tuple(scores.shape)}")
    target = torch.as_tensor(target, device=scores.device).long()
    if target.shape != (scores.shape[0],):
        raise ValueError(f"target must have shape ({scores.shape[0]},), got {tuple(target.shape)}")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN: the model diverged (lower the learning rate or raise the penalty)")
    own = scores.gather(1, target.unsqueeze(1))
    keep = torch.ones_like(scores, dtype=torch.bool)
    if known is not None:
        if known.shape != scores.shape:
            raise ValueError(f"known must have the shape of scores {tuple(scores.shape)}, got {tuple(known.shape)}")
        keep = ~known.to(scores.device)
    keep = keep.scatter(1, target.unsqueeze(1), False)  # the target is not its own competitor
    higher = ((scores > own) & keep).sum(1)
    tied = ((scores == own) & keep).sum(1)
    return 1.0 + higher.double() + tied.double() / 2


def rank_metrics(ranks: torch.Tensor, ks: Sequence[int] = (1, 3, 10)) -> dict[str, float]:
    """``{"MRR": mean of 1/rank, "Hits@k": share of ranks <= k, "MR": mean rank}``."""
    ranks = torch.as_tensor(ranks).double()
    if ranks.ndim != 1 or not len(ranks) or bool((ranks < 1).any()):
        raise ValueError("ranks must be a non-empty 1-D tensor of ranks >= 1")
    out = {"MRR": float((1 / ranks).mean())}
    out.update({f"Hits@{k}": float((ranks <= k).double().mean()) for k in ks})
    out["MR"] = float(ranks.mean())
    return out


@torch.no_grad()
def rank_triples(model, triples: torch.Tensor, num_relations: int, filter_index: FilterIndex | None = None, *,
                 batch_size: int = 512, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Ranks of the tails ("tail") and of the heads ("head", through inverse relations) of ``triples``.

    ``filter_index`` should hold all known triples *with their inverses*; None ranks raw.
    """
    triples = torch.as_tensor(triples).long()
    queries = with_inverses(triples, num_relations)  # first n: tails; last n: heads
    model.eval()
    ranks = []
    for chunk in queries.split(batch_size):
        h, r, t = chunk[:, 0], chunk[:, 1], chunk[:, 2]
        scores = model.score_tails(h.to(device), r.to(device)).float().cpu()
        known = filter_index.mask(h, r) if filter_index is not None else None
        ranks.append(rank_of_target(scores, t, known))
    ranks = torch.cat(ranks)
    return {"tail": ranks[:len(triples)], "head": ranks[len(triples):]}


def known_facts(kg: KnowledgeGraph) -> FilterIndex:
    """A ``FilterIndex`` of every triple of ``kg`` (all splits) and its inverse."""
    return FilterIndex(with_inverses(kg.all_triples(), kg.num_relations), kg.num_entities)


def evaluate(model, kg: KnowledgeGraph, split: str = "valid", *, filtered: bool = True,
             filter_index: FilterIndex | None = None, device: torch.device | str = "cpu",
             ks: Sequence[int] = (1, 3, 10)) -> dict[str, float]:
    """Filtered (or raw) MRR, Hits@k and mean rank over both directions of ``kg``'s ``split``."""
    index = (filter_index or known_facts(kg)) if filtered else None
    ranks = rank_triples(model, kg.split(split), kg.num_relations, index, device=device)
    return rank_metrics(torch.cat([ranks["tail"], ranks["head"]]), ks)

"""Relations as sets of ordered pairs, and the patterns they form in a knowledge graph (9.1).

A binary relation on a set is the set of ordered pairs for which it holds: on {1, 2, 3},
"is less than" is S = {(1, 2), (1, 3), (2, 3)}, and "1 < 3" is true because (1, 3) ∈ S. The
first half of this module works on such Python sets: inverse, composition, and the
properties a relation can have (symmetric, antisymmetric, transitive, ...).

The second half finds the same properties in a knowledge graph, where relation r is the
boolean adjacency matrix A_r (A_r[h, t] = 1 when (h, r, t) is a fact): the inverse is the
transpose, composition is a boolean matrix product, and a property is measured as a share
of the pairs, because real graphs are incomplete and never obey a rule exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

Pair = tuple


# Relations as Python sets ------------------------------------------------------------------


def relation_from(predicate, domain: Iterable) -> set[Pair]:
    """The set of pairs (a, b) of ``domain`` for which ``predicate(a, b)`` is true."""
    domain = list(domain)
    return {(a, b) for a in domain for b in domain if predicate(a, b)}


def holds(relation: set[Pair], a, b) -> bool:
    """``a`` stands in ``relation`` to ``b``: the pair (a, b) is a member of the set."""
    return (a, b) in relation


def inverse(relation: set[Pair]) -> set[Pair]:
    """{(b, a) : (a, b) ∈ relation}: "less than" becomes "greater than"."""
    return {(b, a) for a, b in relation}


def compose(first: set[Pair], second: set[Pair]) -> set[Pair]:
    """{(a, c) : (a, b) ∈ first and (b, c) ∈ second for some b}: "parent of a parent" is "grandparent"."""
    by_start: dict = {}
    for b, c in second:
        by_start.setdefault(b, set()).add(c)
    return {(a, c) for a, b in first for c in by_start.get(b, ())}


def is_reflexive(relation: set[Pair], domain: Iterable) -> bool:
    return all((a, a) in relation for a in domain)


def is_symmetric(relation: set[Pair]) -> bool:
    return relation == inverse(relation)


def is_antisymmetric(relation: set[Pair]) -> bool:
    """No two distinct elements are related both ways."""
    return all(a == b or (b, a) not in relation for a, b in relation)


def is_transitive(relation: set[Pair]) -> bool:
    """(a, b) and (b, c) in the relation imply (a, c): the relation contains its composition with itself."""
    return compose(relation, relation) <= relation


def properties(relation: set[Pair], domain: Iterable) -> dict[str, bool]:
    """Which of the standard properties ``relation`` has on ``domain``."""
    domain = list(domain)
    return {"reflexive": is_reflexive(relation, domain), "symmetric": is_symmetric(relation),
            "antisymmetric": is_antisymmetric(relation), "transitive": is_transitive(relation)}


# Relations in a knowledge graph -------------------------------------------------------------


def adjacency(triples: torch.Tensor, num_entities: int, num_relations: int) -> torch.Tensor:
    """Boolean (R, E, E) tensor: A[r, h, t] is True when (h, r, t) is among ``triples`` (n, 3)."""
    triples = torch.as_tensor(triples).long()
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape (n, 3), got {tuple(triples.shape)}")
    A = torch.zeros(num_relations, num_entities, num_entities, dtype=torch.bool)
    A[triples[:, 1], triples[:, 0], triples[:, 2]] = True
    return A


def bool_compose(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Boolean matrix product: (A ∘ B)[a, c] is True when A[a, b] and B[b, c] for some b."""
    return (A.float() @ B.float()) > 0


def symmetric_share(A: torch.Tensor) -> torch.Tensor:
    """Per relation: the share of its pairs (h, t), h ≠ t, whose mirror (t, h) is also a fact. (R,)"""
    off = A & ~torch.eye(A.shape[-1], dtype=torch.bool)
    pairs = off.sum((-2, -1))
    both = (off & off.transpose(-2, -1)).sum((-2, -1))
    return torch.where(pairs > 0, both / pairs.clamp(min=1), torch.nan)


def inverse_overlap(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each relation r, the other relation s that best behaves as its inverse, and how well:
    |A_r ∩ A_sᵀ| / max(|A_r|, |A_s|), which is 1 only when s holds exactly the mirrored pairs of r
    (a small s inside the mirror of a large r does not count). Returns (best s, share), each (R,)."""
    Af = A.flatten(1).float()
    mirrored = A.transpose(-2, -1).flatten(1).float()
    overlap = Af @ mirrored.T  # [r, s] = |A_r ∩ A_sᵀ|
    sizes = Af.sum(1)
    share = overlap / torch.maximum(sizes[:, None], sizes[None, :]).clamp(min=1)
    share.fill_diagonal_(-1)  # a relation that is its own inverse is symmetric (symmetric_share)
    best = share.argmax(1)
    return best, share.gather(1, best.unsqueeze(1)).squeeze(1).clamp(min=0)


def transitive_share(A: torch.Tensor) -> torch.Tensor:
    """Per relation: of the pairs (a, c), a ≠ c, implied by a chain (a, b), (b, c), the share that are facts. (R,)"""
    implied = bool_compose(A, A) & ~torch.eye(A.shape[-1], dtype=torch.bool)
    count = implied.sum((-2, -1))
    hit = (implied & A).sum((-2, -1))
    return torch.where(count > 0, hit / count.clamp(min=1), torch.nan)


def composition_rules(A: torch.Tensor, *, min_support: int = 20, min_confidence: float = 0.9,
                      max_rules: int | None = None) -> list[dict]:
    """Rules r1 ∘ r2 ⇒ r3 that the graph obeys: of the ``support`` pairs (a, c) linked by a chain
    (a, r1, b), (b, r2, c), a share ``confidence`` ≥ ``min_confidence`` are facts (a, r3, c), r3 ≠ r1, r2.

    Sorted by falling support; each rule is a dict of relation ids and counts.
    """
    R = A.shape[0]
    flat = A.flatten(1).float()
    rules = []
    for r1 in range(R):
        chains = (A[r1].float() @ A.float()) > 0  # (R, E, E): r1 ∘ r2 for every r2
        support = chains.sum((-2, -1))
        hits = chains.flatten(1).float() @ flat.T  # [r2, r3] = |(r1 ∘ r2) ∩ A_r3|
        for r2 in torch.nonzero(support >= min_support).flatten().tolist():
            conf = hits[r2] / support[r2]
            for r3 in torch.nonzero(conf >= min_confidence).flatten().tolist():
                if r3 not in (r1, r2):
                    rules.append({"r1": r1, "r2": r2, "r3": r3, "support": int(support[r2]),
                                  "confidence": float(conf[r3])})
    rules.sort(key=lambda rule: (-rule["support"], -rule["confidence"]))
    return rules[:max_rules] if max_rules else rules


def pair_linked(known: torch.Tensor, queries: torch.Tensor, num_entities: int, *, reverse: bool) -> torch.Tensor:
    """(n,) boolean: for each (h, r, t) of ``queries``, whether some fact of ``known`` (any relation) links
    t to h (``reverse=True``: the mirror pair a lookup can exploit) or h to t (the same pair)."""
    known, queries = torch.as_tensor(known).long(), torch.as_tensor(queries).long()
    linked = torch.zeros(num_entities, num_entities, dtype=torch.bool)
    linked[known[:, 0], known[:, 2]] = True
    h, t = queries[:, 0], queries[:, 2]
    return linked[t, h] if reverse else linked[h, t]


def degrees(triples: torch.Tensor, num_entities: int) -> torch.Tensor:
    """Number of triples in which each entity takes part, as head or tail: (E,)."""
    triples = torch.as_tensor(triples).long()
    return torch.bincount(triples[:, 0], minlength=num_entities) + torch.bincount(triples[:, 2],
                                                                                   minlength=num_entities)

"""Reasoning with knowledge-graph embeddings: one-hop answers, path queries, entity types (9.4).

A one-hop question (h, r, ?) is answered by ranking every entity t by the score f(h, r, t).
A path query (h, r1, ..., rL, ?) asks for the entities reached from h by a chain of facts
(h, r1, m1), (m1, r2, m2), ..., (m_{L-1}, rL, t); the answers the graph entails are the
non-zero entries of one-hot(h) A_r1 ... A_rL, with the boolean adjacency matrices of
``relations.adjacency``. As in Query2Box (Ren et al. 2020), answers that training facts alone
reach are *easy*; *hard* answers need a held-out fact, and are ranked in the filtered setting.

A trained model (``models.kg_embeddings``) scores path queries in two ways: ``score_composed``
applies ``relate`` once per hop (TransE: e_h + w_r1 + w_r2; DistMult and ComplEx: elementwise
real or complex products), and ``score_search`` scores every intermediate entity, turns each
hop's scores into probabilities and combines the hops with a t-norm and a max over the
intermediates (CQD, Arakelyan et al. 2021, with an exhaustive beam)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.knowledge_graphs import KnowledgeGraph, with_inverses
from .link_prediction import rank_of_target
from .relations import adjacency, bool_compose

SPLIT_GRAPHS = {"valid": (("train",), ("train", "valid")), "test": (("train", "valid"), ("train", "valid", "test"))}


def _graphs(kg: KnowledgeGraph) -> dict[tuple, torch.Tensor]:
    """(2R, E, E) boolean adjacency of the facts of the training, training + validation and all splits,
    with their inverses (relation r + R), keyed by the tuple of splits."""
    keys = (("train",), ("train", "valid"), ("train", "valid", "test"))
    return {key: adjacency(with_inverses(torch.cat([kg.split(s) for s in key]), kg.num_relations),
                           kg.num_entities, 2 * kg.num_relations) for key in keys}


def fact_splits(kg: KnowledgeGraph) -> dict[tuple[int, int, int], str]:
    """The split ("train", "valid" or "test") of every fact (h, r, t) of ``kg`` and of its inverse (t, r + R, h)."""
    split_of = {}
    for split in ("test", "valid", "train"):  # train last: it wins if a triple were in two splits
        for row in with_inverses(kg.split(split), kg.num_relations).tolist():
            split_of[tuple(row)] = split
    return split_of


@torch.no_grad()
def answer(model, kg: KnowledgeGraph, head, relation, *, k: int = 10, inverse: bool = False) -> list[dict]:
    """The ``k`` best answers to (head, relation, ?), or to (?, relation, head) with ``inverse``.

    ``head`` and ``relation`` are names or ids. Each answer is a dict with the entity's name,
    its score, its softmax probability over all entities and ``fact``: the split that holds
    the triple ("train", "valid", "test"), or "" when the graph does not state it.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    h = kg.entity_id(head) if isinstance(head, str) else int(head)
    if not 0 <= h < kg.num_entities:
        raise ValueError(f"head must be an entity name or an id in 0..{kg.num_entities - 1}, got {head!r}")
    r = kg.relation_id(relation) if isinstance(relation, str) else int(relation)
    if not 0 <= r < kg.num_relations:
        raise ValueError(f"relation must be a name or an id in 0..{kg.num_relations - 1}, got {relation!r}; "
                         "ask for the inverse with inverse=True")
    r += kg.num_relations if inverse else 0
    hr = torch.tensor([[h], [r]], device=model.entity.device)
    scores = model.score_tails(hr[0], hr[1])[0].cpu()
    probs = scores.softmax(0)
    split_of = fact_splits(kg)
    top = scores.topk(min(k, kg.num_entities))
    return [{"answer": kg.entities[t], "score": float(s), "probability": float(probs[t]),
             "fact": split_of.get((h, r, t), "")} for s, t in zip(top.values.tolist(), top.indices.tolist())]


def path_answers(A: torch.Tensor, head: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
    """(Q, E) boolean: the entities that chains of facts of ``A`` (R', E, E) lead to from ``head`` (Q,)
    through ``relations`` (Q, L), one boolean matrix product per hop."""
    head, relations = torch.as_tensor(head).long(), torch.as_tensor(relations).long()
    if relations.ndim != 2 or head.shape != relations.shape[:1]:
        raise ValueError(f"head must be (Q,) and relations (Q, L); got {tuple(head.shape)} and "
                         f"{tuple(relations.shape)}")
    reach = torch.zeros(len(head), A.shape[-1], dtype=torch.bool)
    reach[torch.arange(len(head)), head] = True
    for hop in range(relations.shape[1]):
        step = torch.zeros_like(reach)
        for r in relations[:, hop].unique().tolist():  # one product per relation of this hop
            rows = relations[:, hop] == r
            step[rows] = bool_compose(reach[rows], A[r])
        reach = step
    return reach


@dataclass
class PathQueries:
    """Path queries (``head`` (Q,), ``relations`` (Q, L)) with boolean (Q, E) answer masks: ``easy``
    (reachable with training facts), ``hard`` (the answers of the evaluated split that need a
    held-out fact) and ``answers`` (everything the whole graph entails: the filter)."""

    head: torch.Tensor
    relations: torch.Tensor
    easy: torch.Tensor
    hard: torch.Tensor
    answers: torch.Tensor

    def __len__(self) -> int:
        return len(self.head)

    def describe(self, kg: KnowledgeGraph, i: int) -> str:
        """Query ``i`` in words, e.g. ``antibiotic -treats-> ? -causes-> ?`` (inverses as ``r^-1``)."""
        R = kg.num_relations
        names = [kg.relations[r] if r < R else kg.relations[r - R] + "^-1" for r in self.relations[i].tolist()]
        return kg.entities[int(self.head[i])] + "".join(f" -{n}-> ?" for n in names)


def make_path_queries(kg: KnowledgeGraph, head, relations, split: str = "test", graphs=None) -> PathQueries:
    """The answer sets of the given queries for ``split`` ("valid": hard answers need a validation
    fact; "test": they need a test fact and no training+validation chain reaches them)."""
    if split not in SPLIT_GRAPHS:
        raise ValueError(f"unknown split {split!r}: choose 'valid' or 'test'")
    head, relations = torch.as_tensor(head).long(), torch.as_tensor(relations).long()
    if relations.ndim == 1:
        relations = relations.unsqueeze(0).expand(len(head), -1)
    if relations.numel() and (int(relations.min()) < 0 or int(relations.max()) >= 2 * kg.num_relations):
        raise ValueError(f"relation ids must lie in 0..{2 * kg.num_relations - 1} (r + R is the inverse of r)")
    graphs = graphs or _graphs(kg)
    known, full = (graphs[s] for s in SPLIT_GRAPHS[split])
    hard = path_answers(full, head, relations) & ~path_answers(known, head, relations)
    easy = path_answers(graphs[("train",)], head, relations)
    return PathQueries(head, relations, easy, hard, path_answers(graphs[SPLIT_GRAPHS["test"][1]], head, relations))


def sample_path_queries(kg: KnowledgeGraph, num_queries: int, *, length: int = 2, split: str = "test",
                        max_answers: int | None = None, generator: torch.Generator | None = None,
                        max_rounds: int = 50) -> PathQueries:
    """``num_queries`` distinct path queries of ``length`` hops that have at least one hard answer.

    Queries are read off random walks in the graph of ``split`` (inverse relations included;
    a hop straight back, r followed by its inverse, is not allowed). ``max_answers`` drops
    queries with more answers than that, as in Query2Box.
    """
    if length < 1 or num_queries < 1:
        raise ValueError(f"length and num_queries must be at least 1, got {length} and {num_queries}")
    if split not in SPLIT_GRAPHS:
        raise ValueError(f"unknown split {split!r}: choose 'valid' or 'test'")
    R = kg.num_relations
    edges = with_inverses(torch.cat([kg.split(s) for s in SPLIT_GRAPHS[split][1]]), R)
    edges = edges[edges[:, 0].argsort(stable=True)]
    degree = torch.bincount(edges[:, 0], minlength=kg.num_entities)
    start = torch.cumsum(degree, 0) - degree
    chosen, graphs = {}, _graphs(kg)  # a dict keeps the first-found order
    for _ in range(max_rounds):
        walk = edges[torch.randint(len(edges), (4 * num_queries,), generator=generator)]
        head, rels, node, ok = walk[:, 0], [walk[:, 1]], walk[:, 2], torch.ones(len(walk), dtype=torch.bool)
        for _ in range(length - 1):
            ok &= degree[node] > 0
            pick = start[node] + (torch.rand(len(node), generator=generator) * degree[node]).long()
            step = edges[pick.clamp(max=len(edges) - 1)]
            ok &= step[:, 1] != (rels[-1] + R) % (2 * R)  # no immediate way back
            rels.append(step[:, 1])
            node = step[:, 2]
        candidates = make_path_queries(kg, head[ok], torch.stack(rels, 1)[ok], split, graphs)
        good = candidates.hard.any(1)
        if max_answers is not None:
            good &= candidates.answers.sum(1) <= max_answers
        for i in torch.nonzero(good).flatten().tolist():
            chosen.setdefault((int(candidates.head[i]), *candidates.relations[i].tolist()), None)
        if len(chosen) >= num_queries:
            break
    if not chosen:
        raise ValueError(f"no {length}-hop query with a hard answer found in {kg.name}: try the other split")
    table = torch.tensor(list(chosen)[:num_queries], dtype=torch.long)
    return make_path_queries(kg, table[:, 0], table[:, 1:], split, graphs)


@torch.no_grad()
def score_composed(model, head: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
    """(Q, E) scores of path queries by composing the relations in embedding space:
    ``match(relate(... relate(E[h], r1) ..., rL))``."""
    head, relations = torch.as_tensor(head).long(), torch.as_tensor(relations).long()
    device = model.entity.device
    x = model.entity[head.to(device)]
    for hop in range(relations.shape[1]):
        x = model.relate(x, relations[:, hop].to(device))
    return model.match(x).cpu()


@torch.no_grad()
def hop_probabilities(model, transform: str = "softmax") -> torch.Tensor:
    """(R', E, E): P[r, m, t] = the probability that (m, r, t) is true, for every relation of the model."""
    if transform not in ("softmax", "sigmoid"):
        raise ValueError(f"unknown transform {transform!r}: choose 'softmax' or 'sigmoid'")
    E, device = model.num_entities, model.entity.device
    scores = torch.stack([model.match(model.relate(model.entity, torch.full((E,), r, device=device))).cpu()
                          for r in range(model.relation.shape[0])])
    return scores.softmax(-1) if transform == "softmax" else scores.sigmoid()


def score_search(P: torch.Tensor, head: torch.Tensor, relations: torch.Tensor, *, tnorm: str = "product",
                 aggregate: str = "max", chunk: int = 64) -> torch.Tensor:
    """(Q, E) scores of path queries by explicit search over the intermediate entities.

    ``P`` comes from ``hop_probabilities``. After hop k every entity m has a truth degree
    v[m]; the next hop gives v'[t] = max_m T(v[m], P[r, m, t]) (``aggregate="max"``, CQD) or
    sum_m (the probability of reaching t, with the product t-norm), with T = product or min.
    """
    if tnorm not in ("product", "min") or aggregate not in ("max", "sum"):
        raise ValueError(f"tnorm must be 'product' or 'min' and aggregate 'max' or 'sum', got {tnorm!r}, {aggregate!r}")
    head, relations = torch.as_tensor(head).long(), torch.as_tensor(relations).long()
    out = []
    for h, rels in zip(head.split(chunk), relations.split(chunk)):
        v = P[rels[:, 0], h]  # (q, E) after the first hop
        for hop in range(1, rels.shape[1]):
            step = P[rels[:, hop]]  # (q, E, E): m -> t
            pairs = v.unsqueeze(2) * step if tnorm == "product" else torch.minimum(v.unsqueeze(2), step)
            v = pairs.amax(1) if aggregate == "max" else pairs.sum(1)
        out.append(v)
    return torch.cat(out)


def tail_popularity(kg: KnowledgeGraph, relations: torch.Tensor) -> torch.Tensor:
    """(Q, E) baseline scores: how often each entity is a training tail of the query's last relation."""
    relations = torch.as_tensor(relations).long()
    train = with_inverses(kg.train, kg.num_relations)
    counts = torch.zeros(2 * kg.num_relations, kg.num_entities)
    counts.index_put_((train[:, 1], train[:, 2]), torch.ones(len(train)), accumulate=True)
    return counts[relations[:, -1]]


def rank_hard_answers(scores: torch.Tensor, queries: PathQueries) -> tuple[torch.Tensor, torch.Tensor]:
    """Filtered ranks of every hard answer, and the index of its query: ((N,), (N,)).

    Each hard answer competes with the entities that are not answers of its query.
    """
    if scores.shape != queries.hard.shape:
        raise ValueError(f"scores must have shape {tuple(queries.hard.shape)} (queries, entities), "
                         f"got {tuple(scores.shape)}")
    q, target = torch.nonzero(queries.hard, as_tuple=True)
    return rank_of_target(scores.float()[q], target, queries.answers[q]), q


def per_query_metrics(ranks: torch.Tensor, query: torch.Tensor, num_queries: int,
                      ks=(1, 3, 10)) -> dict[str, torch.Tensor]:
    """MRR and Hits@k of each query, averaged over its hard answers: name -> (num_queries,)."""
    count = torch.bincount(query, minlength=num_queries).double()
    if bool((count == 0).any()):
        raise ValueError("every query needs at least one ranked hard answer")
    values = {"MRR": 1 / ranks.double(), **{f"Hits@{k}": (ranks <= k).double() for k in ks}}
    return {name: torch.zeros(num_queries, dtype=torch.float64).index_add_(0, query, v) / count
            for name, v in values.items()}


def bootstrap_interval(values: torch.Tensor, *, draws: int = 1000, level: float = 0.95,
                       generator: torch.Generator | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one number per query), resampling queries."""
    values = torch.as_tensor(values).double()
    if values.ndim != 1 or len(values) < 2 or not 0 < level < 1:
        raise ValueError("values must be 1-D with at least two entries and level in (0, 1)")
    means = values[torch.randint(len(values), (draws, len(values)), generator=generator)].mean(1)
    low, high = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(low), float(high)


def isa_types(kg: KnowledgeGraph, roots=("entity", "event"), relation: str = "isa") -> list[str]:
    """Each entity's top-level type: the child of a root (an entity with no ``isa`` parent among
    ``roots``) that it lies under in the transitive closure of the ``isa`` facts (all splits).

    Roots are their own type; an entity under several top-level types gets the first by name,
    one under none gets "(untyped)".
    """
    r = kg.relation_id(relation)
    E = kg.num_entities
    A = adjacency(kg.all_triples(), E, kg.num_relations)[r]  # A[child, parent]
    closure = A.clone()
    while not torch.equal(step := closure | bool_compose(closure, A), closure):  # add parents of parents
        closure = step
    root_ids = [kg.entity_id(name) for name in roots]
    other_parents = A.clone()
    other_parents[:, root_ids] = False
    tops = sorted((c for c in range(E) if A[c, root_ids].any() and not other_parents[c].any()),
                  key=lambda c: kg.entities[c])
    types = []
    for e in range(E):
        under = [t for t in tops if t == e or closure[e, t]]
        types.append(kg.entities[under[0]] if under else kg.entities[e] if e in root_ids else "(untyped)")
    return types


def neighbour_agreement(X: torch.Tensor, labels, metric: str = "cosine") -> float:
    """Share of points whose nearest other point (``"cosine"`` or ``"euclidean"``) has the same label."""
    X, labels = torch.as_tensor(X).double(), list(labels)
    if X.ndim != 2 or len(X) != len(labels) or len(X) < 2:
        raise ValueError(f"X must be (n, d) with n >= 2 and one label per row; got {tuple(X.shape)} and "
                         f"{len(labels)} labels")
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"unknown metric {metric!r}: choose 'cosine' or 'euclidean'")
    Xn = torch.nn.functional.normalize(X, dim=1)
    dist = (1 - Xn @ Xn.T) if metric == "cosine" else torch.cdist(X, X)
    nearest = dist.fill_diagonal_(float("inf")).argmin(1).tolist()
    return sum(labels[i] == labels[j] for i, j in enumerate(nearest)) / len(labels)


def chance_agreement(labels) -> float:
    """Expected ``neighbour_agreement`` if the nearest neighbour were another point drawn at random."""
    labels, n = list(labels), len(list(labels))
    if n < 2:
        raise ValueError("need at least two labels")
    counts = torch.tensor([labels.count(c) for c in set(labels)], dtype=torch.float64)
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))

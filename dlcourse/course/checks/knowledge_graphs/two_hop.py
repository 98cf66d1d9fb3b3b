"""Lab 9 exercise 6: the answers a graph entails for a two-hop question (h, r1, ?x), (?x, r2, ?y)."""

from __future__ import annotations

import torch

from ....topics.relations import adjacency, bool_compose
from .. import CheckFailed, Mistake, call, diagnose, expect_tensor, expect_unchanged, fresh, passed


def reference_two_hop_answers(triples, num_entities, num_relations, h, r1, r2, *, order: str = "r1 then r2",
                              one_hop: bool = False, backwards: bool = False, drop_head: bool = False,
                              package: bool = True) -> torch.Tensor:
    """(Q, E) bool: y such that (h, r1, x) and (x, r2, y) are facts for some x; keywords build the typical mistakes.

    ``order="r2 then r1"`` follows r2 first; ``one_hop`` adds the one-hop answers of (h, r1, ?);
    ``backwards`` follows every edge from tail to head (a transposed adjacency); ``drop_head``
    removes h from its own answers. The right answers come from the package's ``adjacency`` and
    ``bool_compose``.
    """
    A = adjacency(triples, num_entities, num_relations)
    right = (order, one_hop, backwards, drop_head) == ("r1 then r2", False, False, False)
    if package and right:
        return bool_compose(A[r1, h].unsqueeze(1), A[r2]).squeeze(1)
    if backwards:
        A = A.transpose(1, 2)
    first, second = (r1, r2) if order == "r1 then r2" else (r2, r1)
    out = (A[first, h].double().unsqueeze(1) @ A[second].double()).squeeze(1) > 0
    if one_hop:
        out = out | A[first, h]
    if drop_head:
        out[torch.arange(len(h)), h] = False
    return out


def _graph_case(num_entities, num_relations, num_triples, num_questions, seed):
    """Random facts, and questions whose first hop has answers; one question's path returns to its head."""
    g = torch.Generator().manual_seed(fresh(seed))
    triples = torch.stack([torch.randint(num_entities, (num_triples,), generator=g),
                           torch.randint(num_relations, (num_triples,), generator=g),
                           torch.randint(num_entities, (num_triples,), generator=g)], 1)
    h, r1, x = triples[torch.randperm(num_triples, generator=g)[:num_questions]].T
    r2 = torch.randint(num_relations, (num_questions,), generator=g)
    triples = torch.cat([triples, torch.stack([x[:1], r2[:1], h[:1]], 1)])  # (x, r2, h): h answers question 0
    return triples, num_entities, num_relations, h.clone(), r1.clone(), r2


TWO_HOP_MISTAKES = [
    Mistake(dict(order="r2 then r1"), "you composed the relations in the wrong order: the question (h, r1, ?x), "
                                      "(?x, r2, ?y) follows r1 from h first, then r2 from x, so its answers are "
                                      "the row h of the boolean product A[r1] @ A[r2], not A[r2] @ A[r1]"),
    Mistake(dict(one_hop=True), "you included the one-hop answers (h, r1, y): a two-hop answer must be reached "
                                "through an intermediate x, (h, r1, x) and then (x, r2, y). Return the two-hop "
                                "product alone"),
    Mistake(dict(backwards=True), "your adjacency runs from tail to head: A[r, h, t] should be True when (h, r, t) "
                                  "is a fact (row = head, column = tail)"),
    Mistake(dict(drop_head=True), "you removed the head from its own answers, but a path can return to where it "
                                  "started, e.g. (a, part_of, b) and then (b, has_part, a): keep every y the graph "
                                  "entails"),
]


def check_two_hop_answers(two_hop_answers) -> None:
    """Against the package's ``adjacency`` and ``bool_compose``: a (Q, E) boolean tensor; inputs unchanged."""
    for shape in [(7, 2, 14, 4, 0), (10, 3, 30, 8, 1), (15, 4, 60, 10, 2)]:
        args = _graph_case(*shape)
        tensors = [args[0], *args[3:]]
        copies = [a.clone() for a in tensors]
        got = call(two_hop_answers, "two_hop_answers", copies[0], args[1], args[2], *copies[1:])
        got = expect_tensor(got, (shape[3], shape[0]), f"the answers of {shape[3]} questions over all "
                                                       f"{shape[0]} entities")
        if got.dtype != torch.bool:
            raise CheckFailed(f"two_hop_answers returned {got.dtype}; return a boolean tensor (True where y is an "
                              "answer): the counts of paths from a float product become booleans with > 0")
        expect_unchanged(tensors, copies, "two_hop_answers changed the tensors it was given")
        want = reference_two_hop_answers(*args)
        if torch.equal(got, want):
            continue
        diagnose(TWO_HOP_MISTAKES, lambda **kw: torch.equal(got, reference_two_hop_answers(*args, **kw)))
        q = int((got != want).any(1).nonzero()[0])
        missing = (want[q] & ~got[q]).nonzero().flatten().tolist()
        extra = (got[q] & ~want[q]).nonzero().flatten().tolist()
        raise CheckFailed(f"question {q}, (h={int(args[3][q])}, r1={int(args[4][q])}, ?x), (?x, r2={int(args[5][q])}, "
                          f"?y): entities {missing} are missing and {extra} should not be answers. y is an answer "
                          "when some x has (h, r1, x) and (x, r2, y) among the triples")
    passed("two_hop_answers finds exactly the entities the graph entails, in the right order of the relations")

"""dlcourse.topics.relations: relations as sets, and their patterns in a graph (chapter 9)."""

import torch

from dlcourse.topics import relations as rl

LESS = rl.relation_from(lambda a, b: a < b, [1, 2, 3])


def test_the_less_than_relation_of_the_source():
    assert LESS == {(1, 2), (1, 3), (2, 3)}
    assert rl.holds(LESS, 1, 3) and not rl.holds(LESS, 3, 1)
    assert rl.properties(LESS, [1, 2, 3]) == {"reflexive": False, "symmetric": False, "antisymmetric": True,
                                              "transitive": True}
    assert rl.inverse(LESS) == rl.relation_from(lambda a, b: a > b, [1, 2, 3])
    assert rl.compose(LESS, LESS) == {(1, 3)}
    equal = rl.relation_from(lambda a, b: a == b, [1, 2, 3])
    assert rl.properties(equal, [1, 2, 3]) == {"reflexive": True, "symmetric": True, "antisymmetric": True,
                                               "transitive": True}


def test_graph_patterns_on_a_hand_made_graph():
    # 4 entities; r0 symmetric pair, r1 = inverse of r2, r3 a chain 0->1->2 with the shortcut 0->2 (transitive).
    triples = torch.tensor([[0, 0, 1], [1, 0, 0], [0, 1, 2], [2, 2, 0], [0, 3, 1], [1, 3, 2], [0, 3, 2]])
    A = rl.adjacency(triples, 4, 4)
    assert A.shape == (4, 4, 4) and bool(A[3, 0, 2])
    sym = rl.symmetric_share(A)
    assert sym[0] == 1.0 and sym[1] == 0.0 and sym[3] == 0.0
    best, share = rl.inverse_overlap(A)
    assert best[1] == 2 and share[1] == 1.0 and best[2] == 1
    assert rl.transitive_share(A)[3] == 1.0 and torch.isnan(rl.transitive_share(A)[1])
    rules = rl.composition_rules(A, min_support=1, min_confidence=1.0)
    # r0 then r1 links (1, 0), (0, 2) into (1, 2), a fact of r3; r1 then r2 gives (0, 0), no fact.
    assert {"r1": 0, "r2": 1, "r3": 3, "support": 1, "confidence": 1.0} in rules
    assert not any(rule["r1"] == 1 and rule["r2"] == 2 for rule in rules)
    assert rl.degrees(triples, 4).tolist() == [6, 4, 4, 0]
    assert rl.bool_compose(A[3], A[3]).nonzero().tolist() == [[0, 2]]


def test_pair_linked_finds_the_mirror_and_the_same_pair_under_any_relation():
    known = torch.tensor([[0, 0, 1], [2, 1, 3]])
    queries = torch.tensor([[1, 2, 0], [0, 1, 1], [3, 0, 2], [0, 0, 3]])
    assert rl.pair_linked(known, queries, 4, reverse=True).tolist() == [True, False, True, False]
    assert rl.pair_linked(known, queries, 4, reverse=False).tolist() == [False, True, False, False]

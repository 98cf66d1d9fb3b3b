"""Tests of dlcourse.topics.kg_reasoning on a tiny graph checked by hand."""

import pytest
import torch

from dlcourse.data.knowledge_graphs import from_rows
from dlcourse.models.kg_embeddings import make_model
from dlcourse.topics import kg_reasoning as kr

# a -r-> b -s-> c (train), b -s-> d (valid), a -r-> e -s-> f (test).
# Entities by name: a=0 b=1 c=2 d=3 e=4 f=5; relations r=0, s=1, inverses r^-1=2, s^-1=3.
ROWS = {"train": [("a", "r", "b"), ("b", "s", "c")], "valid": [("b", "s", "d")],
        "test": [("a", "r", "e"), ("e", "s", "f")]}


@pytest.fixture
def kg():
    return from_rows("tiny", ROWS)


def mask(*ids, n=6):
    out = torch.zeros(n, dtype=torch.bool)
    out[list(ids)] = True
    return out


def test_two_hop_answers_by_hand(kg):
    q = kr.make_path_queries(kg, [0], [[0, 1]], split="test")  # (a, r, s, ?)
    assert torch.equal(q.easy[0], mask(2))  # c with training facts only
    assert torch.equal(q.answers[0], mask(2, 3, 5))  # c, d and f in the whole graph
    assert torch.equal(q.hard[0], mask(5))  # f needs the test facts
    valid = kr.make_path_queries(kg, [0], [[0, 1]], split="valid")
    assert torch.equal(valid.hard[0], mask(3))  # d needs the validation fact
    back = kr.make_path_queries(kg, [2], [[3, 2]], split="test")  # (c, s^-1, r^-1, ?) = a
    assert torch.equal(back.easy[0], mask(0)) and not back.hard.any()
    assert q.describe(kg, 0) == "a -r-> ? -s-> ?" and back.describe(kg, 0) == "c -s^-1-> ? -r^-1-> ?"


def test_sampled_queries_are_exactly_those_with_hard_answers(kg):
    q = kr.sample_path_queries(kg, 5, split="test", generator=torch.Generator().manual_seed(0))
    keys = {(int(h), *r.tolist()) for h, r in zip(q.head, q.relations)}
    assert keys == {(0, 0, 1), (5, 3, 2)}  # (a, r, s) -> f and (f, s^-1, r^-1) -> a
    assert q.hard.any(1).all()
    with pytest.raises(ValueError, match="split"):
        kr.sample_path_queries(kg, 5, split="train")


def test_ranks_of_hard_answers_are_filtered(kg):
    q = kr.make_path_queries(kg, [0], [[0, 1]], split="test")
    scores = torch.tensor([[5.0, 0.0, 9.0, 8.0, 1.0, 3.0]])  # c and d (other answers) are filtered
    ranks, query = kr.rank_hard_answers(scores, q)
    assert ranks.tolist() == [2.0] and query.tolist() == [0]  # only a scores above f
    with pytest.raises(ValueError, match="shape"):
        kr.rank_hard_answers(scores[:, :5], q)


def test_per_query_metrics_and_bootstrap():
    m = kr.per_query_metrics(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(m["MRR"], torch.tensor([0.75, 0.25], dtype=torch.float64))
    assert m["Hits@1"].tolist() == [0.5, 0.0] and m["Hits@3"].tolist() == [1.0, 0.0]
    assert kr.bootstrap_interval(torch.full((5,), 0.3)) == pytest.approx((0.3, 0.3))
    low, high = kr.bootstrap_interval(torch.arange(10.0), generator=torch.Generator().manual_seed(0))
    assert low < 4.5 < high
    with pytest.raises(ValueError, match="at least one"):
        kr.per_query_metrics(torch.tensor([1.0]), torch.tensor([0]), 2)


@pytest.mark.parametrize("name", ["transe", "distmult", "complex"])
def test_composition_is_two_relate_calls_and_commutes(name):
    model = make_model(name, 6, 2, 3, init_scale=1.0, generator=torch.Generator().manual_seed(0))
    head, rels = torch.tensor([0, 4]), torch.tensor([[0, 1], [3, 2]])
    scores = kr.score_composed(model, head, rels)
    with torch.no_grad():
        expected = model.match(model.relate(model.relate(model.entity[head], rels[:, 0]), rels[:, 1]))
    assert torch.allclose(scores, expected)
    assert torch.allclose(scores, kr.score_composed(model, head, rels.flip(1)), atol=1e-5)  # order is lost
    if name == "transe":  # e_h + w_r1 + w_r2 against every tail
        with torch.no_grad():
            q = model.entity[0] + model.relation[0] + model.relation[1]
            assert torch.allclose(scores[0], -(q - model.entity).abs().sum(1), atol=1e-5)


@pytest.mark.parametrize("tnorm,aggregate", [("product", "max"), ("min", "max"), ("product", "sum")])
def test_search_matches_a_loop_over_intermediates(tnorm, aggregate):
    model = make_model("distmult", 5, 2, 4, init_scale=1.0, generator=torch.Generator().manual_seed(1))
    P = kr.hop_probabilities(model, "softmax")
    assert P.shape == (4, 5, 5) and torch.allclose(P.sum(-1), torch.ones(4, 5))
    with torch.no_grad():
        assert torch.allclose(P[1, 2], model.score_tails(torch.tensor([2]), torch.tensor([1]))[0].softmax(0))
    scores = kr.score_search(P, torch.tensor([3]), torch.tensor([[1, 2]]), tnorm=tnorm, aggregate=aggregate)
    t_norm = (lambda a, b: a * b) if tnorm == "product" else min
    for t in range(5):
        values = [float(t_norm(P[1, 3, m], P[2, m, t])) for m in range(5)]
        assert float(scores[0, t]) == pytest.approx(max(values) if aggregate == "max" else sum(values), rel=1e-5)
    with pytest.raises(ValueError, match="transform"):
        kr.hop_probabilities(model, "tanh")
    with pytest.raises(ValueError, match="tnorm"):
        kr.score_search(P, torch.tensor([3]), torch.tensor([[1, 2]]), tnorm="max")


def test_tail_popularity_counts_training_tails(kg):
    assert kr.tail_popularity(kg, torch.tensor([[0, 1]]))[0].tolist() == [0, 0, 1, 0, 0, 0]  # (b, s, c)
    assert kr.tail_popularity(kg, torch.tensor([[1, 3]]))[0].tolist() == [0, 1, 0, 0, 0, 0]  # s^-1: b


def test_one_hop_answers_name_their_split(kg):
    model = make_model("complex", 6, 2, 3, init_scale=1.0, generator=torch.Generator().manual_seed(0))
    answers = kr.answer(model, kg, "a", "r", k=6)
    assert [x["score"] for x in answers] == sorted((x["score"] for x in answers), reverse=True)
    facts = {x["answer"]: x["fact"] for x in answers}
    assert facts == {"a": "", "b": "train", "c": "", "d": "", "e": "test", "f": ""}
    assert sum(x["probability"] for x in answers) == pytest.approx(1.0, rel=1e-5)
    heads = {x["answer"]: x["fact"] for x in kr.answer(model, kg, "f", "s", k=6, inverse=True)}
    assert heads["e"] == "test"
    with pytest.raises(ValueError, match="relation"):
        kr.answer(model, kg, "a", 3)
    with pytest.raises(KeyError):
        kr.answer(model, kg, "zebra", "r")


def test_isa_types_take_the_child_of_a_root():
    kg = from_rows("isa", {"train": [("x", "isa", "entity"), ("y", "isa", "x"), ("y", "isa", "entity"),
                                     ("z", "isa", "event"), ("w", "isa", "z")],
                           "valid": [("u", "isa", "y")], "test": []})
    types = dict(zip(kg.entities, kr.isa_types(kg)))
    assert types == {"entity": "entity", "event": "event", "u": "x", "w": "z", "x": "x", "y": "x", "z": "z"}


def test_neighbour_agreement_and_chance():
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    assert kr.neighbour_agreement(X, "aabb", metric="euclidean") == 1.0
    assert kr.neighbour_agreement(X, "abab", metric="euclidean") == 0.0
    assert kr.chance_agreement("aabb") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one label per row"):
        kr.neighbour_agreement(X, "aab")
    with pytest.raises(ValueError, match="metric"):
        kr.neighbour_agreement(X, "aabb", metric="manhattan")


def test_fact_splits_label_every_fact_and_its_inverse(kg):
    splits = kr.fact_splits(kg)
    assert splits[(0, 0, 1)] == "train" and splits[(1, 2, 0)] == "train"  # a -r-> b and b -r^-1-> a
    assert splits[(1, 1, 3)] == "valid" and splits[(5, 3, 4)] == "test"
    assert len(splits) == 2 * 5

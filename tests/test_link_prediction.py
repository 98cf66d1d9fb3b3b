"""dlcourse.topics.link_prediction: realistic filtered ranks and their metrics, by hand (chapter 9)."""

import pytest
import torch

from dlcourse.data.knowledge_graphs import from_rows
from dlcourse.topics.link_prediction import FilterIndex, evaluate, rank_metrics, rank_of_target, rank_triples


def test_ranks_by_hand_with_ties_and_filtering():
    scores = torch.tensor([[0.9, 0.5, 0.7, 0.1],   # target 1: two higher -> rank 3
                           [0.2, 0.2, 0.2, 0.2],   # target 0: three tied -> 1 + 3/2 = 2.5
                           [0.3, 0.8, 0.6, 0.9]])  # target 2: 1 and 3 higher, but 3 is a known fact -> rank 2
    known = torch.zeros(3, 4, dtype=torch.bool)
    known[2, 3] = True
    known[2, 2] = True  # the target itself is never filtered
    ranks = rank_of_target(scores, torch.tensor([1, 0, 2]), known)
    assert ranks.tolist() == [3.0, 2.5, 2.0]
    m = rank_metrics(ranks, ks=(1, 3))
    assert m["MRR"] == pytest.approx((1 / 3 + 1 / 2.5 + 1 / 2) / 3)
    assert m["Hits@1"] == 0.0 and m["Hits@3"] == 1.0 and m["MR"] == pytest.approx(7.5 / 3)


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        rank_of_target(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="target must have shape"):
        rank_of_target(torch.zeros(2, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="ranks must be"):
        rank_metrics(torch.tensor([0.0, 1.0]))


class Lookup(torch.nn.Module):
    """A 'model' whose scores are a fixed table per (head, relation)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def score_tails(self, h, r):
        return self.table[h, r]


def test_rank_triples_ranks_tails_and_heads_through_inverse_relations():
    g = from_rows("toy", {"train": [("a", "r", "b")], "valid": [("a", "r", "c")], "test": [("b", "r", "c")]})
    table = torch.zeros(3, 2, 3)  # entities a, b, c; relation r (0) and its inverse (1)
    table[0, 0] = torch.tensor([0.0, 2.0, 1.0])  # (a, r, ?): b above c
    table[2, 1] = torch.tensor([3.0, 1.0, 0.0])  # (c, r⁻¹, ?): a above b
    ranks = rank_triples(Lookup(table), g.valid, 1)
    assert ranks["tail"].tolist() == [2.0] and ranks["head"].tolist() == [1.0]
    filtered = evaluate(Lookup(table), g, "valid")  # (a, r, b) is known: c moves up to rank 1
    assert filtered["MRR"] == 1.0
    index = FilterIndex(torch.tensor([[0, 0, 1], [0, 0, 2]]), 3)
    assert index.mask(torch.tensor([0, 1]), torch.tensor([0, 0])).tolist() == [[False, True, True],
                                                                                [False, False, False]]


def test_ranks_and_metrics_agree_with_pykeens_evaluator_on_the_same_scores():
    ranks_module = pytest.importorskip("pykeen.evaluation.ranks")
    metrics = pytest.importorskip("pykeen.metrics.ranking")
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (200, 30), generator=g).float()  # coarse scores: many ties
    target = torch.randint(0, 30, (200,), generator=g)
    known = torch.rand(200, 30, generator=g) < 0.2
    ours = rank_of_target(scores, target, known)
    filtered = scores.masked_fill(known.scatter(1, target[:, None], False), float("nan"))  # PyKEEN filters with NaN
    theirs = ranks_module.Ranks.from_scores(scores.gather(1, target[:, None]), filtered).realistic
    assert torch.allclose(ours.float(), theirs.float())
    m = rank_metrics(ours)
    assert m["MRR"] == pytest.approx(float(metrics.InverseHarmonicMeanRank()(theirs.numpy())), rel=1e-6)
    for k in (1, 3, 10):
        assert m[f"Hits@{k}"] == pytest.approx(float(metrics.HitsAtK(k)(theirs.numpy())), rel=1e-6)

"""Lab 9's checks pass the references and name the typical mistakes (tests/test_labs.py runs the solution)."""

import pytest
import torch

from dlcourse.course.checks import knowledge_graphs as checks
from dlcourse.course.checks.knowledge_graphs import complex_scores, ranking, transe, two_hop
from dlcourse.models.kg_embeddings import TransE, kge_loss
from labtest import feedback


def variant(reference, **kw):
    return lambda *args: reference(*args, **kw)


def test_every_exercise_is_registered():
    assert list(checks.CHECKS) == [f"Exercise {i}" for i in range(1, 8)]


@pytest.mark.parametrize("check, reference", [
    (checks.check_transe_score, checks.reference_transe_score),
    (checks.check_margin_ranking_loss, checks.reference_margin_loss),
    (checks.check_filtered_rank, checks.reference_rank),
    (checks.check_mrr_and_hits, checks.reference_metrics),
    (checks.check_complex_score_tails, checks.reference_complex_tails),
    (checks.check_two_hop_answers, checks.reference_two_hop_answers),
    (checks.check_two_hop_scores, checks.reference_two_hop_scores),
], ids=lambda x: getattr(x, "__name__", ""))
def test_references_pass_from_the_package_and_from_the_formula(check, reference, capsys):
    check(variant(reference))
    check(variant(reference, package=False))  # the formula here agrees with the package
    assert capsys.readouterr().out.count("✔") == 2


TABLES = {"transe": (checks.check_transe_score, checks.reference_transe_score, checks.TRANSE_MISTAKES),
          "margin": (checks.check_margin_ranking_loss, checks.reference_margin_loss, checks.MARGIN_MISTAKES),
          "rank": (checks.check_filtered_rank, checks.reference_rank, checks.RANK_MISTAKES),
          "metrics": (checks.check_mrr_and_hits, checks.reference_metrics, checks.METRIC_MISTAKES),
          "complex": (checks.check_complex_score_tails, checks.reference_complex_tails, checks.COMPLEX_MISTAKES),
          "two_hop_answers": (checks.check_two_hop_answers, checks.reference_two_hop_answers,
                              checks.TWO_HOP_MISTAKES),
          "two_hop_scores": (checks.check_two_hop_scores, checks.reference_two_hop_scores,
                             checks.TWO_HOP_SCORE_MISTAKES)}
MISTAKES = [(name, mistake) for name, (_, _, table) in TABLES.items() for mistake in table]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}-{dict(m.variant)}" for n, m in MISTAKES])
def test_each_typical_mistake_is_named(name, mistake):
    check, reference, _ = TABLES[name]
    assert mistake.message in feedback(check, variant(reference, **mistake.variant))


def test_transe_reference_is_the_package_model():
    head, relation, tail = transe._transe_case(4, 3, 0)
    model = TransE(2, 1, 3, p=2, reciprocal=False).double()
    with torch.no_grad():
        model.entity.copy_(torch.stack([head[0], tail[0]]))
        model.relation.copy_(relation[:1])
    want = model.score(torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    assert torch.allclose(checks.reference_transe_score(head, relation, tail, 2)[:1], want)
    assert torch.allclose(want, -(head[0] + relation[0] - tail[0]).norm())


def test_margin_loss_matches_the_package_training_loss():
    # kge_loss(loss="margin") draws its negatives from the generator: draw the same ones here
    model = TransE(20, 3, 4, p=1, reciprocal=False, init_scale=0.5, generator=torch.Generator().manual_seed(0))
    batch = torch.tensor([[0, 1, 2], [3, 0, 4], [5, 2, 6], [7, 1, 8]])
    loss = kge_loss(model, batch, loss="margin", num_negatives=6, margin=1.0,
                    generator=torch.Generator().manual_seed(5))
    negatives = torch.randint(20, (4, 6), generator=torch.Generator().manual_seed(5))
    h, r, t = batch.T
    q = model.relate(model.entity[h], r)
    want = checks.reference_margin_loss(model.match(q, t[:, None]).squeeze(1), model.match(q, negatives), 1.0)
    assert torch.allclose(loss, want)


def test_margin_loss_must_be_differentiable():
    def as_float(positive, negative, margin):
        return float(checks.reference_margin_loss(positive.detach(), negative.detach(), margin))
    assert "autograd can differentiate" in feedback(checks.check_margin_ranking_loss, as_float)


def test_rank_case_holds_ties_and_known_targets():
    scores, target, known = ranking._rank_case(9, 12, 1)
    assert known[torch.arange(9), target].sum() == 6
    own = scores.gather(1, target[:, None])
    assert ((scores == own).sum(1) > 1).any()


def test_integer_ranks_and_in_place_masking_are_named():
    def integer(scores, target, known):
        return checks.reference_rank(scores, target, known).long()
    assert "float tensor" in feedback(checks.check_filtered_rank, integer)

    def in_place(scores, target, known):
        ranks = checks.reference_rank(scores, target, known)
        known[torch.arange(len(target)), target] = False
        return ranks
    assert "changed its inputs in place" in feedback(checks.check_filtered_rank, in_place)


def test_rank_by_hand():
    # candidates A..F, answer C (score 3) tied with D; B (3.5) is a known answer, C itself is known too
    scores = torch.tensor([[1.0, 3.5, 3.0, 3.0, 0.5, 4.0]])
    known = torch.tensor([[False, True, True, False, False, False]])
    assert checks.reference_rank(scores, torch.tensor([2]), known).tolist() == [2.5]  # F higher, D tied
    assert checks.reference_rank(scores, torch.tensor([2]), known, filter_target=True).tolist() == [5.5]  # 4 above, B tied at -inf


def test_metrics_by_hand_and_keys():
    ranks = torch.tensor([1.0, 2.0, 4.0, 10.0])
    out = checks.reference_metrics(ranks, (1, 3, 10))
    assert out == pytest.approx({"MRR": (1 + 0.5 + 0.25 + 0.1) / 4, "Hits@1": 0.25, "Hits@3": 0.5, "Hits@10": 1.0})
    assert "keys" in feedback(checks.check_mrr_and_hits, lambda ranks, ks: {"mrr": 1.0})


def test_complex_must_return_real_scores_of_the_right_shape():
    def complex_out(entity, relation, h, r):
        return checks.reference_complex_tails(entity, relation, h, r).to(torch.complex128)
    assert "REAL part" in feedback(checks.check_complex_score_tails, complex_out)

    def transposed(entity, relation, h, r):
        return checks.reference_complex_tails(entity, relation, h, r).T
    assert "should have shape" in feedback(checks.check_complex_score_tails, transposed)


def test_complex_conjugate_makes_the_score_asymmetric():
    entity, relation, _, _ = complex_scores._complex_case(5, 2, 3, 1, 0)
    h, t, r = torch.tensor([0]), 3, torch.tensor([1])
    forward = checks.reference_complex_tails(entity, relation, h, r)[0, t]
    backward = checks.reference_complex_tails(entity, relation, torch.tensor([t]), r)[0, 0]
    assert not torch.isclose(forward, backward)
    no_conj = [checks.reference_complex_tails(entity, relation, x, r, conj="none")[0, y]
               for x, y in [(h, t), (torch.tensor([t]), 0)]]
    assert torch.isclose(*no_conj)


def test_two_hop_answers_by_hand():
    # 0 -r0-> 1 -r1-> 2, 0 -r0-> 3 -r1-> 0; 0 -r1-> 4 -r0-> 5
    triples = torch.tensor([[0, 0, 1], [1, 1, 2], [0, 0, 3], [3, 1, 0], [0, 1, 4], [4, 0, 5]])
    answers = checks.reference_two_hop_answers(triples, 6, 2, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    assert answers.nonzero()[:, 1].tolist() == [0, 2]
    reversed_ = checks.reference_two_hop_answers(triples, 6, 2, torch.tensor([0]), torch.tensor([0]),
                                                 torch.tensor([1]), order="r2 then r1")
    assert reversed_.nonzero()[:, 1].tolist() == [5]


def test_two_hop_answers_must_be_boolean():
    def counts(*args):
        return checks.reference_two_hop_answers(*args).long()
    assert "boolean tensor" in feedback(checks.check_two_hop_answers, counts)


def test_two_hop_case_has_a_path_back_to_the_head():
    args = two_hop._graph_case(7, 2, 14, 4, 0)
    assert checks.reference_two_hop_answers(*args)[0, args[3][0]]


def test_two_hop_scores_compose_the_one_hop_scores():
    entity, relation, h, r = complex_scores._complex_case(6, 3, 2, 4, 0)
    with_same = checks.reference_two_hop_scores(entity, relation, h, r, r)
    assert with_same.shape == (4, 6)
    one_hop = checks.reference_complex_tails(entity, relation, h, r)
    assert torch.allclose(checks.reference_two_hop_scores(entity, relation, h, r, r, combine="first"), one_hop)


@pytest.mark.parametrize("check, nargs", [(checks.check_transe_score, 4), (checks.check_filtered_rank, 3),
                                          (checks.check_two_hop_answers, 6)])
def test_an_unrelated_answer_gets_a_message(check, nargs):
    def wrong(*args):
        return torch.zeros(1)
    assert feedback(check, wrong)

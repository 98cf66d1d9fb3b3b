"""dlcourse.topics.kge_pykeen: the course's models trained with PyKEEN on a toy graph (chapter 9)."""

import pytest
import torch

pytest.importorskip("pykeen")

from dlcourse.data.knowledge_graphs import from_rows  # noqa: E402
from dlcourse.topics.kge_pykeen import PyKEENScorer, make_pykeen_model, train_pykeen, triples_factory  # noqa: E402
from dlcourse.topics.link_prediction import evaluate  # noqa: E402


def toy_graph():
    people = [f"p{i}" for i in range(8)]
    train = [(a, "likes", b) for a, b in zip(people, people[1:])] + [(b, "liked_by", a) for a, b in zip(people, people[1:])]
    return from_rows("toy", {"train": train, "valid": [("p0", "likes", "p2")], "test": [("p1", "likes", "p3"),
                                                                                         ("p3", "liked_by", "p1")]})


def test_factory_keeps_the_graph_ids():
    kg = toy_graph()
    factory = triples_factory(kg, "train")
    assert factory.create_inverse_triples and factory.num_entities == kg.num_entities
    assert torch.equal(factory.mapped_triples, kg.train)
    assert [factory.entity_id_to_label[i] for i in range(kg.num_entities)] == kg.entities
    assert [factory.relation_id_to_label[i] for i in range(kg.num_relations)] == kg.relations


@pytest.mark.parametrize("model", ["distmult", "complex"])
def test_train_and_evaluate_agree_with_the_course_evaluator(model):
    kg = toy_graph()
    run = train_pykeen(kg, model, dim=8, epochs=3, batch_size=4, seed=0)
    assert set(run.metrics) == {"MRR", "Hits@1", "Hits@3", "Hits@10", "MR"}
    assert 0 < run.metrics["MRR"] <= 1 and run.train_seconds > 0 and run.settings["pair_batch"] >= 1
    ours = evaluate(PyKEENScorer(run.model, kg.num_relations), kg, "test")
    for key in ("MRR", "Hits@1", "Hits@3", "MR"):
        assert ours[key] == pytest.approx(run.metrics[key], abs=1e-5)


def test_scorer_answers_heads_through_inverse_ids():
    kg = toy_graph()
    net = make_pykeen_model(triples_factory(kg), "distmult", 4, seed=1)
    scorer = PyKEENScorer(net, kg.num_relations)
    h, r = torch.tensor([2, 3]), torch.tensor([0, 0 + kg.num_relations])
    scores = scorer.score_tails(h, r)
    assert scores.shape == (2, kg.num_entities)
    assert torch.allclose(scores[1], net.predict_h(torch.tensor([[0, 3]])).squeeze(0))


def test_bad_input_is_refused_clearly():
    kg = toy_graph()
    with pytest.raises(ValueError, match="unknown model"):
        make_pykeen_model(triples_factory(kg), "transh", 4)
    with pytest.raises(ValueError, match="dim must be"):
        make_pykeen_model(triples_factory(kg), "complex", 0)
    with pytest.raises(ValueError, match="epochs and batch_size"):
        train_pykeen(kg, epochs=0)
    scorer = PyKEENScorer(make_pykeen_model(triples_factory(kg), "distmult", 4), kg.num_relations)
    with pytest.raises(ValueError, match="relation ids"):
        scorer.score_tails(torch.tensor([0]), torch.tensor([2 * kg.num_relations]))

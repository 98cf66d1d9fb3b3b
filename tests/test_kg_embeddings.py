"""dlcourse.models.kg_embeddings: the three scoring functions, their geometry, and training (chapter 9)."""

import pytest
import torch

from dlcourse.models.kg_embeddings import ComplEx, DistMult, TransE, kge_loss, make_model, train_kge


def models(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {name: make_model(name, 7, 3, 4, init_scale=0.5, generator=g) for name in ("transe", "distmult", "complex")}


@pytest.mark.parametrize("name", ["transe", "distmult", "complex"])
def test_score_tails_agrees_with_score_of_each_triple(name):
    m = models()[name]
    h, r = torch.tensor([0, 3, 6]), torch.tensor([0, 4, 5])
    all_scores = m.score_tails(h, r)
    assert all_scores.shape == (3, 7)
    for t in range(7):
        assert torch.allclose(all_scores[:, t], m.score(h, r, torch.full((3,), t)), atol=1e-5)


def test_scoring_functions_match_their_formulas():
    ms = models()
    h, r, t = torch.tensor([1]), torch.tensor([2]), torch.tensor([4])
    te = ms["transe"]
    assert torch.allclose(te.score(h, r, t), -(te.entity[1] + te.relation[2] - te.entity[4]).abs().sum())
    dm = ms["distmult"]
    assert torch.allclose(dm.score(h, r, t), (dm.entity[1] * dm.relation[2] * dm.entity[4]).sum())
    cx = ms["complex"]
    c = lambda x: torch.complex(x[:4], x[4:])
    expected = (c(cx.entity[1]) * c(cx.relation[2]) * c(cx.entity[4]).conj()).sum().real
    assert torch.allclose(cx.score(h, r, t), expected, atol=1e-6)


def test_distmult_is_symmetric_and_complex_need_not_be():
    ms = models()
    h, r, t = torch.tensor([1, 2]), torch.tensor([0, 1]), torch.tensor([5, 3])
    assert torch.allclose(ms["distmult"].score(h, r, t), ms["distmult"].score(t, r, h))
    assert not torch.allclose(ms["complex"].score(h, r, t), ms["complex"].score(t, r, h))


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="unknown model"):
        make_model("rescal", 3, 2, 4)
    with pytest.raises(ValueError, match="dim must be a positive int"):
        DistMult(3, 2, 0)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        TransE(3, 2, 4, p=3)
    m = ComplEx(5, 2, 3)
    with pytest.raises(ValueError, match="relation ids must lie in 0..3"):
        m.score_tails(torch.tensor([0]), torch.tensor([4]))
    with pytest.raises(ValueError, match="entity ids"):
        m.score_tails(torch.tensor([5]), torch.tensor([0]))
    with pytest.raises(ValueError, match="unknown loss"):
        kge_loss(m, torch.tensor([[0, 0, 1]]), loss="hinge")
    with pytest.raises(ValueError, match="keep_best needs"):
        train_kge(m, torch.tensor([[0, 0, 1]]), epochs=1, keep_best=True)


@pytest.mark.parametrize("loss", ["1vsall", "negative", "margin"])
def test_training_learns_a_tiny_graph_and_keeps_the_best_epoch(loss):
    # A cycle 0 -> 1 -> 2 -> 3 -> 0 under relation 0: after training, each head's true tail ranks first.
    g = torch.Generator().manual_seed(0)
    triples = torch.tensor([[0, 0, 1], [1, 0, 2], [2, 0, 3], [3, 0, 0]])
    m = ComplEx(4, 1, 8, reciprocal=False, init_scale=0.1, generator=g)
    accuracy = lambda model: float((model.score_tails(triples[:, 0], triples[:, 1]).argmax(1) == triples[:, 2])
                                   .float().mean())
    history = train_kge(m, triples, epochs=60, batch_size=4, lr=0.2, loss=loss, num_negatives=3, generator=g,
                        validate=accuracy, keep_best=True, progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert accuracy(m) == 1.0 and max(history["val_score"]) == 1.0 and history.best_epoch >= 0


def test_margin_loss_is_the_mean_hinge_over_sampled_tails():
    m = TransE(5, 1, 3, reciprocal=False, init_scale=0.5, generator=torch.Generator().manual_seed(1))
    batch = torch.tensor([[0, 0, 1], [2, 0, 3]])
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    loss = kge_loss(m, batch, loss="margin", margin=2.0, num_negatives=4, generator=g1)
    neg = torch.randint(5, (2, 4), generator=g2)
    pos = m.score(batch[:, 0], batch[:, 1], batch[:, 2])
    negs = torch.stack([m.score(batch[:, 0], batch[:, 1], neg[:, j]) for j in range(4)], 1)
    assert torch.allclose(loss, (2.0 - pos[:, None] + negs).clamp(min=0).mean())

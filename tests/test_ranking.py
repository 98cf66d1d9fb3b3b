"""Tests for the ranking metrics, losses and implicit-feedback scorer (chapter 8, section 3)."""

import math

import numpy as np
import pytest
import torch

from dlcourse.topics.ranking import (ImplicitMF, bootstrap_interval, bpr_loss, evaluate_ranking, history_mask,
                                     ndcg_at_k, recall_at_k, relevance_mask, sampled_softmax_loss, top_k,
                                     train_ranker)

# Three users, five items, k = 3, computed by hand.
SCORES = torch.tensor([[0.9, 0.8, 0.1, 0.5, 0.3],   # ranking 0, 1, 3 | 4, 2
                       [0.2, 0.4, 0.6, 0.8, 1.0],   # ranking 4, 3, 2 | 1, 0
                       [0.5, 0.1, 0.2, 0.3, 0.4]])  # ranking 0, 4, 3 | 2, 1; without item 0: 4, 3, 2 | 1
RELEVANT = [{1, 2}, {4}, {2}]
SEEN = torch.zeros(3, 5, dtype=torch.bool)
SEEN[2, 0] = True  # user 2 has seen item 0: it may not be recommended again


def test_hand_computed_example():
    # user 0: item 1 at position 2 of the top 3, item 2 missed -> recall 1/2;
    #         DCG = 1/log2(3), ideal DCG (two relevant items) = 1 + 1/log2(3)
    # user 1: item 4 at position 1 -> recall 1, NDCG 1
    # user 2: with item 0 excluded, item 2 is at position 3 -> recall 1, NDCG = (1/log2(4)) / 1 = 0.5
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    recall = recall_at_k(SCORES, RELEVANT, 3, exclude=SEEN, reduction="none")
    ndcg = ndcg_at_k(SCORES, RELEVANT, 3, exclude=SEEN, reduction="none")
    assert torch.allclose(recall, torch.tensor([0.5, 1.0, 1.0]))
    assert torch.allclose(ndcg, torch.tensor([ndcg0, 1.0, 0.5]))
    assert recall_at_k(SCORES, RELEVANT, 3, exclude=SEEN) == pytest.approx(2.5 / 3)
    assert ndcg_at_k(SCORES, RELEVANT, 3, exclude=SEEN) == pytest.approx((ndcg0 + 1.5) / 3, rel=1e-6)
    # without the exclusion user 2's top 3 is 0, 4, 3: a miss
    assert recall_at_k(SCORES, RELEVANT, 3, reduction="none")[2] == 0
    assert ndcg_at_k(SCORES, RELEVANT, 3, reduction="none")[2] == 0


def test_forms_of_held_out_agree():
    mask = relevance_mask(RELEVANT, (3, 5))
    assert mask.sum() == 4 and mask[0, 1] and mask[0, 2] and mask[1, 4] and mask[2, 2]
    one_each = torch.tensor([2, 4, 2])
    for metric in (recall_at_k, ndcg_at_k):
        assert metric(SCORES, mask, 3, SEEN) == pytest.approx(metric(SCORES, RELEVANT, 3, SEEN))
        assert metric(SCORES, one_each, 3, SEEN) == pytest.approx(metric(SCORES, [{2}, {4}, {2}], 3, SEEN))


def test_top_k_excludes_seen_items_and_sorts():
    assert top_k(SCORES, 3).tolist() == [[0, 1, 3], [4, 3, 2], [0, 4, 3]]
    assert top_k(SCORES, 3, exclude=SEEN).tolist() == [[0, 1, 3], [4, 3, 2], [4, 3, 2]]
    with pytest.raises(ValueError, match="fewer than k"):
        top_k(SCORES, 5, exclude=SEEN)


def test_ideal_dcg_uses_min_of_k_and_number_relevant():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    # four relevant items, the top 2 holds one of them at position 2: DCG = 1/log2(3), ideal = 1 + 1/log2(3)
    assert ndcg_at_k(scores, [{1, 2, 3, 4}], 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(scores, [{0, 1}], 2) == pytest.approx(1.0)
    assert recall_at_k(scores, [{1, 2, 3, 4}], 2) == pytest.approx(0.25)


def test_users_without_relevant_items_are_skipped():
    per_user = recall_at_k(SCORES, [{1, 2}, set(), {2}], 3, SEEN, reduction="none")
    assert torch.isnan(per_user[1]) and recall_at_k(SCORES, [{1, 2}, set(), {2}], 3, SEEN) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no user has a relevant item"):
        ndcg_at_k(SCORES, [set(), set(), set()], 3)


@pytest.mark.parametrize("call, message", [
    (lambda: recall_at_k(SCORES[0], RELEVANT, 3), r"\(users, items\)"),
    (lambda: recall_at_k(SCORES, RELEVANT, 0), "positive int"),
    (lambda: ndcg_at_k(SCORES, RELEVANT, 6), "larger than the number of items"),
    (lambda: recall_at_k(SCORES, RELEVANT, 3, exclude=SEEN[:2]), "exclude must be"),
    (lambda: recall_at_k(SCORES, RELEVANT[:2], 3), "one collection of item ids per user"),
    (lambda: recall_at_k(SCORES, [{1}, {5}, {2}], 3), r"0\.\.4"),
    (lambda: recall_at_k(SCORES, torch.ones(2, 5, dtype=torch.bool), 3), "scores' shape"),
    (lambda: recall_at_k(SCORES, torch.tensor([1, 2]), 3), "one item per user"),
    (lambda: recall_at_k(SCORES, RELEVANT, 3, reduction="sum"), "unknown reduction"),
    (lambda: top_k(SCORES.long(), 3), "float tensor"),
])
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bpr_loss_by_hand():
    assert bpr_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(math.log(1 + math.exp(-2)))
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    expected = (math.log(1 + math.exp(-1)) + math.log(2) * 3) / 4  # differences 1, 0, 0, 0
    assert bpr_loss(pos, neg).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="pos_scores"):
        bpr_loss(pos, neg[:1])


def test_sampled_softmax_with_one_negative_is_bpr():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(8, generator=g), torch.randn(8, 1, generator=g)
    assert sampled_softmax_loss(pos, neg).item() == pytest.approx(bpr_loss(pos, neg).item(), rel=1e-6)
    # a uniform sampler's log q is a constant: the correction changes nothing
    neg5 = torch.randn(8, 5, generator=g)
    log_q = torch.full((8,), math.log(0.1))
    same = sampled_softmax_loss(pos, neg5, log_q, torch.full((8, 5), math.log(0.1)))
    assert same.item() == pytest.approx(sampled_softmax_loss(pos, neg5).item(), rel=1e-6)
    with pytest.raises(ValueError, match="both log_q_pos and log_q_neg"):
        sampled_softmax_loss(pos, neg5, log_q_pos=log_q)
    with pytest.raises(ValueError, match=r"neg_scores \(B, N\)"):
        sampled_softmax_loss(pos, neg5[:, 0])


def test_implicit_mf_scores_agree():
    model = ImplicitMF(4, 6, dim=3)
    nn_init = model.item_bias.weight.detach().clone()
    assert (nn_init == 0).all()
    with torch.no_grad():
        model.item_bias.weight.normal_()
    users = torch.tensor([0, 3])
    full = model.score_all(users)
    assert full.shape == (2, 6)
    assert torch.allclose(model(users, torch.tensor([5, 1])), full[[0, 1], [5, 1]], atol=1e-6)
    assert torch.allclose(model(users, torch.tensor([[0, 1], [2, 3]])), full[:, :4].reshape(2, 2, 2)[[0, 1], [0, 1]],
                          atol=1e-6)
    with pytest.raises(ValueError, match="dim"):
        ImplicitMF(4, 6, dim=0)


def test_history_mask_and_evaluate_ranking_match_the_metrics():
    hist_user, hist_item = torch.tensor([2, 0, 2]), torch.tensor([0, 4, 3])
    users = torch.tensor([0, 2])
    mask = history_mask(users, hist_user, hist_item, num_items=5)
    assert mask.tolist() == [[False, False, False, False, True], [True, False, False, True, False]]
    held = torch.tensor([1, 2])
    out = evaluate_ranking(lambda u: SCORES[u], users, held, (hist_user, hist_item), num_items=5, k=2, batch_size=1)
    assert torch.allclose(out["recall"], recall_at_k(SCORES[users], held, 2, mask, reduction="none"))
    assert torch.allclose(out["ndcg"], ndcg_at_k(SCORES[users], held, 2, mask, reduction="none"))
    # user 0 without item 4: 0, 1 -> hit at 2; user 2 without 0 and 3: 4, 2 -> hit at 2
    assert torch.allclose(out["ndcg"], torch.full((2,), 1 / math.log2(3)))


def test_bpr_training_learns_two_taste_groups():
    # users 0-19 interact with items 0-9, users 20-39 with items 10-19; 40 catalogue items in all
    g = torch.Generator().manual_seed(0)
    user = torch.arange(40).repeat_interleave(5)
    item = torch.randint(0, 10, (200,), generator=g) + 10 * (user >= 20)
    torch.manual_seed(0)
    model = ImplicitMF(40, 40, dim=4)
    history = train_ranker(model, user, item, epochs=30, batch_size=50, lr=0.05, reg=1e-4, generator=g,
                           progress=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    with torch.no_grad():
        top = top_k(model.score_all(torch.arange(40)), 5)
    in_group = (top // 10 == (torch.arange(40) >= 20).long()[:, None]).float().mean()
    assert in_group > 0.9
    with pytest.raises(ValueError, match="unknown loss"):
        train_ranker(model, user, item, epochs=1, batch_size=50, lr=0.1, loss="hinge")


def test_bootstrap_interval():
    values = np.r_[np.zeros(900), np.ones(100)]
    mean, low, high = bootstrap_interval(values, num_samples=500)
    assert mean == pytest.approx(0.1) and low < 0.1 < high and high - low < 0.05
    with pytest.raises(ValueError, match="without NaN"):
        bootstrap_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval(values, level=1.5)


def test_metrics_agree_with_torchmetrics():
    functional = pytest.importorskip("torchmetrics.functional")
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(20, 30, generator=g)
    relevant = torch.rand(20, 30, generator=g) < 0.15
    relevant[:, 0] = True  # every user has a relevant item
    for k in (1, 5, 10):
        ours_r = recall_at_k(scores, relevant, k, reduction="none")
        ours_n = ndcg_at_k(scores, relevant, k, reduction="none")
        for u in range(20):
            assert ours_r[u].item() == pytest.approx(functional.retrieval_recall(scores[u], relevant[u], top_k=k).item(),
                                                     abs=1e-6)
            assert ours_n[u].item() == pytest.approx(
                functional.retrieval_normalized_dcg(scores[u], relevant[u].long(), top_k=k).item(), abs=1e-6)


def test_sparse_model_trains_with_sparse_adam_and_softmax_loss():
    g = torch.Generator().manual_seed(1)
    user = torch.arange(20).repeat_interleave(4)
    item = torch.randint(0, 5, (80,), generator=g) + 5 * (user >= 10)
    model = ImplicitMF(20, 10, dim=4, sparse=True)
    history = train_ranker(model, user, item, epochs=20, batch_size=20, lr=0.05, loss="softmax", num_negatives=3,
                           generator=g, progress=False)
    assert model.user_factors.sparse and history["train_loss"][-1] < history["train_loss"][0]
    with torch.no_grad():
        out = evaluate_ranking(model.score_all, torch.arange(20), item[::4], (user[1::4], item[1::4]), 10, k=9)
    assert out["recall"].shape == (20,)
    with pytest.raises(ValueError, match="fewer than k"):
        evaluate_ranking(model.score_all, torch.arange(20), item[::4], (user, item), 10, k=10)

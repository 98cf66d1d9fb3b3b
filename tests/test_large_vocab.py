"""Tests for the large-vocabulary output layers (chapter 7, section 3)."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dlcourse.topics.large_vocab import (NCE, ClassSoftmax, FullSoftmax, ImportanceSampledSoftmax, RankingLoss,
                                         ShortList, frequency_classes, importance_weights)

H = 16


def zipf_counts(V, s=1.0):
    return (1e6 / torch.arange(1, V + 1, dtype=torch.float64) ** s).round().long() + 1


def batch(V, B=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, H, generator=g), torch.randint(0, V, (B,), generator=g)


def test_full_softmax_matches_cross_entropy():
    layer = FullSoftmax(H, 50)
    h, y = batch(50)
    assert torch.allclose(layer.loss(h, y), -layer.log_prob(h, y).mean())
    assert torch.allclose(layer.log_prob_all(h).exp().sum(1), torch.ones(len(h)), atol=1e-5)


def test_frequency_classes_are_contiguous_and_balanced():
    counts = zipf_counts(5000)
    cls = frequency_classes(counts, 50)
    assert cls.shape == (5000,) and cls[0] == 0 and (cls.diff() >= 0).all() and (cls.diff() <= 1).all()
    mass = torch.bincount(cls, weights=counts.double()) / counts.sum()
    assert int(cls.max()) + 1 <= 50                  # frequent words holding more than 1/K alone merge bins
    assert ((mass[-20:] > 0.5 / 50) & (mass[-20:] < 1.5 / 50)).all()   # the rare-word classes share the count
    with pytest.raises(ValueError, match="num_classes"):
        frequency_classes(counts[:3], 10)
    with pytest.raises(ValueError, match="1-D"):
        frequency_classes(counts[None], 10)


@pytest.mark.parametrize("V,K", [(5938, 77), (50_000, 224)])
def test_class_softmax_normalises_on_real_size_vocabularies(V, K):
    layer = ClassSoftmax(H, frequency_classes(zipf_counts(V), K))
    h, y = batch(V, B=8)
    with torch.no_grad():
        lp = layer.log_prob_all(h)
        assert lp.shape == (8, V)
        assert torch.allclose(lp.double().exp().sum(1), torch.ones(8, dtype=torch.float64), atol=1e-5)
        assert torch.allclose(layer.log_prob(h, y), lp.gather(1, y[:, None]).squeeze(1), atol=1e-5)


def test_class_softmax_with_unsorted_classes_and_gradients():
    word_class = torch.tensor([2, 0, 1, 0, 2, 1, 1, 0])
    layer = ClassSoftmax(H, word_class)
    h, y = batch(8)
    lp = layer.log_prob_all(h)
    assert torch.allclose(lp.exp().sum(1), torch.ones(len(h)), atol=1e-5)
    assert torch.allclose(layer.log_prob(h, y), lp.gather(1, y[:, None]).squeeze(1), atol=1e-5)
    layer.loss(h, y).backward()
    assert layer.class_layer.weight.grad is not None
    with pytest.raises(ValueError, match="every class"):
        ClassSoftmax(H, torch.tensor([0, 2, 2]))


def test_importance_weights():
    a = torch.randn(4, 7)
    log_q = torch.log(torch.rand(7) + 0.1)
    w = importance_weights(a, log_q)
    assert torch.allclose(w.sum(1), torch.ones(4))
    ratio = torch.exp(a - log_q)
    assert torch.allclose(w, ratio / ratio.sum(1, keepdim=True))
    assert torch.allclose(importance_weights(a + 3.0, log_q), w, atol=1e-6)     # the normaliser cancels
    with pytest.raises(ValueError, match="log_q"):
        importance_weights(a, log_q[:3])


def test_importance_sampling_gradient_is_the_seeds_estimator():
    V, m = 40, 25
    layer = ImportanceSampledSoftmax(H, V, zipf_counts(V).float(), m, seed=3)
    h, y = batch(V, B=6)
    layer.loss(h, y).backward()
    n = layer.last_samples
    with torch.no_grad():
        w = importance_weights(layer.scores_of(h, n), layer.log_q[n])            # (B, m)
        expected = -F.one_hot(y, V).double()                                     # d(-a_y)
        expected.index_add_(1, n, w.double())                                    # + sum_i w_i d a_{n_i}
        expected = expected.mean(0)
    assert torch.allclose(layer.bias.weight.grad.squeeze(1).double(), expected, atol=1e-6)


def test_importance_sampling_approaches_the_exact_gradient():
    V = 30
    torch.manual_seed(0)
    h, y = batch(V, B=4)
    errors = []
    for m in (10, 100, 20_000):
        layer = ImportanceSampledSoftmax(H, V, zipf_counts(V, 0.5).float(), m, seed=1)
        with torch.no_grad():
            layer.bias.weight.normal_()
        layer.loss(h, y).backward()
        with torch.no_grad():
            exact = (layer.log_prob_all(h).exp() - F.one_hot(y, V)).mean(0)      # -(d a_y - sum_i P(i|C) d a_i)
        errors.append(float((layer.bias.weight.grad.squeeze(1) - exact).abs().max()))
    assert errors[2] < errors[0] and errors[2] < 0.01, errors


def test_nce_and_ranking_losses():
    V = 100
    q = zipf_counts(V).float()
    h, y = batch(V)
    nce = NCE(H, V, q, 20, seed=0)
    loss = nce.loss(h, y)
    n = nce.last_samples
    with torch.no_grad():
        s_y = nce.target_scores(h, y) - math.log(20) - nce.log_q[y]
        s_n = nce.scores_of(h, n) - math.log(20) - nce.log_q[n]
        ref = -(F.logsigmoid(s_y) + F.logsigmoid(-s_n).sum(1)).mean()
    assert torch.allclose(loss, ref, atol=1e-5)
    rank = RankingLoss(H, V, 15, seed=0)
    loss = rank.loss(h, y)
    n = rank.last_samples
    with torch.no_grad():
        a_y, a_n = rank.target_scores(h, y), rank.scores_of(h, n)
        ref = sum(max(0.0, 1 - a_y[b] + a_n[b, i]) for b in range(len(y)) for i in range(15) if n[i] != y[b])
    assert math.isclose(float(loss.detach()), float(ref) / len(y), rel_tol=1e-5)
    lp = rank.log_prob_all(h)
    assert torch.allclose(lp.exp().sum(1), torch.ones(len(h)), atol=1e-5)


def test_sampling_is_deterministic_and_sparse_option_works():
    V = 200
    a, b = (ImportanceSampledSoftmax(H, V, torch.ones(V), 8, generator=torch.Generator().manual_seed(5))
            for _ in range(2))
    assert torch.equal(a.sample(), b.sample())
    layer = NCE(H, V, torch.ones(V), 8, sparse=True)
    h, y = batch(V)
    layer.loss(h, y).backward()
    assert layer.weight.weight.grad.is_sparse
    torch.optim.SGD(layer.parameters(), lr=0.1).step()


class UniformTail:
    def __init__(self, V):
        self.V = V

    def prob_vector(self, context):
        p = np.arange(1, self.V + 1, dtype=np.float64) + sum(context)
        return p / p.sum()


def test_short_list_mixture_sums_to_one():
    V, L = 60, 10
    layer = ShortList(H, V, L, UniformTail(V))
    h, y = batch(V)
    contexts = torch.randint(0, V, (len(y), 3))
    lp = layer.log_prob_all(h, contexts)
    assert torch.allclose(lp.double().exp().sum(1), torch.ones(len(h), dtype=torch.float64), atol=1e-5)
    assert torch.allclose(layer.log_prob(h, y, contexts), lp.gather(1, y[:, None]).squeeze(1), atol=1e-5)
    assert torch.isfinite(layer.loss(h, y))
    with pytest.raises(ValueError, match="contexts"):
        layer.log_prob(h, y, contexts[:3])
    with pytest.raises(ValueError, match="shortlist_size"):
        ShortList(H, V, V, UniformTail(V))


def test_short_list_with_a_kneser_ney_tail():
    ngrams = pytest.importorskip("dlcourse.topics.ngrams")
    V = 80
    ids = torch.tensor(np.random.default_rng(0).zipf(1.3, 3000) % V)
    tail = ngrams.NGramModel(3, V).fit(ids)
    layer = ShortList(H, V, 20, tail)
    h, _ = batch(V, B=5)
    lp = layer.log_prob_all(h, ids[:10].view(5, 2))
    assert torch.allclose(lp.double().exp().sum(1), torch.ones(5, dtype=torch.float64), atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    layer = FullSoftmax(H, 10)
    with pytest.raises(ValueError, match="h must be"):
        layer.loss(torch.randn(4, H + 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="word ids"):
        layer.loss(torch.randn(4, H), torch.full((4,), 10))
    with pytest.raises(ValueError, match="proposal"):
        NCE(H, 10, torch.ones(9), 5)


def test_benchmark_helpers():
    from dlcourse.topics import large_vocab_bench as bench

    p = bench.zipf_probs(1000)
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-5) and (p.diff() <= 0).all()
    cuts = bench.frequency_cutoffs(p)
    assert cuts == sorted(set(cuts)) and 0 < cuts[0] < cuts[-1] < 1000
    table = bench.step_time_table((200, 400), batch_size=8, hidden_dim=16, num_samples=4, repeats=1, warmup=0)
    assert set(table["method"]) == set(bench.METHODS) and len(table) == 2 * len(bench.METHODS)
    assert (table.loc[table["method"] == "full", "speedup"] == 1).all() and (table["seconds"] > 0).all()
    assert bench.speedup_table(table).shape == (len(bench.METHODS), 2)
    with pytest.raises(ValueError, match="methods"):
        bench.step_time_table((200,), methods=("class",))
    with pytest.raises(ValueError, match="unknown method"):
        bench.make_layer("tree", 8, p)


def test_unigram_init_gives_the_unigram_at_h_zero():
    from dlcourse.topics.large_vocab_bench import unigram_init_

    V = 300
    counts = zipf_counts(V)
    p = counts.double() / counts.sum()
    h, y = torch.zeros(2, H), torch.tensor([0, 250])
    layers = [FullSoftmax(H, V), ClassSoftmax(H, frequency_classes(counts, 17)),
              NCE(H, V, torch.ones(V), 5), ShortList(H, V, 40, UniformTail(V))]
    for layer in layers:
        unigram_init_(layer, counts)
        args = (h, y, torch.zeros(2, 1, dtype=torch.long)) if isinstance(layer, ShortList) else (h, y)
        lp = layer.log_prob(*args).double()
        expected = p[y].log()
        if isinstance(layer, ShortList):   # the tail word gets the tail mass times the n-gram's share
            expected[1] = p[40:].sum().log() + math.log(UniformTail(V).prob_vector([0])[250] /
                                                        UniformTail(V).prob_vector([0])[40:].sum())
        assert torch.allclose(lp, expected, atol=1e-5), type(layer).__name__
    with pytest.raises(ValueError, match="cannot unigram-initialise"):
        unigram_init_(FullSoftmax(H, V + 1), counts)


def test_unigram_init_of_the_adaptive_softmax_head():
    from dlcourse.topics.large_vocab_bench import unigram_init_

    V = 100
    counts = zipf_counts(V)
    layer = unigram_init_(torch.nn.AdaptiveLogSoftmaxWithLoss(H, V, [10, 40], head_bias=True), counts)
    with torch.no_grad():
        lp = layer.log_prob(torch.zeros(1, H)).double()[0]
    p = counts.double() / counts.sum()
    assert torch.allclose(lp[:10], p[:10].log(), atol=1e-5)                       # head words: exact
    assert math.isclose(float(lp[10:40].exp().sum()), float(p[10:40].sum()), rel_tol=1e-5)  # cluster mass

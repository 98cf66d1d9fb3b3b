"""dlcourse.topics.ngrams: counts, MLE / add-k / interpolated Kneser-Ney, mixtures, perplexity (7.1)."""

import itertools
import math
import os
import time

import numpy as np
import pytest
import torch

from dlcourse.topics.ngrams import (SMOOTHINGS, NGramModel, interpolate_log_probs, mixture_weights_em,
                                    ngram_counts, perplexity, unseen_fraction)

V_SMALL = 7
TEXT = [1, 2, 3, 1, 2, 4, 1, 2, 3, 5, 2, 3, 1, 6, 2, 1, 2, 3, 4, 1]   # ids < 7; id 0 never occurs


def _contexts(model, length):
    return [list(c) for c in itertools.product(range(V_SMALL), repeat=length)]


def test_ngram_counts():
    counts = ngram_counts(torch.tensor([1, 2, 1, 2, 3]), 2)
    assert counts == {(1, 2): 2, (2, 1): 1, (2, 3): 1}
    assert ngram_counts([4, 4, 4], 1) == {(4,): 3}
    assert sum(ngram_counts(TEXT, 3).values()) == len(TEXT) - 2


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distributions_sum_to_one(smoothing, order):
    model = NGramModel(order, V_SMALL, smoothing).fit(TEXT)
    for length in range(order):        # full contexts and the shorter ones (lower orders)
        for ctx in _contexts(model, length):
            p = model.prob_vector(ctx)
            assert p.shape == (V_SMALL,) and np.all(p >= 0)
            if smoothing == "mle" and p.sum() == 0:      # an unseen context: a row of zeros, no NaN
                continue
            assert p.sum() == pytest.approx(1.0, abs=1e-12), (smoothing, order, ctx)
            if smoothing != "mle":
                assert np.all(p > 0)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_prob_prob_vector_log_probs_and_prob_matrix_agree(smoothing, order):
    model = NGramModel(order, V_SMALL, smoothing, discount=0.6, k=0.5).fit(TEXT)
    heldout = [1, 2, 3, 4, 0, 2, 1, 6, 3, 5, 2]
    lp = model.log_probs(heldout, start=3)
    assert lp.shape == (len(heldout) - 3,)
    contexts = np.array([heldout[t - order + 1:t] if order > 1 else [] for t in range(3, len(heldout))])
    matrix = model.prob_matrix(contexts.reshape(len(contexts), order - 1))
    for i, t in enumerate(range(3, len(heldout))):
        ctx, w = heldout[:t], heldout[t]
        p = model.prob(ctx, w)
        assert p == pytest.approx(model.prob_vector(ctx)[w], abs=0)
        assert matrix[i, w] == pytest.approx(p, rel=1e-12, abs=0)
        assert (math.exp(lp[i]) if np.isfinite(lp[i]) else 0.0) == pytest.approx(p, rel=1e-12, abs=0)


def test_mle_equals_count_ratios_and_the_chain_rule_identity():
    model = NGramModel(3, V_SMALL, "mle").fit(TEXT)
    c3, c2 = ngram_counts(TEXT, 3), ngram_counts(TEXT, 2)
    context_count = {h: sum(c for g, c in c3.items() if g[:2] == h) for h in c2}
    for (a, b, w), c in c3.items():
        assert model.prob([a, b], w) == pytest.approx(c / context_count[(a, b)])
    # P(x1..x4) = P3(x1 x2 x3) P3(x2 x3 x4) / P2(x2 x3), with P2 the marginal of P3
    x1, x2, x3, x4 = TEXT[:4]
    n3 = sum(c3.values())
    P3 = {g: c / n3 for g, c in c3.items()}
    P2 = {h: context_count[h] / n3 for h in context_count}
    ratio = P3[(x1, x2, x3)] * P3[(x2, x3, x4)] / P2[(x2, x3)]
    chain = P3[(x1, x2, x3)] * model.prob([x2, x3], x4)
    assert ratio == pytest.approx(chain, rel=1e-12)
    assert model.prob([6, 6], 1) == 0.0 and np.all(model.prob_vector([6, 6]) == 0)   # unseen context
    assert np.isneginf(model.log_probs([6, 6, 1])).all()


def test_add_k_formula():
    k = 0.3
    model = NGramModel(2, V_SMALL, "add_k", k=k).fit(TEXT)
    c2 = ngram_counts(TEXT, 2)
    for h, w in itertools.product(range(V_SMALL), repeat=2):
        total = sum(c for g, c in c2.items() if g[0] == h)
        assert model.prob([h], w) == pytest.approx((c2.get((h, w), 0) + k) / (total + k * V_SMALL))
    unigram = NGramModel(1, V_SMALL, "add_k", k=1.0).fit(TEXT)
    assert unigram.prob([], 0) == pytest.approx(1 / (len(TEXT) + V_SMALL))


def test_kneser_ney_hand_computed():
    # text 1 2 1 2 3, |V| = 4, D = 0.5. Continuation counts N1+(. w): w=1: {2}, w=2: {1}, w=3: {2} -> 1 each.
    model = NGramModel(2, 4, "kneser_ney", discount=0.5).fit([1, 2, 1, 2, 3])
    p1 = {0: 0.125, 1: 0.5 / 3 + 0.125, 2: 0.5 / 3 + 0.125, 3: 0.5 / 3 + 0.125}   # (a-D)/3 + D*3/3 * 1/4
    assert model.prob_vector([]) == pytest.approx([p1[w] for w in range(4)])
    # after 2: followers {1: 1, 3: 1}, T = 2, N1+ = 2 -> (c - D)/2 + D*2/2 * p1
    assert model.prob_vector([2]) == pytest.approx([0.5 * p1[0], 0.25 + 0.5 * p1[1], 0.5 * p1[2], 0.25 + 0.5 * p1[3]])
    # after 1: followers {2: 2}, T = 2, N1+ = 1 -> (2 - D)/2 + D/2 * p1(2)
    assert model.prob([1], 2) == pytest.approx(0.75 + 0.25 * p1[2])
    assert model.prob_vector([3]) == pytest.approx([p1[w] for w in range(4)])   # 3 never has a follower
    assert NGramModel(2, 4, discount=[0.5, 0.5]).fit([1, 2, 1, 2, 3]).prob([1], 2) == pytest.approx(model.prob([1], 2))


def test_interpolation_and_em():
    train, held = TEXT, [1, 2, 3, 1, 2, 4, 6, 2, 1, 2, 3, 5, 1, 2]
    arrays = [NGramModel(n, V_SMALL, "add_k", k=0.1).fit(train).log_probs(held, start=2) for n in (1, 2, 3)]
    w = np.array([0.2, 0.3, 0.5])
    direct = np.log(sum(wk * np.exp(a) for wk, a in zip(w, arrays)))
    assert interpolate_log_probs(arrays, w) == pytest.approx(direct)
    uniform = interpolate_log_probs(arrays, np.full(3, 1 / 3)).mean()
    fitted = mixture_weights_em(arrays, num_iters=100)
    assert fitted.shape == (3,) and fitted.sum() == pytest.approx(1.0) and np.all(fitted >= 0)
    assert interpolate_log_probs(arrays, fitted).mean() > uniform
    likelihoods = [interpolate_log_probs(arrays, mixture_weights_em(arrays, num_iters=i)).mean() for i in range(6)]
    assert all(b >= a - 1e-12 for a, b in zip(likelihoods, likelihoods[1:]))   # EM never goes down
    with_zero = [np.array([0.0, -np.inf]), np.array([-1.0, -1.0])]              # an MLE model with a 0
    assert np.isfinite(interpolate_log_probs(with_zero, [0.5, 0.5])).all()


def test_perplexity_and_unseen_fraction():
    assert perplexity(np.full(10, -math.log(50))) == pytest.approx(50)
    assert perplexity([0.0, -np.inf]) == math.inf
    assert unseen_fraction([1, 2, 3, 1, 2], [1, 2, 4, 1, 2], 2) == pytest.approx(2 / 4)
    assert unseen_fraction([1, 2, 3], [3, 3], 1) == 0.0


def test_errors():
    with pytest.raises(ValueError, match="order"):
        NGramModel(0, 5)
    with pytest.raises(ValueError, match="smoothing"):
        NGramModel(2, 5, "witten_bell")
    with pytest.raises(ValueError, match="discount"):
        NGramModel(2, 5, discount=1.5)
    with pytest.raises(ValueError, match="discount"):
        NGramModel(3, 5, discount=[0.5, 0.5])
    with pytest.raises(ValueError, match="not fitted"):
        NGramModel(2, 5).log_probs([1, 2, 3])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        NGramModel(2, 5).fit([1, 2, 7])
    model = NGramModel(3, V_SMALL).fit(TEXT)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.log_probs([1, 2, 9, 1])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.prob([1, 2], 9)
    with pytest.raises(ValueError, match="start"):
        model.log_probs(TEXT, start=1)
    with pytest.raises(ValueError, match="1-D"):
        model.log_probs([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="summing to 1"):
        interpolate_log_probs([np.zeros(3), np.zeros(3)], [0.5, 0.6])
    with pytest.raises(ValueError, match="summing to 1"):
        interpolate_log_probs([np.zeros(3), np.zeros(3)], [1.2, -0.2])
    with pytest.raises(ValueError, match="same"):
        mixture_weights_em([np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="positive int"):
        ngram_counts(TEXT, 0)


@pytest.mark.skipif(not os.environ.get("DLCOURSE_DATA"), reason="needs the course data (DLCOURSE_DATA)")
def test_tiny_shakespeare_order_5_is_fast_and_normalised():
    from dlcourse.data.words import word_corpus

    corpus = word_corpus()
    V = len(corpus.vocab)
    start = time.perf_counter()
    model = NGramModel(5, V).fit(corpus.train)
    lp = model.log_probs(corpus.val, start=5)
    assert time.perf_counter() - start < 10.0
    assert lp.shape == (len(corpus.val) - 5,) and np.isfinite(lp).all()
    assert 100 < perplexity(lp) < 1000
    rng = np.random.default_rng(0)
    positions = rng.integers(5, len(corpus.val), size=50)
    for smoothing in SMOOTHINGS:
        m = model if smoothing == "kneser_ney" else NGramModel(5, V, smoothing).fit(corpus.train)
        for t in positions:
            p = m.prob_vector(corpus.val[t - 4:t])
            if smoothing == "mle" and p.sum() == 0:
                continue
            assert p.sum() == pytest.approx(1.0, abs=1e-9)

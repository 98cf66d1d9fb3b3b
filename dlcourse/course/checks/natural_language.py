"""Checks for lab 7: an interpolated trigram model and perplexity, the two-level (class) softmax,
the importance-sampled gradient of the softmax, and additive attention weights for a translation step."""

from __future__ import annotations

import math
import numpy as np
import torch

from ...models.seq2seq import AdditiveAttention
from ...topics.large_vocab import ClassSoftmax, importance_weights
from ...topics.ngrams import NGramModel, interpolate_log_probs, ngram_counts, perplexity
from . import (CheckFailed, Exercise, Mistake, as_float, call, close, diagnose, expect_raises, expect_tensor,
               expect_unchanged, facing_students, fresh, passed)
from .attention import _attention_mistakes, reference_additive_attention

# Exercise 1 -----------------------------------------------------------------------------


def ml_estimates(ids, vocab_size: int, *, denominator: str = "followed", joint: bool = False):
    """Maximum-likelihood estimates of the three orders as functions; keywords build the typical mistakes.

    ``p1(w)``, ``p2(v, w)``, ``p3(u, v, w)``; a context never followed by a word gives ``None``.
    The right estimates are the package's ``NGramModel(..., smoothing="mle")``, which divides by
    c(h .) = sum_w c(h w). ``denominator="count"`` divides by the count of the context itself;
    ``joint=True`` returns joint n-gram frequencies.
    """
    ids = [int(i) for i in ids]
    if denominator == "followed" and not joint:
        models = [NGramModel(n, vocab_size, smoothing="mle").fit(ids) for n in (1, 2, 3)]

        def conditional(model, context, w):
            row = model.prob_vector(context)
            return float(row[w]) if row.sum() > 0 else None  # an unseen context's row is all zeros

        return (lambda w: conditional(models[0], [], w), lambda v, w: conditional(models[1], [v], w),
                lambda u, v, w: conditional(models[2], [u, v], w))
    c1, c2, c3 = (ngram_counts(ids, n) for n in (1, 2, 3))
    n1, n2, n3 = len(ids), len(ids) - 1, len(ids) - 2

    def p2(v, w):
        if joint:
            return c2[v, w] / n2
        return c2[v, w] / c1[(v,)] if c1[(v,)] else None

    def p3(u, v, w):
        if joint:
            return c3[u, v, w] / n3
        return c3[u, v, w] / c2[u, v] if c2[u, v] else None

    return (lambda w: c1[(w,)] / n1), p2, p3


def reference_interpolated(ids, lambdas, vocab_size: int, *, unseen: str = "lower", reverse: bool = False, **ml):
    """P(w | u, v) = l3 P3 + l2 P2 + l1 P1 as a function prob(u, v, w); keywords build the typical mistakes.

    An unseen context takes the next lower order's estimate (``unseen="lower"``) or contributes
    nothing (``unseen="zero"``). The weighted sum is ``ngrams.interpolate_log_probs`` of the three
    estimates (log Σ λ_k p_k, computed stably).
    """
    p1, p2, p3 = ml_estimates(ids, vocab_size, **ml)
    weights = np.asarray(lambdas[::-1] if reverse else lambdas, dtype=float)

    def prob(u, v, w):
        uni = p1(w)
        bi = p2(v, w)
        bi = (uni if unseen == "lower" else 0.0) if bi is None else bi
        tri = p3(u, v, w)
        tri = (bi if unseen == "lower" else 0.0) if tri is None else tri
        with np.errstate(divide="ignore"):
            logs = [np.log(np.array([p], dtype=float)) for p in (uni, bi, tri)]
        return float(np.exp(interpolate_log_probs(logs, weights))[0])

    return prob


def _ngram_case():
    """A short text of 9 word types (id 8 never occurs) with seen and unseen contexts; its last word is rare."""
    text = [1, 2, 3, 1, 2, 4, 2, 3, 1, 5, 1, 2, 3, 6, 2, 1, 1, 2, 4, 3, 1, 2, 5, 5, 7]
    triples = [(1, 2, 3), (1, 2, 4), (1, 2, 6), (2, 3, 1), (5, 5, 7), (3, 6, 2), (4, 4, 2), (7, 1, 2), (2, 7, 1),
               (8, 8, 1), (6, 6, 8), (5, 7, 1), (1, 1, 2)]
    return text, 9, triples


INTERPOLATION_MISTAKES = [
    Mistake(dict(joint=True), "you used joint frequencies, c(u, v, w) / (number of trigrams); the model needs the "
                              "conditional P_ML(w | u, v) = c(u, v, w) / c(u, v, .), the count of the trigram "
                              "divided by how often its context is followed by a word (likewise for the bigram)"),
    Mistake(dict(unseen="zero"), "for a context that never occurs in the text you used 0 for its estimate, so the "
                                 "probabilities after that context sum to less than 1 (to 1 - lambda3 or less). Use "
                                 "the next lower order's estimate in its place, as the exercise says"),
    Mistake(dict(reverse=True), "your weights are the wrong way round: lambdas = (l1, l2, l3) weights the unigram, "
                                "the bigram and the trigram estimates, in that order"),
    Mistake(dict(denominator="count"), "you divided by the count of the context itself, c(v) or c(u, v); the last "
                                       "word(s) of the text are never followed by anything, so divide by "
                                       "c(v, .) = sum_w c(v, w), the number of times the context is followed by a word "
                                       "(otherwise the probabilities after that context do not sum to 1)"),
]


def check_interpolated_model(interpolated_model) -> None:
    """Against the reference on seen and unseen contexts; sums to 1 over the vocabulary; bad weights refused."""
    text, vocab_size, triples = _ngram_case()
    for lambdas in [(0.1, 0.3, 0.6), (0.2, 0.2, 0.6), (0.0, 0.0, 1.0)]:
        prob = call(interpolated_model, "interpolated_model", list(text), lambdas)
        if not callable(prob):
            raise CheckFailed(f"interpolated_model should return a function prob(u, v, w), got {type(prob).__name__}")
        got = {t: as_float(call(prob, "prob", *t), f"prob{t}") for t in triples}
        want = reference_interpolated(text, lambdas, vocab_size)
        if all(math.isclose(got[t], want(*t), abs_tol=1e-9) for t in triples):
            continue

        def matches(**kw):
            variant = reference_interpolated(text, lambdas, vocab_size, **kw)
            return all(math.isclose(got[t], variant(*t), abs_tol=1e-9) for t in triples)

        wrong = next(t for t in triples if not math.isclose(got[t], want(*t), abs_tol=1e-9))
        diagnose(INTERPOLATION_MISTAKES, matches,
                 otherwise=f"with lambdas = {lambdas}, prob{wrong} should be {want(*wrong):.6f}, got {got[wrong]:.6f}: "
                           "l3 c(u,v,w)/c(u,v,.) + l2 c(v,w)/c(v,.) + l1 c(w)/N, a lower order's estimate in place "
                           "of an unseen context's")
    prob = interpolated_model(list(text), (0.2, 0.3, 0.5))
    for u, v in [(1, 2), (5, 7), (8, 8), (2, 7)]:
        total = sum(as_float(prob(u, v, w), "prob") for w in range(vocab_size))
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise CheckFailed(f"the probabilities of all {vocab_size} words after the context ({u}, {v}) sum to "
                              f"{total:.6f}, not 1")
    for lambdas, why in [((0.5, 0.3, 0.3), "weights summing to 1"), ((0.6, 0.6, -0.2), "non-negative weights"),
                         ((0.5, 0.5), "three weights (l1, l2, l3)")]:
        expect_raises(interpolated_model, "interpolated_model", (list(text), lambdas), why)
    passed("interpolated_model mixes the three conditional estimates, and sums to 1 after every context")


def reference_perplexity(probs, *, mode: str = "right") -> float:
    """exp(-mean log p) through ``ngrams.perplexity``; keywords build the typical mistakes."""
    p = np.asarray(probs, dtype=float)
    if mode == "right":
        return float(perplexity(np.log(p)))
    return float({"mean_prob": 1 / p.mean(), "exp_log2": np.exp(-np.log2(p).mean()),
                  "pow2_ln": 2 ** (-np.log(p).mean()), "sum": np.exp(-np.log(p).sum()),
                  "sign": np.exp(np.log(p).mean())}[mode])


PERPLEXITY_MISTAKES = [
    Mistake(dict(mode="mean_prob"), "you averaged the probabilities (1 / mean p); perplexity averages the "
                                    "log-probabilities: exp(-(1/N) sum_t log p_t), the inverse geometric mean"),
    Mistake(dict(mode="exp_log2"), "you mixed bases: exp of a mean of log2 values. Use one base throughout: "
                                   "exp(-mean ln p) or 2 ** (-mean log2 p), which are equal"),
    Mistake(dict(mode="pow2_ln"), "you mixed bases: 2 to the power of a mean of natural logs. Use one base "
                                  "throughout: exp(-mean ln p) or 2 ** (-mean log2 p), which are equal"),
    Mistake(dict(mode="sum"), "you summed the log-probabilities; perplexity uses their mean, so that it does not "
                              "grow with the length of the text"),
    Mistake(dict(mode="sign"), "the sign is wrong: perplexity is exp(-mean log p), at least 1"),
]


def check_perplexity(perplexity_fn) -> None:
    """Against ``ngrams.perplexity`` on a few probability lists; the typical mistakes named."""
    cases = [[0.5, 0.25, 0.1, 0.05, 0.8], [0.01] * 7, np.linspace(0.02, 0.9, 30).tolist()]
    for probs in cases:
        got = as_float(call(perplexity_fn, "perplexity", list(probs)), "perplexity(probs)")
        want = reference_perplexity(probs)
        if math.isclose(got, want, rel_tol=1e-7):
            continue
        diagnose(PERPLEXITY_MISTAKES, lambda **kw: math.isclose(got, reference_perplexity(probs, **kw), rel_tol=1e-7),
                 otherwise=f"perplexity({[round(p, 3) for p in probs][:5]}{'...' if len(probs) > 5 else ''}) should be "
                           f"{want:.4f}, got {got:.4f}: exp(-(1/N) sum_t ln p_t)")
    passed("perplexity is exp(-mean log p): 100 for a uniform guess among 100 words")


# Exercise 2 -----------------------------------------------------------------------------


def _class_layer(class_weight, class_bias, word_weight, word_bias, word_class) -> ClassSoftmax:
    """The package's ClassSoftmax holding the given parameters (row v of word_weight is word v's)."""
    layer = ClassSoftmax(class_weight.shape[1], word_class).to(class_weight.dtype)
    with torch.no_grad():
        layer.class_layer.weight.copy_(class_weight)
        layer.class_layer.bias.copy_(class_bias)
        for c, (weight, bias) in enumerate(zip(layer.weights, layer.biases)):  # class c's words in id order
            weight.copy_(word_weight[word_class == c])
            bias.copy_(word_bias[word_class == c])
    return layer


def reference_class_log_probs(h, class_weight, class_bias, word_weight, word_bias, word_class, *,
                              within: str = "class", class_norm: str = "classes"):
    """log P(y | C) (B, V) for every word; the right answer comes from ``ClassSoftmax.log_prob_all``.

    ``within="vocab"`` normalises the word scores over the whole vocabulary, ``within="none"``
    drops the class term; ``class_norm="words"`` normalises the class scores over the words.
    """
    if within == "class" and class_norm == "classes":
        with torch.no_grad():
            return _class_layer(class_weight, class_bias, word_weight, word_bias, word_class).log_prob_all(h)
    class_scores = h @ class_weight.T + class_bias  # (B, K)
    word_scores = h @ word_weight.T + word_bias  # (B, V)
    if class_norm == "words":
        class_term = torch.log_softmax(class_scores[:, word_class], dim=1)
    else:
        class_term = torch.log_softmax(class_scores, dim=1)[:, word_class]
    if within == "none":
        return _within_class(word_scores, word_class)
    word_term = torch.log_softmax(word_scores, dim=1) if within == "vocab" else _within_class(word_scores, word_class)
    return class_term + word_term


def _within_class(word_scores, word_class):
    num_classes = int(word_class.max()) + 1
    member = word_class[None, :] == torch.arange(num_classes)[:, None]  # (K, V)
    norm = torch.logsumexp(word_scores[:, None, :].masked_fill(~member, float("-inf")), dim=2)  # (B, K)
    return word_scores - norm[:, word_class]


def _class_case(batch, hidden, vocab_size, word_class, seed):
    g = torch.Generator().manual_seed(fresh(seed))
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    word_class = torch.tensor(word_class)
    K = int(word_class.max()) + 1
    return randn(batch, hidden), randn(K, hidden), randn(K), randn(vocab_size, hidden), randn(vocab_size), word_class


CLASS_MISTAKES = [
    Mistake(dict(within="vocab"), "you normalised each word's score over the whole vocabulary; the second factor "
                                  "P(y | class(y), C) is a softmax over the words of y's class only"),
    Mistake(dict(within="none"), "you left out the class term: log P(y | C) = log P(class(y) | C) + "
                                 "log P(y | class(y), C), and the first term is a softmax over the K class scores"),
    Mistake(dict(class_norm="words"), "you normalised the class scores over the words (a softmax over the V columns "
                                      "of class_scores[:, word_class]); P(class | C) is a softmax over the K classes, "
                                      "which you then look up for each word's class"),
]


def check_class_log_probs(class_log_probs) -> None:
    """Against ``ClassSoftmax.log_prob_all`` with the same parameters; exp sums to 1 over the vocabulary."""
    cases = [(3, 5, 11, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], 0), (2, 4, 9, [2, 0, 1, 0, 2, 2, 1, 0, 1], 1),
             (4, 6, 7, [0, 1, 2, 3, 0, 1, 2], 2)]
    for batch, hidden, V, word_class, seed in cases:
        args = _class_case(batch, hidden, V, word_class, seed)
        copies = [a.clone() for a in args]
        got = expect_tensor(call(class_log_probs, "class_log_probs", *copies), (batch, V),
                            f"class_log_probs for B = {batch}, V = {V} (one log-probability per word)")
        expect_unchanged(args, copies, "class_log_probs changed its inputs in place; use out-of-place operations")
        want = reference_class_log_probs(*args)
        if close(got, want, 1e-6):
            continue
        sums = got.double().exp().sum(dim=1)
        diagnose(CLASS_MISTAKES, lambda **kw: close(got, reference_class_log_probs(*args, **kw), 1e-6))
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
            raise CheckFailed(f"exp(class_log_probs) should sum to 1 over the vocabulary for every example; yours sum "
                              f"to {', '.join(f'{s:.4f}' for s in sums.tolist())}")
        raise CheckFailed(f"class_log_probs differs from log P(class(y)|C) + log P(y|class(y), C) by up to "
                          f"{(got.double() - want).abs().max().item():.3g} (word_class = {word_class}: classes need "
                          "not be contiguous)")
    passed("class_log_probs is log P(class | C) + log P(word | class, C); its exp sums to 1 over the vocabulary")


# Exercise 3 -----------------------------------------------------------------------------


def reference_importance_gradient(a, y, samples, log_q, *, normalise: str = "sum", q_power: float = 1.0,
                                  target: bool = True, accumulate: bool = True):
    """onehot(y) - Σ_i w_i onehot(n_i) with the package's ``importance_weights``; keywords build the mistakes.

    ``normalise="none"`` keeps p̃/q, ``"mean"`` divides p̃/q by m; ``q_power`` 2 divides by q twice,
    -1 multiplies by q; ``target=False`` drops onehot(y); ``accumulate=False`` counts a repeated sample once.
    """
    scores, lq = a[samples], log_q[samples]
    if normalise == "sum" and q_power == 1.0:
        w = importance_weights(scores[None, :], lq)[0]
    else:
        ratio = torch.exp(scores - q_power * lq)
        w = ratio / {"sum": ratio.sum(), "none": 1.0, "mean": len(samples)}[normalise]
    grad = torch.zeros_like(a)
    if accumulate:
        grad = grad.index_add(0, samples, -w)
    else:
        grad[samples] = -w
    if target:
        grad[y] += 1.0
    return grad


def _importance_case(V, m, seed):
    g = torch.Generator().manual_seed(fresh(seed))
    a = 2.0 * torch.randn(V, generator=g, dtype=torch.float64)
    q = torch.rand(V, generator=g, dtype=torch.float64) + 0.2
    q = q / q.sum()
    samples = torch.multinomial(q, m, replacement=True, generator=g)
    return a, int(torch.randint(V, (1,), generator=g)), samples, q.log()


IMPORTANCE_MISTAKES = [
    Mistake(dict(target=False), "you left out the target term: the gradient of log P(y|C) with respect to a is "
                                "onehot(y) - softmax(a), so the estimate is onehot(y) - sum_i w_i onehot(n_i)"),
    Mistake(dict(normalise="none"), "your weights are not normalised: divide each p~_i / q_i by their sum over the "
                                    "m samples, so that the weights sum to 1 (p~ = exp(a) is unnormalised)"),
    Mistake(dict(normalise="mean"), "you divided p~_i / q_i by m; with p~ = exp(a) unnormalised that is off by the "
                                    "unknown normaliser Z. Divide by the sum of the ratios instead: it estimates m Z"),
    Mistake(dict(q_power=2.0), "you divided by q twice: the ratio is exp(a_n) / q_n, once"),
    Mistake(dict(q_power=-1.0), "you multiplied by q; importance weights divide by the proposal: exp(a_n) / q_n"),
    Mistake(dict(accumulate=False), "a word drawn twice must count twice: with indexing assignment (g[samples] = ...) "
                                    "a repeated sample keeps only one weight. Accumulate with index_add (or a loop)"),
]


def check_importance_gradient(importance_gradient) -> None:
    """Against the reference on fixed draws; then the estimate approaches onehot(y) - softmax(a) as m grows."""
    for V, m, seed in [(8, 5, 0), (20, 40, 1), (50, 200, 2)]:
        args = _importance_case(V, m, seed)
        copies = [x.clone() if isinstance(x, torch.Tensor) else x for x in args]
        got = expect_tensor(call(importance_gradient, "importance_gradient", *copies), (V,),
                            f"importance_gradient for a vocabulary of V = {V} (one entry per word)")
        expect_unchanged([args[0], args[2], args[3]], [copies[0], copies[2], copies[3]],
                         "importance_gradient changed its inputs in place; use out-of-place operations")
        want = reference_importance_gradient(*args)
        if close(got, want, 1e-7):
            continue
        diagnose(IMPORTANCE_MISTAKES, lambda **kw: close(got, reference_importance_gradient(*args, **kw), 1e-7),
                 otherwise=f"the estimate differs from onehot(y) - sum_i w_i onehot(n_i) by up to "
                           f"{(got.double() - want).abs().max().item():.3g}; w_i = (exp(a_n_i) / q_n_i) / "
                           "sum_j (exp(a_n_j) / q_n_j)")
    a, y, _, log_q = _importance_case(200, 1, 3)
    exact = -torch.softmax(a, dim=0)
    exact[y] += 1.0
    g = torch.Generator().manual_seed(fresh(4))
    errors = []
    for m in (10, 100, 1000, 10000):
        draws = [importance_gradient(a, y, torch.multinomial(log_q.exp(), m, replacement=True, generator=g), log_q)
                 for _ in range(5)]
        errors.append(sum((d - exact).abs().sum().item() for d in draws) / len(draws))
    if not errors[-1] < errors[0] / 3:
        raise CheckFailed(f"the error against the exact gradient should fall as m grows; it went {errors}")
    passed("importance_gradient matches the reference; L1 error against onehot(y) - softmax(a), V = 200: "
           + ", ".join(f"m = {m}: {e:.3f}" for m, e in zip((10, 100, 1000, 10000), errors)))


# Exercise 4 -----------------------------------------------------------------------------


def reference_attention_weights(s_prev, h, mask, W, U, b, v):
    """a_t (B, T) from the package's ``AdditiveAttention`` holding the given parameters."""
    attention = AdditiveAttention(W.shape[1], W.shape[0], U.shape[1]).to(W.dtype)
    with torch.no_grad():
        attention.W.weight.copy_(W)
        attention.U.weight.copy_(U)
        attention.U.bias.copy_(b)
        attention.v.weight.copy_(v[None, :])
        return attention(s_prev, h, attention.U(h), mask)[1]


def _attention_variant(s_prev, h, mask, W, U, b, v, **kw):
    """Lab 2's reference with the bias folded into U (a column of ones appended to h): the typical mistakes."""
    h1 = torch.cat([h, torch.ones_like(h[..., :1])], dim=-1)
    return reference_additive_attention(s_prev, h1, mask, W, torch.cat([U, b[:, None]], dim=1), v, **kw)[0]


def _translation_case(batch, T, S, D, A, lengths, seed):
    g = torch.Generator().manual_seed(fresh(seed))
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return randn(batch, S), randn(batch, T, D), mask, randn(A, S), randn(A, D), randn(A), randn(A)


def check_attention_weights(attention_weights) -> None:
    """Against ``AdditiveAttention`` with the same parameters; padded positions get zero weight."""
    for batch, T, S, D, A, lengths, seed in [(3, 6, 4, 5, 7, [6, 3, 1], 0), (2, 4, 3, 3, 5, [2, 4], 1)]:
        args = _translation_case(batch, T, S, D, A, lengths, seed)
        copies = [x.clone() for x in args]
        a = expect_tensor(call(attention_weights, "attention_weights", *copies), (batch, T),
                          f"attention_weights for B = {batch} sentences of T = {T} positions")
        expect_unchanged(args, copies, "attention_weights changed its inputs in place (masked_fill_ on an input?); "
                                       "use the out-of-place versions")
        want = reference_attention_weights(*args)
        if close(a, want, 1e-7):
            continue
        mask = args[2]
        diagnose(_attention_mistakes(a, mask, want, a.sum(dim=1)),
                 lambda **kw: close(a.nan_to_num(), _attention_variant(*args, **kw).nan_to_num(), 1e-7))
    passed("attention_weights matches the model's AdditiveAttention; padding gets zero weight")


CHECKS = {
    "Exercise 1": Exercise("interpolated_model", check_interpolated_model),
    "Exercise 2": Exercise("perplexity", check_perplexity),
    "Exercise 3": Exercise("class_log_probs", check_class_log_probs),
    "Exercise 4": Exercise("importance_gradient", check_importance_gradient),
    "Exercise 5": Exercise("attention_weights", check_attention_weights),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone

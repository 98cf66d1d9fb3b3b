"""Lab 7's checks pass the references and name the typical mistakes (tests/test_labs.py runs the solution)."""

import math

import numpy as np
import pytest
import torch

from dlcourse.course.checks import natural_language as checks
from dlcourse.topics.ngrams import NGramModel
from labtest import feedback


def interpolated(**kw):
    def interpolated_model(ids, lambdas):
        if len(lambdas) != 3 or min(lambdas) < 0 or not math.isclose(sum(lambdas), 1.0):
            raise ValueError("three non-negative weights summing to 1")
        return checks.reference_interpolated(ids, lambdas, 9, **kw)
    return interpolated_model


def test_interpolation_reference_passes(capsys):
    checks.check_interpolated_model(interpolated())
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", checks.INTERPOLATION_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_interpolation_feedback(mistake):
    assert mistake.message in feedback(checks.check_interpolated_model, interpolated(**mistake.variant))


def test_interpolation_must_refuse_bad_weights():
    def lenient(ids, lambdas):
        valid = len(lambdas) == 3 and min(lambdas) >= 0 and math.isclose(sum(lambdas), 1.0)
        return checks.reference_interpolated(ids, lambdas if valid else (1 / 3, 1 / 3, 1 / 3), 9)
    assert "raising ValueError" in feedback(checks.check_interpolated_model, lenient)


def test_interpolation_reference_agrees_with_the_package_where_contexts_are_seen():
    text, V, _ = checks._ngram_case()
    prob = checks.reference_interpolated(text, (0.2, 0.3, 0.5), V)
    models = [NGramModel(n, V, smoothing="mle").fit(text) for n in (1, 2, 3)]
    for u, v, w in zip(text, text[1:], text[2:]):  # every context here is followed by a word
        mix = 0.2 * models[0].prob([], w) + 0.3 * models[1].prob([v], w) + 0.5 * models[2].prob([u, v], w)
        assert math.isclose(prob(u, v, w), mix, rel_tol=1e-12)


def test_perplexity(capsys):
    checks.check_perplexity(lambda p: float(np.exp(-np.mean(np.log(p)))))
    assert "✔" in capsys.readouterr().out
    for mistake in checks.PERPLEXITY_MISTAKES:
        wrong = lambda p, mode=mistake.variant["mode"]: checks.reference_perplexity(p, mode=mode)  # noqa: E731
        assert mistake.message in feedback(checks.check_perplexity, wrong)
    assert math.isclose(checks.reference_perplexity([0.01] * 5), 100.0)


def class_probs(**kw):
    return lambda *args: checks.reference_class_log_probs(*args, **kw)


def test_class_softmax_reference_passes_and_normalises(capsys):
    checks.check_class_log_probs(class_probs())
    assert "✔" in capsys.readouterr().out
    args = checks._class_case(3, 5, 11, [2, 0, 1, 0, 2, 2, 1, 0, 1, 0, 0], 7)
    lp = checks.reference_class_log_probs(*args)
    assert torch.allclose(lp.exp().sum(1), torch.ones(3, dtype=torch.float64))
    # the package's layer and the plain formula agree
    assert torch.allclose(lp, checks.reference_class_log_probs(*args, within="class", class_norm="plain"))


@pytest.mark.parametrize("mistake", checks.CLASS_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_class_softmax_feedback(mistake):
    assert mistake.message in feedback(checks.check_class_log_probs, class_probs(**mistake.variant))


def test_class_softmax_unnormalised_answer_is_reported():
    unnormalised = lambda *args: checks.reference_class_log_probs(*args) + 0.1  # noqa: E731
    assert "sum to 1 over the vocabulary" in feedback(checks.check_class_log_probs, unnormalised)


def gradient(**kw):
    return lambda *args: checks.reference_importance_gradient(*args, **kw)


def test_importance_gradient_reference_passes_and_converges(capsys):
    checks.check_importance_gradient(gradient())
    out = capsys.readouterr().out
    assert "✔" in out and "m = 10000" in out


@pytest.mark.parametrize("mistake", checks.IMPORTANCE_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_importance_gradient_feedback(mistake):
    assert mistake.message in feedback(checks.check_importance_gradient, gradient(**mistake.variant))


def test_importance_weights_sum_to_one_and_estimate_sums_to_zero():
    a, y, samples, log_q = checks._importance_case(30, 50, 5)
    g = checks.reference_importance_gradient(a, y, samples, log_q)
    assert math.isclose(g.sum().item(), 0.0, abs_tol=1e-12)  # 1 for the target minus weights summing to 1


def attention(**kw):
    return lambda *args: checks._attention_variant(*args, **kw)


def test_attention_reference_passes_and_matches_the_model(capsys):
    checks.check_attention_weights(checks.reference_attention_weights)
    checks.check_attention_weights(attention())  # lab 2's formula with the bias folded in
    assert capsys.readouterr().out.count("✔") == 2


@pytest.mark.parametrize("variant, words", [
    (dict(mask_mode="none"), "ignored the mask"), (dict(mask_mode="inverted"), "padded positions (~mask)"),
    (dict(mask_mode="after"), "after the softmax"), (dict(softmax_dim=0), "batch axis"),
    (dict(use_tanh=False), "left out the tanh")])
def test_attention_feedback(variant, words):
    assert words in feedback(checks.check_attention_weights, attention(**variant))


def test_attention_without_bias_is_reported():
    def no_bias(s, h, mask, W, U, b, v):
        return checks.reference_attention_weights(s, h, mask, W, U, 0 * b, v)
    assert "differ from the reference" in feedback(checks.check_attention_weights, no_bias)

"""Lab 1's checks name the typical mistakes (tests/test_labs.py checks that the solutions pass)."""

import pytest
import torch

from dlcourse.course.checks import CheckFailed
from dlcourse.course.checks import deep_networks as checks
from labtest import feedback, solution_namespace


@pytest.fixture(scope="module")
def solution():
    """The names the solution notebook defines for its exercises."""
    return solution_namespace("lab01_deep_networks")


def test_forward_feedback(solution):
    f = solution["forward"]
    assert "prepend the column of ones" in feedback(checks.check_forward, lambda Us, X, taus: checks.reference_forward(
        Us, X, taus, bias_first=False))
    assert "output layer applies its activation" in feedback(checks.check_forward, lambda Us, X, taus: checks.reference_forward(
        Us, X, taus, last_activation=False))
    assert "taus[l-1]" in feedback(checks.check_forward, lambda Us, X, taus: f(Us, X, [torch.sigmoid] * len(Us)))
    assert "should have shape" in feedback(checks.check_forward, lambda Us, X, taus: f(Us, X, taus)[:, :1])
    assert "raised ZeroDivisionError" in feedback(checks.check_forward, lambda Us, X, taus: 1 / 0)


def test_deltas_feedback(solution):
    d = solution["deltas"]
    assert "wrong sign" in feedback(checks.check_deltas, lambda *a: [-x for x in d(*a)])
    assert "reverse order" in feedback(checks.check_deltas, lambda *a: d(*a)[::-1])
    assert "missing the factor" in feedback(checks.check_deltas, lambda Us, Ss, Zs, Y: checks.reference_deltas(
        Us, Zs, Y, derivative=False))

    def with_bias_column(Us, Ss, Zs, Y):
        out = d(Us, Ss, Zs, Y)
        return [torch.cat([torch.zeros(len(x), 1, dtype=x.dtype), x], 1) for x in out[:-1]] + [out[-1]]
    assert "bias column" in feedback(checks.check_deltas, with_bias_column)

    def wrong_hidden(*a):
        out = d(*a)
        return [2 * x for x in out[:-1]] + [out[-1]]
    assert "delta^L is right but delta^" in feedback(checks.check_deltas, wrong_hidden)


def test_sgd_step_feedback(solution):
    s = solution["sgd_step"]
    t = 7  # the check's batch size

    def scaled(factor):
        return lambda Us, X, Y, lr: [U + factor * (V - U) for U, V in zip(Us, s(Us, X, Y, lr))]
    assert "factor of the batch size" in feedback(checks.check_sgd_step, scaled(t))
    assert "up the gradient" in feedback(checks.check_sgd_step, scaled(-1))

    def in_place(Us, X, Y, lr):
        new = s(Us, X, Y, lr)
        for U, V in zip(Us, new):
            U.copy_(V)
        return Us
    assert "changed the matrices passed in" in feedback(checks.check_sgd_step, in_place)


def test_diagnosis_feedback():
    with pytest.raises(CheckFailed, match="must be one of"):
        checks.check_diagnosis("bad luck", {})
    with pytest.raises(CheckFailed, match="does not fit the evidence"):
        checks.check_diagnosis("overfitting", {})
    with pytest.raises(CheckFailed, match="keep depth 10"):
        checks.check_diagnosis("vanishing gradients", {"depth": 2})
    with pytest.raises(CheckFailed, match="may only change"):
        checks.check_diagnosis("vanishing gradients", {"optimizer": "adam"})
    with pytest.raises(CheckFailed, match=r"reaches only .* test accuracy"):
        checks.check_diagnosis("vanishing gradients", {})  # the unchanged broken network
    with pytest.raises(CheckFailed, match="not a valid network"):
        checks.check_diagnosis("vanishing gradients", {"activation": "swish"})


def test_adam_feedback(solution):
    a = solution["adam_step"]

    def no_bias_correction(p, grad, state, lr, betas, eps):
        if not state:
            state.update(m=torch.zeros_like(p), v=torch.zeros_like(p))
        state["m"] = betas[0] * state["m"] + (1 - betas[0]) * grad
        state["v"] = betas[1] * state["v"] + (1 - betas[1]) * grad * grad
        p.sub_(lr * state["m"] / (state["v"].sqrt() + eps))
    assert "bias correction" in feedback(checks.check_adam_step, no_bias_correction)

    def forgets_state(p, grad, state, lr, betas, eps):
        a(p, grad, {}, lr, betas, eps)
    assert "keep m, v and the step count" in feedback(checks.check_adam_step, forgets_state)

    def returns_copy(p, grad, state, lr, betas, eps):
        q = p.clone()
        a(q, grad, state, lr, betas, eps)
        return q
    assert "in place" in feedback(checks.check_adam_step, returns_copy)

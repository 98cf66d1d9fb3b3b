"""Lab 3's checks name the typical mistakes (tests/test_labs.py checks that the solutions pass)."""

import math
from dataclasses import replace

import pytest
import torch

from dlcourse.course.checks import methodology as checks
from dlcourse.topics.recipe import PATHOLOGIES, mystery_answers
from labtest import feedback, solution_namespace


@pytest.fixture(scope="module")
def solution():
    """The names the solution notebook defines for its exercises."""
    return solution_namespace("lab03_methodology")


def test_log_uniform_feedback(solution):
    def uniform(low, high, n, generator):
        if not 0 < low < high:
            raise ValueError("bad")
        return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)

    assert "sampled uniformly in the value" in feedback(checks.check_log_uniform, uniform)

    def global_rng(low, high, n, generator):
        return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * torch.rand(n, dtype=torch.float64))

    assert "changed the global random state" in feedback(checks.check_log_uniform, global_rng)

    def no_validation(low, high, n, generator):
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.exp(math.log(abs(low) or 1e-9) + (math.log(abs(high)) - math.log(abs(low) or 1e-9)) * u)

    assert "a log-uniform range needs 0 < low < high" in feedback(checks.check_log_uniform, no_validation)


def test_random_search_feedback(solution):
    log_uniform = solution["log_uniform"]

    def keeps_last(objective, space, n_trials, generator):
        for _ in range(n_trials):
            params = {k: log_uniform(lo, hi, 1, generator).item() for k, (lo, hi) in space.items()}
            score = objective(params)
        return params, score

    assert "not the highest score seen" in feedback(checks.check_random_search, log_uniform, keeps_last)

    def one_draw(objective, space, n_trials, generator):
        params = {k: log_uniform(lo, hi, 1, generator).item() for k, (lo, hi) in space.items()}
        scores = [objective(params) for _ in range(n_trials)]
        return params, max(scores)

    assert "draw a fresh value for every trial" in feedback(checks.check_random_search, log_uniform, one_draw)


def variant_range_test(**kw):
    def lr_range_test(model, X, y, **settings):
        return checks.reference_lr_range_test(model, X, y, **settings, **kw)
    return lr_range_test


@pytest.mark.parametrize("variant, message", [
    (dict(debias=False), "divide the running average by"),
    (dict(early_stop=False), "you ran all 150 steps"),
    (dict(geometric=False), "grow linearly"),
])
def test_range_test_feedback(solution, variant, message):
    assert message in feedback(checks.check_lr_range_test, variant_range_test(**variant), solution["suggest_lr"])


def test_suggest_lr_feedback(solution):
    def at_minimum(lrs, losses):
        return lrs[losses.index(min(losses))]

    assert "one tenth of the learning rate" in feedback(checks.check_lr_range_test, solution["lr_range_test"],
                                                        at_minimum)


def polyak_variant(kind):
    class Average:
        def __init__(self, model, decay):
            self.decay, self.n = decay, 0
            self.params = [p.detach().clone() for p in model.parameters()]

        @torch.no_grad()
        def update(self, model):
            self.n += 1
            for a, p in zip(self.params, model.parameters()):
                if kind == "swapped":
                    a.copy_(p) if self.n == 1 else a.mul_(1 - self.decay).add_(p, alpha=self.decay)
                elif kind == "no copy":
                    a.mul_(self.decay).add_(p, alpha=1 - self.decay)
                elif kind == "mean":
                    a.mul_((self.n - 1) / self.n).add_(p, alpha=1 / self.n)
    return Average


@pytest.mark.parametrize("kind, message", [
    ("swapped", "decay and 1 - decay are swapped"),
    ("no copy", "copy the parameters on the first update"),
    ("mean", "equal-weight running mean"),
])
def test_polyak_feedback(kind, message):
    assert message in feedback(checks.check_polyak_average, polyak_variant(kind))


def test_diagnosis_feedback():
    answers = mystery_answers(1)
    assert "no entry for F" in feedback(checks.check_diagnosis, {k: v for k, v in answers.items() if k != "F"})
    assert "is not one of" in feedback(checks.check_diagnosis, {**answers, "A": "overfit"})
    swapped = dict(answers)
    a, b = sorted(answers)[:2]
    swapped[a], swapped[b] = answers[b], answers[a]
    message = feedback(checks.check_diagnosis, swapped)
    assert message.startswith("2 of 6 wrong") and f"curve {a}" in message
    assert checks.EVIDENCE[answers[a]] in message


def test_fixed_schedule_feedback():
    broken = PATHOLOGIES["decay too early"]
    assert "changed lr" in feedback(checks.check_fixed_schedule, replace(broken, lr=0.1))
    assert "target is 95 %" in feedback(checks.check_fixed_schedule, replace(broken, decay_epochs=(2,)))
    assert "should be a RunConfig" in feedback(checks.check_fixed_schedule, {"decay_epochs": (12,)})

"""Lab 4's checks pass the references and name the typical mistakes (tests/test_labs.py runs the solution)."""

import math

import pytest
import torch
import torch.nn.functional as F

from dlcourse.course.checks import large_scale as checks
from labtest import feedback


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Exercise 1 -----------------------------------------------------------------------------

def dp_variant(**kw):
    def data_parallel_step(replicas, X, y, lr):
        checks.reference_data_parallel_step(replicas, X, y, lr, **kw)
    return data_parallel_step


def test_data_parallel_reference_passes(capsys):
    checks.check_data_parallel_step(dp_variant())
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("variant, message", [
    (dict(reduce="sum"), "4 times too large: you summed"),
    (dict(reduce="mean"), "weight replica k's gradient by n_k / N"),
    (dict(zero_grad=False), "step 2 adds step 1's gradient"),
])
def test_data_parallel_feedback(variant, message):
    assert message in feedback(checks.check_data_parallel_step, dp_variant(**variant))


def test_data_parallel_feedback_on_structure():
    def whole_batch_everywhere(replicas, X, y, lr):  # right numbers, but no sharding
        for model in replicas:
            checks.reference_data_parallel_step([model], X, y, lr)

    assert "replica 0 ran forward passes on [50] examples" in feedback(checks.check_data_parallel_step,
                                                                       whole_batch_everywhere)

    def steps_only_replica_0(replicas, X, y, lr):
        shards = list(zip(X.tensor_split(len(replicas)), y.tensor_split(len(replicas))))
        for model, (X_k, y_k) in zip(replicas, shards):
            model.zero_grad()
            F.cross_entropy(model(X_k), y_k).backward()
        with torch.no_grad():
            for params in zip(*(m.parameters() for m in replicas)):
                first = params[0]
                first -= lr * sum(len(y_k) / len(y) * p.grad for p, (_, y_k) in zip(params, shards))

    assert "replica 1's weights differ from replica 0's" in feedback(checks.check_data_parallel_step,
                                                                     steps_only_replica_0)


# Exercise 2 -----------------------------------------------------------------------------

def prune_variant(kind):
    def magnitude_prune(model, sparsity):
        if not 0 <= sparsity <= 1:
            raise ValueError("sparsity is a fraction")
        if kind == "per layer":
            return checks.reference_magnitude_prune(model, sparsity, per_layer=True)
        named = [(n, p) for n, p in model.named_parameters() if kind == "biases" or p.dim() > 1]
        scores = torch.cat([p.detach().abs().flatten() for _, p in named])
        k = round(sparsity * len(scores))
        threshold = scores.sort().values[k - 1] if k else -1.0
        masks = {}
        for name, p in named:
            keep = p.detach().abs() >= threshold if kind == ">=" else p.detach().abs() > threshold
            masks[name] = keep.to(p.dtype)
            if kind != "no apply":
                with torch.no_grad():
                    p.mul_(masks[name])
        return masks
    return magnitude_prune


def test_prune_reference_passes(capsys):
    checks.check_magnitude_prune(_reference_prune)
    assert "✔" in capsys.readouterr().out


def _reference_prune(model, sparsity):
    if not 0 <= sparsity <= 1:
        raise ValueError("sparsity is a fraction")
    return checks.reference_magnitude_prune(model, sparsity)


@pytest.mark.parametrize("kind, message", [
    ("per layer", "pruned to 90% on its own"),
    ("biases", "you pruned biases"),
    (">", "weights tie at |w| ="),
    (">=", "(off by one? the k-th smallest"),
    ("no apply", "apply each mask to its weight in place"),
])
def test_prune_feedback(kind, message):
    assert message in feedback(checks.check_magnitude_prune, prune_variant(kind))


def test_prune_feedback_on_bad_sparsity_and_rounding():
    assert "sparsity is a fraction between 0 and 1" in feedback(checks.check_magnitude_prune,
                                                               checks.reference_magnitude_prune)

    def truncates(model, sparsity):  # int() instead of round(): one weight too few at 0.9 * 750 = 675 ... or not
        if not 0 <= sparsity <= 1:
            raise ValueError("sparsity is a fraction")
        weights = [p for p in model.parameters() if p.dim() > 1]
        n = sum(w.numel() for w in weights)
        return checks.reference_magnitude_prune(model, (round(sparsity * n) - 1) / n if sparsity else 0.0)

    assert "should go (off by one?" in feedback(checks.check_magnitude_prune, truncates)


# Exercise 3 -----------------------------------------------------------------------------

def test_distillation_reference_passes(capsys):
    checks.check_distillation_loss(checks.reference_distillation_loss)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", checks.DISTILLATION_MISTAKES, ids=lambda m: next(iter(m.variant)))
def test_distillation_feedback(mistake):
    def variant(*args):
        return checks.reference_distillation_loss(*args, **mistake.variant)

    assert feedback(checks.check_distillation_loss, variant) == mistake.message


def test_distillation_feedback_on_log_targets_and_detached_losses():
    def log_target(s, t, y, T, alpha):
        soft = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean")
        return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)

    assert "your loss is NaN" in feedback(checks.check_distillation_loss, log_target)

    def as_number(*args):
        return torch.tensor(checks.reference_distillation_loss(*args).item())

    assert "carries gradients" in feedback(checks.check_distillation_loss, as_number)


# Exercise 4 -----------------------------------------------------------------------------

def cascade_variant(**kw):
    def cascade_cost_accuracy(*args):
        return checks.reference_cascade(*args, **kw)
    return cascade_cost_accuracy


def choose_variant(**kw):
    def choose_threshold(*args):
        return checks.reference_choose_threshold(*args, **kw)
    return choose_threshold


def test_cascade_reference_passes(capsys):
    checks.check_cascade(checks.reference_cascade, checks.reference_choose_threshold)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("variant, message", [
    (dict(cheap_on_all=False), "every input runs the cheap model first"),
    (dict(cost_rule="<=", acc_rule="<="), "you send inputs whose confidence equals the threshold"),
    (dict(acc_rule="<="), "your accuracy treats the inputs at the threshold as sent"),
    (dict(cost_rule="<="), "your cost treats the inputs at the threshold as sent"),
])
def test_cascade_feedback(variant, message):
    assert message in feedback(checks.check_cascade, cascade_variant(**variant), checks.reference_choose_threshold)


@pytest.mark.parametrize("variant, message", [
    (dict(with_inf=False), "include math.inf"),
    (dict(strict_budget=True), "cost <= budget"),
    (dict(pick="largest"), "you took the largest threshold within budget"),
    (dict(ties="costliest"), "return the cheapest"),
])
def test_choose_threshold_feedback(variant, message):
    assert message in feedback(checks.check_cascade, checks.reference_cascade, choose_variant(**variant))


def test_choose_threshold_must_reject_an_impossible_budget():
    def no_error(conf, cheap_ok, big_ok, c_cost, b_cost, budget):
        return checks.reference_choose_threshold(conf, cheap_ok, big_ok, c_cost, b_cost, max(budget, c_cost))

    assert "a budget below the cheap model's cost cannot be met" in feedback(checks.check_cascade,
                                                                              checks.reference_cascade, no_error)


def test_real_cascade_budgets_are_not_on_a_knife_edge():
    conf, _, _, c_cost, b_cost, budgets = checks._cascade_cases()[-1]
    for budget in budgets:
        sent = (budget - c_cost) / b_cost * len(conf)  # how many inputs the budget pays for
        assert abs(sent - round(sent)) > 0.01


# Exercise 5 -----------------------------------------------------------------------------

def fine_tune_variant(kind):
    def fine_tune_pruned(model, masks, X, y, *, num_epochs, lr, batch_size, generator):
        params = dict(model.named_parameters())
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        for _ in range(0 if kind == "no training" else num_epochs):
            for idx in torch.randperm(len(X), generator=generator).split(batch_size):
                optimizer.zero_grad()
                F.cross_entropy(model(X[idx]), y[idx]).backward()
                optimizer.step()
                if kind == "every step":
                    with torch.no_grad():
                        for name, mask in masks.items():
                            params[name].mul_(mask)
        if kind == "at the end":
            with torch.no_grad():
                for name, mask in masks.items():
                    params[name].mul_(mask)
    return fine_tune_pruned


def test_fine_tune_reference_passes(capsys):
    checks.check_fine_tune_pruned(fine_tune_variant("every step"))
    assert "keeps its zeros" in capsys.readouterr().out


@pytest.mark.parametrize("kind, message", [
    ("never", "pruned weights are non-zero after fine-tuning"),
    ("at the end", "not once at the end"),
    ("no training", "should reach 90 %"),
])
def test_fine_tune_feedback(kind, message):
    assert message in feedback(checks.check_fine_tune_pruned, fine_tune_variant(kind))


def test_every_exercise_is_listed_in_order():
    assert list(checks.CHECKS) == [f"Exercise {i}" for i in range(1, 6)]
    assert math.isclose(checks.reference_cascade(0.5, torch.tensor([0.4, 0.6]), torch.tensor([False, True]),
                                                 torch.tensor([True, False]), 1.0, 10.0)[1], 6.0)

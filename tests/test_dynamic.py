"""dlcourse.topics.dynamic: the cascade curve, the budget choice, the mixture of experts (section 4.5)."""

import math

import pytest
import torch

from dlcourse.models.mlp import mlp
from dlcourse.topics.dynamic import (CascadeCurve, MixtureOfExperts, cascade_curve, linear_macs, load_balancing_loss,
                                     routing_table, threshold_for_budget)


def _inputs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    confidence = torch.rand(n, generator=g)
    confidence[:20] = 0.5  # ties
    cheap_correct = torch.rand(n, generator=g) < confidence  # confident -> more often right
    big_correct = torch.rand(n, generator=g) < 0.95
    return confidence, cheap_correct, big_correct


def test_linear_macs_counts_in_times_out():
    assert linear_macs(mlp(64, (4,), 10)) == 64 * 4 + 4 * 10
    with pytest.raises(ValueError, match="nn.Module"):
        linear_macs("not a model")


def test_curve_endpoints_are_the_two_models():
    confidence, cheap_correct, big_correct = _inputs()
    curve = cascade_curve(confidence, cheap_correct, big_correct, 10.0, 300.0)
    assert curve.accuracy[0].item() == pytest.approx(cheap_correct.double().mean().item())
    assert curve.accuracy[-1].item() == pytest.approx(big_correct.double().mean().item())
    assert curve.cost[0].item() == 10.0 and curve.cost[-1].item() == 310.0
    assert curve.sent[0].item() == 0.0 and curve.sent[-1].item() == 1.0 and math.isinf(curve.threshold[-1].item())
    assert torch.all(curve.cost[1:] >= curve.cost[:-1])


def test_curve_matches_a_direct_evaluation_at_every_threshold():
    confidence, cheap_correct, big_correct = _inputs(seed=1)
    curve = cascade_curve(confidence, cheap_correct, big_correct, 1.0, 5.0)
    assert len(curve.threshold) == len(torch.unique(confidence)) + 1
    for threshold, accuracy, cost in zip(curve.threshold, curve.accuracy, curve.cost):
        send = confidence < threshold
        assert accuracy.item() == pytest.approx(torch.where(send, big_correct, cheap_correct).double().mean().item())
        assert cost.item() == pytest.approx(1.0 + 5.0 * send.double().mean().item())


def test_threshold_for_budget_is_the_best_point_within_budget():
    confidence, cheap_correct, big_correct = _inputs(seed=2)
    curve = cascade_curve(confidence, cheap_correct, big_correct, 1.0, 10.0)
    i = threshold_for_budget(curve, 4.0)
    within = curve.cost <= 4.0
    assert curve.cost[i] <= 4.0 and curve.accuracy[i] == curve.accuracy[within].max()
    assert threshold_for_budget(curve, 1.0) == 0  # only "send nothing" fits
    with pytest.raises(ValueError, match="budget"):
        threshold_for_budget(curve, 0.5)
    with pytest.raises(ValueError, match="CascadeCurve"):
        threshold_for_budget((1, 2), 4.0)
    assert isinstance(curve, CascadeCurve)


@pytest.mark.parametrize("bad, match", [
    (dict(confidence=torch.rand(5, 2)), "confidence must be a 1-d"),
    (dict(confidence=torch.arange(5)), "float tensor"),
    (dict(cheap_correct=torch.ones(5)), "bool tensor"),
    (dict(big_correct=torch.ones(4, dtype=torch.bool)), "4 entries"),
    (dict(cheap_cost=-1.0), "cheap_cost"),
    (dict(big_cost=math.inf), "big_cost"),
])
def test_cascade_curve_rejects_bad_inputs(bad, match):
    args = dict(confidence=torch.rand(5), cheap_correct=torch.ones(5, dtype=torch.bool),
                big_correct=torch.ones(5, dtype=torch.bool), cheap_cost=1.0, big_cost=2.0)
    with pytest.raises(ValueError, match=match):
        cascade_curve(**(args | bad))


def test_mixture_shapes_gate_and_routing():
    torch.manual_seed(0)
    model = MixtureOfExperts(64, 8, 10, 4)
    X = torch.randn(30, 64)
    g = model.gate_probs(X)
    assert g.shape == (30, 4) and torch.allclose(g.sum(1), torch.ones(30)) and bool((g >= 0).all())
    soft, hard = model(X), model(X, routing="hard")
    assert soft.shape == hard.shape == (30, 10)
    assert torch.allclose(soft.exp().sum(1), torch.ones(30), atol=1e-5)  # log-probabilities of a mixture
    choice = g.argmax(1)
    for i in range(5):  # hard routing = the chosen expert's log-softmax
        expected = torch.log_softmax(model.experts[choice[i]](X[i:i + 1]), dim=1)
        assert torch.allclose(hard[i:i + 1], expected, atol=1e-6)
    assert model.macs("hard") == 64 * 4 + 64 * 8 + 8 * 10 and model.macs("soft") == 64 * 4 + 4 * (64 * 8 + 8 * 10)
    table = routing_table(model, X, torch.arange(30) % 10)
    assert table.shape == (4, 10) and torch.allclose(table.sum(0), torch.ones(10))


def test_mixture_trains_and_rejects_bad_input():
    torch.manual_seed(0)
    model = MixtureOfExperts(5, 3, 2, 2)
    X, y = torch.randn(40, 5), torch.randint(0, 2, (40,))
    loss = torch.nn.functional.cross_entropy(model(X), y) + load_balancing_loss(model.gate_probs(X))
    loss.backward()
    assert model.gate.weight.grad is not None and all(e[0].weight.grad is not None for e in model.experts)
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        model(torch.randn(3, 4))
    with pytest.raises(ValueError, match="unknown routing"):
        model(X, routing="top2")
    with pytest.raises(ValueError, match="num_experts"):
        MixtureOfExperts(5, 3, 2, 0)
    with pytest.raises(ValueError, match="MixtureOfExperts"):
        routing_table(mlp(5, (3,), 2), X, y)


def test_load_balancing_loss_is_one_when_balanced_and_k_when_collapsed():
    balanced = torch.eye(4).repeat(5, 1)  # each expert gets a quarter, with probability 1
    assert load_balancing_loss(balanced).item() == pytest.approx(1.0)
    collapsed = torch.zeros(20, 4)
    collapsed[:, 0] = 1.0
    assert load_balancing_loss(collapsed).item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        load_balancing_loss(torch.ones(4))

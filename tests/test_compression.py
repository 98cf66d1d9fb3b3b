"""dlcourse.topics.compression: exact pruning, the distillation loss, int8 quantization (section 4.4)."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.course.checks.large_scale import reference_distillation_loss
from dlcourse.topics.compression import (cpu_capability, distillation_loss, model_bytes, prunable,
                                         prune_to_sparsity, quantize_int8, remove_pruning, sparsity)


def _net(seed=0, sizes=(20, 30, 5), scales=(1.0, 0.1)):
    """An MLP whose layers have weights of very different scales (the second one small)."""
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out, scale in zip(sizes[:-1], sizes[1:], scales):
        linear = nn.Linear(n_in, n_out)
        with torch.no_grad():
            linear.weight.mul_(scale)
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _zeros(model):
    return [int((module.weight == 0).sum()) for module, _ in prunable(model)]


@pytest.mark.parametrize("target", [0.0, 0.5, 0.8, 0.9, 0.95, 0.98])
def test_global_pruning_reaches_the_exact_target_and_prunes_the_smallest(target):
    model = _net()
    before = [module.weight.detach().abs().clone() for module, _ in prunable(model)]
    prune_to_sparsity(model, target)
    total = sum(w.numel() for w in before)
    assert sum(_zeros(model)) == round(target * total)
    assert sparsity(model) == round(target * total) / total
    masks = [module.weight_mask.bool() for module, _ in prunable(model)]
    pruned = torch.cat([w[~m] for w, m in zip(before, masks)])
    kept = torch.cat([w[m] for w, m in zip(before, masks)])
    if len(pruned) and len(kept):
        assert pruned.max() <= kept.min()


def test_global_pruning_takes_more_from_the_layer_of_small_weights():
    model = prune_to_sparsity(_net(), 0.5)
    first, second = [z / module.weight.numel() for z, (module, _) in zip(_zeros(model), prunable(model))]
    assert second > 0.9 and first < 0.5


@pytest.mark.parametrize("target", [0.3, 0.9])
def test_per_layer_pruning_reaches_the_target_in_every_layer(target):
    model = prune_to_sparsity(_net(), target, scope="layer")
    assert _zeros(model) == [round(target * module.weight.numel()) for module, _ in prunable(model)]


def test_iterative_pruning_keeps_earlier_masks_and_biases():
    model = _net()
    biases = [module.bias.detach().clone() for module, _ in prunable(model)]
    prune_to_sparsity(model, 0.5)
    first = [module.weight_mask.clone() for module, _ in prunable(model)]
    prune_to_sparsity(model, 0.9)
    for old, (module, _) in zip(first, prunable(model)):
        assert not (module.weight_mask.bool() & ~old.bool()).any(), "a pruned weight came back"
    assert sum(_zeros(model)) == round(0.9 * 20 * 30 + 0.9 * 30 * 5)
    assert all(torch.equal(b, module.bias) for b, (module, _) in zip(biases, prunable(model)))


def test_pruned_weights_stay_zero_while_training_and_after_remove_pruning():
    model = prune_to_sparsity(_net(), 0.8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    X, y = torch.randn(16, 20), torch.randint(5, (16,))
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    model(X)  # the forward pre-hook recomputes weight = weight_orig * weight_mask
    zeros = sum(_zeros(model))
    remove_pruning(model)
    assert sum(_zeros(model)) == zeros == round(0.8 * 750)
    assert not any(name.endswith(("_orig", "_mask")) for name in model.state_dict())
    prune_to_sparsity(model, 0.9)  # the zeros of a plain model count as pruned
    assert sum(_zeros(model)) == round(0.9 * 750)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, True, "0.5", None])
def test_bad_sparsity_raises_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"sparsity must be a fraction in \[0, 1\)"):
        prune_to_sparsity(_net(), bad)


def test_bad_scope_lower_target_and_unprunable_model_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown scope 'rows'.*'global', 'layer'"):
        prune_to_sparsity(_net(), 0.5, scope="rows")
    model = prune_to_sparsity(_net(), 0.9)
    masks = [module.weight_mask.clone() for module, _ in prunable(model)]
    with pytest.raises(ValueError, match="already 90.0% sparse.*cannot lower it to 50.0%"):
        prune_to_sparsity(model, 0.5)
    assert all(torch.equal(m, module.weight_mask) for m, (module, _) in zip(masks, prunable(model)))
    layered = prune_to_sparsity(_net(), 0.5, scope="layer")
    with pytest.raises(ValueError, match=r"layer 0 \(Linear\) is already 50.0% sparse"):
        prune_to_sparsity(layered, 0.3, scope="layer")
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv layer"):
        prune_to_sparsity(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(ValueError, match="expected an nn.Module"):
        sparsity(torch.zeros(3, 3))


def test_convolutions_are_pruned_too():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    prune_to_sparsity(model, 0.75)
    assert sum(_zeros(model)) == round(0.75 * (4 * 9 + 3 * 144))


def _hand_distillation(s, t, y, T, alpha):
    """alpha T^2 (1/N) sum_n sum_c p_t (log p_t - log p_s) + (1 - alpha) mean_n (-log softmax(s)_y)."""
    p_t, log_p_s = torch.softmax(t / T, dim=1), torch.log_softmax(s / T, dim=1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(dim=1).mean()
    ce = -torch.log_softmax(s, dim=1)[torch.arange(len(y)), y].mean()
    return alpha * T**2 * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (2.0, 0.0), (8.0, 1.0)])
def test_distillation_loss_matches_the_hand_formula_and_the_lab_reference(T, alpha):
    g = torch.Generator().manual_seed(0)
    s = 2 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    t = 3 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    y = torch.randint(10, (6,), generator=g)
    got = distillation_loss(s, t, y, T=T, alpha=alpha)
    torch.testing.assert_close(got, _hand_distillation(s, t, y, T, alpha))
    torch.testing.assert_close(got, reference_distillation_loss(s, t, y, T, alpha))


def test_the_t_squared_factor_keeps_the_soft_gradient_at_t_times_the_probability_gap():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(5, 10, generator=g, dtype=torch.float64, requires_grad=True)
    t = (3 * torch.randn(5, 10, generator=g, dtype=torch.float64)).requires_grad_()
    for T in (1.0, 3.0, 10.0):
        (grad,) = torch.autograd.grad(distillation_loss(s, t, None, T=T, alpha=1.0), s)
        # d/dz [T^2 KL(p_t || softmax(z / T))] = T (softmax(z / T) - p_t) / N
        want = T * (torch.softmax(s / T, dim=1) - torch.softmax(t / T, dim=1)) / len(s)
        torch.testing.assert_close(grad, want.detach())
    distillation_loss(s, t, None, alpha=1.0).backward()
    assert t.grad is None, "the teacher must get no gradient"


def test_distillation_loss_rejects_bad_input():
    s, t, y = torch.randn(4, 10), torch.randn(4, 10), torch.randint(10, (4,))
    for kwargs, message in [(dict(T=0.0), "temperature T must be a positive number"),
                            (dict(alpha=1.5), r"alpha must be a weight in \[0, 1\]")]:
        with pytest.raises(ValueError, match=message):
            distillation_loss(s, t, y, **kwargs)
    with pytest.raises(ValueError, match=r"must both be \(N, C\)"):
        distillation_loss(s, torch.randn(4, 9), y)
    with pytest.raises(ValueError, match=r"labels y must be \(N,\)"):
        distillation_loss(s, t, None, alpha=0.5)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def test_quantize_int8_shrinks_the_model_keeps_outputs_close_and_warns_nothing():
    model = _mlp()
    original = copy.deepcopy(model.state_dict())
    X = torch.randn(128, 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = quantize_int8(model)
        with torch.no_grad():
            out, want = q(X), model(X)
    assert not [w for w in caught if "deprecated" in str(w.message)], [str(w.message)[:80] for w in caught]
    assert model_bytes(model) / model_bytes(q) > 3.0  # 4-byte weights become 1-byte ones
    assert (out - want).abs().max() < 0.05 * want.abs().max()
    assert (out.argmax(1) == want.argmax(1)).float().mean() > 0.95
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in original.items()), "the original changed"
    assert isinstance(model[0], nn.Linear) and not isinstance(q[0], nn.Linear)


def test_quantize_int8_accepts_a_pruned_model_and_rejects_models_without_linear_layers():
    model = prune_to_sparsity(_mlp(), 0.9)
    with torch.no_grad():
        assert quantize_int8(model)(torch.randn(4, 64)).shape == (4, 10)
    assert hasattr(model[0], "weight_mask"), "quantize_int8 must not remove the original's masks"
    with pytest.raises(ValueError, match="no nn.Linear layer to quantize"):
        quantize_int8(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_model_bytes_and_cpu_capability():
    model = _mlp()
    assert model_bytes(model) == model_bytes(model.state_dict()) > 4 * sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="expected an nn.Module or a state dict"):
        model_bytes([1, 2])
    assert cpu_capability().startswith(torch.backends.cpu.get_cpu_capability())


def test_quantize_int8_can_keep_named_layers_in_float_and_rejects_bad_names():
    model = _mlp()
    q = quantize_int8(model, keep_float=["0"])
    assert isinstance(q[0], nn.Linear) and not isinstance(q[2], nn.Linear) and not isinstance(q[4], nn.Linear)
    assert model_bytes(quantize_int8(model)) < model_bytes(q) < model_bytes(model)
    for bad in ("0", ["7"], ["0", "2", "4"]):
        with pytest.raises(ValueError, match=r"keep_float must name some, not all.*\['0', '2', '4'\]"):
            quantize_int8(model, keep_float=bad)


def test_an_outlier_in_the_batch_coarsens_every_row_of_a_dynamically_quantized_layer():
    model = _mlp()
    q = quantize_int8(model)
    X = torch.randn(64, 64)
    spiked = X.clone()
    spiked[0, 0] = 200.0  # one huge input sets the scale for the whole batch
    with torch.no_grad():
        calm = (q(X)[1:] - model(X)[1:]).abs().max()
        noisy = (q(spiked)[1:] - model(spiked)[1:]).abs().max()  # the other 63 rows, unchanged inputs
    assert noisy > 10 * calm


def test_sparse_model_bytes_store_only_the_non_zeros():
    model = _mlp()
    dense = model_bytes(model)
    prune_to_sparsity(model, 0.9)
    assert model_bytes(model) > 1.9 * dense  # weight_orig and weight_mask
    csr = model_bytes(model, sparse=True)  # about 12 bytes per non-zero: float32 value, int64 index
    assert 0.25 * dense < csr < 0.4 * dense
    assert hasattr(model[0], "weight_mask"), "model_bytes must not change the model"

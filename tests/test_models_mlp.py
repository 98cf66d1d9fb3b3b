"""Unit tests for dlcourse.models.mlp (chapter 1): the one MLP builder family."""

import pytest
import torch
from torch import nn

from dlcourse.models import mlp as mlp_module
from dlcourse.models.mlp import ACTIVATIONS, SMALL_STD, DeepMLP, init_linear_, mlp


def test_one_activation_table_for_every_caller():
    from dlcourse.topics import gradflow, recipe

    assert gradflow.ACTIVATIONS is ACTIVATIONS and recipe.ACTIVATIONS is ACTIVATIONS
    assert gradflow.DeepMLP is DeepMLP and gradflow.SMALL_STD == SMALL_STD
    assert list(ACTIVATIONS) == ["sigmoid", "tanh", "relu"]  # the widget's dropdown order


def test_mlp_draws_the_same_weights_as_the_layers_built_by_hand():
    torch.manual_seed(0)
    model = mlp(64, (32, 16), 10, "tanh")
    torch.manual_seed(0)
    by_hand = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 10))
    assert [type(m) for m in model] == [type(m) for m in by_hand]
    for a, b in zip(model.parameters(), by_hand.parameters()):
        assert torch.equal(a, b)
    assert model(torch.zeros(3, 64)).shape == (3, 10)


def test_mlp_with_init_std_draws_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    model = mlp(256, (256,), 256, init_std=0.05)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert all(torch.count_nonzero(lin.bias) == 0 for lin in linears)
    assert float(linears[0].weight.detach().std()) == pytest.approx(0.05, rel=0.05)


def test_deep_mlp_draws_the_same_default_weights_before_reinitialising():
    """Creating every Linear first (default init from the global RNG) fixes the seeded weights."""
    torch.manual_seed(0)
    model = DeepMLP(4, width=8, activation="relu", init="he", in_features=5, num_classes=3)
    torch.manual_seed(0)
    linears = [nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)]
    for linear in linears:
        init_linear_(linear, "he")
    for a, b in zip(model.linears, linears):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


@pytest.mark.parametrize("init, variance", [("small", SMALL_STD ** 2), ("glorot", 2 / 512), ("he", 2 / 256)])
def test_init_linear_scales(init, variance):
    torch.manual_seed(0)
    linear = init_linear_(nn.Linear(256, 256), init)
    assert float(linear.weight.detach().var()) == pytest.approx(variance, rel=0.05)
    assert torch.count_nonzero(linear.bias) == 0


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="unknown activation 'gelu': expected one of sigmoid, tanh, relu"):
        mlp(4, (4,), 2, "gelu")
    with pytest.raises(ValueError, match="hidden must be a non-empty tuple of positive ints"):
        mlp(4, (), 2)
    with pytest.raises(ValueError, match="hidden must be"):
        mlp(4, (4, 0), 2)
    with pytest.raises(ValueError, match="unknown initialisation 'xavier'"):
        init_linear_(nn.Linear(2, 2), "xavier")
    with pytest.raises(ValueError, match="needs a positive std"):
        init_linear_(nn.Linear(2, 2), "normal")
    with pytest.raises(ValueError, match="depth must be an int >= 2"):
        DeepMLP(True)
    with pytest.raises(ValueError, match="width must be a positive int"):
        DeepMLP(3, width=0)
    with pytest.raises(ValueError, match="unknown initialisation 'normal'"):
        DeepMLP(3, init="normal")  # DeepMLP's named inits only
    assert mlp_module.choice("x", "a", ("a", "b")) == "a"


def test_matrix_form_draws_the_same_matrices_in_every_dtype_and_prepends_ones():
    from dlcourse.models.mlp import init_weights, with_bias

    Us32 = init_weights([4, 3, 2], torch.Generator().manual_seed(0))
    Us64 = init_weights([4, 3, 2], torch.Generator().manual_seed(0), torch.float64)
    assert [tuple(U.shape) for U in Us32] == [(3, 5), (2, 4)] and Us32[0].dtype == torch.float32
    assert all(torch.equal(a, b.float()) for a, b in zip(Us32, Us64))
    Z = torch.randn(6, 3)
    assert torch.equal(with_bias(Z)[:, 0], torch.ones(6)) and torch.equal(with_bias(Z)[:, 1:], Z)
    with pytest.raises(ValueError, match="at least two positive ints"):
        init_weights([4], torch.Generator())
    with pytest.raises(TypeError, match="torch.Generator"):
        init_weights([4, 2], 0)
    with pytest.raises(ValueError, match=r"\(t, n\) matrix"):
        with_bias(torch.ones(3))

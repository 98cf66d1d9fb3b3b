"""Unit tests for dlcourse.topics.gradflow (chapter 1, section 3)."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from dlcourse import widgets  # noqa: E402
from dlcourse.topics import gradflow  # noqa: E402
from dlcourse.topics.gradflow import (  # noqa: E402
    DeepMLP, GradientFlow, describe, gradient_flow, gradient_flow_widget, plot_gradient_flow,
    plot_activation_grid, plot_gradient_flow_grid,
)


@pytest.fixture(scope="module")
def data():
    """A small separable 3-class problem: X (120, 8), y (120,)."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(120) % 3
    centres = torch.randn(3, 8, generator=g) * 2
    X = centres[y] + torch.randn(120, 8, generator=g)
    return X, y


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# DeepMLP ---------------------------------------------------------------------------------

def test_deep_mlp_shapes_and_activations():
    model = DeepMLP(5, width=16, activation="tanh", init="glorot", in_features=8, num_classes=3)
    assert len(model.linears) == 5
    acts = []
    out = model(torch.randn(4, 8), acts)
    assert out.shape == (4, 3)
    assert len(acts) == 4 and all(a.shape == (4, 16) for a in acts)


@pytest.mark.parametrize("residual,norm", [(True, False), (False, True), (True, True)])
def test_deep_mlp_residual_and_norm_forward(residual, norm):
    model = DeepMLP(4, width=8, activation="relu", init="he", in_features=8, num_classes=2,
                    residual=residual, norm=norm)
    assert model(torch.randn(6, 8)).shape == (6, 2)
    assert all(isinstance(m, nn.BatchNorm1d) == norm for m in model.norms)


def test_residual_adds_the_input_back():
    torch.manual_seed(0)
    plain = DeepMLP(3, width=8, activation="sigmoid", init="small", in_features=8, num_classes=2)
    torch.manual_seed(0)
    res = DeepMLP(3, width=8, activation="sigmoid", init="small", in_features=8, num_classes=2,
                  residual=True)
    x = torch.randn(5, 8)
    a_plain, a_res = [], []
    plain(x, a_plain)
    res(x, a_res)
    torch.testing.assert_close(a_res[0], x + a_plain[0])


@pytest.mark.parametrize("init,expected_var", [
    ("small", gradflow.SMALL_STD ** 2),
    ("glorot", 2 / (256 + 256)),
    ("he", 2 / 256),
])
def test_initialisation_variances(init, expected_var):
    torch.manual_seed(0)
    model = DeepMLP(3, width=256, activation="relu", init=init, in_features=256, num_classes=256)
    for linear in model.linears:
        assert linear.weight.var().item() == pytest.approx(expected_var, rel=0.05)
        assert torch.all(linear.bias == 0)


@pytest.mark.parametrize("depth", [1, 0, -3, 2.0, "3", None])
def test_deep_mlp_rejects_bad_depth(depth):
    with pytest.raises(ValueError, match="depth"):
        DeepMLP(depth)


@pytest.mark.parametrize("width", [0, -1, 8.5])
def test_deep_mlp_rejects_bad_width(width):
    with pytest.raises(ValueError, match="width"):
        DeepMLP(3, width)


def test_deep_mlp_rejects_unknown_activation_and_init():
    with pytest.raises(ValueError, match="unknown activation 'gelu'.*sigmoid, tanh, relu"):
        DeepMLP(3, activation="gelu")
    with pytest.raises(ValueError, match="unknown initialisation 'xavier'.*small, glorot, he"):
        DeepMLP(3, init="xavier")


# gradient_flow ---------------------------------------------------------------------------

def test_gradient_flow_result_shapes(data):
    X, y = data
    flow = gradient_flow(X, y, depth=6, width=16, steps=7, batch_size=16)
    assert isinstance(flow, GradientFlow)
    assert flow.grad_norms.shape == (6,) and flow.grad_norms.dtype == torch.float64
    assert len(flow.activations) == 5 and flow.activations[0].shape == (120, 16)
    assert len(flow.losses) == 7
    assert flow.config["num_classes"] == 3
    assert flow.ratio == pytest.approx((flow.grad_norms[-1] / flow.grad_norms[0]).item())


def test_gradient_flow_matches_a_hand_built_network(data):
    """The package's norms equal autograd's on a plain nn.Linear stack with the same weights."""
    X, y = data
    depth, width = 5, 16
    flow = gradient_flow(X, y, depth=depth, width=width, activation="sigmoid", init="small", steps=0)
    sizes = [X.shape[1]] + [width] * (depth - 1) + [3]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        for linear in linears:
            nn.init.normal_(linear.weight, std=gradflow.SMALL_STD)
            nn.init.zeros_(linear.bias)
    linears = [linear.double() for linear in linears]
    z = X.double()
    for linear in linears[:-1]:
        z = torch.sigmoid(linear(z))
    nn.functional.cross_entropy(linears[-1](z), y).backward()
    expected = torch.stack([linear.weight.grad.norm() for linear in linears])
    torch.testing.assert_close(flow.grad_norms, expected, rtol=1e-10, atol=0)


def test_gradient_flow_is_deterministic_and_leaves_the_global_rng_alone(data):
    X, y = data
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = gradient_flow(X, y, depth=4, width=8, steps=5, seed=3)
    after = torch.rand(3)
    b = gradient_flow(X, y, depth=4, width=8, steps=5, seed=3)
    torch.testing.assert_close(before, after)
    torch.testing.assert_close(a.grad_norms, b.grad_norms)
    assert a.losses == b.losses
    c = gradient_flow(X, y, depth=4, width=8, steps=5, seed=4)
    assert not torch.equal(a.grad_norms, c.grad_norms)


def test_gradient_flow_restores_the_thread_count(data):
    X, y = data
    threads = torch.get_num_threads()
    gradient_flow(X, y, depth=3, width=8, steps=1)
    assert torch.get_num_threads() == threads


def test_sigmoid_small_vanishes_and_relu_he_does_not(data):
    X, y = data
    sigmoid = gradient_flow(X, y, depth=12, width=32, activation="sigmoid", init="small", steps=0)
    relu = gradient_flow(X, y, depth=12, width=32, activation="relu", init="he", steps=0)
    assert sigmoid.ratio > 1e10
    assert (relu.grad_norms.max() / relu.grad_norms.min()).item() < 20


def test_gradient_flow_training_lowers_the_loss(data):
    X, y = data
    flow = gradient_flow(X, y, depth=3, width=16, activation="tanh", init="glorot", steps=60,
                         lr=0.1, batch_size=32)
    assert sum(flow.losses[-10:]) / 10 < flow.losses[0] - 0.3


@pytest.mark.parametrize("X_shape,y_shape", [((10,), (10,)), ((10, 4), (10, 1)), ((10, 4), (9,)),
                                             ((2, 5, 4), (2,))])
def test_gradient_flow_rejects_wrong_shapes(X_shape, y_shape):
    with pytest.raises(ValueError, match="expected X of shape"):
        gradient_flow(torch.randn(X_shape), torch.zeros(y_shape, dtype=torch.long))


def test_gradient_flow_rejects_bad_labels_and_inputs(data):
    X, y = data
    with pytest.raises(ValueError, match="integer class labels"):
        gradient_flow(X, y.float())
    with pytest.raises(ValueError, match=">= 0"):
        gradient_flow(X, y - 1)
    with pytest.raises(ValueError, match="empty"):
        gradient_flow(X[:0], y[:0])
    with pytest.raises(TypeError, match="tensors"):
        gradient_flow(X.numpy(), y)


@pytest.mark.parametrize("kwargs,match", [
    (dict(steps=-1), "steps"), (dict(steps=2.5), "steps"), (dict(batch_size=0), "batch_size"),
    (dict(lr=0.0), "lr"), (dict(lr=-1.0), "lr"), (dict(depth=1), "depth"), (dict(width=0), "width"),
    (dict(activation="softplus"), "unknown activation"), (dict(init="orthogonal"), "unknown initialisation"),
])
def test_gradient_flow_rejects_bad_settings(data, kwargs, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        gradient_flow(X, y, **kwargs)


# Plots -----------------------------------------------------------------------------------

def test_describe():
    config = dict(depth=20, activation="relu", init="he", residual=True, norm=True)
    assert describe(config) == "20 layers, ReLU, He init + residual + BatchNorm"
    assert describe(dict(depth=3, activation="sigmoid", init="small")) == "3 layers, sigmoid, small normal init"


def test_plot_gradient_flow(data):
    X, y = data
    fig = plot_gradient_flow(gradient_flow(X, y, depth=6, width=8, steps=5))
    assert isinstance(fig, Figure)
    ax_g, ax_h, ax_l = fig.axes
    assert ax_g.get_yscale() == "log" and len(ax_g.patches) == 6
    assert ax_h.get_legend() is not None
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    assert "last/first" in fig.get_suptitle()


def test_plot_gradient_flow_survives_a_blow_up_and_zero_steps(data):
    X, y = data
    flow = gradient_flow(X, y, depth=3, width=8, steps=3)
    flow.losses = [2.0, 1e6, float("nan")]
    assert plot_gradient_flow(flow).axes[2].get_yscale() == "log"
    flow.losses = []
    assert isinstance(plot_gradient_flow(flow), Figure)


def test_a_diverged_run_is_named_in_the_figure(data):
    X, y = data
    flow = gradient_flow(X, y, depth=3, width=8, steps=3)
    assert flow.diverged_at is None and "diverged" not in plot_gradient_flow(flow).get_suptitle()
    for losses, step, kind in [([2.3, 9.0, float("nan"), float("nan")], 3, "NaN"), ([2.3, float("inf")], 2, "infinite")]:
        flow.losses = losses
        fig = plot_gradient_flow(flow)
        assert flow.diverged_at == step and fig.get_suptitle().endswith(f"training diverged at step {step}")
        texts = [t.get_text() for t in fig.axes[2].texts]
        assert texts == [f"diverged at step {step}\n(loss is {kind})"]
        plt.close(fig)


def test_plot_gradient_flow_grid(data):
    X, y = data
    flows = [gradient_flow(X, y, depth=d, width=8, steps=0) for d in (2, 3, 4, 5)]
    fig = plot_gradient_flow_grid(flows, ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4
    assert all(ax.get_yscale() == "log" for ax in visible)
    assert [len(ax.patches) for ax in visible] == [2, 3, 4, 5]


def test_plot_gradient_flow_grid_rejects_empty_input():
    with pytest.raises(ValueError, match="at least one"):
        plot_gradient_flow_grid([])


def test_plot_activation_grid_draws_one_panel_per_network(data):
    X, y = data
    flows = [gradient_flow(X, y, depth=5, width=8, steps=0, activation=a, init=i)
             for a, i in (("sigmoid", "small"), ("tanh", "small"), ("relu", "he"))]
    fig = plot_activation_grid(flows, ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    assert [ax.get_title() for ax in visible] == [describe(f.config) for f in flows]
    assert visible[0].get_ylabel() == "fraction of values" and "activation" in visible[0].get_xlabel()
    layers = [t.get_text() for t in visible[0].get_legend().get_texts()]
    assert layers == ["layer 1", "layer 3", "layer 4"]  # 4 hidden layers: first, middle, last
    assert visible[1].get_legend() is None  # the same layers: one legend serves every panel
    assert visible[0].get_xlim()[0] <= 0.0 and visible[0].get_xlim()[1] >= 1.0  # the sigmoid's whole range
    assert visible[1].get_xlim()[0] <= -1.0 and visible[1].get_xlim()[1] >= 1.0  # tanh's
    # a layer that has collapsed (tanh, small weights, last layer) puts all its values in one bin
    heights = [p.get_path().vertices[:, 1].max() for p in visible[1].patches]
    assert max(heights) == pytest.approx(1.0)


def test_plot_activation_grid_rejects_bad_input(data):
    X, y = data
    flow = gradient_flow(X, y, depth=3, width=8, steps=0)
    with pytest.raises(ValueError, match="non-empty list"):
        plot_activation_grid([])
    with pytest.raises(ValueError, match="non-empty list"):
        plot_activation_grid(flow)  # one result, not a list
    with pytest.raises(TypeError, match="expected GradientFlow"):
        plot_activation_grid([flow, "tanh"])
    empty = GradientFlow(dict(flow.config, depth=1), flow.grad_norms[:1], [], [])
    with pytest.raises(ValueError, match="no hidden layer"):
        plot_activation_grid([empty])
    with pytest.raises(ValueError, match="bins must be an int >= 2"):
        plot_activation_grid([flow], bins=1)


# Widget ----------------------------------------------------------------------------------

def test_gradient_flow_widget_shows_the_default_and_redraws(data, monkeypatch):
    X, y = data
    shown = []
    monkeypatch.setattr(widgets, "display", lambda obj, raw=False: shown.append(obj))
    widget = gradient_flow_widget(X, y, depth=4)
    assert "4 layers, sigmoid, small normal init" in widget.figure.get_suptitle()
    assert "Interactive controls" in shown[0]["text/html"]  # what the static site shows instead of the controls
    c = widget.controls
    assert [c[k].value for k in ("depth", "activation", "init", "residual", "norm")] == [4, "sigmoid", "small", False, False]
    c["activation"].value = "relu"
    assert widget.draws == 2 and "ReLU" in widget.figure.get_suptitle()


@pytest.mark.parametrize("kwargs,match", [
    (dict(activation="gelu"), "unknown activation"), (dict(init="xavier"), "unknown initialisation"),
    (dict(depth=1), "depth"), (dict(depth=31), "depth"), (dict(depth=10.0), "depth"),
])
def test_gradient_flow_widget_rejects_bad_defaults(data, kwargs, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        gradient_flow_widget(X, y, **kwargs)


def test_chance_line_uses_the_number_of_classes(data):
    X, y = data
    fig = plot_gradient_flow(gradient_flow(X, y, depth=3, width=8, steps=2))
    lines = fig.axes[2].get_lines()
    assert any(line.get_ydata()[0] == pytest.approx(math.log(3)) for line in lines)

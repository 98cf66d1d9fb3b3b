"""Gradient flow through deep MLPs and its widget (introduced in chapter 1, section 3).

After Glorot & Bengio (2010): per-layer gradient norms at initialisation, the
distribution of each layer's activations, and the first steps of training, for a
choice of depth, activation, initialisation, residual connections and normalisation.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator
from torch import nn

from ..models.mlp import ACTIVATIONS, INITS, SMALL_STD, DeepMLP, choice  # noqa: F401 (re-exported)
from ..plot import PALETTE
from ..train import RandomBatches, accuracy, fit

LABELS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU",  # how figures and controls name them
          "small": "small normal", "glorot": "Glorot", "he": "He"}
GRAD_LABEL = r"$\Vert\partial J/\partial \mathbf{U}^l\Vert$ (log scale)"


@dataclass
class GradientFlow:
    """What ``gradient_flow`` measured."""

    config: dict
    grad_norms: torch.Tensor  # (L,) Frobenius norm of dJ/dW for layers 1..L
    activations: list  # L-1 tensors (N, width), hidden activations at initialisation
    losses: list  # training loss over the first steps

    @property
    def diverged_at(self) -> int | None:
        """The first SGD step (from 1) whose loss is NaN or infinite, or None if training stayed finite."""
        return next((step for step, v in enumerate(self.losses, start=1) if not math.isfinite(v)), None)

    @property
    def ratio(self) -> float:
        """Last layer's gradient norm over the first layer's (>> 1 means vanishing)."""
        return (self.grad_norms[-1] / self.grad_norms[0]).item()


@contextmanager
def _one_thread():
    """Run tiny (width-64) models on one CPU thread: more threads only add overhead, a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def gradient_flow(X: torch.Tensor, y: torch.Tensor, *, depth: int = 10, activation: str = "relu",
                  init: str = "he", residual: bool = False, norm: bool = False, width: int = 64,
                  steps: int = 40, lr: float = 0.05, batch_size: int = 128,
                  seed: int = 0) -> GradientFlow:
    """Measure gradient flow in a fresh ``DeepMLP`` on classification data ``X`` (N, D), ``y`` (N,).

    The weights are drawn as ``torch.manual_seed(seed)`` followed by ``DeepMLP(...)`` would
    draw them, inside ``torch.random.fork_rng`` so the caller's random state is untouched.
    Everything runs on the CPU in float64.
    """
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"X and y must be tensors, got {type(X).__name__} and {type(y).__name__}")
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"expected X of shape (N, D) and y of shape (N,), got {tuple(X.shape)} and {tuple(y.shape)}")
    if len(X) == 0:
        raise ValueError("X and y are empty: gradient_flow needs at least one example")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels 0..C-1, got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"class labels must be >= 0, got {int(y.min())}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    num_classes = int(y.max()) + 1
    config = dict(depth=depth, activation=activation, init=init, residual=residual, norm=norm,
                  width=width, num_classes=num_classes)
    # float64: in a deep sigmoid net the first layers' gradients underflow float32 (~1e-38)
    X, y = X.detach().to("cpu", torch.float64), y.detach().to("cpu", torch.long)
    with _one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DeepMLP(depth, width, activation, init=init, in_features=X.shape[1],
                        num_classes=num_classes, residual=residual, norm=norm).to(torch.float64)
        # Gradients at initialisation, on the whole set (one large batch).
        acts: list = []
        loss = nn.functional.cross_entropy(model(X, acts), y)
        model.zero_grad()
        loss.backward()
        grad_norms = torch.stack([lin.weight.grad.norm() for lin in model.linears]).detach()
        # The first steps of minibatch SGD from that same initialisation (batches drawn with replacement).
        losses = []
        if steps > 0:
            batches = RandomBatches(X, y, batch_size=batch_size, num_batches=steps,
                                    generator=torch.Generator().manual_seed(seed))
            history = fit(model, batches, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                          progress=False)
            losses = history["step_loss"]
    return GradientFlow(config, grad_norms, acts, losses)


def describe(config: dict) -> str:
    """A one-line name for a configuration, e.g. ``20 layers, ReLU, He init + residual``."""
    extras = [name for name in ("residual", "norm") if config.get(name)]
    extra = " + " + " + ".join("BatchNorm" if e == "norm" else e for e in extras) if extras else ""
    activation = LABELS.get(config["activation"], config["activation"])
    init = LABELS.get(config["init"], config["init"])
    return f"{config['depth']} layers, {activation}, {init} init{extra}"


def plot_grad_norms(result: GradientFlow, ax, *, title: str | None = None) -> None:
    """Bar chart of per-layer gradient norms on a log scale."""
    L = len(result.grad_norms)
    norms = result.grad_norms.clamp_min(1e-300).numpy()
    ax.bar(range(1, L + 1), norms, color=PALETTE[0])
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="layer l", ylabel=GRAD_LABEL, title=title or "gradient norm per layer")


def _layer_picks(hidden: int) -> list[int]:
    """The hidden layers (0-based) a histogram shows: first, middle, last, and the quartiles when deep."""
    return sorted({0, hidden // 2, hidden - 1} | ({hidden // 4, 3 * hidden // 4} if hidden > 4 else set()))


def plot_gradient_flow(result: GradientFlow):
    """Three panels: gradient norm per layer, activation histograms, loss over the first steps."""
    fig, (ax_g, ax_h, ax_l) = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    plot_grad_norms(result, ax_g)
    for colour, i in zip(PALETTE, _layer_picks(len(result.activations))):
        values = result.activations[i].flatten().numpy()
        ax_h.hist(values, bins=50, histtype="step", color=colour, label=f"layer {i + 1}", density=True)
    ax_h.set(xlabel=r"activation value $z^l_j$", ylabel="density", title="hidden activations at init")
    ax_h.legend(fontsize=8)
    ax_l.plot(range(1, len(result.losses) + 1), result.losses, color=PALETTE[3], label="training loss")
    chance = math.log(result.config.get("num_classes", 10))
    ax_l.axhline(chance, color="gray", ls="--", lw=1, label=f"log {result.config.get('num_classes', 10)} (chance)")
    finite = [v for v in result.losses if math.isfinite(v)]
    if finite and max(finite) > 10 * chance:  # a blow-up: a log axis keeps the chance line readable
        ax_l.set_yscale("log")
    else:  # from 0, so that a plateau looks flat rather than like noise
        ax_l.set_ylim(0, max([1.2 * chance] + finite) * 1.05)
    ax_l.set(xlabel="SGD step", ylabel="cross-entropy (nats)", title="first training steps")
    step = result.diverged_at
    if step is not None:  # name it: a line that just stops reads like a plotting fault
        kind = "NaN" if math.isnan(result.losses[step - 1]) else "infinite"
        ax_l.axvline(step, color=PALETTE[1], ls=":", lw=1.5, label=f"diverged at step {step}")
        ax_l.text(0.97, 0.5, f"diverged at step {step}\n(loss is {kind})", transform=ax_l.transAxes, ha="right",
                  va="center", fontsize=9, color=PALETTE[1], bbox=dict(facecolor="white", edgecolor=PALETTE[1]))
    ax_l.legend(fontsize=8)
    outcome = f"; training diverged at step {step}" if step is not None else ""
    fig.suptitle(f"{describe(result.config)}: last/first gradient ratio {result.ratio:.3g}{outcome}")
    return fig


def plot_gradient_flow_grid(results: list[GradientFlow], ncols: int = 3):
    """Small multiples: the per-layer gradient-norm bars of several configurations, shared y-axis."""
    from ..plot import subplots_grid

    if not results:
        raise ValueError("plot_gradient_flow_grid needs at least one GradientFlow result")
    fig, axes = subplots_grid(len(results), ncols, panel_size=(3.6, 2.6), sharey=True, layout="constrained")
    for ax, result in zip(axes, results):
        plot_grad_norms(result, ax, title=f"{describe(result.config)}\nlast/first {result.ratio:.2g}")
        ax.title.set_fontsize(9)
        if not ax.get_subplotspec().is_first_col():
            ax.set_ylabel("")
    fig.suptitle("Gradient norm per layer at initialisation (log scale, shared axis)")
    return fig


RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, 0.0)}  # each activation's own x-range


def plot_activation_grid(results: list[GradientFlow], ncols: int = 3, bins: int = 41):
    """Small multiples: histograms of a few hidden layers' activations at initialisation, one panel per result.

    A panel's bins span the activation's range (sigmoid 0..1, tanh -1..1, ReLU from 0), widened to the
    values if they leave it (the outer 0.5 % of a long tail lands in the end bins), so that a layer
    whose values collapse onto one point draws one tall bar (an odd ``bins`` puts 0 and 0.5 mid-bin,
    not on an edge). The y-axis is the fraction of a layer's
    values (examples x units) in each bin.
    """
    from ..plot import subplots_grid

    if isinstance(results, GradientFlow) or not results:
        raise ValueError("plot_activation_grid needs a non-empty list of GradientFlow results")
    for result in results:
        if not isinstance(result, GradientFlow):
            raise TypeError(f"expected GradientFlow results (from gradient_flow), got {type(result).__name__}")
        if not result.activations:
            raise ValueError(f"{describe(result.config)} has no hidden layer to draw (depth must be >= 2)")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got {bins!r}")
    fig, axes = subplots_grid(len(results), ncols, panel_size=(3.6, 2.6), layout="constrained")
    shown = None  # the layers of the last legend drawn: one legend per change of layers
    for ax, result in zip(axes, results):
        picks = _layer_picks(len(result.activations))
        values = {i: result.activations[i].flatten().double() for i in picks}
        values = {i: v[torch.isfinite(v)] for i, v in values.items()}
        low, high = RANGES.get(result.config["activation"], (0.0, 0.0))
        every = torch.cat(list(values.values()))
        if len(every):  # widen to the values; a long tail is cut at 0.5 % and 99.5 % into the end bins
            low = min(low, every.quantile(0.005).item())
            high = max(high, every.quantile(0.995).item())
        high = high if high > low else low + 1.0
        edges = torch.linspace(low, high, bins + 1).numpy()
        for colour, i in zip(PALETTE, picks):
            v = values[i].clamp(low, high).numpy()
            ax.hist(v, bins=edges, weights=[1 / max(len(v), 1)] * len(v), histtype="step", color=colour,
                    label=f"layer {i + 1}")
        ax.set(title=describe(result.config), xlabel=r"activation value $z^l_j$",
               ylabel="fraction of values" if ax.get_subplotspec().is_first_col() else "")
        ax.title.set_fontsize(9)
        if picks != shown:
            ax.legend(fontsize=7)
            shown = picks
    fig.suptitle("Hidden activations at initialisation: a few layers per network")
    return fig


def gradient_flow_widget(X: torch.Tensor, y: torch.Tensor, *, depth: int = 20,
                         activation: str = "sigmoid", init: str = "small",
                         residual: bool = False, norm: bool = False):
    """The gradient-flow widget (an ``InteractiveFigure``): the default figure, and controls that redraw it."""
    import ipywidgets as w

    choice("activation", activation, ACTIVATIONS)
    choice("initialisation", init, INITS)
    if not isinstance(depth, int) or not 2 <= depth <= 30:
        raise ValueError(f"depth must be an int from 2 to 30 (the slider's range), got {depth!r}")

    from ..widgets import interactive_figure

    def draw(depth, activation, init, residual, norm):
        return plot_gradient_flow(gradient_flow(X, y, depth=depth, activation=activation, init=init,
                                                residual=residual, norm=norm))

    controls = {
        "depth": w.IntSlider(value=depth, min=2, max=30, description="depth", continuous_update=False),
        "activation": w.Dropdown(options=[(LABELS[a], a) for a in ACTIVATIONS], value=activation,
                                 description="activation"),
        "init": w.Dropdown(options=[(LABELS[i], i) for i in INITS], value=init, description="init"),
        "residual": w.Checkbox(value=residual, description="residual"),
        "norm": w.Checkbox(value=norm, description="BatchNorm"),
    }
    return interactive_figure(draw, controls)


# Lab 1's fixed training recipe: plain minibatch SGD, the same for every configuration.
RECIPE = dict(lr=0.1, steps=300, batch_size=64)


def train_recipe(config: dict, X, y, X_test, y_test, seed: int = 0) -> tuple[float, float]:
    """Train a DeepMLP built from ``config`` with the fixed SGD recipe; return (test accuracy, grad ratio)."""
    torch.manual_seed(seed)
    model = DeepMLP(config["depth"], config["width"], config["activation"], init=config["init"],
                    residual=config["residual"], norm=config["norm"])
    loss = nn.functional.cross_entropy(model(X), y)
    loss.backward()
    grads = [lin.weight.grad.norm().item() for lin in model.linears]
    ratio = grads[-1] / max(grads[0], 1e-300)
    batches = RandomBatches(X, y, batch_size=RECIPE["batch_size"], num_batches=RECIPE["steps"],
                            generator=torch.Generator().manual_seed(seed))
    fit(model, batches, optimizer=torch.optim.SGD(model.parameters(), lr=RECIPE["lr"]), device=X.device,
        progress=False)
    model.eval()
    with torch.no_grad():
        acc = accuracy(model(X_test), y_test)
    return acc, ratio

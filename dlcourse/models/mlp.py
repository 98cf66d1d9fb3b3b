"""Multilayer perceptrons: the one activation table, initialisations and builders (chapter 1).

``init_weights`` and ``with_bias`` are the matrix form of chapter 1.1 (one matrix U^l per layer,
bias in column 0), which 1.2 and lab 1 reuse. ``mlp`` builds an ``nn.Sequential`` of ``Linear`` and activation layers (the recipe's MLP of
chapter 3); ``DeepMLP`` is the L-layer network of chapter 1.3 that can also add residual
connections and BatchNorm and report its hidden activations. Both create their ``Linear``
layers in order, input to output (each drawing PyTorch's default initialisation from the
global random stream), and then re-initialise them with ``init_linear_`` if asked.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
INITS = ("small", "glorot", "he")  # DeepMLP's named initialisations
SMALL_STD = 0.01  # "small random numbers": N(0, 0.01^2), the classic recipe that fails when deep


def init_weights(sizes: Sequence[int], generator: torch.Generator,
                 dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """One matrix U^l of shape (n_l, n_{l-1} + 1) per layer, column 0 the bias, entries N(0, 1/n_{l-1}).

    Drawn in float64 and then cast, so one seed gives the same matrices in every ``dtype``.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"sizes must list at least two positive ints (n_0, ..., n_L), got {sizes!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return [(torch.randn(n_out, n_in + 1, generator=generator, dtype=torch.float64) / n_in**0.5).to(dtype)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def with_bias(Z: torch.Tensor) -> torch.Tensor:
    """(t, n) -> (t, n + 1): the constant-1 column of eq. 4.3 prepended, one per sample."""
    if not isinstance(Z, torch.Tensor) or Z.ndim != 2:
        raise ValueError(f"with_bias expects a (t, n) matrix, got {getattr(Z, 'shape', type(Z).__name__)}")
    return torch.cat([torch.ones(len(Z), 1, dtype=Z.dtype, device=Z.device), Z], dim=1)


def choice(name: str, value: str, options) -> str:
    """``value`` if it is one of ``options``, else a ValueError naming them."""
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}: expected one of {', '.join(options)}")
    return value


@torch.no_grad()
def init_linear_(linear: nn.Linear, init: str, std: float | None = None) -> nn.Linear:
    """Re-initialise ``linear`` in place; biases become zero.

    ``init``: ``"small"`` (N(0, SMALL_STD^2)), ``"normal"`` (N(0, std^2)), ``"glorot"``
    (Glorot & Bengio 2010) or ``"he"`` (He et al. 2015, variance 2 / fan_in, for ReLU).
    """
    if init == "small":
        nn.init.normal_(linear.weight, std=SMALL_STD)
    elif init == "normal":
        if std is None or not std > 0:
            raise ValueError(f"init='normal' needs a positive std, got {std!r}")
        nn.init.normal_(linear.weight, std=std)
    elif init == "glorot":
        nn.init.xavier_normal_(linear.weight)
    elif init == "he":
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
    else:
        choice("initialisation", init, (*INITS, "normal"))
    nn.init.zeros_(linear.bias)
    return linear


def mlp(in_features: int, hidden: Sequence[int], num_classes: int, activation: str = "relu", *,
        init_std: float | None = None) -> nn.Sequential:
    """``Linear(in, h1), act, ..., Linear(h_last, num_classes)`` as an ``nn.Sequential``.

    ``init_std=None`` keeps PyTorch's default initialisation; a number draws every weight
    from N(0, init_std^2) and zeroes the biases. Weights come from the global torch RNG.
    """
    choice("activation", activation, ACTIVATIONS)
    if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty tuple of positive ints, got {hidden!r}")
    layers, n = [], in_features
    for width in hidden:
        layers += [nn.Linear(n, width), ACTIVATIONS[activation]()]
        n = width
    model = nn.Sequential(*layers, nn.Linear(n, num_classes))
    if init_std is not None:
        for module in model:
            if isinstance(module, nn.Linear):
                init_linear_(module, "normal", init_std)
    return model


class DeepMLP(nn.Module):
    """An L-layer MLP: ``depth`` weight layers, ``depth - 1`` hidden layers of ``width`` units.

    With ``residual=True`` each width-to-width hidden layer adds its input back
    (z <- z + tau(W z + b)); with ``norm=True`` a BatchNorm precedes each activation.
    """

    def __init__(self, depth: int, width: int = 64, activation: str = "relu", *, init: str = "he",
                 in_features: int = 64, num_classes: int = 10, residual: bool = False,
                 norm: bool = False):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int >= 2 (weight layers, output included), got {depth!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        choice("activation", activation, ACTIVATIONS)
        choice("initialisation", init, INITS)
        sizes = [in_features] + [width] * (depth - 1) + [num_classes]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(width) if norm else nn.Identity() for _ in range(depth - 1))
        self.act = ACTIVATIONS[activation]()
        self.residual = residual
        self.init_weights(init, activation)

    @torch.no_grad()
    def init_weights(self, init: str, activation: str) -> None:
        for linear in self.linears:
            init_linear_(linear, init)

    def forward(self, x: torch.Tensor, activations: list | None = None) -> torch.Tensor:
        """Logits (N, C) for inputs (N, in_features); appends each hidden z (N, width) to ``activations``."""
        z = x
        for linear, norm in zip(self.linears[:-1], self.norms):
            h = self.act(norm(linear(z)))
            z = z + h if self.residual and h.shape == z.shape else h
            if activations is not None:
                activations.append(z.detach())
        return self.linears[-1](z)

"""Low precision: simulated fixed-point arithmetic in floating point (chapter 4, section 6).

``quantize`` rounds a tensor to a b-bit grid with one scale per tensor or per output channel
(symmetric: zero maps to zero; signed, or unsigned for non-negative tensors such as ReLU
outputs) and passes gradients straight through the rounding (Bengio et al. 2013's
straight-through estimator), so the same function serves post-training quantization and
quantization-aware training. ``bits=1`` is the sign with a scale of mean |x| (binary
weights, as in BinaryConnect and XNOR-Net). ``QuantizedMLP`` runs an ``nn.Sequential`` of
``Linear`` and activation layers with quantized weights and, optionally, quantized inputs
to every linear layer, whose scales are fixed beforehand on calibration data.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

MAX_BITS = 16


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an int from 1 to {MAX_BITS} (8 for int8), got {bits!r}; "
                         "for full precision, do not quantize")
    return bits


def levels(bits: int, signed: bool = True) -> tuple[int, int]:
    """(q_min, q_max) of a b-bit integer: [-2^(b-1), 2^(b-1) - 1] signed, [0, 2^b - 1] unsigned."""
    bits = _check_bits(bits)
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def quant_scale(x: torch.Tensor, bits: int, per_channel: bool = False, signed: bool = True,
                max_abs: torch.Tensor | float | None = None) -> torch.Tensor:
    """The step s of the grid: max |x| / q_max, per tensor (a scalar) or per row (shape (C, 1, ...)).

    ``max_abs`` replaces max |x| (a range fixed on calibration data, possibly clipped).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if per_channel and x.ndim < 2:
        raise ValueError("per_channel needs a tensor of at least 2 dimensions (a weight matrix), "
                         f"got shape {tuple(x.shape)}")
    _, q_max = levels(bits, signed)
    if max_abs is None:
        magnitude = x.detach().abs()
        max_abs = magnitude.amax(dim=tuple(range(1, x.ndim)), keepdim=True) if per_channel else magnitude.max()
    max_abs = torch.as_tensor(max_abs, dtype=x.dtype, device=x.device)
    return torch.clamp(max_abs, min=torch.finfo(x.dtype).tiny) / max(q_max, 1)


def quantize(x: torch.Tensor, bits: int, per_channel: bool = False, signed: bool = True,
             max_abs: torch.Tensor | float | None = None) -> torch.Tensor:
    """``x`` rounded to the nearest point of a symmetric b-bit grid, back in floating point.

    q = clamp(round(x / s), q_min, q_max) and the result is s q, with s from ``quant_scale``
    (the rounding is half-to-even and x / s is computed as x * (1 / s), as
    ``torch.fake_quantize_per_tensor_affine`` does, so the two agree exactly). Values beyond
    the range are clipped. ``bits=1`` returns sign(x) * mean |x| (per tensor or per row).
    The backward pass is the straight-through estimator: the gradient with respect to ``x``
    is the incoming gradient, unchanged.
    """
    bits = _check_bits(bits)
    if bits == 1:
        if not signed:
            raise ValueError("bits=1 is the sign of x: it needs signed=True")
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        dims = tuple(range(1, x.ndim)) if per_channel else tuple(range(x.ndim))
        scale = x.detach().abs().mean(dim=dims, keepdim=True)
        q = torch.where(x >= 0, scale, -scale)
    else:
        scale = quant_scale(x, bits, per_channel, signed, max_abs)
        q_min, q_max = levels(bits, signed)
        q = torch.clamp(torch.round(x.detach() * (1.0 / scale)), q_min, q_max) * scale
    return x + (q - x).detach()  # value q, gradient of the identity


class QuantizedMLP(nn.Module):
    """A copy of an ``nn.Sequential`` MLP whose linear layers compute with quantized numbers.

    Every ``nn.Linear`` uses its weight quantized to ``weight_bits`` (one scale per output
    channel if ``per_channel``, else per matrix); with ``act_bits`` set, the input of every
    linear layer is quantized too, with one scale per layer taken from ``calibrate`` (signed
    for the network's input, unsigned after a ReLU). Biases stay in floating point, as they do
    in integer kernels (32-bit accumulators). Trainable: gradients pass straight through.
    """

    def __init__(self, model: nn.Sequential, weight_bits: int, act_bits: int | None = None,
                 per_channel: bool = True) -> None:
        super().__init__()
        if not isinstance(model, nn.Sequential) or not any(isinstance(m, nn.Linear) for m in model):
            raise ValueError(f"model must be an nn.Sequential with nn.Linear layers (dlcourse.models.mlp.mlp), "
                             f"got {type(model).__name__}")
        self.model = copy.deepcopy(model)
        self.weight_bits = _check_bits(weight_bits)
        self.act_bits = None if act_bits is None else _check_bits(act_bits)
        self.per_channel = per_channel
        self.act_max: list[torch.Tensor] | None = None  # one range per linear layer, from calibrate
        self.act_signed: list[bool] | None = None

    @torch.no_grad()
    def calibrate(self, X: torch.Tensor, quantile: float = 1.0) -> QuantizedMLP:
        """Fix each linear layer's input range: the ``quantile`` of |input| over ``X`` (1.0: the maximum)."""
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1] (1.0 takes the maximum), got {quantile!r}")
        self.act_max, self.act_signed = [], []
        h = X
        for layer in self.model:
            if isinstance(layer, nn.Linear):
                a = h.abs().flatten()
                a = a[torch.randperm(len(a), generator=torch.Generator().manual_seed(0))[:1_000_000].to(a.device)]
                self.act_max.append(torch.quantile(a.float(), quantile).to(h.dtype))
                self.act_signed.append(bool((h < 0).any()))
            h = layer(h)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_bits is not None and self.act_max is None:
            raise ValueError("activations are quantized but their ranges are not set: call .calibrate(X_train) first")
        i = 0
        for layer in self.model:
            if isinstance(layer, nn.Linear):
                if self.act_bits is not None:
                    x = quantize(x, self.act_bits, signed=self.act_signed[i] or self.act_bits == 1,
                                 max_abs=self.act_max[i])
                w = quantize(layer.weight, self.weight_bits, per_channel=self.per_channel)
                x = nn.functional.linear(x, w, layer.bias)
                i += 1
            else:
                x = layer(x)
        return x


def weight_bytes(model: nn.Module, bits: int) -> int:
    """Bytes of the linear layers' weights stored at ``bits`` bits each (scales and biases not counted)."""
    bits = _check_bits(bits)
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    return (n * bits + 7) // 8


def float_format_table() -> list[tuple[str, int, int, float, float]]:
    """(name, exponent bits, mantissa bits, relative step eps, largest finite value) of the float formats."""
    rows = []
    for name, dtype, e, m in [("float32", torch.float32, 8, 23), ("bfloat16", torch.bfloat16, 8, 7),
                              ("float16", torch.float16, 5, 10), ("float8_e4m3fn", torch.float8_e4m3fn, 4, 3),
                              ("float8_e5m2", torch.float8_e5m2, 5, 2)]:
        info = torch.finfo(dtype)
        rows.append((name, e, m, float(info.eps), float(info.max)))
    return rows

"""dlcourse.topics.low_precision: the fixed-point quantizer, its gradient, QuantizedMLP (section 4.6)."""

import pytest
import torch

from dlcourse.models.mlp import mlp
from dlcourse.topics.low_precision import (QuantizedMLP, float_format_table, levels, quant_scale, quantize,
                                           weight_bytes)


def _w(seed=0):
    torch.manual_seed(seed)
    return torch.randn(64, 32) * torch.rand(64, 1) * 3


def test_matches_torch_fake_quantize_at_8_bits():
    w = _w()
    s = quant_scale(w, 8)
    assert torch.equal(quantize(w, 8), torch.fake_quantize_per_tensor_affine(w, s.item(), 0, -128, 127))
    s_row = quant_scale(w, 8, per_channel=True)
    expected = torch.fake_quantize_per_channel_affine(w, s_row.flatten(), torch.zeros(64, dtype=torch.int32),
                                                      0, -128, 127)
    assert torch.equal(quantize(w, 8, per_channel=True), expected)


def test_values_lie_on_the_grid_and_error_shrinks_with_bits():
    w = _w(1)
    errors = []
    for b in [2, 3, 4, 6, 8, 16]:
        q = quantize(w, b)
        s = quant_scale(w, b)
        ints = q / s
        assert torch.allclose(ints, ints.round(), atol=1e-3) and len(torch.unique(ints.round())) <= 2**b
        assert (q - w).abs().max() <= s / 2 * (1 + 1e-5)  # round to nearest: within half a step
        errors.append((q - w).abs().mean().item())
    assert all(a > b for a, b in zip(errors, errors[1:]))


def test_unsigned_binary_and_clipping():
    x = torch.linspace(0, 3, 50)
    q = quantize(x, 2, signed=False)  # levels 0..3, step 1
    assert set(q.tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert levels(2, signed=False) == (0, 3) and levels(4) == (-8, 7)
    clipped = quantize(torch.tensor([-5.0, 0.2, 5.0]), 4, max_abs=1.0)  # beyond the range: saturate
    assert clipped[0].item() == pytest.approx(-8 / 7) and clipped[2].item() == pytest.approx(1.0)
    w = _w(2)
    b = quantize(w, 1, per_channel=True)
    assert torch.allclose(b.abs(), w.abs().mean(1, keepdim=True).expand_as(w))
    assert torch.equal(torch.sign(b), torch.where(w >= 0, 1.0, -1.0))


def test_straight_through_estimator_passes_gradients():
    x = torch.randn(10, requires_grad=True)
    weights = torch.arange(10.0)
    (quantize(x, 3) * weights).sum().backward()
    assert torch.equal(x.grad, weights)
    y = torch.randn(4, 3, requires_grad=True)
    quantize(y, 1, per_channel=True).sum().backward()
    assert torch.equal(y.grad, torch.ones(4, 3))


@pytest.mark.parametrize("bits", [0, 17, 2.5, True, "8", None])
def test_bad_bits_raise(bits):
    with pytest.raises(ValueError, match="bits must be an int"):
        quantize(torch.randn(3), bits)


def test_bad_tensors_raise():
    with pytest.raises(ValueError, match="floating-point"):
        quantize(torch.arange(4), 8)
    with pytest.raises(ValueError, match="per_channel"):
        quantize(torch.randn(4), 8, per_channel=True)
    with pytest.raises(ValueError, match="signed"):
        quantize(torch.randn(4), 1, signed=False)


def test_quantized_mlp_equals_float_at_16_bits_and_trains():
    torch.manual_seed(0)
    model = mlp(8, (16,), 3)
    X = torch.randn(50, 8)
    q = QuantizedMLP(model, 16, 16).calibrate(X)
    assert torch.allclose(q(X), model(X), atol=1e-2)
    q4 = QuantizedMLP(model, 4, 4).calibrate(X, quantile=0.99)
    loss = q4(X).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in q4.parameters())
    assert model[0].weight.grad is None  # QuantizedMLP works on a copy
    with pytest.raises(ValueError, match="calibrate"):
        QuantizedMLP(model, 4, 4)(X)
    with pytest.raises(ValueError, match="nn.Sequential"):
        QuantizedMLP(torch.nn.Linear(3, 3), 4)
    with pytest.raises(ValueError, match="quantile"):
        QuantizedMLP(model, 4, 4).calibrate(X, quantile=0.0)


def test_sizes_and_formats():
    model = mlp(64, (256,), 10)
    assert weight_bytes(model, 8) == 64 * 256 + 256 * 10 and weight_bytes(model, 4) == (64 * 256 + 256 * 10) // 2
    names = [row[0] for row in float_format_table()]
    assert names[:3] == ["float32", "bfloat16", "float16"]
    assert dict((r[0], r[4]) for r in float_format_table())["float8_e4m3fn"] == 448.0

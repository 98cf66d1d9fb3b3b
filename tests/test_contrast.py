"""Size and contrast normalisation (dlcourse.topics.contrast, chapter 5)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dlcourse.topics.contrast import (contrast, global_contrast_normalise, resize, resize_list,  # noqa: E402
                                      to_display, zone_plate)
from dlcourse.topics.contrast_plots import plot_gcn_grid, plot_gcn_photos, plot_gcn_points  # noqa: E402


def gcn_numpy(X, s, lam, eps):
    """The source's formula for one image (C, H, W), written with loops over nothing but NumPy sums."""
    X = X.astype(np.float64)
    mean = X.sum() / X.size
    return s * (X - mean) / max(eps, np.sqrt(lam + ((X - mean) ** 2).sum() / X.size))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("s, lam, eps", [(1.0, 0.0, 1e-8), (2.5, 0.01, 1e-8), (1.0, 0.0, 0.5), (0.3, 1.0, 0.0)])
def test_gcn_matches_a_numpy_reference(channels, s, lam, eps):
    x = torch.rand(4, channels, 7, 5, generator=torch.Generator().manual_seed(0)) * torch.rand(4, 1, 1, 1)
    out = global_contrast_normalise(x, s, lam, eps)
    assert out.shape == x.shape and out.dtype == x.dtype
    for i in range(4):
        np.testing.assert_allclose(out[i].numpy(), gcn_numpy(x[i].numpy(), s, lam, eps), rtol=1e-4, atol=1e-5)


def test_contrast_is_the_population_std_over_all_values():
    x = torch.rand(3, 3, 6, 4, dtype=torch.float64)
    expected = [np.std(x[i].numpy()) for i in range(3)]
    np.testing.assert_allclose(contrast(x).numpy(), expected, rtol=1e-12)


def test_gcn_output_has_mean_zero_and_std_s():
    x = torch.rand(5, 3, 16, 16) * 0.2 + 0.4
    out = global_contrast_normalise(x, s=1.7)
    flat = out.flatten(1)
    assert flat.mean(1).abs().max() < 1e-5
    assert (contrast(out) - 1.7).abs().max() < 1e-5
    assert torch.allclose(flat.norm(dim=1), torch.full((5,), 1.7 * (3 * 16 * 16) ** 0.5), rtol=1e-5)


def test_constant_image_is_finite_with_eps_and_nan_without():
    x = torch.full((2, 3, 8, 8), 0.5)
    out = global_contrast_normalise(x, eps=1e-8)
    assert torch.isfinite(out).all() and (out == 0).all()
    assert torch.isnan(global_contrast_normalise(x, lam=0.0, eps=0.0)).all()
    assert torch.isfinite(global_contrast_normalise(x, lam=0.1, eps=0.0)).all()


def test_gcn_undoes_affine_intensity_changes():
    x = torch.rand(3, 3, 10, 10, dtype=torch.float64)
    for a, b in [(0.3, 0.2), (2.0, -0.5), (1e-2, 0.9)]:
        assert torch.allclose(global_contrast_normalise(a * x + b), global_contrast_normalise(x), atol=1e-10)
    # with lam > 0 the invariance to the scale a is lost: a low-contrast copy comes out smaller
    low, full = global_contrast_normalise(0.1 * x, lam=0.01), global_contrast_normalise(x, lam=0.01)
    assert contrast(low).max() < contrast(full).min()


def test_gcn_without_centring_puts_points_on_a_circle():
    points = torch.randn(50, 1, 1, 2)
    out = global_contrast_normalise(points, s=1.0, centre=False).reshape(50, 2)
    assert torch.allclose(out.norm(dim=1), torch.full((50,), 2 ** 0.5), atol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (torch.rand(3, 8, 8), "batch of images"),
    (torch.rand(2, 2, 8, 8), "1 or 3 channels"),
    (torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8), "floating-point"),
    (np.zeros((2, 3, 8, 8), dtype=np.float32), "torch.Tensor"),
])
def test_gcn_rejects_bad_images(bad, match):
    with pytest.raises(ValueError, match=match):
        global_contrast_normalise(bad)
    with pytest.raises(ValueError, match=match):
        contrast(bad)


@pytest.mark.parametrize("kwargs, name", [({"s": -1.0}, "s"), ({"lam": -0.1}, "lam"), ({"eps": -1e-8}, "eps"),
                                          ({"s": float("nan")}, "s"), ({"lam": "0"}, "lam")])
def test_gcn_rejects_negative_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"{name} must be a non-negative number"):
        global_contrast_normalise(torch.rand(1, 3, 4, 4), **kwargs)


@pytest.mark.parametrize("mode, antialias", [("nearest", False), ("bilinear", False), ("bilinear", True),
                                             ("bicubic", True), ("area", False)])
def test_resize_shapes(mode, antialias):
    x = torch.rand(2, 3, 40, 60)
    assert resize(x, 16, mode, antialias=antialias).shape == (2, 3, 16, 16)
    assert resize(x, (20, 30), mode, antialias=antialias).shape == (2, 3, 20, 30)


def test_resize_area_is_the_block_mean():
    x = torch.rand(1, 1, 8, 8)
    assert torch.allclose(resize(x, 2, "area"), x.reshape(1, 1, 2, 4, 2, 4).mean((3, 5)))


def test_resize_list_stacks_images_of_different_sizes_and_mixes_grey():
    images = [torch.rand(3, 30, 45), torch.rand(1, 50, 20), torch.rand(3, 64, 64)]
    out = resize_list(images, (24, 32), "bilinear", antialias=True)
    assert out.shape == (3, 3, 24, 32)
    assert torch.equal(out[1, 0], out[1, 2])


@pytest.mark.parametrize("call, match", [
    (lambda: resize(torch.rand(3, 8, 8), 4), "batch of images"),
    (lambda: resize(torch.zeros(1, 3, 8, 8, dtype=torch.int64), 4), "floating-point"),
    (lambda: resize(torch.rand(1, 3, 8, 8), 4, "lanczos"), "unknown mode"),
    (lambda: resize(torch.rand(1, 3, 8, 8), 4, "nearest", antialias=True), "antialias"),
    (lambda: resize(torch.rand(1, 3, 8, 8), 0), "size must be"),
    (lambda: resize(torch.rand(1, 3, 8, 8), (4, 4, 4)), "size must be"),
    (lambda: resize_list([], 4), "at least one"),
    (lambda: resize_list([torch.rand(2, 8, 8)], 4), "1 or 3 channels"),
    (lambda: zone_plate(1), "at least 2"),
    (lambda: to_display(torch.rand(1, 1, 2, 2), span=0.0), "span"),
])
def test_resize_and_helpers_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_zone_plate_and_to_display_ranges():
    z = zone_plate(64)
    assert z.shape == (1, 1, 64, 64) and z.min() >= 0 and z.max() <= 1
    shown = to_display(torch.tensor([[[[-5.0, 0.0, 1.0, 5.0]]]]), span=2.0)
    assert shown.flatten().tolist() == [0.0, 0.5, 0.75, 1.0]


def test_plots_return_figures():
    images = torch.rand(2, 3, 12, 12)
    for fig in (plot_gcn_points(torch.randn(20, 2), lams=(0.0, 0.5)),
                plot_gcn_photos(images, ["a", "b"], 1.0, 0.01, 1e-8),
                plot_gcn_grid(images, ["a", "b"], [(1.0, 0.0, 1e-8), (0.5, 0.1, 1e-8)])):
        assert isinstance(fig, matplotlib.figure.Figure)
        plt.close(fig)
    with pytest.raises(ValueError, match="one title per image"):
        plot_gcn_photos(images, ["a"])
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot_gcn_points(torch.randn(5, 3))


def test_gcn_widget_redraws_with_the_sliders(monkeypatch):
    from dlcourse import widgets
    from dlcourse.topics.contrast_plots import gcn_widget

    monkeypatch.setattr(widgets, "display", lambda obj, raw=False: None)
    widget = gcn_widget(torch.rand(2, 3, 10, 10), ["a", "b"], s=1.0)
    assert "s = 1" in widget.figure.get_suptitle()
    widget.controls["s"].value = 0.5
    widget.controls["lam"].value = 0.05
    assert widget.draws == 3 and "s = 0.5, λ = 0.05" in widget.figure.get_suptitle()
    with pytest.raises(ValueError, match="s must be"):
        gcn_widget(torch.rand(2, 3, 10, 10), ["a", "b"], s=-1.0)

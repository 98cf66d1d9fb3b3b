"""Unit tests for dlcourse.topics.local_contrast (chapter 5, section 3)."""

import pytest
import torch

from dlcourse.topics.local_contrast import (
    REGIONS, gaussian_blur, gaussian_window, local_contrast_normalise, local_contrast_reference,
    random_patches, texture_patch_data, zca_fit, zca_whiten,
)


@pytest.fixture
def images():
    return torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(0))


def test_gaussian_window_sums_to_one_and_is_separable():
    g1, g2 = gaussian_window(1.5), gaussian_window(1.5, dims=2)
    assert g1.shape == (11,) and g2.shape == (11, 11)
    assert torch.isclose(g1.sum(), torch.tensor(1.0)) and torch.allclose(g2, torch.outer(g1, g1))
    assert torch.equal(g1, g1.flip(0)) and g1.argmax() == 5


def test_separable_blur_equals_full_kernel(images):
    for sigma in (0.8, 2.0, 3.0):
        assert torch.allclose(gaussian_blur(images, sigma), gaussian_blur(images, sigma, separable=False), atol=1e-6)


def test_blur_keeps_a_constant_image():
    x = torch.full((1, 2, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(x, 2.0), x)


@pytest.mark.parametrize("per_channel", [False, True])
def test_lcn_output_has_near_zero_local_mean(images, per_channel):
    y = local_contrast_normalise(images, sigma=2.0, eps=1e-3, per_channel=per_channel)
    assert y.shape == images.shape
    local_mean = gaussian_blur(y, 2.0)
    local_mean = local_mean if per_channel else local_mean.mean(dim=1)
    assert local_mean.abs().mean() < 0.1 * y.abs().mean()


def test_lcn_matches_the_loop_reference(images):
    small = images[:, :, :10, :12]
    fast = local_contrast_normalise(small, sigma=1.2, eps=1e-2)
    assert torch.allclose(fast, local_contrast_reference(small, sigma=1.2, eps=1e-2), atol=1e-5)


def test_lcn_is_finite_on_a_constant_image_and_invariant_to_affine_changes(images):
    y = local_contrast_normalise(torch.full((1, 3, 16, 16), 0.7))
    assert torch.isfinite(y).all() and y.abs().max() < 1e-5
    base = local_contrast_normalise(images, 2.0, eps=1e-6)
    assert torch.allclose(local_contrast_normalise(0.4 * images + 0.3, 2.0, eps=1e-6), base, atol=1e-3)


@pytest.mark.parametrize("call, match", [
    (lambda: local_contrast_normalise(torch.rand(3, 16, 16)), "batch of images"),
    (lambda: local_contrast_normalise(torch.randint(0, 9, (1, 1, 16, 16))), "floating-point"),
    (lambda: local_contrast_normalise(torch.rand(1, 1, 16, 16), sigma=0), "sigma"),
    (lambda: local_contrast_normalise(torch.rand(1, 1, 16, 16), sigma=-1.0), "sigma"),
    (lambda: local_contrast_normalise(torch.rand(1, 1, 16, 16), eps=-0.1), "eps"),
    (lambda: local_contrast_normalise(torch.rand(1, 1, 16, 16), channels=3), "channel"),
    (lambda: local_contrast_reference(torch.rand(1, 16, 16)), "batch of images"),
    (lambda: gaussian_blur(torch.rand(1, 1, 4, 4), 3.0), "larger than the window"),
    (lambda: gaussian_window(1.0, dims=3), "dims"),
    (lambda: gaussian_window(1.0, radius=-1), "radius"),
    (lambda: zca_fit(torch.rand(10)), r"\(N, D\)"),
    (lambda: zca_fit(torch.ones(10, 4, dtype=torch.long)), "floating point"),
    (lambda: zca_fit(torch.rand(10, 4), eps=-1.0), "eps"),
    (lambda: zca_whiten(torch.rand(10, 3), *zca_fit(torch.rand(10, 4))), "match W"),
    (lambda: random_patches(torch.rand(16, 16), 4, 2), r"\(C, H, W\)"),
    (lambda: random_patches(torch.rand(1, 16, 16), 0, 2), "positive ints"),
    (lambda: random_patches(torch.rand(1, 16, 16), 4, 2, region=(0.5, 0.2, 0, 1)), "region"),
    (lambda: random_patches(torch.rand(1, 16, 16), 12, 2, region=(0, 0.5, 0, 1)), "smaller than"),
    (lambda: texture_patch_data({"a": torch.rand(1, 64, 64)}, 8, {"train": 2}), "patch count"),
    (lambda: texture_patch_data({}, 8), "at least one"),
])
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_zca_whitened_covariance_is_identity():
    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(16, 16, generator=g)
    patches = torch.randn(5000, 16, generator=g) @ mixing + 3.0  # correlated, non-centred
    mean, W = zca_fit(patches, eps=0.0)
    assert torch.allclose(W, W.T)
    cov = torch.cov(zca_whiten(patches, mean, W).T)
    assert torch.allclose(cov, torch.eye(16, dtype=cov.dtype), atol=1e-8)
    cov_eps = torch.cov(zca_whiten(patches, *zca_fit(patches, eps=1e-1)).T)
    assert (torch.diag(cov_eps) < 1).all()  # eps shrinks every variance below 1


def test_random_patches_come_from_the_region():
    image = torch.arange(64 * 64, dtype=torch.float32).view(1, 64, 64)
    patches, corners = random_patches(image, 8, 50, region=(0.5, 1.0, 0.25, 0.75),
                                      generator=torch.Generator().manual_seed(0))
    assert patches.shape == (50, 1, 8, 8)
    assert (corners[:, 0] >= 32).all() and (corners[:, 0] + 8 <= 64).all()
    assert (corners[:, 1] >= 16).all() and (corners[:, 1] + 8 <= 48).all()
    for p, (r, c) in zip(patches, corners):
        assert torch.equal(p, image[:, r:r + 8, c:c + 8])


def test_texture_patches_come_from_disjoint_regions():
    # each pixel's value is its index, so a patch reveals exactly which pixels it holds
    image = torch.arange(128 * 128, dtype=torch.float32).view(1, 128, 128)
    data = texture_patch_data({"a": image, "b": image.clone()}, 16, {"train": 40, "val": 20, "test": 20},
                              generator=torch.Generator().manual_seed(0))
    pixels = {split: set(X.flatten().long().tolist()) for split, (X, _) in data.items()}
    assert not pixels["train"] & pixels["val"] and not pixels["train"] & pixels["test"]
    assert not pixels["val"] & pixels["test"]
    for split, (X, y) in data.items():
        n = {"train": 40, "val": 20, "test": 20}[split]
        assert X.shape == (2 * n, 1, 16, 16) and y.tolist() == [0] * n + [1] * n
    assert set(REGIONS) == {"train", "val", "test"}

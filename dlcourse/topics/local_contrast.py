"""Local contrast normalisation, ZCA whitening and texture patches (chapter 5, section 3).

``gaussian_window`` builds the normalised Gaussian weights of a window; ``gaussian_blur``
applies them to a batch (N, C, H, W) as a depthwise convolution (``groups=C``) with reflect
padding, either as one 2-D kernel or as two 1-D passes (the separable form, same result).
``local_contrast_normalise`` subtracts a Gaussian-weighted local mean and divides by a
Gaussian-weighted local standard deviation, both taken over the window and over the channels
together, as Jarrett et al. (2009) do; ``local_contrast_reference`` computes the same thing
with explicit loops, to check the fast version. ``zca_fit`` / ``zca_whiten`` whiten flattened
patches, ``random_patches`` cuts patches from one region of an image, and
``texture_patch_data`` builds a texture-classification task whose training, validation and
test patches come from disjoint regions of each texture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# Regions (row0, row1, col0, col1) of a 512 x 512 texture as fractions: training patches come
# from the left half, validation patches from the top right quarter, test from the bottom right.
REGIONS = {"train": (0.0, 1.0, 0.0, 0.5), "val": (0.0, 0.5, 0.5, 1.0), "test": (0.5, 1.0, 0.5, 1.0)}


def _check_sigma(sigma: float) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0 or math.isinf(sigma):
        raise ValueError(f"sigma must be a positive finite number of pixels, got {sigma!r}")
    return float(sigma)


def _check_images(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a batch of images (N, C, H, W), got {shape}; "
                         "add a batch axis with x[None] for a single image (C, H, W)")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}: convert with x.float() / 255")


def gaussian_window(sigma: float, radius: int | None = None, *, dims: int = 1,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Gaussian weights summing to 1: shape (2r+1,) for ``dims=1``, (2r+1, 2r+1) for ``dims=2``.

    ``radius`` r defaults to ceil(3 sigma), which keeps all but about 0.3 % of the weight per axis.
    The 2-D window is the outer product of the 1-D one with itself: that is what makes it separable.
    """
    sigma = _check_sigma(sigma)
    radius = math.ceil(3 * sigma) if radius is None else radius
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative int (or None for ceil(3 sigma)), got {radius!r}")
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 (a 1-D window) or 2 (a 2-D window), got {dims!r}")
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-t**2 / (2 * sigma**2))
    w = w / w.sum()
    return (w if dims == 1 else torch.outer(w, w)).to(dtype)


def gaussian_blur(x: torch.Tensor, sigma: float, *, separable: bool = True,
                  radius: int | None = None) -> torch.Tensor:
    """Gaussian-weighted local mean of each channel of ``x`` (N, C, H, W), same shape, reflect padding.

    ``separable=True`` runs a (1, K) then a (K, 1) depthwise convolution: 2K multiplications per
    pixel instead of K^2 for the full (K, K) kernel (``separable=False``). Both give the same result.
    """
    _check_images(x)
    w = gaussian_window(sigma, radius, dtype=x.dtype).to(x.device)
    r, channels = (len(w) - 1) // 2, x.shape[1]
    if min(x.shape[-2:]) <= r:
        raise ValueError(f"reflect padding needs images larger than the window radius {r}, got "
                         f"{tuple(x.shape[-2:])}: use a smaller sigma or larger images")
    padded = F.pad(x, (r, r, r, r), mode="reflect")
    if separable:
        rows = F.conv2d(padded, w.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        return F.conv2d(rows, w.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    kernel = torch.outer(w, w).expand(channels, 1, -1, -1)
    return F.conv2d(padded, kernel, groups=channels)


def _check_lcn(x: torch.Tensor, sigma: float, eps: float, channels: int | None) -> None:
    _check_images(x)
    _check_sigma(sigma)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a number >= 0 (the floor of the divisor), got {eps!r}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"expected {channels} channel(s), got x of shape {tuple(x.shape)}")


def local_contrast_normalise(x: torch.Tensor, sigma: float = 2.0, eps: float = 1e-2, *,
                             per_channel: bool = False, channels: int | None = None,
                             separable: bool = True) -> torch.Tensor:
    """Local contrast normalisation of a batch (N, C, H, W): (x - local mean) / max(eps, local std).

    The local mean m = sum_{c,p,q} w_pq x_c(i+p, j+q) / C weighs the window by a Gaussian of
    standard deviation ``sigma`` pixels and averages over all channels (Jarrett et al.); the local
    standard deviation is sqrt of the same weighted mean of (x - m)^2. ``per_channel=True``
    normalises every channel on its own instead. ``eps`` > 0 keeps the divisor away from zero
    in flat regions (a constant image maps to zeros); with ``eps=0`` a flat region gives NaN.
    ``channels`` optionally checks the channel count.
    """
    _check_lcn(x, sigma, eps, channels)
    blur = lambda t: gaussian_blur(t, sigma, separable=separable)  # noqa: E731
    mean = blur(x) if per_channel else blur(x).mean(dim=1, keepdim=True)
    centred = x - mean
    var = blur(centred**2) if per_channel else blur(centred**2).mean(dim=1, keepdim=True)
    return centred / torch.sqrt(var.clamp(min=0)).clamp(min=eps)


def local_contrast_reference(x: torch.Tensor, sigma: float = 2.0, eps: float = 1e-2) -> torch.Tensor:
    """Slow, loop-based LCN (over window and channels) for checking ``local_contrast_normalise`` on small images."""
    _check_lcn(x, sigma, eps, None)
    w = gaussian_window(sigma, dims=2, dtype=torch.float64)
    r = (w.shape[0] - 1) // 2
    xp = F.pad(x.double(), (r, r, r, r), mode="reflect")

    def window_mean(t: torch.Tensor, i: int, j: int) -> torch.Tensor:  # t: padded (C, H+2r, W+2r)
        return (t[:, i:i + 2 * r + 1, j:j + 2 * r + 1] * w).sum() / t.shape[0]

    n, _, h, width = x.shape
    mean = torch.empty(n, 1, h, width, dtype=torch.float64)
    for b in range(n):
        for i in range(h):
            for j in range(width):
                mean[b, 0, i, j] = window_mean(xp[b], i, j)
    sq = F.pad((x.double() - mean) ** 2, (r, r, r, r), mode="reflect")
    out = torch.empty_like(x, dtype=torch.float64)
    for b in range(n):
        for i in range(h):
            for j in range(width):
                std = window_mean(sq[b], i, j).sqrt()
                out[b, :, i, j] = (x[b, :, i, j].double() - mean[b, 0, i, j]) / max(eps, std.item())
    return out.to(x.dtype)


def zca_fit(patches: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ZCA whitening to flattened patches (N, D): returns (mean (D,), W (D, D)).

    With the covariance Sigma = U diag(lambda) U^T, W = U diag(1 / sqrt(lambda + eps)) U^T is
    symmetric, so each row of W is a filter centred on one pixel. Computed in float64.
    """
    if not isinstance(patches, torch.Tensor) or patches.ndim != 2 or len(patches) < 2:
        shape = tuple(patches.shape) if isinstance(patches, torch.Tensor) else type(patches).__name__
        raise ValueError(f"patches must be a 2-D tensor (N, D) with N >= 2 flattened patches, got {shape}")
    if not patches.is_floating_point():
        raise ValueError(f"patches must be floating point, got {patches.dtype}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a number >= 0 (added to each eigenvalue), got {eps!r}")
    p = patches.double()
    mean = p.mean(dim=0)
    centred = p - mean
    cov = centred.T @ centred / (len(p) - 1)
    eigvals, eigvecs = torch.linalg.eigh(cov)
    W = eigvecs @ torch.diag(1.0 / torch.sqrt(eigvals.clamp(min=0) + eps)) @ eigvecs.T
    return mean, W


def zca_whiten(patches: torch.Tensor, mean: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Apply a fitted ZCA transform: (patches - mean) @ W^T, shape (N, D), in float64."""
    if patches.ndim != 2 or patches.shape[1] != W.shape[0]:
        raise ValueError(f"patches must be (N, {W.shape[0]}) to match W, got {tuple(patches.shape)}")
    return (patches.double() - mean) @ W.T


def random_patches(image: torch.Tensor, size: int, num: int, *,
                   region: Sequence[float] = (0.0, 1.0, 0.0, 1.0),
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` random square patches (num, C, size, size) lying wholly inside ``region`` of ``image`` (C, H, W).

    ``region`` = (row0, row1, col0, col1) as fractions of the height and width. Also returns the
    patches' top-left corners (num, 2) as (row, col), so callers can check where patches came from.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got {getattr(image, 'shape', type(image).__name__)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or not isinstance(num, int) or num < 1:
        raise ValueError(f"size and num must be positive ints, got size={size!r}, num={num!r}")
    if len(region) != 4 or not (0 <= region[0] < region[1] <= 1 and 0 <= region[2] < region[3] <= 1):
        raise ValueError(f"region must be (row0, row1, col0, col1) with 0 <= row0 < row1 <= 1 and the "
                         f"same for columns, got {region!r}")
    _, h, w = image.shape
    r0, r1, c0, c1 = round(region[0] * h), round(region[1] * h), round(region[2] * w), round(region[3] * w)
    if r1 - r0 < size or c1 - c0 < size:
        raise ValueError(f"region rows {r0}:{r1}, cols {c0}:{c1} is smaller than a {size}x{size} patch")
    rows = torch.randint(r0, r1 - size + 1, (num,), generator=generator)
    cols = torch.randint(c0, c1 - size + 1, (num,), generator=generator)
    windows = image.unfold(1, size, 1).unfold(2, size, 1)  # (C, H-size+1, W-size+1, size, size)
    return windows[:, rows, cols].permute(1, 0, 2, 3).contiguous(), torch.stack([rows, cols], dim=1)


def texture_patch_data(textures: dict[str, torch.Tensor], size: int = 32,
                       num: dict[str, int] | None = None, *, generator: torch.Generator | None = None
                       ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Patches (N, C, size, size) and labels (N,) for each split, from disjoint regions (``REGIONS``).

    ``textures`` maps a class name to its image (C, H, W); the label is the class's position.
    ``num`` gives patches per class and split (default 300 / 150 / 150 for train / val / test).
    Training patches come from the left half of each texture, validation patches from the top
    right quarter and test patches from the bottom right quarter: no pixel is shared.
    """
    num = {"train": 300, "val": 150, "test": 150} if num is None else num
    if set(num) != set(REGIONS):
        raise ValueError(f"num must give a patch count for each of {tuple(REGIONS)}, got {num!r}")
    if not textures:
        raise ValueError("textures must map at least one class name to an image (C, H, W)")
    out = {}
    for split, region in REGIONS.items():
        patches = [random_patches(img, size, num[split], region=region, generator=generator)[0]
                   for img in textures.values()]
        labels = torch.arange(len(textures)).repeat_interleave(num[split])
        out[split] = (torch.cat(patches), labels)
    return out

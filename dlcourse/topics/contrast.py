"""Size and contrast normalisation of images, batched on torch (chapter 5, sections 5.1 and 5.2).

Everything works on a batch ``(N, C, H, W)`` of float images on any device:

- ``resize`` and ``resize_list`` bring images to one size with ``torch.nn.functional.interpolate``;
- ``zone_plate`` draws a test pattern whose frequency grows with the radius, the classic way to
  make aliasing visible;
- ``contrast`` is the standard deviation of all C·H·W values of an image;
- ``global_contrast_normalise`` is global contrast normalisation (GCN) exactly as in
  Goodfellow et al. (2016), eq. 12.3:
  ``X' = s (X - mean) / max(eps, sqrt(lam + mean((X - mean)^2)))``, with the mean over all values;
- ``to_display`` maps GCN output, which is not in [0, 1], to [0, 1] for showing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

MODES = ("nearest", "bilinear", "bicubic", "area")  # the 2-D modes of F.interpolate
ANTIALIAS_MODES = ("bilinear", "bicubic")  # interpolate supports antialias=True only for these


def check_images(x: torch.Tensor, *, channels: Sequence[int] | None = None, name: str = "x") -> torch.Tensor:
    """Raise a clear ValueError unless ``x`` is a float tensor (N, C, H, W), C in ``channels`` if given."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        hint = " (one image? add a batch axis with x[None])" if x.ndim == 3 else ""
        raise ValueError(f"{name} must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must hold floating-point pixels, got {x.dtype}: convert 8-bit images "
                         "with x.float() / 255")
    if channels is not None and x.shape[1] not in channels:
        raise ValueError(f"{name} must have {' or '.join(map(str, channels))} channels (axis 1 of "
                         f"(N, C, H, W)), got {x.shape[1]}; for channels-last data use x.permute(0, 3, 1, 2)")
    return x


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in pair):
        raise ValueError(f"size must be a positive int or a pair (H, W) of positive ints, got {size!r}")
    return pair


def resize(x: torch.Tensor, size: int | Sequence[int], mode: str = "bilinear", *,
           antialias: bool = False) -> torch.Tensor:
    """Resize a batch (N, C, H, W) of float images to ``size`` (an int for a square, or (H, W)).

    ``mode`` is one of ``MODES``; ``antialias=True`` (bilinear and bicubic only) widens the
    interpolation kernel when shrinking, so that every input pixel contributes.
    """
    check_images(x)
    size = _size(size)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {MODES}")
    if antialias and mode not in ANTIALIAS_MODES:
        raise ValueError(f"antialias=True works only with modes {ANTIALIAS_MODES}, not {mode!r} "
                         "('area' averages whole blocks already)")
    extra = {} if mode in ("nearest", "area") else {"align_corners": False, "antialias": antialias}
    return F.interpolate(x, size=size, mode=mode, **extra)


def resize_list(images: Sequence[torch.Tensor], size: int | Sequence[int], mode: str = "bilinear", *,
                antialias: bool = False) -> torch.Tensor:
    """Resize images (C, H, W) of different sizes to one ``size`` and stack them: (N, C, H', W').

    Grey images (1 channel) are repeated to 3 channels when the list mixes grey and colour.
    """
    images = list(images)
    if not images:
        raise ValueError("resize_list needs at least one image (C, H, W)")
    for i, image in enumerate(images):
        check_images(image[None] if isinstance(image, torch.Tensor) and image.ndim == 3 else image,
                     channels=(1, 3), name=f"images[{i}] (as a batch of one)")
    colour = max(image.shape[0] for image in images)
    images = [image.expand(colour, -1, -1) for image in images]
    return torch.cat([resize(image[None], size, mode, antialias=antialias) for image in images])


def zone_plate(size: int = 512, *, cycles: float = 64.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """A zone plate (1, 1, size, size) in [0, 1]: rings whose frequency grows linearly with the radius.

    The local frequency at distance r (in units of the half-width) is ``cycles * r`` cycles per
    half-width, so the corners hold detail far finer than a shrunken copy can show.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an int of at least 2, got {size!r}")
    axis = torch.linspace(-1.0, 1.0, size, device=device)
    r2 = axis[:, None] ** 2 + axis[None, :] ** 2
    return (0.5 + 0.5 * torch.cos(torch.pi * cycles * r2))[None, None]


def contrast(x: torch.Tensor) -> torch.Tensor:
    """The contrast of each image of a batch (N, C, H, W): the standard deviation of its C·H·W values.

    The 1/(C·H·W) version of the standard deviation, as in the source (no Bessel correction). Shape (N,).
    """
    check_images(x, channels=(1, 3))
    flat = x.flatten(1)
    return (flat - flat.mean(dim=1, keepdim=True)).pow(2).mean(dim=1).sqrt()


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def global_contrast_normalise(x: torch.Tensor, s: float = 1.0, lam: float = 0.0, eps: float = 1e-8, *,
                              centre: bool = True) -> torch.Tensor:
    """Global contrast normalisation of each image of a batch (N, C, H, W), C = 1 or 3.

    X' = s (X - mean) / max{eps, sqrt(lam + (1 / CHW) sum (X - mean)^2)}, with the mean over all
    C·H·W values of the image. With lam = 0 and a non-constant image, X' has mean 0 and standard
    deviation s. ``lam`` > 0 shrinks low-contrast images instead of amplifying their noise;
    ``eps`` keeps a constant image finite. ``centre=False`` skips the mean subtraction (used
    for the 2-D picture of points on a circle).
    """
    check_images(x, channels=(1, 3))
    s, lam, eps = _non_negative("s", s), _non_negative("lam", lam), _non_negative("eps", eps)
    flat = x.flatten(1)
    centred = flat - flat.mean(dim=1, keepdim=True) if centre else flat
    spread = (lam + centred.pow(2).mean(dim=1, keepdim=True)).sqrt()
    return (s * centred / spread.clamp(min=eps)).view_as(x)


def to_display(x: torch.Tensor, *, span: float = 2.0) -> torch.Tensor:
    """Map values in [-span, span] linearly to [0, 1], clipping the rest (for showing GCN output).

    One fixed map for every image, so that the scale s and the shrinking by lam stay visible;
    a per-image min-max stretch would hide both.
    """
    check_images(x)
    if not span > 0:
        raise ValueError(f"span must be positive, got {span!r}")
    return (0.5 + x / (2 * span)).clamp(0.0, 1.0)

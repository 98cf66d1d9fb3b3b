"""Batched dataset augmentation written on plain torch (chapter 5, section 4).

Every function takes a batch of images ``(B, C, H, W)`` of floating dtype, on any device,
and returns a batch of the same shape, dtype and device. The random ones draw their
parameters, one per image, from a ``torch.Generator`` that lives on the CPU; the draws are
then moved to the images' device, so one seed gives the same augmentation on every device.

- ``random_crop``: pad (zeros or edge pixels), then cut a window at a random place per image.
- ``random_translate``: shift each image by whole pixels, at most ``max_shift`` each way.
- ``rotate`` / ``random_rotate``: rotation about the centre with ``F.affine_grid`` and
  ``F.grid_sample`` (bilinear interpolation).
- ``hflip`` / ``vflip`` / ``random_flip``: mirror images left-right or upside down.
- ``Compose`` chains augmentations and owns their generator; ``AugmentedLoss`` is a
  ``compute_loss`` for ``dlcourse.train.fit`` that augments the training batches it is given
  and nothing else, counting the images it touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn

PADDING_MODES = ("zeros", "edge")  # fill new pixels with 0, or repeat the nearest edge pixel
_ROTATE_PADDING = ("zeros", "border")  # grid_sample's names for the same two choices

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _check_images(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a tensor of images (B, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(x.shape)}; "
                         "add axes with x[:, None] (one channel) or x[None] (one image)")
    if not x.is_floating_point():
        raise ValueError(f"expected floating-point images, got dtype {x.dtype}; convert with x.float()")
    return x


def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
                         f"got {type(generator).__name__}")
    return generator


def _non_negative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def _pad(x: torch.Tensor, amount: int, padding: str) -> torch.Tensor:
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding!r}: choose one of {PADDING_MODES}")
    if amount == 0:
        return x
    if padding == "zeros":
        return F.pad(x, (amount,) * 4)
    return F.pad(x, (amount,) * 4, mode="replicate")


def _crop_at(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The window ``x[b, :, top[b]:top[b]+h, left[b]:left[b]+w]`` of every image, gathered in one indexing."""
    rows = top[:, None] + torch.arange(h, device=x.device)  # (B, h)
    cols = left[:, None] + torch.arange(w, device=x.device)  # (B, w)
    b = torch.arange(len(x), device=x.device)[:, None, None]
    out = x[b, :, rows[:, :, None], cols[:, None, :]]  # (B, h, w, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_crop(x: torch.Tensor, size: int | tuple[int, int], generator: torch.Generator, *,
                padding: int = 0, padding_mode: str = "zeros") -> torch.Tensor:
    """A random ``size`` window of each image, after padding each side by ``padding`` pixels.

    Returns ``(B, C, h, w)``. With ``padding=0`` the window lies inside the image; with
    ``size`` equal to the image size and ``padding=p`` this is a random shift of up to ``p``.
    """
    x, generator = _check_images(x), _check_generator(generator)
    padding = _non_negative_int("padding", padding)
    h, w = (size, size) if isinstance(size, Integral) and not isinstance(size, bool) else tuple(size)
    padded = _pad(x, padding, padding_mode)
    H, W = padded.shape[-2:]
    for name, v, limit in (("height", h, H), ("width", w, W)):
        if isinstance(v, bool) or not isinstance(v, Integral) or not 1 <= v <= limit:
            raise ValueError(f"crop {name} must be an int in [1, {limit}] (the padded image), got {v!r}")
    top = torch.randint(H - h + 1, (len(x),), generator=generator).to(x.device)
    left = torch.randint(W - w + 1, (len(x),), generator=generator).to(x.device)
    return _crop_at(padded, top, left, int(h), int(w))


def random_translate(x: torch.Tensor, max_shift: int, generator: torch.Generator, *,
                     padding: str = "zeros") -> torch.Tensor:
    """Shift every image by its own whole number of pixels in ``[-max_shift, max_shift]``, both axes.

    Pixels moved in from outside are zeros (``padding="zeros"``) or copies of the nearest
    edge pixel (``padding="edge"``). ``max_shift=0`` returns the images unchanged.
    """
    x = _check_images(x)
    max_shift = _non_negative_int("max_shift", max_shift)
    return random_crop(x, tuple(x.shape[-2:]), generator, padding=max_shift, padding_mode=padding)


def shift(x: torch.Tensor, dy: int, dx: int, *, padding: str = "zeros") -> torch.Tensor:
    """All images moved ``dy`` pixels down and ``dx`` pixels right (negative: up, left)."""
    x = _check_images(x)
    for name, v in (("dy", dy), ("dx", dx)):
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise ValueError(f"{name} must be an int number of pixels, got {v!r}")
    p = max(abs(dy), abs(dx))
    full = torch.full((len(x),), p, device=x.device)
    return _crop_at(_pad(x, p, padding), full - dy, full - dx, *x.shape[-2:])


def rotate(x: torch.Tensor, degrees: torch.Tensor | float, *, padding: str = "zeros") -> torch.Tensor:
    """Rotate each image about its centre by ``degrees`` (a number, or one per image), anticlockwise.

    Bilinear interpolation with ``F.affine_grid`` and ``F.grid_sample``; corners that come
    from outside the image are zeros (``padding="zeros"``) or edge pixels (``"edge"``).
    Rotation by 0 returns the images (up to rounding); by 180 it is ``hflip(vflip(x))``.
    """
    x = _check_images(x)
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding!r}: choose one of {PADDING_MODES}")
    angles = torch.as_tensor(degrees, dtype=x.dtype, device=x.device).reshape(-1)
    if angles.numel() == 1:
        angles = angles.expand(len(x))
    if angles.numel() != len(x):
        raise ValueError(f"degrees must be one number or one per image ({len(x)}), got {angles.numel()}")
    H, W = x.shape[-2:]
    theta = angles * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # affine_grid maps output to input in normalised coordinates in [-1, 1]: for a square
    # rotation on a non-square image the off-diagonal terms are rescaled by the aspect ratio.
    matrix = torch.zeros(len(x), 2, 3, dtype=x.dtype, device=x.device)
    matrix[:, 0, 0], matrix[:, 0, 1] = cos, -sin * H / W
    matrix[:, 1, 0], matrix[:, 1, 1] = sin * W / H, cos
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    mode = _ROTATE_PADDING[PADDING_MODES.index(padding)]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=mode, align_corners=False)


def random_rotate(x: torch.Tensor, max_degrees: float, generator: torch.Generator, *,
                  padding: str = "zeros") -> torch.Tensor:
    """Rotate every image by its own angle drawn uniformly from ``[-max_degrees, max_degrees]``."""
    x, generator = _check_images(x), _check_generator(generator)
    if isinstance(max_degrees, bool) or not isinstance(max_degrees, Real) or not 0 <= max_degrees <= 180:
        raise ValueError(f"max_degrees must be a number in [0, 180], got {max_degrees!r}")
    u = torch.rand(len(x), generator=generator)
    return rotate(x, ((2 * u - 1) * max_degrees).to(x.device), padding=padding)


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror every image left-right (the last axis)."""
    return _check_images(x).flip(-1)


def vflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror every image upside down (the second-to-last axis)."""
    return _check_images(x).flip(-2)


def random_flip(x: torch.Tensor, generator: torch.Generator, *, p: float = 0.5,
                direction: str = "horizontal") -> torch.Tensor:
    """Flip each image with probability ``p``, ``direction`` "horizontal" (left-right) or "vertical"."""
    x, generator = _check_images(x), _check_generator(generator)
    if direction not in ("horizontal", "vertical"):
        raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
    if isinstance(p, bool) or not isinstance(p, Real) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    flip = (torch.rand(len(x), generator=generator) < p).to(x.device)[:, None, None, None]
    flipped = hflip(x) if direction == "horizontal" else vflip(x)
    return torch.where(flip, flipped, x)


class Compose:
    """Apply augmentations ``f(x, generator)`` in order, all drawing from one generator.

    >>> augment = Compose([lambda x, g: random_translate(x, 1, g)], seed=0)
    >>> augment(images)  # a fresh draw at every call; the same sequence for the same seed
    """

    def __init__(self, steps: Sequence[Augmentation], *, seed: int = 0):
        steps = list(steps)
        if not all(callable(s) for s in steps):
            raise ValueError("every step must be a callable f(images, generator) -> images")
        self.steps = steps
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_images(x)
        for step in self.steps:
            x = step(x, self.generator)
        return x


class AugmentedLoss:
    """A ``compute_loss(model, batch)`` for ``fit``: augment the batch's images, then ``loss_fn``.

    ``fit`` calls ``compute_loss`` for training batches only, so validation and test data are
    never augmented. ``image_shape`` reshapes flat inputs for the augmentation and back
    (e.g. ``(1, 8, 8)`` for 64 pixels); ``calls`` and ``images_seen`` count what was augmented.
    """

    def __init__(self, augment: Callable[[torch.Tensor], torch.Tensor], *,
                 loss_fn: Callable = F.cross_entropy, image_shape: tuple[int, ...] | None = None):
        if not callable(augment):
            raise ValueError("augment must be a callable images -> images (e.g. a Compose)")
        self.augment, self.loss_fn, self.image_shape = augment, loss_fn, image_shape
        self.calls, self.images_seen = 0, 0

    def __call__(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        X, y = batch[0], batch[1]
        if not model.training:
            raise ValueError("AugmentedLoss augments training batches; the model is in eval mode")
        shape = X.shape
        images = X.reshape(len(X), *self.image_shape) if self.image_shape is not None else X
        X = self.augment(images).reshape(shape)
        self.calls += 1
        self.images_seen += len(X)
        return self.loss_fn(model(X), y)

"""Real photographs and textures that ship inside scikit-image and scikit-learn (chapter 5).

Nothing is downloaded: ``skimage.data`` bundles a few dozen images with the package and
scikit-learn bundles two photographs (``china``, ``flower``). Images come back as float32
tensors in [0, 1] laid out as PyTorch expects, channels first: (3, H, W) for colour photos
and (1, H, W) for grey ones. ``photo_batch`` resizes several photos to one size (bilinear,
with antialiasing) so they stack into a batch (N, 3, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

COLOUR = ("astronaut", "chelsea", "coffee", "rocket", "china", "flower")  # RGB photographs
GREY = ("camera", "coins", "brick", "grass", "gravel", "moon", "text")  # single-channel images
TEXTURES = ("brick", "grass", "gravel")  # grey textures of 512 x 512 pixels

_SKLEARN = ("china", "flower")


def _load(name: str) -> np.ndarray:
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - scikit-image is a dependency of the package
        raise ImportError("photos need scikit-image: pip install scikit-image") from err
    return getattr(skimage.data, name)()


def photo(name: str) -> torch.Tensor:
    """One bundled image as a float32 tensor in [0, 1]: (3, H, W) for a colour photo, (1, H, W) for a grey one."""
    if name not in COLOUR + GREY:
        raise ValueError(f"unknown photo {name!r}: choose a colour photo from {COLOUR} or a grey image "
                         f"from {GREY} (all ship with scikit-image or scikit-learn, no download)")
    array = np.asarray(_load(name))
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: expected 8-bit pixels, got {array.dtype}")
    image = torch.from_numpy(array.astype(np.float32) / 255.0)
    return image.permute(2, 0, 1).contiguous() if image.ndim == 3 else image.unsqueeze(0)


def photo_batch(names: Sequence[str] = COLOUR, size: int | tuple[int, int] = 256) -> torch.Tensor:
    """Several colour photos resized to one size: a batch (N, 3, H, W) in [0, 1]."""
    names = list(names)
    if not names:
        raise ValueError("photo_batch needs at least one photo name")
    grey = [n for n in names if n in GREY]
    if grey:
        raise ValueError(f"photo_batch stacks colour photos (3 channels); {grey} are grey: use photo() for them")
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"size must be a positive int or a pair (H, W) of positive ints, got {size!r}")
    images = [F.interpolate(photo(n)[None], size=size, mode="bilinear", antialias=True, align_corners=False)
              for n in names]
    return torch.cat(images).clamp_(0.0, 1.0)

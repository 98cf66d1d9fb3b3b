"""Small convolutional networks: the output-size formula and a layer-list builder (chapter 1, section 6).

``conv_output_size`` is the formula floor((H + 2P - K) / S) + 1 of section 1.6. ``conv_features``
builds a feature extractor from a list in the style of the VGG configurations: an int ``c``
adds ``Conv2d(previous, c, kernel_size, padding=kernel_size // 2)`` and a ReLU (the size is
kept), ``"M"`` adds ``MaxPool2d(2)`` (the size is halved, rounded down). The extractor ends
with ``Flatten``, after ``AdaptiveAvgPool2d(1)`` if ``global_pool``. ``cnn_classifier`` adds
one ``Linear`` layer on top: ``model[0]`` is the extractor, ``model[1]`` the classifier, so
the features of a trained network are ``model[0](X)``. Layers are created in order, input to
output, each drawing PyTorch's default initialisation from the global random stream: the
same seed gives the same weights as the same layers written out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from torch import nn

POOL = "M"  # the layer-list entry for a 2x2 max-pooling layer


def _positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as a Python int if it is an integer >= ``minimum`` (NumPy integers included), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length along one axis of a convolution or pooling layer: floor((H + 2P - D(K-1) - 1) / S) + 1.

    With ``dilation=1`` this is floor((H + 2P - K) / S) + 1. Raises ValueError when the
    (padded) input is smaller than the kernel, so that no output position exists.
    """
    size, kernel_size = _positive_int("size", size), _positive_int("kernel_size", kernel_size)
    stride, dilation = _positive_int("stride", stride), _positive_int("dilation", dilation)
    padding = _positive_int("padding", padding, minimum=0)
    span = dilation * (kernel_size - 1) + 1  # input positions one output position reads
    if size + 2 * padding < span:
        raise ValueError(f"an input of size {size} with padding {padding} is smaller than the kernel's "
                         f"span {span}: no output position fits")
    return (size + 2 * padding - span) // stride + 1


def _check_cfg(cfg: Sequence) -> list:
    cfg = list(cfg)
    if not cfg or not any(not isinstance(v, str) for v in cfg):
        raise ValueError(f"cfg must list at least one channel count (and optionally {POOL!r}), got {cfg!r}")
    for v in cfg:
        if v != POOL if isinstance(v, str) else (isinstance(v, bool) or not isinstance(v, Integral) or v < 1):
            raise ValueError(f"cfg entries must be positive ints (output channels) or {POOL!r}, got {v!r}")
    return [v if isinstance(v, str) else int(v) for v in cfg]


def conv_features(cfg: Sequence, in_channels: int = 1, *, kernel_size: int = 3,
                  global_pool: bool = False) -> nn.Sequential:
    """Conv-ReLU layers and 2x2 max pools as listed in ``cfg`` (e.g. ``[32, "M", 64, "M"]``), then Flatten.

    Maps images (B, in_channels, H, W) to features (B, F): F = C * H' * W' for the last
    channel count C and the final size H' x W', or F = C with ``global_pool`` (the mean over
    positions, whatever the image size). ``kernel_size`` must be odd, so that the padding
    ``kernel_size // 2`` keeps the size.
    """
    cfg = _check_cfg(cfg)
    in_channels = _positive_int("in_channels", in_channels)
    kernel_size = _positive_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (padding k // 2 keeps the size), got {kernel_size}")
    layers, channels = [], in_channels
    for v in cfg:
        if v == POOL:
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size, padding=kernel_size // 2), nn.ReLU()]
            channels = v
    if global_pool:
        layers.append(nn.AdaptiveAvgPool2d(1))
    return nn.Sequential(*layers, nn.Flatten())


def feature_size(cfg: Sequence, image_size: int, *, global_pool: bool = False) -> int:
    """Length F of the feature vector ``conv_features(cfg, ...)`` gives for square images of side ``image_size``."""
    cfg = _check_cfg(cfg)
    size = _positive_int("image_size", image_size)
    for v in cfg:
        if v == POOL:
            if size < 2:
                raise ValueError(f"cfg {cfg!r} pools an image of side {image_size} below one pixel")
            size = conv_output_size(size, 2, stride=2)
    channels = [v for v in cfg if v != POOL][-1]
    return channels if global_pool else channels * size * size


def cnn_classifier(cfg: Sequence, image_size: int, num_classes: int, in_channels: int = 1, *,
                   kernel_size: int = 3, global_pool: bool = False) -> nn.Sequential:
    """``nn.Sequential(conv_features(cfg, ...), nn.Linear(F, num_classes))`` for square images of side ``image_size``."""
    num_classes = _positive_int("num_classes", num_classes)
    features = conv_features(cfg, in_channels, kernel_size=kernel_size, global_pool=global_pool)
    return nn.Sequential(features, nn.Linear(feature_size(cfg, image_size, global_pool=global_pool),
                                             num_classes))

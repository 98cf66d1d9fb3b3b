"""scikit-learn's 8x8 handwritten digits, split and standardised (introduced in chapter 1).

The one way the course loads the digits: ``digits_split`` for a train/test split,
``digits_data`` for train/validation/test, ``digits_images`` for the raw 8x8 images,
``digits_images_split`` for the raw images split like ``digits_split``.
Every split is stratified and fixed by its seed; the standardised ones use the training
part's statistics only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


def _fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}")


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as ``(N, 8, 8)`` floats in 0..16 and their labels ``(N,)``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


def digits_images_split(test_size: float = 0.2, seed: int = 0):
    """The raw images split as ``digits_split`` splits them (same rows), ink scaled to [0, 1].

    Returns ``images_train (N, 8, 8), images_test, y_train (N,), y_test`` as tensors (float32,
    long); nothing is standardised, so the images can be placed on a canvas (section 2.6).
    """
    from sklearn.model_selection import train_test_split

    _fraction("test_size", test_size)
    images, y = digits_images()
    im_train, im_test, y_train, y_test = train_test_split(
        images, y, test_size=test_size, random_state=seed, stratify=y)
    return (torch.tensor(im_train, dtype=torch.float32) / 16, torch.tensor(im_test, dtype=torch.float32) / 16,
            labels(y_train), labels(y_test))


def digits_split(test_size: float = 0.2, seed: int = 0, dtype=torch.float32):
    """Train and test parts, standardised with training statistics.

    Returns ``X_train (N, 64), X_test, y_train (N,), y_test`` as tensors; the split is
    stratified and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _fraction("test_size", test_size)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y)
    X_train, X_test = standardise(X_train, X_test, dtype=dtype)
    return X_train, X_test, labels(y_train), labels(y_test)


class Data(NamedTuple):
    """Train, validation and test tensors: ``X_*`` (N, 64) standardised, ``y_*`` (N,)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor


def digits_data(val_size: float = 0.2, test_size: float = 0.2, seed: int = 0) -> Data:
    """Train, validation and test parts (stratified), standardised with training statistics only."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _fraction("val_size", val_size)
    _fraction("test_size", test_size)
    if val_size + test_size >= 1.0:
        raise ValueError(f"val_size + test_size must leave a training set, got {val_size} + {test_size}")
    X, y = load_digits(return_X_y=True)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1.0 - test_size), random_state=seed, stratify=y_rest)
    X_train, X_val, X_test = standardise(X_train, X_val, X_test)
    return Data(X_train, labels(y_train), X_val, labels(y_val), X_test, labels(y_test))


def standardise(X_train: np.ndarray, *others: np.ndarray, dtype=torch.float32) -> list[torch.Tensor]:
    """``X_train`` and each of ``others`` as tensors, standardised per column with ``X_train``'s statistics."""
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    # A few border pixels are blank in every training image: leave them unscaled, otherwise
    # a test image with ink there would be divided by ~0.
    std = np.where(std > 0, std, 1.0)
    return [torch.tensor((a - mean) / std, dtype=dtype) for a in (X_train, *others)]


def labels(y) -> torch.Tensor:
    """Class labels as a long tensor."""
    return torch.tensor(np.asarray(y), dtype=torch.long)

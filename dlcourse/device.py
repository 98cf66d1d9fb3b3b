"""Device selection and synchronised timing (introduced in chapter 0)."""

from __future__ import annotations

import time

import torch

_KNOWN = ("cuda", "mps", "cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` forces one kind ("cuda", "mps" or "cpu"); asking for one that is not
    available raises ``RuntimeError`` rather than silently falling back.
    """
    if prefer is not None:
        kind = str(prefer).split(":")[0].lower()
        if kind not in _KNOWN:
            raise ValueError(
                f"unknown device {prefer!r}: expected one of {', '.join(_KNOWN)} "
                "(or None to choose automatically)"
            )
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                "CUDA was requested but torch.cuda.is_available() is False: install a "
                "CUDA build of PyTorch on a machine with an NVIDIA GPU, or pass prefer=None"
            )
        if kind == "mps" and not _mps_available():
            raise RuntimeError(
                "MPS was requested but is not available: it needs Apple silicon and a "
                "PyTorch build with MPS support; pass prefer=None to fall back to the CPU"
            )
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device`` so that wall-clock timing is honest."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


class Timer:
    """Context manager measuring wall time, synchronising the device on entry and exit.

    >>> with Timer(device) as t:
    ...     y = model(x)
    >>> t.seconds
    """

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.seconds: float = float("nan")

    def __enter__(self) -> "Timer":
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start

"""Measuring what a processor delivers: FLOP counts, honest timing, threads, peaks (chapter 4, 4.1-4.2).

``matmul_flops``, ``dense_flops`` and the byte counts say how much work an operation does and
how much memory it must move at the least. ``time_call`` times a function the way a benchmark
should (warm-up, synchronised device, enough calls per measurement, the median of repeats).
``time_interleaved`` times several functions in turns, so that a busy moment of a shared
machine does not favour one of them. ``num_threads`` runs a block with another number of
PyTorch CPU threads and always restores the previous number. ``cpu_info``,
``blas_libraries``, ``hardware_description`` and ``device_label`` name the hardware and
libraries behind a figure.
"""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import torch

from ..device import Timer

# CPU flags that matter for dense arithmetic: vector width, fused multiply-add, low-precision dot products.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------- counting work and traffic

def matmul_flops(m: int, k: int, n: int) -> int:
    """Floating-point operations of an (m, k) @ (k, n) product: one multiply and one add per term, 2mkn."""
    m, k, n = (_positive_int(name, v) for name, v in (("m", m), ("k", k), ("n", n)))
    return 2 * m * k * n


def _check_layer(batch, in_features, out_features) -> None:
    for name, value in (("batch", batch), ("in_features", in_features), ("out_features", out_features)):
        _positive_int(name, value)


def dense_flops(batch: int, in_features: int, out_features: int, *, bias: bool = True,
                relu: bool = True) -> int:
    """Operations of ``relu(x @ W + b)`` for ``x`` (batch, in), ``W`` (in, out): the matmul's 2·b·i·o,
    plus b·o for the bias and b·o for the ReLU (a comparison is counted as one operation)."""
    _check_layer(batch, in_features, out_features)
    flops = matmul_flops(batch, in_features, out_features)
    return flops + (batch * out_features) * (int(bias) + int(relu))


def matmul_bytes(m: int, k: int, n: int, itemsize: int = 4) -> int:
    """The least memory traffic of an (m, k) @ (k, n) product: read both operands once, write the result once."""
    m, k, n = (_positive_int(name, v) for name, v in (("m", m), ("k", k), ("n", n)))
    return _positive_int("itemsize", itemsize) * (m * k + k * n + m * n)


def dense_bytes(batch: int, in_features: int, out_features: int, itemsize: int = 4) -> int:
    """The least traffic of ``relu(x @ W + b)``: x, W and b read once, y written once (fused bias and ReLU)."""
    _check_layer(batch, in_features, out_features)
    return matmul_bytes(batch, in_features, out_features, itemsize) + itemsize * out_features


def elementwise_bytes(numel: int, itemsize: int = 4, *, reads: int = 2, writes: int = 1) -> int:
    """Traffic of an elementwise op over ``numel`` elements that reads ``reads`` and writes ``writes`` arrays
    (``c = a + b``: reads=2, writes=1; a copy: reads=1, writes=1)."""
    _positive_int("numel", numel)
    _positive_int("itemsize", itemsize)
    _positive_int("reads", reads, minimum=0)
    _positive_int("writes", writes, minimum=0)
    if reads + writes == 0:
        raise ValueError("an elementwise op must read or write at least one array (reads + writes >= 1)")
    return numel * itemsize * (reads + writes)


def arithmetic_intensity(flops: float, nbytes: float) -> float:
    """Operations per byte of memory traffic, the x-axis of a roofline."""
    if isinstance(flops, bool) or not isinstance(flops, (int, float)) or flops < 0:
        raise ValueError(f"flops must be a number >= 0, got {flops!r}")
    return float(flops) / _positive_number("nbytes", nbytes)


# ---------------------------------------------------------------- timing

class Timing(NamedTuple):
    """Seconds per call of a timed function: ``times`` holds one value per repeat (each the mean
    of ``number`` calls); ``median`` is what to report, ``spread`` its interquartile range, and
    ``best`` the fastest repeat (what a peak benchmark reports)."""

    times: tuple[float, ...]
    number: int

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def spread(self) -> tuple[float, float]:
        """The 25th and 75th percentiles of ``times`` (equal to the median for one repeat)."""
        if len(self.times) < 2:
            return self.median, self.median
        q1, _, q3 = statistics.quantiles(self.times, n=4, method="inclusive")
        return q1, q3

    def rate(self, work: float) -> float:
        """``work`` (operations or bytes) per second at the median time."""
        return _positive_number("work", work) / self.median

    def best_rate(self, work: float) -> float:
        """``work`` per second at the fastest repeat: the best the hardware did, for a ceiling."""
        return _positive_number("work", work) / self.best

    def rate_spread(self, work: float) -> tuple[float, float]:
        """``work`` per second at the slow and the fast quartile of ``times``."""
        slow, fast = self.spread[1], self.spread[0]
        return _positive_number("work", work) / slow, work / fast


def time_call(fn: Callable[[], object], *, device: torch.device | str = "cpu", repeats: int = 7,
              warmup: int = 1, number: int | None = None, min_seconds: float = 0.02) -> Timing:
    """Time ``fn()`` honestly: ``warmup`` untimed calls, then ``repeats`` measurements of ``number`` calls.

    Each measurement synchronises ``device`` before and after (``dlcourse.Timer``), so queued GPU
    kernels are counted. ``number=None`` picks enough calls per measurement to last about
    ``min_seconds``, so that very short calls are not drowned by the clock's resolution.
    """
    if not callable(fn):
        raise ValueError(f"fn must be a callable taking no arguments, got {type(fn).__name__}")
    _positive_int("repeats", repeats)
    _positive_int("warmup", warmup, minimum=0)
    _positive_number("min_seconds", min_seconds)
    for _ in range(warmup):
        fn()
    if number is None:
        with Timer(device) as probe:
            fn()
        number = max(1, min(10_000, math.ceil(min_seconds / max(probe.seconds, 1e-9))))
    _positive_int("number", number)
    times = []
    for _ in range(repeats):
        with Timer(device) as t:
            for _ in range(number):
                fn()
        times.append(t.seconds / number)
    return Timing(tuple(times), number)


def time_interleaved(fns: Mapping[str, Callable[[], object]], *, device: torch.device | str = "cpu",
                     repeats: int = 7, warmup: int = 1, min_seconds: float = 0.02) -> dict[str, Timing]:
    """Time several functions in turns: repeat ``repeats`` times, timing each function once per round.

    On a machine shared with other processes, a slow period then slows every function a
    little instead of one function a lot, so their ratios (an achieved rate against a
    measured peak) are fair. Each function gets its own warm-up and number of calls per
    measurement, as in ``time_call``.
    """
    if not isinstance(fns, Mapping) or not fns or not all(callable(fn) for fn in fns.values()):
        raise ValueError("fns must map at least one name to a callable taking no arguments")
    _positive_int("repeats", repeats)
    numbers = {name: time_call(fn, device=device, repeats=1, warmup=warmup, min_seconds=min_seconds).number
               for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            with Timer(device) as t:
                for _ in range(numbers[name]):
                    fn()
            times[name].append(t.seconds / numbers[name])
    return {name: Timing(tuple(times[name]), numbers[name]) for name in fns}


# ---------------------------------------------------------------- threads

def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def num_threads(n: int) -> Iterator[int]:
    """Run the ``with`` block with ``n`` PyTorch CPU threads, then restore the previous number,
    also when the block raises. The notebooks' thread policy stays with ``dlcourse.setup``."""
    _positive_int("n (the number of threads)", n)
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------- the hardware behind a figure

def cpu_info() -> dict[str, object]:
    """The CPU's model name, usable cores, PyTorch's threads and SIMD level, and its arithmetic flags.

    ``flags`` lists the entries of ``CPU_FLAGS`` that ``/proc/cpuinfo`` reports (empty off Linux).
    """
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flag_line = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    flags = set(flag_line.group(1).split()) if flag_line else set()
    return {"model": model.group(1).strip() if model else (platform.processor() or platform.machine()),
            "cores": available_cpus(), "torch_threads": torch.get_num_threads(),
            "capability": torch.backends.cpu.get_cpu_capability(),
            "flags": [f for f in CPU_FLAGS if f in flags]}


def blas_libraries() -> dict[str, str]:
    """The BLAS library behind NumPy's and PyTorch's CPU matmul, e.g. ``{"numpy": "openblas", "torch": "mkl"}``."""
    numpy_blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        import numpy  # noqa: F401  (loads NumPy's BLAS so that threadpoolctl can see it)

        apis = [i for i in threadpool_info() if i.get("user_api") == "blas" and "numpy" in i.get("filepath", "")]
        numpy_blas = apis[0]["internal_api"] if apis else numpy_blas
    except ImportError:
        pass
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return {"numpy": numpy_blas, "torch": found.group(1) if found else "unknown"}


def hardware_description(device: torch.device | str) -> str:
    """What decides low-precision speed on ``device``: a GPU's name and compute capability, or a
    CPU's model, SIMD level and arithmetic flags, e.g. ``"AMD EPYC, AVX512, flags: avx2, fma, avx512_bf16"``."""
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)}, compute capability {major}.{minor}"
    if device.type == "cpu":
        info = cpu_info()
        return f"{info['model']}, {info['capability']}, flags: {', '.join(info['flags']) or 'none reported'}"
    return f"{device.type.upper()} device"


def device_label(device: torch.device | str) -> str:
    """A short name of the hardware behind ``device``'s figures, e.g. ``"NVIDIA H100 (CUDA)"``
    or ``"AMD EPYC (CPU, 1 thread)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"{cpu_info()['model']} (CPU, {threads} thread{'s' * (threads > 1)})"
    return f"{device.type.upper()} device"

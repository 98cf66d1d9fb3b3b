"""The roofline model: the best rate an operation can reach given its arithmetic intensity (chapter 4, 4.2).

Williams et al. (2009): an operation that does ``F`` operations while moving ``Q`` bytes has
arithmetic intensity ``I = F / Q``. On a processor with peak compute ``P`` (FLOP/s) and memory
bandwidth ``B`` (bytes/s) it cannot run faster than ``min(P, I * B)``. Below the ridge point
``P / B`` an operation is memory-bound, above it compute-bound. ``plot_roofline`` draws the
roof from measured peaks and places measured operations under it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..plot import PALETTE


def _check_peaks(peak_flops, bandwidth) -> tuple[float, float]:
    for name, value in (("peak_flops", peak_flops), ("bandwidth", bandwidth)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not value > 0 \
                or not np.isfinite(value):
            raise ValueError(f"{name} must be a positive finite number (per second), got {value!r}")
    return float(peak_flops), float(bandwidth)


def roofline_bound(intensity, peak_flops: float, bandwidth: float):
    """The attainable rate ``min(peak_flops, intensity * bandwidth)`` at each ``intensity`` (FLOP per byte).

    ``intensity`` may be a number (returns a float) or an array (returns an array).
    """
    peak_flops, bandwidth = _check_peaks(peak_flops, bandwidth)
    values = np.asarray(intensity, dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"intensity must be positive finite FLOP per byte, got {intensity!r}")
    bound = np.minimum(peak_flops, values * bandwidth)
    return float(bound) if bound.ndim == 0 else bound


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """The intensity ``peak_flops / bandwidth`` where the roof bends: below it memory limits, above it compute."""
    peak_flops, bandwidth = _check_peaks(peak_flops, bandwidth)
    return peak_flops / bandwidth


def bound_by(intensity: float, peak_flops: float, bandwidth: float) -> str:
    """``"memory"`` if an operation of this intensity sits left of the ridge point, else ``"compute"``."""
    roofline_bound(intensity, peak_flops, bandwidth)  # validates
    return "memory" if intensity < ridge_point(peak_flops, bandwidth) else "compute"


def plot_roofline(ax, peak_flops: float, bandwidth: float, points: Mapping[str, tuple[float, float]], *,
                  extra_ceilings: Mapping[str, float] | None = None, roof_label: str = "roof",
                  unit: float = 1e9, unit_name: str = "GFLOP/s", title: str = ""):
    """Draw the roof of ``peak_flops`` and ``bandwidth`` on log-log axes and place the measured ``points``.

    ``points`` maps a label to ``(intensity in FLOP/byte, achieved FLOP/s)``; ``extra_ceilings``
    maps a label to a further compute ceiling in FLOP/s (another precision, say), drawn dashed.
    ``roof_label`` names the main ceiling in the legend. Rates are divided by ``unit`` for display.
    Returns ``ax``.
    """
    peak_flops, bandwidth = _check_peaks(peak_flops, bandwidth)
    if not points:
        raise ValueError("points must name at least one measured operation: {label: (intensity, flops_per_s)}")
    for label, point in points.items():
        if len(point) != 2 or not all(np.isfinite(point)) or min(point) <= 0:
            raise ValueError(f"point {label!r} must be (intensity > 0, achieved FLOP/s > 0), got {point!r}")
    ceilings = dict(extra_ceilings or {})
    intensities = [p[0] for p in points.values()]
    ridges = [ridge_point(peak_flops, bandwidth)] + [ridge_point(c, bandwidth) for c in ceilings.values()]
    lo = min(intensities + ridges) / 4
    hi = max(intensities + ridges) * 4
    x = np.geomspace(lo, hi, 200)
    ax.loglog(x, roofline_bound(x, peak_flops, bandwidth) / unit, color="black", lw=2,
              label=f"{roof_label}: {peak_flops / unit:.3g} {unit_name}, {bandwidth / 1e9:.3g} GB/s")
    for label, ceiling in ceilings.items():
        ax.loglog(x, roofline_bound(x, ceiling, bandwidth) / unit, color="grey", lw=1, ls="--",
                  label=f"{label}: {ceiling / unit:.3g} {unit_name}")
    ax.axvline(ridges[0], color="grey", lw=0.8, ls=":")
    for k, (label, (intensity, achieved)) in enumerate(points.items()):
        ax.loglog(intensity, achieved / unit, "o", ms=8, color=PALETTE[k % len(PALETTE)], label=label)
    ax.set(xlabel="arithmetic intensity (FLOP per byte)", ylabel=f"attainable rate ({unit_name})", title=title)
    ax.legend(fontsize=8, loc="lower right")
    return ax

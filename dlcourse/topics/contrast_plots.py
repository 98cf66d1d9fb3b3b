"""Figures and the widget of global contrast normalisation (chapter 5, section 5.2)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .contrast import check_images, contrast, global_contrast_normalise, to_display

SPAN = 2.0  # GCN output in [-SPAN, SPAN] is shown as black .. white (s = 1 puts about 95 % of values there)


def _show(ax, image: torch.Tensor, title: str) -> None:
    """One image (C, H, W) in [0, 1] on ``ax``, without ticks."""
    array = image.detach().cpu().permute(1, 2, 0).numpy()
    ax.imshow(array[..., 0] if array.shape[2] == 1 else array, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _check_titles(images: torch.Tensor, titles: Sequence[str]) -> list[str]:
    check_images(images, channels=(1, 3), name="images")
    titles = list(titles)
    if len(titles) != images.shape[0]:
        raise ValueError(f"need one title per image: {images.shape[0]} images, {len(titles)} titles")
    return titles


def plot_gcn_points(points: torch.Tensor, lams: Sequence[float] = (0.0, 1.0), *, s: float = 1.0,
                    eps: float = 1e-8) -> Figure:
    """Goodfellow et al. (2016), fig. 12.1: 2-D points raw, then scaled by GCN for each lambda in ``lams``.

    ``points`` is (N, 2). As in the book's figure, only the scaling step is applied (no mean
    subtraction, which in two dimensions would put every point on the line x2 = -x1): with
    lambda = 0 every point lands on the circle of radius s·sqrt(2).
    """
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be a tensor (N, 2), got {getattr(points, 'shape', points)!r}")
    as_images = points.float().reshape(-1, 1, 1, 2)  # each point is a 1 x 2 grey "image"
    panels = [("raw input", points)] + [
        (f"GCN, λ = {lam:g}", global_contrast_normalise(as_images, s, lam, eps, centre=False).reshape(-1, 2))
        for lam in lams]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), layout="constrained")
    limit = 1.1 * max(float(p.abs().max()) for _, p in panels)
    radius = s * 2 ** 0.5
    circle = torch.linspace(0, 2 * torch.pi, 200)
    for ax, (title, p) in zip(axes, panels):
        ax.plot(radius * circle.cos(), radius * circle.sin(), color="grey", lw=0.8, ls="--")
        ax.scatter(p[:, 0].cpu(), p[:, 1].cpu(), s=8, alpha=0.7)
        ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal", title=title,
               xlabel="$x_1$", ylabel="$x_2$")
    return fig


def plot_gcn_photos(images: torch.Tensor, titles: Sequence[str], s: float = 1.0, lam: float = 0.0,
                    eps: float = 1e-8) -> Figure:
    """Inputs (top row) and their GCN output (bottom row, [-2, 2] shown as black .. white), contrasts in titles."""
    titles = _check_titles(images, titles)
    out = global_contrast_normalise(images, s, lam, eps)
    before, after = contrast(images).tolist(), contrast(out).tolist()
    n = images.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(2.3 * n, 5.0), layout="constrained", squeeze=False)
    for j in range(n):
        _show(axes[0, j], images[j], f"{titles[j]}\ncontrast {before[j]:.3g}")
        _show(axes[1, j], to_display(out[j:j + 1], span=SPAN)[0], f"GCN: contrast {after[j]:.3g}")
    fig.suptitle(f"GCN with s = {s:g}, λ = {lam:g}, ε = {eps:g} (bottom row: values in [-2, 2] "
                 "shown black to white)", fontsize=10)
    return fig


def plot_gcn_grid(images: torch.Tensor, titles: Sequence[str],
                  settings: Sequence[tuple[float, float, float]]) -> Figure:
    """Small multiples: the inputs, then one row of GCN output per setting (s, lam, eps)."""
    titles = _check_titles(images, titles)
    if not settings:
        raise ValueError("settings must list at least one (s, lam, eps) triple")
    n, rows = images.shape[0], len(settings) + 1
    fig, axes = plt.subplots(rows, n, figsize=(2.0 * n, 2.0 * rows), layout="constrained", squeeze=False)
    for j in range(n):
        _show(axes[0, j], images[j], titles[j])
    for i, (s, lam, eps) in enumerate(settings, start=1):
        out = to_display(global_contrast_normalise(images, s, lam, eps), span=SPAN)
        for j in range(n):
            _show(axes[i, j], out[j], f"s={s:g}, λ={lam:g}, ε={eps:g}" if j == 0 else "")
    return fig


def gcn_widget(images: torch.Tensor, titles: Sequence[str], *, s: float = 1.0, lam: float = 0.0,
               eps: float = 1e-8):
    """The GCN widget: sliders for s, lambda (linear) and eps (log scale) over ``images``."""
    import ipywidgets as w

    from ..widgets import interactive_figure

    titles = _check_titles(images, titles)
    global_contrast_normalise(images[:1], s, lam, eps)  # a clear error now rather than in the first redraw
    style = {"description_width": "initial"}
    controls = {
        "s": w.FloatSlider(value=s, min=0.1, max=2.0, step=0.1, description="s", continuous_update=False),
        "lam": w.FloatSlider(value=lam, min=0.0, max=0.1, step=0.002, readout_format=".3f", description="λ",
                             continuous_update=False),
        "eps": w.FloatLogSlider(value=max(eps, 1e-8), base=10, min=-8, max=0, step=0.5, description="ε",
                                continuous_update=False, style=style),
    }

    def draw(s, lam, eps):
        return plot_gcn_photos(images, titles, s, lam, eps)

    return interactive_figure(draw, controls)

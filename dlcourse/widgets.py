"""Interactive figures that also read on the static site (introduced in chapter 1).

A widget here wraps a *pure* plotting function ``draw(**params) -> Figure``. The
default figure is displayed as an ordinary output, so the static site shows it; the
controls follow, and in a live kernel they redraw that same output through its
display handle. On the static site the controls are replaced by a one-line note, so
no control appears that would do nothing there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

STATIC_NOTE = (
    "<p><em>Interactive controls ({names}) appear here when the notebook runs "
    "(launch it in Colab or JupyterLab with the buttons at the top of the page).</em></p>"
)


def display(*args, **kwargs):
    """IPython's ``display``, looked up at call time (tests replace it)."""
    from IPython.display import display as _display

    return _display(*args, **kwargs)


def _check_draw(draw: Callable, names: list[str]) -> None:
    if not callable(draw):
        raise TypeError(f"draw must be a function returning a matplotlib Figure, got {draw!r}")
    params = inspect.signature(draw).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(
            f"draw() has no parameter named {', '.join(map(repr, missing))}; each control's "
            f"name must be a keyword of draw (draw takes {', '.join(params) or 'nothing'})"
        )


def _render(draw: Callable, values: dict) -> Figure:
    fig = draw(**values)
    if not isinstance(fig, Figure):
        raise TypeError(f"draw(**{values!r}) returned {type(fig).__name__}, expected a matplotlib Figure")
    plt.close(fig)  # the display handle owns it now; keep pyplot from showing it twice
    return fig


def controls_bundle(box, names: list[str]) -> dict:
    """The display bundle for ``box``: the live widget view plus an HTML note for static pages."""
    view = {"version_major": 2, "version_minor": 0, "model_id": box.model_id}  # ipywidgets 7 and 8 alike
    return {"application/vnd.jupyter.widget-view+json": view,
            "text/html": STATIC_NOTE.format(names=", ".join(names))}


def interactive_figure(draw: Callable[..., Figure], controls: Mapping[str, object]):
    """Show ``draw(**defaults)`` as a normal figure, then ``controls`` that redraw it.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets value widget whose
    current ``value`` is the default. Returns ``(handle, box)``: the display handle of
    the figure and the ``VBox`` of controls.
    """
    import ipywidgets as widgets

    if not isinstance(controls, Mapping) or not controls:
        raise ValueError("controls must be a non-empty mapping of draw's keyword -> ipywidgets widget")
    for name, control in controls.items():
        if not isinstance(control, widgets.ValueWidget):
            raise TypeError(
                f"control {name!r} is a {type(control).__name__}; expected an ipywidgets value "
                "widget such as IntSlider, Dropdown or Checkbox"
            )
    names = list(controls)
    _check_draw(draw, names)

    def current() -> dict:
        return {name: control.value for name, control in controls.items()}

    handle = display(_render(draw, current()), display_id=True)
    box = widgets.VBox(list(controls.values()))

    def redraw(_change=None) -> None:
        handle.update(_render(draw, current()))

    for control in controls.values():
        control.observe(redraw, names="value")
    display(controls_bundle(box, names), raw=True)
    return handle, box

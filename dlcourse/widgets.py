"""Interactive figures that also read on the static site (introduced in chapter 1).

A widget here wraps a *pure* plotting function ``draw(**params) -> Figure``. The figure
lives in an ``ipywidgets.Image`` in the same box as its controls, so the frontend keeps it
with the controls' state: after a page reload, or when the notebook is closed and opened
again while the kernel runs, the controls still redraw it. The output also carries an HTML
fallback, the default figure and a one-line note, which the static site (and a notebook
opened without a kernel) shows instead of controls that could do nothing there.

Nothing a control does fails silently: an error while drawing is shown in plain words
above the figure (the previous figure stays, the controls stay usable), and a warning
raised while drawing, such as "this input is not of the kind the model was trained on",
is shown as a note.
"""

from __future__ import annotations

import base64
import html
import inspect
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_NOTE = ("<p><em>Interactive controls ({names}) appear here when this cell runs in Jupyter or "
               "Colab.</em></p>")
STYLE = {"description_width": "initial"}  # descriptions are never cut ("decoder s…")


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


def figure_png(fig: Figure) -> bytes:
    """The PNG a notebook would show for ``fig`` (same cropping as the inline backend)."""
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", bbox_inches="tight")


def _paragraph(kind: str, text: str) -> str:
    colour = {"error": "#b00020", "note": "#8a5a00", "hint": "#555555"}[kind]
    prefix = {"error": "Could not draw this: ", "note": "Note: ", "hint": ""}[kind]
    return f'<p style="color:{colour}; margin:2px 0">{html.escape(prefix + text)}</p>'


class InteractiveFigure:
    """A figure ``draw(**values)`` shown with the ``controls`` that choose its values.

    ``adjust(controls, changed)``, if given, runs before each redraw (and once at the
    start, with ``changed=None``) to keep the controls consistent with each other, for
    example a slider's range with the chosen example; it may return a hint shown above the
    figure. Attributes: ``controls``, ``box`` (what the notebook shows), ``image``,
    ``message``, ``figure`` (the last figure drawn), ``error`` (the last error, or None),
    ``draws`` (how many figures were drawn) and ``seconds`` (time of the last drawing).
    """

    def __init__(self, draw: Callable[..., Figure], controls: Mapping[str, object],
                 adjust: Callable[[dict, str | None], str | None] | None = None):
        import ipywidgets as widgets

        if not isinstance(controls, Mapping) or not controls:
            raise ValueError("controls must be a non-empty mapping of draw's keyword -> ipywidgets widget")
        for name, control in controls.items():
            if not isinstance(control, widgets.ValueWidget):
                raise TypeError(
                    f"control {name!r} is a {type(control).__name__}; expected an ipywidgets value "
                    "widget such as IntSlider, Dropdown or Checkbox"
                )
        if adjust is not None and not callable(adjust):
            raise TypeError(f"adjust must be a function (controls, changed) -> hint or None, got {adjust!r}")
        _check_draw(draw, list(controls))
        self.draw, self.controls, self.adjust = draw, dict(controls), adjust
        self.figure, self.error, self.draws, self.seconds = None, None, 0, 0.0
        self._holding = False
        for control in self.controls.values():
            if getattr(control.style, "description_width", None) == "":
                control.style.description_width = STYLE["description_width"]
            if isinstance(control, widgets.Checkbox):
                control.indent = False  # no empty description column before a check box
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.message = widgets.HTML()
        row = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        # controls above the figure: they stay where they are when a new figure has another height
        self.box = widgets.VBox([row, self.message, self.image])
        self._update(None, raise_errors=True)  # a bad default is a clear error now, not a blank widget
        for name, control in self.controls.items():
            control.observe(self._changed, names="value")

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    @contextmanager
    def hold(self):
        """Change several controls at once; one redraw follows at the end."""
        holding, self._holding = self._holding, True
        try:
            yield self
        finally:
            self._holding = holding
        if not holding:
            self._update(None)

    def _changed(self, change) -> None:
        if not self._holding:
            self._update(next((n for n, c in self.controls.items() if c is change["owner"]), None))

    def _update(self, changed: str | None, raise_errors: bool = False) -> bool:
        """Adjust the controls, draw, and show the figure or what went wrong; True if drawn."""
        start = time.perf_counter()
        self._holding, hint, notes = True, None, []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if self.adjust is not None:
                    hint = self.adjust(self.controls, changed)
                values = self.values()
                fig = self.draw(**values)
                if not isinstance(fig, Figure):
                    raise TypeError(f"draw(**{values!r}) returned {type(fig).__name__}, expected a matplotlib Figure")
                png = figure_png(fig)
                plt.close(fig)  # the image widget shows it now; keep pyplot from showing it twice
            notes = list(dict.fromkeys(str(w.message) for w in caught))
        except Exception as error:  # shown to the reader; the controls stay usable
            if raise_errors:
                raise
            self.error = f"{error}" or type(error).__name__
            kept = " The figure below is the previous one." if self.figure is not None else ""
            self.message.value = _paragraph("error", self.error + kept)
            return False
        finally:
            self._holding = False
        self.figure, self.error, self.image.value = fig, None, png
        self.draws, self.seconds = self.draws + 1, time.perf_counter() - start
        self.message.value = "".join([_paragraph("note", n) for n in notes] + ([_paragraph("hint", hint)] if hint else []))
        return True

    def static_html(self) -> str:
        """The fallback a page without a kernel shows: the current figure and a note."""
        png = base64.b64encode(bytes(self.image.value)).decode("ascii")
        fig = self.figure
        title = fig.get_suptitle() or "; ".join(t for t in (ax.get_title() for ax in fig.axes) if t) if fig else ""
        title = html.escape(title, quote=True)
        return (f'<img src="data:image/png;base64,{png}" alt="{title or "figure"}" style="max-width:100%"/>'
                + STATIC_NOTE.format(names=html.escape(", ".join(self.controls))))

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        view = {"version_major": 2, "version_minor": 0, "model_id": self.box.model_id}  # ipywidgets 7 and 8
        return {WIDGET_VIEW: view, "text/html": self.static_html()}


def interactive_figure(draw: Callable[..., Figure], controls: Mapping[str, object], *,
                       adjust: Callable[[dict, str | None], str | None] | None = None) -> InteractiveFigure:
    """Show ``draw(**defaults)`` with ``controls`` that redraw it; return the ``InteractiveFigure``.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets value widget whose current
    ``value`` is the default. Errors in the default figure are raised here; later ones are
    shown in the widget.
    """
    widget = InteractiveFigure(draw, controls, adjust)
    display(widget._repr_mimebundle_(), raw=True)
    return widget

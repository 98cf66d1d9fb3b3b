"""Attention maps and the attention-map widget (introduced in chapter 2, section 5).

An alignment is a matrix ``weights`` of shape (T_out, T_in): row t holds the attention
weights a_tj that decoder step t puts on source position j (each row sums to 1). The plots
put source tokens on the x-axis and output tokens on the y-axis; chapters 6 and 7 reuse
them for speech frames and sentence pairs.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..data.dates import MONTHS


@dataclass
class Alignment:
    """One example: source tokens (T_in), output tokens (T_out), weights (T_out, T_in)."""

    source: list
    output: list
    weights: np.ndarray
    title: str = ""

    def __post_init__(self):
        w = self.weights
        if isinstance(w, torch.Tensor):
            w = w.detach().cpu().numpy()
        w = np.asarray(w, dtype=float)
        self.source, self.output = [str(t) for t in self.source], [str(t) for t in self.output]
        if w.ndim != 2:
            raise ValueError(f"attention weights must be a 2-D matrix (T_out, T_in), got shape {w.shape}")
        if w.shape != (len(self.output), len(self.source)):
            raise ValueError(
                f"attention weights have shape {w.shape} but there are {len(self.output)} output tokens "
                f"and {len(self.source)} source tokens: expected ({len(self.output)}, {len(self.source)}), "
                "rows for output steps and columns for source positions")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("attention weights must be finite and non-negative")
        self.weights = w


def _as_alignment(example) -> Alignment:
    if isinstance(example, Alignment):
        return example
    if isinstance(example, (tuple, list)) and len(example) in (3, 4):
        return Alignment(*example)
    raise TypeError("an example must be an Alignment or a tuple (source_tokens, output_tokens, weights[, title]), "
                    f"got {type(example).__name__}")


def plot_attention(example, *, step: int | None = None, ax=None, cmap: str = "viridis"):
    """Heatmap of one alignment; with ``step``, that decoder step's row is outlined.

    Returns the figure.
    """
    a = _as_alignment(example)
    if step is not None and not 0 <= step < len(a.output):
        raise ValueError(f"step must be in 0..{len(a.output) - 1} (one per output token), got {step}")
    if ax is None:
        width = min(2.0 + 0.32 * len(a.source), 12)
        fig, ax = plt.subplots(figsize=(width, 1.2 + 0.32 * len(a.output)), layout="constrained")
    fig = ax.figure
    im = ax.imshow(a.weights, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(a.source)), a.source, rotation=90, fontsize=8)
    ax.set_yticks(range(len(a.output)), a.output, fontsize=8)
    ax.set(xlabel="source position j", ylabel="output step t", title=a.title or "attention weights a_tj")
    ax.grid(False)
    if step is not None:
        ax.add_patch(plt.Rectangle((-0.5, step - 0.5), len(a.source), 1, fill=False, ec="#D55E00", lw=2))
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="weight")
    return fig


def plot_attention_step(example, step: int):
    """Two panels: the map with step ``step`` outlined, and that step's weights as bars."""
    a = _as_alignment(example)
    fig, (ax_map, ax_bar) = plt.subplots(
        1, 2, figsize=(min(4 + 0.6 * len(a.source), 14), 1.6 + 0.32 * len(a.output)),
        gridspec_kw={"width_ratios": [1, 1]}, layout="constrained")
    plot_attention(a, step=step, ax=ax_map)
    ax_bar.bar(range(len(a.source)), a.weights[step], color="#0072B2")
    ax_bar.set_xticks(range(len(a.source)), a.source, rotation=90, fontsize=8)
    ax_bar.set(ylim=(0, 1), xlabel="source position j", ylabel=f"a_{{{step},j}}",
               title=f"step {step}: emits {a.output[step]!r}")
    return fig


def plot_attention_gallery(examples: Sequence, ncols: int = 2):
    """Small multiples: one heatmap per example."""
    from ..plot import subplots_grid

    alignments = [_as_alignment(e) for e in examples]
    if not alignments:
        raise ValueError("plot_attention_gallery needs at least one example")
    longest = max(len(a.source) for a in alignments)
    fig, axes = subplots_grid(len(alignments), ncols, panel_size=(1.5 + 0.3 * longest, 1.4 + 0.3 * max(
        len(a.output) for a in alignments)), layout="constrained")
    for ax, a in zip(axes, alignments):
        plot_attention(a, ax=ax)
    return fig


def attention_widget(examples: Sequence, translate: Callable[[str], object] | None = None):
    """The attention-map widget: choose an example (or type one), step through decoder steps.

    ``examples`` is a list of alignments; ``translate(text)``, if given, returns the alignment
    of a typed input and enables a text box. Input that ``translate`` refuses (it raises) is
    named above the figure and the chosen example stays on screen; a warning ``translate``
    raises (say, "not a date the model was trained on") is shown as a note. While the box
    holds an input the example menu is disabled. The step slider runs over the shown
    example's output steps. Returns the ``InteractiveFigure``; its default figure (first
    example, step 0) is what the static page shows.
    """
    import ipywidgets as w

    from ..widgets import STYLE, interactive_figure

    alignments = [_as_alignment(e) for e in examples]
    if not alignments:
        raise ValueError("attention_widget needs at least one example")
    if translate is not None and not callable(translate):
        raise TypeError(f"translate must be a function text -> alignment, got {type(translate).__name__}")
    names = [a.title or " ".join(a.source) for a in alignments]
    cache: dict[str, tuple[Alignment, list[str]]] = {}  # typed text -> (alignment, translate's warnings)

    def typed(text: str) -> Alignment | None:
        """The alignment of the typed text, None for an empty box; raises if it is refused."""
        text = text.strip()
        if translate is None or not text:
            return None
        if text not in cache:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                alignment = _as_alignment(translate(text))
            cache[text] = alignment, [str(c.message) for c in caught]
        alignment, notes = cache[text]
        for note in notes:
            warnings.warn(note, stacklevel=2)
        return alignment

    def current(example: int, text: str) -> Alignment:
        try:
            mine = typed(text)
        except Exception as error:  # refused input: say so, keep showing the chosen example
            warnings.warn(f"the typed input {text.strip()!r} is refused ({error}); showing the chosen "
                          "example instead. Edit the text or clear the box.", stacklevel=2)
            mine = None
        return mine if mine is not None else alignments[example]

    def adjust(controls, changed):
        if changed == "step":
            return _typed_hint(controls)
        with warnings.catch_warnings():  # the notes come again with the drawing
            warnings.simplefilter("ignore")
            a = current(controls["example"].value, controls["text"].value)
            valid = a is not alignments[controls["example"].value]
        controls["example"].disabled = valid
        controls["step"].max = len(a.output) - 1  # the slider's range is this example's steps
        return _typed_hint(controls)

    def _typed_hint(controls):
        if controls["example"].disabled:
            return "Showing the typed input; clear the text box to choose an example again."
        return None

    def draw(example, text, step):
        a = current(example, text)
        return plot_attention_step(a, min(step, len(a.output) - 1))

    wide = w.Layout(width="min(100%, 42em)")
    controls = {
        "example": w.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0, description="example",
                              layout=wide, style=STYLE),
        "text": w.Text(value="", description="or type your own", placeholder="an input of your own",
                       continuous_update=False, disabled=translate is None, layout=wide, style=STYLE),
        "step": w.IntSlider(value=0, min=0, max=len(alignments[0].output) - 1, description="decoder step",
                            continuous_update=False, style=STYLE),
    }
    return interactive_figure(draw, controls, adjust=adjust)


# A hand-built example: the map of a date translator ------------------------------------

DATE = re.compile(r"^(?P<month>[A-Z][a-z]+) (?P<day>\d{1,2}), (?P<year>\d{4})$")


def _telling_letter(month: str) -> int:
    """Index of the letter that tells ``month`` apart from every other month name."""
    for k in range(1, len(month) + 1):
        if sum(m.startswith(month[:k]) for m in MONTHS) == 1:
            return k - 1
    raise ValueError(month)


def date_attention(text: str, numbered: bool = False):
    """The attention map of a date translator, "March 3, 2021" -> "2021-03-03", built by rule.

    Not a trained model: each output character's row peaks where the information it needs
    sits in the input, plus a little fixed noise, so every reader sees the same map.
    With ``numbered`` the tokens carry their positions ("2 'r'") for reading the map.
    """
    match = DATE.match(text) if isinstance(text, str) else None
    if not match or match["month"] not in MONTHS or not 1 <= int(match["day"]) <= 31:
        raise ValueError(f"date_attention reads dates like 'March 3, 2021' (full month name), got {text!r}")
    month, day, year = MONTHS.index(match["month"]) + 1, match["day"], match["year"]
    m0, d0, y0 = match.start("month"), match.start("day"), match.start("year")
    d1 = match.end("day")
    targets = [(y0 + k, 4.0) for k in range(4)]  # year digits: copied in order
    targets += [(y0 + 3, 1.0)]  # '-': nothing to read, a flat row
    targets += [(m0, 4.0), (m0 + _telling_letter(match["month"]), 4.0)]  # month: first letter, telling letter
    targets += [(d0, 1.0)]
    targets += [(d1 if len(day) == 1 else d0, 4.0), (d1 - 1, 4.0)]  # a one-digit day needs the character after it
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    logits = 0.3 * rng.standard_normal((len(targets), len(text)))
    for t, (j, sharpness) in enumerate(targets):
        logits[t, j] += sharpness
        logits[t, max(j - 1, 0):j + 2] += 0.35 * sharpness  # some spill onto the neighbours
        logits[t, j] -= 0.35 * sharpness
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    source = [ch if ch != " " else "␣" for ch in text]
    output = list(f"{year}-{month:02d}-{int(day):02d}")
    if numbered:
        source = [f"{j} '{ch}'" for j, ch in enumerate(source)]
        output = [f"{t} '{ch}'" for t, ch in enumerate(output)]
    return Alignment(source, output, weights, title=f"{text} → {year}-{month:02d}-{int(day):02d}")

import base64
import warnings

import ipywidgets as w
import matplotlib.pyplot as plt
import pytest

from dlcourse import widgets


@pytest.fixture
def displayed(monkeypatch):
    calls = []
    monkeypatch.setattr(widgets, "display", lambda obj, raw=False: calls.append((obj, raw)))
    return calls


def draw(n=1, colour="C0"):
    if n == 4:
        raise ValueError("four is refused here")
    if n == 5:
        warnings.warn("five is outside the range the model saw")
    fig, ax = plt.subplots()
    ax.plot(range(n), color=colour)
    fig.suptitle(f"n={n}")
    return fig


def test_one_output_a_live_box_with_the_figure_and_a_static_fallback(displayed):
    slider = w.IntSlider(value=3, min=1, max=9)
    fig = widgets.interactive_figure(draw, {"n": slider, "colour": w.Dropdown(options=["C0", "C1"])})
    assert len(displayed) == 1
    bundle, raw = displayed[0]
    assert raw and bundle[widgets.WIDGET_VIEW]["model_id"] == fig.box.model_id
    # the figure lives in the box, below the controls, so a reloaded page keeps redrawing it
    row, message, image = fig.box.children
    assert list(row.children)[0] is slider and image is fig.image
    assert bytes(image.value).startswith(b"\x89PNG") and fig.figure.get_suptitle() == "n=3"
    # the static page (and a notebook opened without a kernel) shows the default figure and a note
    static = bundle["text/html"]
    assert base64.b64encode(bytes(image.value)).decode() in static and "n, colour" in static
    assert "Interactive controls" in static and 'alt="n=3"' in static
    before = bytes(image.value)
    slider.value = 7
    assert fig.figure.get_suptitle() == "n=7" and bytes(image.value) != before and fig.draws == 2
    assert fig.message.value == "" and fig.seconds > 0
    assert slider.style.description_width == "initial"  # labels are never cut


def test_an_error_is_shown_in_the_widget_and_the_controls_stay_usable(displayed):
    slider = w.IntSlider(value=3, min=1, max=9)
    fig = widgets.interactive_figure(draw, {"n": slider})
    before = bytes(fig.image.value)
    slider.value = 4  # draw raises: no exception escapes to the frontend's log
    assert "Could not draw this: four is refused here" in fig.message.value
    assert "previous one" in fig.message.value and bytes(fig.image.value) == before
    assert fig.error == "four is refused here"
    slider.value = 5  # a warning becomes a note; the error is gone
    assert fig.error is None and fig.figure.get_suptitle() == "n=5"
    assert "Note: five is outside the range the model saw" in fig.message.value


def test_adjust_keeps_controls_consistent_and_hold_redraws_once(displayed):
    kind = w.Dropdown(options=["short", "long"], value="short")
    step = w.IntSlider(value=0, min=0, max=30)
    seen = []

    def adjust(controls, changed):
        seen.append(changed)
        controls["n"].max = 3 if controls["colour"].value == "short" else 9
        return f"{controls['n'].max + 1} steps"

    def draw2(n, colour):
        return draw(n + 10)

    fig = widgets.interactive_figure(draw2, {"n": step, "colour": kind}, adjust=adjust)
    assert step.max == 3 and seen == [None] and "4 steps" in fig.message.value
    kind.value = "long"
    step.value = 8
    kind.value = "short"  # the slider is clamped to the new range, and one figure follows
    assert step.value == 3 and fig.draws == 4 and fig.figure.get_suptitle() == "n=13"
    with fig.hold():
        step.value = 1
        kind.value = "long"
    assert fig.draws == 5 and fig.figure.get_suptitle() == "n=11"


def test_rejects_controls_that_do_not_match_draw(displayed):
    with pytest.raises(ValueError, match="no parameter named 'width'"):
        widgets.interactive_figure(draw, {"width": w.IntSlider()})
    assert displayed == []  # nothing half-shown


def test_rejects_non_widgets_and_empty_controls(displayed):
    with pytest.raises(TypeError, match="expected an ipywidgets value widget"):
        widgets.interactive_figure(draw, {"n": 3})
    with pytest.raises(ValueError, match="non-empty mapping"):
        widgets.interactive_figure(draw, {})
    with pytest.raises(TypeError, match="draw must be a function"):
        widgets.interactive_figure("draw", {"n": w.IntSlider()})
    with pytest.raises(TypeError, match="adjust must be a function"):
        widgets.interactive_figure(draw, {"n": w.IntSlider(value=1)}, adjust="no")


def test_a_bad_default_is_an_error_at_once(displayed):
    with pytest.raises(TypeError, match="expected a matplotlib Figure"):
        widgets.interactive_figure(lambda n: None, {"n": w.IntSlider()})
    with pytest.raises(ValueError, match="four is refused"):
        widgets.interactive_figure(draw, {"n": w.IntSlider(value=4)})
    assert displayed == []

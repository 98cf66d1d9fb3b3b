import ipywidgets as w
import matplotlib.pyplot as plt
import pytest

from dlcourse import widgets


class FakeHandle:
    def __init__(self, obj):
        self.shown = [obj]

    def update(self, obj):
        self.shown.append(obj)


@pytest.fixture
def displayed(monkeypatch):
    calls = []

    def fake_display(obj, display_id=False, raw=False):
        calls.append((obj, raw))
        return FakeHandle(obj) if display_id else None

    monkeypatch.setattr(widgets, "display", fake_display)
    return calls


def draw(n=1, colour="C0"):
    fig, ax = plt.subplots()
    ax.plot(range(n), color=colour)
    ax.set_title(f"n={n}")
    return fig


def test_default_figure_is_an_ordinary_output_then_controls_update_it(displayed):
    slider = w.IntSlider(value=3, min=1, max=9)
    handle, box = widgets.interactive_figure(draw, {"n": slider, "colour": w.Dropdown(options=["C0", "C1"])})
    first, raw = displayed[0]
    assert not raw and first.axes[0].get_title() == "n=3"  # the static page gets this figure
    bundle, raw = displayed[1]
    assert raw and bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    assert "text/plain" not in bundle and "n, colour" in bundle["text/html"]  # static fallback: a note
    slider.value = 7
    assert len(handle.shown) == 2 and handle.shown[-1].axes[0].get_title() == "n=7"
    assert list(box.children)[0] is slider


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


def test_draw_must_return_a_figure(displayed):
    with pytest.raises(TypeError, match="expected a matplotlib Figure"):
        widgets.interactive_figure(lambda n: None, {"n": w.IntSlider()})

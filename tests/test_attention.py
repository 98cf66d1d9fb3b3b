import warnings

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from dlcourse import widgets
from dlcourse.topics import attention_maps as attention


def example(T_out=3, T_in=4, seed=0):
    weights = torch.softmax(torch.randn(T_out, T_in, generator=torch.Generator().manual_seed(seed)), dim=1)
    return attention.Alignment(list("abcd")[:T_in], list("xyz")[:T_out], weights, "demo")


def test_alignment_accepts_tensors_and_checks_shapes():
    a = example()
    assert a.weights.shape == (3, 4) and np.allclose(a.weights.sum(1), 1)
    with pytest.raises(ValueError, match=r"expected \(3, 4\)"):
        attention.Alignment(list("abcd"), list("xyz"), np.ones((4, 3)) / 3)
    with pytest.raises(ValueError, match="2-D matrix"):
        attention.Alignment(list("ab"), list("x"), np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        attention.Alignment(list("ab"), list("x"), np.array([[1.5, -0.5]]))
    with pytest.raises(TypeError, match="an example must be"):
        attention.plot_attention("not an alignment")


def test_plots_label_tokens_and_outline_the_step():
    fig = attention.plot_attention(example(), step=1)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    assert [t.get_text() for t in ax.get_yticklabels()] == list("xyz") and len(ax.patches) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="step must be in 0..2"):
        attention.plot_attention(example(), step=3)
    fig = attention.plot_attention_step(example(), 2)
    assert "emits 'z'" in fig.axes[1].get_title()
    plt.close(fig)
    fig = attention.plot_attention_gallery([example(seed=s) for s in range(3)])
    assert sum(ax.get_visible() for ax in fig.axes if ax.images) == 3
    plt.close(fig)


def test_widget_shows_default_then_updates(monkeypatch):
    monkeypatch.setattr(widgets, "display", lambda obj, raw=False: None)
    typed = []

    def translate(text):
        typed.append(text)
        if "!" in text:
            raise ValueError("character '!' is not in the vocabulary")
        if text == "odd":
            warnings.warn("'odd' is not a date like the training data")
        return example(T_out=2, T_in=3)

    widget = attention.attention_widget([example(seed=0), example(T_out=3, seed=1)], translate=translate)
    c = widget.controls
    title = lambda: widget.figure.axes[1].get_title()  # noqa: E731
    assert "emits 'x'" in title()  # default: first example, step 0
    assert isinstance(c["example"], w.Dropdown) and c["step"].max == 2  # the first example's 3 steps
    c["step"].value = 2
    assert "emits 'z'" in title()
    c["text"].value = "my input"  # a valid input: its 2 steps, the menu disabled and saying why
    assert typed == ["my input"] and "emits 'y'" in title() and c["step"].max == 1 and c["step"].value == 1
    assert c["example"].disabled and "clear the text box" in widget.message.value
    c["text"].value = "hello!!"  # refused: said in the widget, the example is back, every control works
    assert "refused" in widget.message.value and "not in the vocabulary" in widget.message.value
    assert not c["example"].disabled and c["step"].max == 2 and widget.error is None
    c["example"].value = 1
    assert "refused" in widget.message.value and widget.figure.axes[0].get_title() == "demo"
    c["text"].value = "odd"  # valid but out of domain: drawn, with a note (also on later redraws)
    assert "Note: &#x27;odd&#x27; is not a date" in widget.message.value and c["example"].disabled
    c["step"].value = 0
    assert "is not a date" in widget.message.value and typed.count("odd") == 1  # translated once
    c["text"].value = ""
    assert not c["example"].disabled and widget.message.value == ""
    with pytest.raises(ValueError, match="at least one example"):
        attention.attention_widget([])
    with pytest.raises(TypeError, match="translate must be a function"):
        attention.attention_widget([example()], translate="nope")

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
    shown = []

    class Handle:
        def update(self, fig):
            shown.append(fig)

    monkeypatch.setattr(widgets, "display", lambda obj, display_id=False, raw=False: (shown.append(obj), Handle())[1])
    typed = []

    def translate(text):
        typed.append(text)
        return example(T_out=2, T_in=3)

    handle, box = attention.attention_widget([example(seed=0), example(seed=1)], translate=translate)
    assert "emits 'x'" in shown[0].axes[1].get_title()  # default: first example, step 0
    step, text = box.children[2], box.children[1]
    step.value = 2
    assert "emits 'z'" in shown[-1].axes[1].get_title()
    text.value = "my input"
    assert typed == ["my input"] and "emits 'y'" in shown[-1].axes[1].get_title()  # clamped to its 2 steps
    with pytest.raises(ValueError, match="at least one example"):
        attention.attention_widget([])
    with pytest.raises(TypeError, match="translate must be a function"):
        attention.attention_widget([example()], translate="nope")
    assert isinstance(box.children[0], w.Dropdown)

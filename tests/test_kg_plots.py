"""dlcourse.topics.kg_plots: per-relation scatter, score-difference histograms, spread over seeds (chapter 9)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dlcourse.topics.kg_plots import plot_relation_scatter, plot_score_differences, plot_seed_spread  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_relation_scatter_labels_only_highlighted_and_skips_nan():
    fig = plot_relation_scatter(torch.tensor([0.0, 0.5, float("nan")]), [1.0, 2.0, 3.0], ["isa", "causes", "uses"],
                                highlight=["causes", "uses"], xlabel="x", ylabel="y", size=[10, 40, 5])
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == 2  # the NaN point is left out
    assert [t.get_text() for t in ax.texts] == ["causes"]  # "uses" is NaN, "isa" not highlighted
    assert ax.get_xlabel() == "x"


def test_relation_scatter_draws_on_given_axes():
    fig, ax = plt.subplots()
    assert plot_relation_scatter([1], [2], ["r"], xlabel="x", ylabel="y", ax=ax) is fig


@pytest.mark.parametrize("kwargs, message", [
    (dict(x=[1, 2], y=[1], names=["a", "b"]), "same length"),
    (dict(x=[1], y=[1], names=["a"], highlight=["b"]), "not in names"),
    (dict(x=[[1]], y=[1], names=["a"]), "1-D"),
    (dict(x=[1], y=[np.inf], names=["a"]), "infinite"),
    (dict(x=[1], y=[1], names=["a"], size=[1, 2]), "one value per relation"),
])
def test_relation_scatter_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_relation_scatter(xlabel="x", ylabel="y", **kwargs)


def test_score_differences_legend_counts_ties_as_half():
    fig = plot_score_differences({"tied": [0.0, 0.0], "ahead": [1.0, 2.0, -1.0, 3.0]}, xlabel="d")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["tied: 50% above 0", "ahead: 75% above 0"]


@pytest.mark.parametrize("differences, message", [({}, "non-empty"), ({"a": []}, "non-empty 1-D"),
                                                  ({"a": [1.0, float("nan")]}, "NaN")])
def test_score_differences_rejects_bad_input(differences, message):
    with pytest.raises(ValueError, match=message):
        plot_score_differences(differences, xlabel="d")


def test_seed_spread_one_column_per_label_and_reference():
    fig = plot_seed_spread({"TransE": [0.8, 0.82], "DistMult": [0.9, 0.91, 0.92]}, ylabel="MRR", reference=0.5)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["TransE", "DistMult"]
    assert len(ax.patches) == 2 and ax.patches[1].get_height() == pytest.approx(0.91)
    assert ax.get_legend() is not None


def test_seed_spread_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_seed_spread({}, ylabel="y")
    with pytest.raises(ValueError, match="colours"):
        plot_seed_spread({"a": [1], "b": [2]}, ylabel="y", colors=["red"])

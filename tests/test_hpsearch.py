import math

import numpy as np
import pytest
import torch

from dlcourse.topics import hpsearch, hpsearch_plots
from dlcourse.topics.hpsearch import Param

SPACE = {"lr": Param(1e-4, 10.0), "weight_decay": Param(1e-6, 1e-1)}


def bump(params, seed):
    """A cheap objective: only lr matters, best at lr = 1 (log10 distance)."""
    return 1.0 - abs(math.log10(params["lr"])) / 5


def test_param_validation():
    with pytest.raises(ValueError, match="log-scale Param needs low > 0"):
        Param(0.0, 1.0)
    with pytest.raises(ValueError, match="finite low < high"):
        Param(1.0, 1.0, log=False)
    assert Param(0.0, 0.5, log=False).high == 0.5
    with pytest.raises(TypeError, match="expected a hpsearch.Param"):
        hpsearch.sample({"lr": (1e-4, 1)}, 3, torch.Generator())


def test_sample_is_log_uniform_and_reproducible():
    points = hpsearch.sample(SPACE, 4000, torch.Generator().manual_seed(0))
    lr = np.log10([p["lr"] for p in points])
    assert lr.min() >= -4 and lr.max() <= 1
    assert abs(lr.mean() - (-1.5)) < 0.1  # uniform in log10 on [-4, 1]
    assert abs((lr < -1.5).mean() - 0.5) < 0.03  # half the draws below 10^-1.5, not a 3 % sliver
    again = hpsearch.sample(SPACE, 4000, torch.Generator().manual_seed(0))
    assert again == points
    linear = hpsearch.sample({"p": Param(0.0, 1.0, log=False)}, 4000, torch.Generator().manual_seed(0))
    assert abs(np.mean([p["p"] for p in linear]) - 0.5) < 0.02


def test_grid_and_grid_side():
    points = hpsearch.grid(SPACE, 4)
    assert len(points) == 16
    assert sorted({p["lr"] for p in points}) == pytest.approx([1e-4, 10 ** -2.333333, 10 ** -0.666667, 10.0], rel=1e-4)
    assert hpsearch.grid_side(16, 2) == 4 and hpsearch.grid_side(24, 2) == 4 and hpsearch.grid_side(25, 2) == 5
    with pytest.raises(ValueError, match="needs a budget of at least 4"):
        hpsearch.grid_side(3, 2)
    with pytest.raises(ValueError, match="budget must be a positive int"):
        hpsearch.grid_side(0, 2)


def test_searches_spend_their_budget_and_report_the_best():
    grid = hpsearch.grid_search(bump, SPACE, 20, seed=1)
    assert len(grid) == 16 and len({p["lr"] for p in grid.params}) == 4  # only 4 distinct learning rates
    rand = hpsearch.random_search(bump, SPACE, 16, seed=1)
    assert len(rand) == 16 and len({p["lr"] for p in rand.params}) == 16
    assert rand.best_score == max(rand.scores) and bump(rand.best_params, 0) == rand.best_score
    assert np.all(np.diff(rand.best_so_far) >= 0)
    assert rand.head(5).best_score == max(rand.scores[:5])


def test_tpe_search_uses_optuna_and_its_sqlite_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = hpsearch.tpe_search(bump, SPACE, 12, seed=0, storage=url, study_name="t")
    assert len(result) == 12 and result.best_score > 0.8
    import optuna

    stored = optuna.load_study(study_name="t", storage=url)
    assert len(stored.trials) == 12 and stored.best_value == pytest.approx(result.best_score)
    again = hpsearch.tpe_search(bump, SPACE, 12, seed=0)
    assert again.params == result.params  # seeded sampler: the same trials


def test_compare_searches_and_its_widget(monkeypatch):
    calls = []
    counted = lambda p, s: calls.append(1) or bump(p, s)  # noqa: E731
    comparison = hpsearch.compare_searches(counted, SPACE, seeds=[0, 1], max_budget=9, progress=False)
    assert len(calls) < 2 * (4 + 9 + 9 + 9)  # the corners shared by both grids are trained once
    assert comparison.result("grid", 1, 8).method == "grid" and len(comparison.result("grid", 1, 8)) == 4
    assert comparison.best_scores("random", 9).shape == (2,)
    with pytest.raises(ValueError, match="unknown method 'bayes'"):
        comparison.result("bayes", 0, 4)
    with pytest.raises(ValueError, match="seed 7 was not run"):
        comparison.result("grid", 7, 4)
    with pytest.raises(ValueError, match="exceeds the comparison's max_budget 9"):
        comparison.result("random", 0, 16)

    from dlcourse import widgets

    monkeypatch.setattr(widgets, "display", lambda obj, raw=False: None)
    widget = hpsearch_plots.search_widget(comparison, method="tpe", budget=9, seed=1)
    assert "budget of 9" in widget.figure.get_suptitle()
    widget.controls["method"].value = "grid"
    widget.controls["budget"].value = 4
    assert widget.draws == 3 and "budget of 4" in widget.figure.get_suptitle()
    assert "grid search, seed 1: 4 trials" in [ax.get_title() for ax in widget.figure.axes]


def test_digits_objective_is_reexported_from_the_recipe():
    from dlcourse.topics import recipe

    assert hpsearch.digits_objective is recipe.digits_objective


def test_plots_draw_labelled_axes_and_reject_bad_input():
    import matplotlib.pyplot as plt

    comparison = hpsearch.compare_searches(bump, SPACE, seeds=[0], max_budget=4, progress=False)
    fig = hpsearch_plots.plot_search_curves(comparison, 4)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "trials" and len(ax.get_legend().get_texts()) == 3
    fig = hpsearch_plots.plot_search_scatter(comparison.result("random", 0, 4), SPACE)
    assert "random search, seed 0: 4 trials" in [a.get_title() for a in fig.axes]
    with pytest.raises(ValueError, match="at least two parameters"):
        hpsearch_plots.plot_search_scatter(comparison.result("random", 0, 4), {"lr": SPACE["lr"]})
    with pytest.raises(ValueError, match="exceeds the comparison's max_budget"):
        hpsearch_plots.search_widget(comparison, budget=9)
    plt.close("all")


def test_plot_search_budgets_draws_a_row_per_budget_and_rejects_bad_budgets():
    import matplotlib.pyplot as plt

    comparison = hpsearch.compare_searches(bump, SPACE, seeds=[0, 1], max_budget=9, progress=False)
    fig = hpsearch_plots.plot_search_budgets(comparison, budgets=(4, 9), seed=1)
    titles = [ax.get_title() for ax in fig.axes]
    for budget in (4, 9):  # one row per budget: the curves, then grid, random and TPE for seed 1
        assert f"Best so far, {budget} trials" in titles
        assert f"grid search, seed 1: {budget} trials" in titles
        assert f"TPE (Optuna), seed 1: {budget} trials" in titles
    assert "Seed 1's searches at 4 and 9 trials" in fig._suptitle.get_text()
    curves = [ax for ax in fig.axes if ax.get_title().startswith("Best so far")]
    assert [ax.get_xlim()[1] for ax in curves] == [4, 9]
    with pytest.raises(ValueError, match="at least one budget"):
        hpsearch_plots.plot_search_budgets(comparison, budgets=())
    with pytest.raises(ValueError, match="exceeds the comparison's max_budget"):
        hpsearch_plots.plot_search_budgets(comparison, budgets=(4, 16))
    with pytest.raises(ValueError, match="was not run"):
        hpsearch_plots.plot_search_budgets(comparison, seed=7, budgets=(4,))
    plt.close("all")

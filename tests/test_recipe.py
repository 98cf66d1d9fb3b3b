import math
from dataclasses import replace

import pytest
import torch

from dlcourse.data import digits
from dlcourse.topics import recipe


@pytest.fixture(scope="module")
def data():
    return digits.digits_data()


def test_digits_data_is_a_stratified_three_way_split_standardised_on_train(data):
    assert [len(t) for t in data] == [1077, 1077, 360, 360, 360, 360]
    assert data.X_train.mean(0).abs().max() < 1e-5  # standardised with training statistics
    assert data.X_val.mean(0).abs().max() > 1e-3  # ... and only those
    for y in (data.y_train, data.y_val, data.y_test):
        assert torch.bincount(y).min() >= len(y) // 10 - 3
    with pytest.raises(ValueError, match="must leave a training set"):
        digits.digits_data(val_size=0.5, test_size=0.5)


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        recipe.RunConfig(activation="gelu")
    with pytest.raises(ValueError, match="hidden must be"):
        recipe.RunConfig(hidden=())
    with pytest.raises(ValueError, match="lr must be positive"):
        recipe.RunConfig(lr=0)
    with pytest.raises(ValueError, match="num_epochs must be a positive int"):
        recipe.RunConfig(num_epochs=2.5)


def test_train_run_is_deterministic_and_leaves_the_global_rng_alone(data):
    config = replace(recipe.HEALTHY, num_epochs=2)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = recipe.train_run(config, data, seed=3)
    after = torch.rand(1)
    b = recipe.train_run(config, data, seed=3)
    assert torch.equal(before, after)
    assert a == b and len(a["val_acc"]) == 2 and len(a["step_loss"]) == 2 * math.ceil(1077 / 64)
    assert abs(a["step_loss"][0] - math.log(10)) < 0.15  # default init: close to the uniform guess


def test_train_run_needs_a_data_tuple_and_a_valid_subset(data):
    with pytest.raises(TypeError, match="digits.Data"):
        recipe.train_run(recipe.HEALTHY, (data.X_train, data.y_train))
    with pytest.raises(ValueError, match="n_train must be between 1 and 1077"):
        recipe.train_run(replace(recipe.HEALTHY, n_train=5000), data)


def test_a_diverging_run_stops_early(data):
    history = recipe.train_run(replace(recipe.HEALTHY, lr=1e4, momentum=0.0), data)
    assert history["diverged"] and len(history["val_acc"]) < recipe.HEALTHY.num_epochs


def test_each_pathology_shows_its_signature(data):
    runs = {name: recipe.train_run(config, data, seed=0) for name, config in recipe.PATHOLOGIES.items()}
    healthy = runs["healthy"]
    assert healthy["val_acc"][-1] > 0.95
    bad = runs["bad initialisation"]["step_loss"]
    assert abs(sum(bad[:30]) / 30 - math.log(10)) < 0.05 and bad[-1] < 0.5
    assert runs["decay too early"]["train_loss"][-1] > 10 * healthy["train_loss"][-1]
    over = runs["overfitting"]
    assert over["train_acc"][-1] == 1.0 and over["val_acc"][-1] < 0.95
    assert over["val_loss"][-1] > min(over["val_loss"])
    under = runs["underfitting"]
    assert under["train_acc"][-1] < 0.9 and abs(under["train_acc"][-1] - under["val_acc"][-1]) < 0.05
    assert set(recipe.REMEDIES) == set(recipe.PATHOLOGIES)


def test_mystery_curves_hide_every_pathology_under_a_letter(data):
    mystery = recipe.mystery_curves(seed=1, data=data)
    assert mystery.letters() == list("ABCDEF")
    assert sorted(mystery._answers.values()) == sorted(recipe.PATHOLOGIES)
    assert "healthy" not in repr(mystery)


def test_plot_learning_curves_draws_two_labelled_panels(data):
    import matplotlib.pyplot as plt

    fig = recipe.plot_learning_curves(recipe.train_run(replace(recipe.HEALTHY, num_epochs=2), data), title="x")
    titles = [ax.get_title() for ax in fig.axes]
    assert "x: loss" in titles and "x: accuracy" in titles
    plt.close(fig)

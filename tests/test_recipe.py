import math
from dataclasses import replace

import pytest
import torch

from dlcourse.data import digits
from dlcourse.plot import plot_learning_curves
from dlcourse.topics import recipe
from dlcourse.train import History


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
    assert history.diverged and len(history["val_acc"]) < recipe.HEALTHY.num_epochs
    assert not math.isfinite(history["step_loss"][-1]) and len(history["lr"]) == len(history["val_acc"])


def test_train_run_returns_one_history_with_both_training_losses(data):
    config = replace(recipe.HEALTHY, num_epochs=3, decay_epochs=(1, 2), decay_factor=10.0)
    history = recipe.train_run(config, data, seed=0)
    assert isinstance(history, History) and not history.diverged
    steps = math.ceil(1077 / 64)
    assert len(history["step_loss"]) == len(history["step_lr"]) == 3 * steps
    for key in ("train_loss", "train_eval_loss", "train_eval_acc", "val_loss", "val_acc", "lr"):
        assert len(history[key]) == 3, key
    # train_loss: fit's mean of the epoch's minibatch losses; train_eval_loss: the whole set after it
    first = history["step_loss"][:steps]
    assert history["train_loss"][0] != history["train_eval_loss"][0]
    assert history["train_loss"][0] == pytest.approx(sum(first) / steps, rel=0.05)
    # step decay at the start of epochs 2 and 3, seen by every step of the epoch
    assert history["lr"] == pytest.approx([0.05, 0.005, 0.0005])
    assert set(history["step_lr"][steps:2 * steps]) == {history["lr"][1]}


def test_make_mlp_follows_the_config():
    torch.manual_seed(0)
    model = recipe.make_mlp(replace(recipe.HEALTHY, hidden=(32, 16), activation="tanh", init_std=0.1))
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert model[-1].out_features == 10 and model[0].in_features == 64
    assert all(torch.count_nonzero(m.bias) == 0 for m in model if isinstance(m, torch.nn.Linear))


def test_each_pathology_shows_its_signature(data):
    runs = {name: recipe.train_run(config, data, seed=0) for name, config in recipe.PATHOLOGIES.items()}
    healthy = runs["healthy"]
    assert healthy["val_acc"][-1] > 0.95
    bad = runs["bad initialisation"]["step_loss"]
    assert abs(sum(bad[:30]) / 30 - math.log(10)) < 0.05 and bad[-1] < 0.5
    assert runs["decay too early"]["train_eval_loss"][-1] > 10 * healthy["train_eval_loss"][-1]
    over = runs["overfitting"]
    assert over["train_eval_acc"][-1] == 1.0 and over["val_acc"][-1] < 0.95
    assert over["val_loss"][-1] > min(over["val_loss"])
    under = runs["underfitting"]
    assert under["train_eval_acc"][-1] < 0.9 and abs(under["train_eval_acc"][-1] - under["val_acc"][-1]) < 0.05
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
    assert recipe.plot_learning_curves is plot_learning_curves  # re-exported from dlcourse.plot
    plt.close(fig)


def test_digits_objective_trains_a_real_model(data):
    objective = recipe.digits_objective(data, num_epochs=2)
    good = objective({"lr": 0.5, "weight_decay": 1e-5}, 0)
    bad = objective({"lr": 1e-4, "weight_decay": 1e-5}, 0)
    assert good > 0.85 and bad < 0.5
    assert good == recipe.train_run(replace(recipe.RunConfig(lr=0.5, weight_decay=1e-5, momentum=0.0),
                                            num_epochs=2), data)["val_acc"][-1]
    with pytest.raises(ValueError, match="takes lr and optionally weight_decay"):
        objective({"lr": 0.1, "dropout": 0.5}, 0)
    with pytest.raises(ValueError, match="takes lr"):
        objective({"weight_decay": 0.1}, 0)

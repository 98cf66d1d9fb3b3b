"""dlcourse.topics.rec_baselines: global mean, regularised biases, popularity, rmse (chapter 8, section 8.1)."""

import os
from types import SimpleNamespace

import pytest
import torch

from dlcourse.topics.rec_baselines import (Biases, fit_biases, global_mean, popularity, rating_counts, rmse,
                                           seen_masks)

needs_data = pytest.mark.skipif(not os.environ.get("DLCOURSE_DATA"), reason="needs the data mirror (DLCOURSE_DATA)")


def ratings(users, items, values, num_users=None, num_items=None):
    r = SimpleNamespace(user=torch.tensor(users), item=torch.tensor(items),
                        rating=torch.tensor(values, dtype=torch.float32))
    if num_users is not None:
        r.num_users, r.num_items = num_users, num_items
    return r


TINY = ratings([0, 0, 1], [0, 1, 0], [5.0, 3.0, 1.0])  # mu = 3; residuals 2, 0, -2


def random_ratings(n=400, U=30, I=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ratings(torch.randint(0, U, (n,), generator=g).tolist(), torch.randint(0, I, (n,), generator=g).tolist(),
                   torch.randint(0, 11, (n,), generator=g).float().tolist(), U, I)


def test_global_mean_and_rmse():
    assert global_mean(TINY) == pytest.approx(3.0)
    assert rmse(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])) == pytest.approx(2 ** 0.5)
    assert rmse([3.0, 3.0, 3.0], TINY.rating) == pytest.approx((8 / 3) ** 0.5)


def test_one_sweep_by_hand():
    """reg 1: users first, b_0 = (2 + 0) / (1 + 2), b_1 = -2 / (1 + 1); then items with those users fixed."""
    b = fit_biases(TINY, reg_user=1.0, reg_item=1.0, num_iters=1)
    assert b.mu == pytest.approx(3.0)
    assert b.user_bias.tolist() == pytest.approx([2 / 3, -1.0])
    # item 0: residuals 2 - 2/3 and -2 + 1, sum 1/3, over 1 + 2; item 1: 0 - 2/3 over 1 + 1
    assert b.item_bias.tolist() == pytest.approx([1 / 9, -1 / 3])
    assert b.predict(torch.tensor([0, 1]), torch.tensor([0, 1])).tolist() == pytest.approx(
        [3 + 2 / 3 + 1 / 9, 3 - 1 - 1 / 3])
    residual = torch.tensor([2 - 2 / 3 - 1 / 9, 0 - 2 / 3 + 1 / 3, -2 + 1 - 1 / 9])
    expected = residual.pow(2).sum() + (2 / 3) ** 2 + 1 + (1 / 9) ** 2 + (1 / 3) ** 2
    assert b.objective[0] == pytest.approx(8.0) and b.objective[1] == pytest.approx(float(expected), rel=1e-5)
    assert b.num_iters == 1


def test_one_side_only_is_the_shrunk_mean_residual():
    user_only = fit_biases(TINY, reg_user=0.0, fit_item=False)
    assert user_only.user_bias.tolist() == pytest.approx([1.0, -2.0]) and user_only.item_bias.abs().max() == 0
    assert user_only.num_iters == 1  # one side: the first sweep is exact
    item_only = fit_biases(ratings([0, 0, 1], [0, 0, 1], [5.0, 3.0, 1.0]), reg_item=2.0, fit_user=False)
    assert item_only.item_bias.tolist() == pytest.approx([2 / 4, -2 / 3])  # residuals (2 + 0) / (2 + 2), -2 / (2 + 1)
    assert item_only.user_bias.abs().max() == 0
    with pytest.raises(ValueError, match="global_mean"):
        fit_biases(TINY, fit_user=False, fit_item=False)


def test_converges_to_the_ridge_solution():
    r = random_ratings()
    reg_u, reg_i = 3.0, 7.0
    b = fit_biases(r, reg_user=reg_u, reg_item=reg_i, num_iters=500, tol=1e-7)
    assert b.num_iters < 500  # stopped by tol
    assert all(later <= earlier * (1 + 1e-6) for earlier, later in zip(b.objective, b.objective[1:]))  # J never rises
    # the exact minimiser: (A^T A + diag(reg)) x = A^T (r - mu), A = [one-hot user | one-hot item]
    A = torch.cat([torch.nn.functional.one_hot(r.user, 30), torch.nn.functional.one_hot(r.item, 20)], 1).double()
    penalty = torch.diag(torch.tensor([reg_u] * 30 + [reg_i] * 20, dtype=torch.float64))
    x = torch.linalg.solve(A.T @ A + penalty, A.T @ (r.rating.double() - r.rating.double().mean()))
    assert torch.allclose(b.user_bias.double(), x[:30], atol=1e-4)
    assert torch.allclose(b.item_bias.double(), x[30:], atol=1e-4)


def test_regularisation_shrinks_biases_of_users_with_few_ratings():
    # user 0 rates once (10), user 1 rates 40 times (10), user 2 rates 41 times (all 4); one item
    users = [0] + [1] * 40 + [2] * 41
    r = ratings(users, [0] * len(users), [10.0] * 41 + [4.0] * 41, 3, 1)
    for reg in (0.0, 1.0, 5.0, 25.0):
        b = fit_biases(r, reg_user=reg, reg_item=0.0, fit_item=False)
        assert b.user_bias[0] == pytest.approx(3.0 / (1 + reg))  # the residual 10 - 7 over (reg + 1)
        assert b.user_bias[1] == pytest.approx(3.0 * 40 / (40 + reg))
    weak, strong = (fit_biases(r, reg_user=reg, fit_item=False).user_bias for reg in (1.0, 25.0))
    assert strong[0] / weak[0] < 0.1 and strong[1] / weak[1] > 0.6  # shrinks the single rating far more


def test_unseen_users_and_items_get_zero_bias():
    r = ratings([0, 0, 1], [0, 1, 0], [5.0, 3.0, 1.0], 4, 3)  # user 2, 3 and item 2 have no ratings
    b = fit_biases(r, reg_user=0.0, reg_item=0.0)  # with reg 0 an unseen id would be 0 / 0 without the guard
    assert b.user_bias.shape == (4,) and b.item_bias.shape == (3,)
    assert b.user_bias[2:].abs().max() == 0 and b.item_bias[2] == 0
    assert torch.isfinite(b.user_bias).all() and torch.isfinite(b.item_bias).all()
    assert b.predict(torch.tensor([3, 99]), torch.tensor([2, 50])).tolist() == pytest.approx([b.mu, b.mu])
    assert b.predict(torch.tensor([99]), torch.tensor([0])).item() == pytest.approx(b.mu + b.item_bias[0].item())


def test_popularity_counts_and_seen_masks():
    r = ratings([0, 1, 2, 2], [3, 3, 0, 3], [1.0, 2.0, 3.0, 4.0], 3, 5)
    assert popularity(r).tolist() == [1, 0, 0, 3, 0]
    assert popularity(r, num_items=6).tolist() == [1, 0, 0, 3, 0, 0]
    per_user, per_item = rating_counts(r)
    assert per_user.tolist() == [1, 1, 2] and per_item.tolist() == [1, 0, 0, 3, 0]
    later = ratings([0, 5, 1], [4, 3, 0], [1.0, 1.0, 1.0])
    user_seen, item_seen = seen_masks(r, later)
    assert user_seen.tolist() == [True, False, True] and item_seen.tolist() == [False, True, True]


def test_errors_for_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        rmse(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        rmse(torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="missing"):
        fit_biases(SimpleNamespace(user=torch.tensor([0]), item=torch.tensor([0])))
    with pytest.raises(ValueError, match="one length"):
        global_mean(ratings([0, 1], [0], [1.0, 2.0]))
    with pytest.raises(ValueError, match="no ratings"):
        fit_biases(ratings([], [], []))
    with pytest.raises(ValueError, match="integer ids"):
        fit_biases(SimpleNamespace(user=torch.tensor([0.0]), item=torch.tensor([0]), rating=torch.tensor([1.0])))
    with pytest.raises(ValueError, match="negative"):
        fit_biases(ratings([-1], [0], [1.0]))
    for bad in (-1.0, float("nan"), "5", True):
        with pytest.raises(ValueError, match="reg_user"):
            fit_biases(TINY, reg_user=bad)
    with pytest.raises(ValueError, match="num_iters"):
        fit_biases(TINY, num_iters=0)
    with pytest.raises(ValueError, match="num_items"):
        popularity(TINY, num_items=1)  # item 1 exists
    b = fit_biases(TINY)
    with pytest.raises(ValueError, match="1-D"):
        b.predict(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="non-negative"):
        b.predict(torch.tensor([-1]), torch.tensor([0]))
    assert isinstance(b, Biases)


@needs_data
def test_on_movietweetings_biases_beat_the_global_mean():
    from dlcourse.data import movietweetings as mt

    train, val, test = mt.temporal_split(mt.load())
    mean_rmse = rmse(torch.full_like(test.rating, global_mean(train)), test.rating)
    assert mean_rmse == pytest.approx(1.898, abs=0.002)  # the figure in the loader's brief
    b = fit_biases(train)
    assert b.user_bias.shape == (train.num_users,) and b.item_bias.shape == (train.num_items,)
    assert rmse(b.predict(test.user, test.item), test.rating) < mean_rmse - 0.1


def test_plots_draw_and_reject_bad_input():
    import matplotlib.pyplot as plt

    from dlcourse.topics.rec_plots import (plot_long_tail, plot_rating_histogram, plot_rating_matrix,
                                           plot_regularisation_curve)

    r = random_ratings(n=300, U=30, I=20)
    per_user, per_item = rating_counts(r)
    fig = plot_long_tail(per_user, per_item)
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    fig = plot_rating_matrix(r.user, r.item, 30, 20, size=10, generator=torch.Generator().manual_seed(0))
    assert "ratings" in fig.axes[1].get_title()
    fig = plot_rating_histogram({"train": r.rating, "test": r.rating[:50]})
    assert len(fig.axes[0].patches) == 22
    fig = plot_regularisation_curve([0, 1, 10], {"biases": [1.7, 1.5, 1.6]}, chosen={"biases": 1}, baseline=1.9)
    assert fig.axes[0].get_xscale() == "symlog"
    plt.close("all")
    with pytest.raises(ValueError, match="counts"):
        plot_long_tail(torch.tensor([1.5, 2.0]), per_item)
    with pytest.raises(ValueError, match="size"):
        plot_rating_matrix(r.user, r.item, 30, 20, size=21)
    with pytest.raises(ValueError, match="values for"):
        plot_regularisation_curve([0, 1], {"biases": [1.0]})
    with pytest.raises(ValueError, match="mapping"):
        plot_rating_histogram({})

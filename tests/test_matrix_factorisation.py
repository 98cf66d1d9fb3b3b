"""Tests for biased matrix factorisation (dlcourse.models.matrix_factorisation, chapter 8)."""

import pytest
import torch

from dlcourse.data.movietweetings import Ratings
from dlcourse.models.matrix_factorisation import (BiasedMF, nearest_items, predict, ratings_rmse,
                                                  train_mf)

U, I, RANK = 60, 50, 3


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread, as the notebooks run (setup()): a second thread only adds contention for models this small."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ratings(user, item, rating, num_users=U, num_items=I):
    n = len(user)
    return Ratings(user.long(), item.long(), rating.float(), torch.arange(n), num_users, num_items,
                   [f"item {i}" for i in range(num_items)], [[] for _ in range(num_items)])


def low_rank(seed=0, observed=0.5, noise=0.1):
    """A rank-3 matrix plus biases, half of it observed for training, a quarter held out."""
    g = torch.Generator().manual_seed(seed)
    P, Q = torch.randn(U, RANK, generator=g), torch.randn(I, RANK, generator=g)
    R = 5 + torch.randn(U, 1, generator=g) + torch.randn(1, I, generator=g) + P @ Q.T
    R = R + noise * torch.randn(U, I, generator=g)
    user, item = torch.meshgrid(torch.arange(U), torch.arange(I), indexing="ij")
    user, item, R = user.flatten(), item.flatten(), R.flatten()
    order = torch.randperm(U * I, generator=g)
    n_train = int(observed * U * I)
    tr, te = order[:n_train], order[n_train:n_train + U * I // 4]
    return ratings(user[tr], item[tr], R[tr]), ratings(user[te], item[te], R[te])


def fit_small(dim, train, val=None, seed=0, epochs=60, **kwargs):
    torch.manual_seed(seed)
    model = BiasedMF(U, I, dim, init_std=0.1)
    kwargs = dict(dict(batch_size=128, lr=0.03, weight_decay=0.1), **kwargs)
    history = train_mf(model, train, epochs=epochs, generator=torch.Generator().manual_seed(seed), val=val,
                       progress=False, **kwargs)
    return model, history


def test_shapes_and_parameters():
    model = BiasedMF(7, 5, 4)
    assert model.user_factors.weight.shape == (7, 4) and model.item_factors.weight.shape == (5, 4)
    assert isinstance(model.user_factors, torch.nn.Embedding)
    assert model.user_bias.shape == (7,) and model.item_bias.shape == (5,)
    assert model.mu.shape == () and "mu" in dict(model.named_buffers())
    out = model(torch.tensor([0, 6, 3]), torch.tensor([4, 0, 2]))
    assert out.shape == (3,)
    expected = (model.user_factors.weight[[0, 6, 3]] * model.item_factors.weight[[4, 0, 2]]).sum(1)
    assert torch.allclose(out, expected)  # mu and biases start at 0
    assert BiasedMF(7, 5, 0)(torch.tensor([1]), torch.tensor([2])).shape == (1,)  # biases only


@pytest.mark.parametrize("user, item", [(torch.tensor([[0]]), torch.tensor([[0]])),
                                        (torch.tensor([0.0]), torch.tensor([0])),
                                        (torch.tensor([7]), torch.tensor([0])),
                                        (torch.tensor([-1]), torch.tensor([0])),
                                        (torch.tensor([0, 1]), torch.tensor([0]))])
def test_bad_ids(user, item):
    with pytest.raises(ValueError):
        BiasedMF(7, 5, 2)(user, item)


@pytest.mark.parametrize("args", [(0, 5, 2), (7, 5, -1), (7, 5, 2.0), (7, 5, 2, -0.1)])
def test_bad_constructor(args):
    with pytest.raises(ValueError):
        BiasedMF(*args)


def test_bad_training_arguments():
    train, val = low_rank()
    model = BiasedMF(U, I, 2)
    for kwargs in (dict(epochs=0), dict(lr=0.0), dict(weight_decay=-1.0), dict(optimizer="rmsprop"),
                   dict(keep_best=True), dict(batch_size=0)):
        with pytest.raises(ValueError):
            train_mf(model, train, **dict(dict(epochs=1, batch_size=32, lr=0.01, progress=False), **kwargs))
    with pytest.raises(ValueError, match="num_users"):
        train_mf(BiasedMF(U + 1, I, 2), train, epochs=1, batch_size=32, lr=0.01, progress=False)
    with pytest.raises(ValueError, match="no training data"):
        predict(BiasedMF(U, I, 2), torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError):
        train_mf(model, (1, 2, 3), epochs=1, batch_size=32, lr=0.01)


def test_training_lowers_loss_and_recovers_low_rank_matrix():
    train, test = low_rank()
    mf, history = fit_small(RANK, train, val=test)
    biases, _ = fit_small(0, train)
    assert history["train_loss"][-1] < 0.2 * history["train_loss"][0]
    assert len(history["val_rmse"]) == len(history["train_rmse"]) == 60
    mf_rmse, bias_rmse = ratings_rmse(mf, test), ratings_rmse(biases, test)
    assert mf_rmse < 0.5 and mf_rmse < 0.3 * bias_rmse
    assert abs(float(mf.mu) - float(train.rating.mean())) < 1e-4


def test_sgd_also_trains():
    train, test = low_rank()
    _, history = fit_small(RANK, train, optimizer="sgd", lr=0.05, epochs=20)
    assert history["train_rmse"][-1] < history["train_rmse"][0]


def test_penalty_sums_to_the_full_objective():
    train, _ = low_rank()
    torch.manual_seed(0)
    model = BiasedMF(U, I, 2, init_std=0.5)
    torch.nn.init.normal_(model.user_bias)
    model.set_training_data(train)
    total = model.penalty(train.user, train.item, 0.3, 2.0).sum()
    seen_u, seen_i = model.user_count > 0, model.item_count > 0
    expected = 0.3 * (model.user_factors.weight[seen_u].pow(2).sum() + model.item_factors.weight[seen_i].pow(2).sum()) \
        + 2.0 * (model.user_bias[seen_u].pow(2).sum() + model.item_bias[seen_i].pow(2).sum())
    assert torch.allclose(total, expected, rtol=1e-4)


def test_determinism():
    train, test = low_rank()
    a, ha = fit_small(2, train, epochs=5)
    b, hb = fit_small(2, train, epochs=5)
    assert ha["train_loss"] == hb["train_loss"]
    assert torch.equal(predict(a, test.user, test.item), predict(b, test.user, test.item))
    c, hc = fit_small(2, train, epochs=5, seed=1)
    assert hc["train_loss"] != ha["train_loss"]


def test_cold_start_fallback():
    # user 2 and item 3 have no training ratings
    train = ratings(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 2]), torch.tensor([8.0, 6.0, 4.0, 2.0]),
                    num_users=3, num_items=4)
    torch.manual_seed(0)
    model = BiasedMF(3, 4, 2, init_std=1.0)
    train_mf(model, train, epochs=3, batch_size=2, lr=0.1, progress=False)
    mu, bu, bi = float(model.mu), model.user_bias.detach(), model.item_bias.detach()
    assert mu == pytest.approx(5.0)
    pred = predict(model, torch.tensor([2, 2, 0, 1]), torch.tensor([3, 1, 3, 2]))
    assert pred[0] == pytest.approx(mu)  # unseen user and item: the mean
    assert pred[1] == pytest.approx(mu + float(bi[1]))  # unseen user: mean + item bias
    assert pred[2] == pytest.approx(mu + float(bu[0]))  # unseen item: mean + user bias
    assert pred[3] == pytest.approx(float(model(torch.tensor([1]), torch.tensor([2])).detach()))  # warm: the full model
    assert predict(model, torch.tensor([0]), torch.tensor([0]), clip=(0, 1)).item() <= 1
    # the unused rows were never updated
    assert float(model.user_bias.detach()[2]) == 0.0


def test_keep_best_and_nearest_items():
    train, test = low_rank()
    model, history = fit_small(RANK, train, val=test, epochs=8, keep_best=True)
    assert history.best_epoch == min(range(8), key=history["val_rmse"].__getitem__)
    assert ratings_rmse(model, test) == pytest.approx(min(history["val_rmse"]), rel=1e-5)
    near = nearest_items(model, [0, 5], k=3)
    assert set(near) == {0, 5} and len(near[0]) == 3
    assert all(j != 0 for j, _ in near[0]) and near[0][0][1] >= near[0][1][1]
    Q = torch.nn.functional.normalize(model.item_factors.weight.detach(), dim=1)
    j, cos = near[5][0]
    assert cos == pytest.approx(float(Q[5] @ Q[j]), abs=1e-5)
    with pytest.raises(ValueError):
        nearest_items(BiasedMF(U, I, 0), [0])
    with pytest.raises(ValueError):
        nearest_items(model, [I])

"""Matrix factorisation with biases for explicit ratings (chapter 8, Koren, Bell & Volinsky 2009).

``BiasedMF`` predicts the rating of user u for item i as

    r̂_ui = μ + b_u + b_i + p_u · q_i,

with the global mean μ (a buffer, set from the training ratings), one bias per user and per
item, and one ``dim``-dimensional factor vector per user (``user_factors``) and per item
(``item_factors``), both ``nn.Embedding``. ``dim = 0`` leaves only the biases.

``train_mf`` fits it with Adam (or plain SGD) through ``dlcourse.train.fit`` on
``TensorBatches`` of (user, item, rating), minimising the squared error plus the L2 penalty
``weight_decay * (Σ_u |p_u|² + Σ_i |q_i|²) + bias_reg * (Σ_u b_u² + Σ_i b_i²)`` of the whole
training set. The penalty is spread over the ratings (each rating carries 1/n_u of its
user's and 1/n_i of its item's share), so a minibatch's loss estimates that objective
without bias, and the rows of users and items absent from a batch are not touched. A user
with few ratings is then shrunk towards the mean much more than a user with many, as in
the closed-form bias baseline of section 8.1.

``predict`` handles the cold start: a user (item) without training ratings has no learned
bias or factors, so its prediction falls back to μ + b_i (μ + b_u), or μ for both.
``nearest_items`` lists the closest items in factor space by cosine similarity.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from torch import nn

from ..device import synchronize
from ..train import History, TensorBatches, fit

OPTIMIZERS = ("adam", "sgd")


def _nonneg_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _positive_int(name: str, value) -> int:
    if _nonneg_int(name, value) == 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class BiasedMF(nn.Module):
    """r̂_ui = μ + b_u + b_i + p_u · q_i for ``num_users`` users and ``num_items`` items.

    ``forward(user, item)`` takes two LongTensors of the same shape (N,) and returns the
    predictions (N,), using every user's and item's parameters as they are (no cold-start
    fallback: use ``predict`` for that). Parameters: ``user_bias`` (U,), ``item_bias`` (I,),
    ``user_factors`` and ``item_factors`` (``nn.Embedding`` of width ``dim``), the factors
    initialised as N(0, ``init_std``²) and the biases as 0. Buffers: ``mu`` (the global
    mean) and ``user_count`` (U,), ``item_count`` (I,), the number of training ratings of
    each, all set by ``train_mf`` (or ``set_training_data``).
    """

    def __init__(self, num_users: int, num_items: int, dim: int, init_std: float = 0.01):
        super().__init__()
        _positive_int("num_users", num_users)
        _positive_int("num_items", num_items)
        _nonneg_int("dim", dim)
        if not (isinstance(init_std, (int, float)) and init_std >= 0):
            raise ValueError(f"init_std must be a number >= 0, got {init_std!r}")
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.user_factors = nn.Embedding(num_users, dim)
        self.item_factors = nn.Embedding(num_items, dim)
        for emb in (self.user_factors, self.item_factors):
            nn.init.normal_(emb.weight, std=init_std)
        self.user_bias = nn.Parameter(torch.zeros(num_users))
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.register_buffer("mu", torch.tensor(0.0))
        self.register_buffer("user_count", torch.zeros(num_users, dtype=torch.long))
        self.register_buffer("item_count", torch.zeros(num_items, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"num_users={self.num_users}, num_items={self.num_items}, dim={self.dim}"

    def _check(self, user: torch.Tensor, item: torch.Tensor) -> None:
        for name, ids, size in (("user", user, self.num_users), ("item", item, self.num_items)):
            if not isinstance(ids, torch.Tensor) or ids.ndim != 1:
                shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
                raise ValueError(f"{name} ids must be a 1-D LongTensor (N,), got {shape}")
            if ids.dtype != torch.long:
                raise ValueError(f"{name} ids must be torch.long, got {ids.dtype}; use .long()")
            if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise ValueError(f"{name} ids must lie in 0..{size - 1} (the model has {size} {name}s), "
                                 f"got values from {int(ids.min())} to {int(ids.max())}")
        if user.shape != item.shape:
            raise ValueError(f"user and item ids must have the same shape, got {tuple(user.shape)} "
                             f"and {tuple(item.shape)}")

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Predicted ratings (N,) for the pairs (user[n], item[n])."""
        self._check(user, item)
        dot = (self.user_factors(user) * self.item_factors(item)).sum(dim=1)
        return self.mu + self.user_bias[user] + self.item_bias[item] + dot

    def predict_and_penalty(self, user: torch.Tensor, item: torch.Tensor, weight_decay: float,
                            bias_reg: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(``forward(user, item)``, ``penalty(...)``) from one look-up of each parameter (training is faster)."""
        self._check(user, item)
        p, q = self.user_factors(user), self.item_factors(item)
        bu, bi = self.user_bias[user], self.item_bias[item]
        nu = self.user_count[user].clamp(min=1).float()
        ni = self.item_count[item].clamp(min=1).float()
        pred = self.mu + bu + bi + (p * q).sum(dim=1)
        penalty = weight_decay * (p.pow(2).sum(1) / nu + q.pow(2).sum(1) / ni) + bias_reg * (bu.pow(2) / nu + bi.pow(2) / ni)
        return pred, penalty

    def penalty(self, user: torch.Tensor, item: torch.Tensor, weight_decay: float,
                bias_reg: float) -> torch.Tensor:
        """Per-rating share (N,) of the L2 penalty: each parameter weighted by 1 / (its training count).

        Summed over all training ratings this is ``weight_decay * (|P|² + |Q|²) + bias_reg *
        (|b_user|² + |b_item|²)`` restricted to the users and items that have ratings.
        """
        return self.predict_and_penalty(user, item, weight_decay, bias_reg)[1]

    @torch.no_grad()
    def set_training_data(self, ratings) -> None:
        """Set ``mu`` to the mean training rating and count each user's and item's training ratings."""
        user, item, rating = _unpack(ratings, self)
        self.mu.fill_(float(rating.double().mean()))
        self.user_count.copy_(torch.bincount(user.cpu(), minlength=self.num_users).to(self.user_count.device))
        self.item_count.copy_(torch.bincount(item.cpu(), minlength=self.num_items).to(self.item_count.device))


def _unpack(ratings, model: BiasedMF) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(user, item, rating) of a ``Ratings``-like object, checked against the model's sizes."""
    try:
        user, item, rating = ratings.user, ratings.item, ratings.rating
    except AttributeError:
        raise ValueError("expected ratings with .user, .item and .rating tensors (a movietweetings.Ratings), "
                         f"got {type(ratings).__name__}") from None
    if len(user) == 0:
        raise ValueError("got no ratings (an empty set)")
    if not (len(user) == len(item) == len(rating)):
        raise ValueError(f"user, item and rating must have the same length, got {len(user)}, {len(item)}, "
                         f"{len(rating)}")
    for name, expected in (("num_users", model.num_users), ("num_items", model.num_items)):
        got = getattr(ratings, name, expected)
        if got != expected:
            raise ValueError(f"the ratings have {name} = {got} but the model {expected}: build the model "
                             f"as BiasedMF(ratings.num_users, ratings.num_items, dim)")
    model._check(user.long(), item.long())
    return user.long(), item.long(), rating.float()


@torch.no_grad()
def predict(model: BiasedMF, user: torch.Tensor, item: torch.Tensor, *, batch_size: int = 65536,
            clip: tuple[float, float] | None = None) -> torch.Tensor:
    """Predicted ratings (N,) on the CPU, with the cold-start fallback.

    A user without training ratings (``user_count == 0``) contributes neither bias nor
    factors, and likewise an item: an unseen user gets μ + b_i, an unseen item μ + b_u, and
    a pair of both μ. ``clip=(low, high)`` clamps the predictions to the rating scale.
    """
    if not isinstance(model, BiasedMF):
        raise ValueError(f"predict expects a BiasedMF, got {type(model).__name__}")
    _positive_int("batch_size", batch_size)
    if int(model.user_count.sum()) == 0:
        raise ValueError("the model has no training data yet: train it with train_mf (or call "
                         "model.set_training_data(train)) before predicting")
    if clip is not None and not (len(clip) == 2 and clip[0] < clip[1]):
        raise ValueError(f"clip must be (low, high) with low < high, e.g. (0, 10), got {clip!r}")
    model._check(user, item)
    device = model.mu.device
    out = []
    for u, i in zip(user.split(batch_size), item.split(batch_size)):
        u, i = u.to(device), i.to(device)
        su, si = model.user_count[u] > 0, model.item_count[i] > 0
        dot = (model.user_factors(u) * model.item_factors(i)).sum(1)
        pred = model.mu + model.user_bias[u] * su + model.item_bias[i] * si + dot * (su & si)
        out.append(pred.float().cpu())
    pred = torch.cat(out) if out else torch.zeros(0)
    return pred.clamp(*clip) if clip is not None else pred


def ratings_rmse(model: BiasedMF, ratings, **predict_kwargs) -> float:
    """Root-mean-square error of ``predict`` on a ``Ratings`` set."""
    user, item, rating = _unpack(ratings, model)
    return math.sqrt(float((predict(model, user, item, **predict_kwargs) - rating.cpu()).double().pow(2).mean()))


def _make_optimizer(name: str, model: nn.Module, lr: float, device) -> torch.optim.Optimizer:
    """Adam (fused into one kernel where this PyTorch supports it: several times faster on a CPU) or SGD."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    if torch.device(device).type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(model.parameters(), lr=lr)


def train_mf(model: BiasedMF, train, *, epochs: int, batch_size: int, lr: float, weight_decay: float = 0.0,
             bias_reg: float | None = None, optimizer: str = "adam", device: torch.device | str = "cpu",
             generator: torch.Generator | None = None, val=None, keep_best: bool = False,
             progress: bool = True) -> History:
    """Fit ``model`` to the ratings ``train``; return the ``History``.

    Sets ``mu`` and the counts from ``train`` (``set_training_data``), then minimises, per
    minibatch of ``TensorBatches`` (shuffled with ``generator``), the mean squared error plus
    the per-rating share of the L2 penalty (``BiasedMF.penalty``; ``bias_reg`` defaults to
    ``weight_decay``) with ``optimizer`` ("adam" or "sgd") at learning rate ``lr``.
    ``fit`` logs ``train_loss`` (error plus penalty); this adds ``train_rmse`` (the error
    of the batches while training), ``epoch_seconds`` and, with ``val``, ``val_rmse`` per
    epoch (``predict``, cold start included). With ``keep_best`` (needs ``val``) the model
    ends with the parameters of its epoch of lowest validation RMSE, and
    ``history.best_epoch`` (from 0) says which.
    """
    if not isinstance(model, BiasedMF):
        raise ValueError(f"train_mf expects a BiasedMF, got {type(model).__name__}")
    _positive_int("epochs", epochs)
    _positive_int("batch_size", batch_size)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    bias_reg = weight_decay if bias_reg is None else bias_reg
    for name, value in (("weight_decay", weight_decay), ("bias_reg", bias_reg)):
        if not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    if keep_best and val is None:
        raise ValueError("keep_best chooses the epoch on validation ratings: pass val too")
    user, item, rating = _unpack(train, model)
    if val is not None:
        _unpack(val, model)
    model.to(device)
    model.set_training_data(train)
    batches = TensorBatches(user.to(device), item.to(device), rating.to(device), batch_size=batch_size,
                            generator=generator)
    opt = _make_optimizer(optimizer, model, lr, device)
    clock, best, sse = {}, {"rmse": math.inf}, {"sum": 0.0, "n": 0}

    def compute_loss(m: BiasedMF, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        u, i, r = batch
        pred, penalty = m.predict_and_penalty(u, i, weight_decay, bias_reg)
        err = (pred - r).pow(2)
        sse["sum"] += float(err.detach().sum())
        sse["n"] += len(r)
        return (err + penalty).mean()

    def on_epoch_start(epoch: int, optimizer: torch.optim.Optimizer) -> None:
        synchronize(device)
        clock["start"] = time.perf_counter()
        sse.update(sum=0.0, n=0)

    def on_epoch_end(epoch: int, history: History) -> None:
        synchronize(device)
        history.log(epoch_seconds=time.perf_counter() - clock["start"], train_rmse=math.sqrt(sse["sum"] / sse["n"]))
        if val is not None:
            score = ratings_rmse(model, val)
            history.log(val_rmse=score)
            if keep_best and score < best["rmse"]:
                best.update(rmse=score, epoch=epoch,
                            state={k: v.detach().clone() for k, v in model.state_dict().items()})

    history = fit(model, batches, optimizer=opt, num_epochs=epochs, compute_loss=compute_loss, device=device,
                  on_epoch_start=on_epoch_start, on_epoch_end=on_epoch_end, progress=progress)
    if keep_best and "state" in best:
        model.load_state_dict(best["state"])
        history.best_epoch = best["epoch"]
    return history


@torch.no_grad()
def nearest_items(model: BiasedMF, items: Sequence[int], k: int = 5,
                  min_count: int = 1) -> dict[int, list[tuple[int, float]]]:
    """For each item id in ``items``, its ``k`` nearest items by cosine similarity of ``item_factors``.

    Only items with at least ``min_count`` training ratings are candidates (the vectors of
    rarer items are mostly their random start). Returns ``{item: [(neighbour, cosine), ...]}``,
    best first, never listing the item itself.
    """
    if not isinstance(model, BiasedMF):
        raise ValueError(f"nearest_items expects a BiasedMF, got {type(model).__name__}")
    if model.dim == 0:
        raise ValueError("a model with dim = 0 has no item factors: use dim >= 1")
    _positive_int("k", k)
    _nonneg_int("min_count", min_count)
    if isinstance(items, (int, str)) or not all(isinstance(i, int) and 0 <= i < model.num_items for i in items):
        raise ValueError(f"items must be a list of item ids in 0..{model.num_items - 1}, got {items!r}")
    Q = nn.functional.normalize(model.item_factors.weight.detach().float().cpu(), dim=1)
    allowed = model.item_count.cpu() >= min_count
    result = {}
    for i in items:
        sims = Q @ Q[i]
        sims[~allowed] = -math.inf
        sims[i] = -math.inf
        top = sims.topk(min(k, int(torch.isfinite(sims).sum())))
        result[i] = [(int(j), float(s)) for s, j in zip(top.values.tolist(), top.indices.tolist())]
    return result

"""Strong rating baselines: global mean, regularised user and item biases, popularity (chapter 8, section 8.1).

The bias model predicts user ``u``'s rating of item ``i`` as ``mu + b_u + b_i``: the global
mean, plus how much more generously ``u`` rates than the average user, plus how much better
``i`` is rated than the average item. ``fit_biases`` minimises the regularised squared error

    J = sum over ratings (r - mu - b_u - b_i)^2 + reg_user * sum_u b_u^2 + reg_item * sum_i b_i^2

with ``mu`` fixed to the training mean, by exact alternating minimisation: with the item
biases fixed, each user's bias has the closed form ``b_u = sum_i (r - mu - b_i) / (reg_user +
n_u)`` (``n_u`` ratings), then the same for the items with the users fixed. Each half-step
minimises ``J`` exactly over one block, so ``J`` never increases. A user or item without
training ratings gets bias 0 (the regulariser pulls it there), so the model falls back to
the item's bias, the user's bias or the global mean: the cold-start behaviour of the model.

Any object with 1-D tensors ``user``, ``item``, ``rating`` (and ``num_users``, ``num_items``)
works as training data, such as ``dlcourse.data.movietweetings.Ratings``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = ["Biases", "fit_biases", "global_mean", "popularity", "rating_counts", "rmse", "seen_masks"]


def _check_ratings(ratings, name: str = "train", *, need_rating: bool = True) -> None:
    """Raise a ValueError unless ``ratings`` has parallel, non-empty 1-D ``user`` / ``item`` (/ ``rating``) tensors."""
    fields = ("user", "item", "rating") if need_rating else ("user", "item")
    missing = [f for f in fields if not isinstance(getattr(ratings, f, None), torch.Tensor)]
    if missing:
        raise ValueError(f"{name} must have tensors {', '.join(fields)} (such as a movietweetings.Ratings); "
                         f"missing or not a tensor: {', '.join(missing)}")
    shapes = {f: tuple(getattr(ratings, f).shape) for f in fields}
    n = shapes["user"][0] if len(shapes["user"]) == 1 else -1
    if any(s != (n,) for s in shapes.values()) or n < 0:
        raise ValueError(f"{name}'s {', '.join(fields)} must be 1-D tensors of one length, got shapes {shapes}")
    if n == 0:
        raise ValueError(f"{name} holds no ratings: the baselines need at least one")
    for f in ("user", "item"):
        t = getattr(ratings, f)
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"{name}.{f} must hold integer ids, got dtype {t.dtype}")
        if int(t.min()) < 0:
            raise ValueError(f"{name}.{f} holds negative ids (smallest {int(t.min())}): ids must be 0, 1, 2, ...")
    if need_rating and not torch.isfinite(ratings.rating.float()).all():
        raise ValueError(f"{name}.rating holds NaN or infinite values")


def _size(ratings, attr: str, ids: torch.Tensor, given: int | None, name: str) -> int:
    """The table size: ``given``, else ``ratings.<attr>``, else the largest id + 1; checked against the ids."""
    size = given if given is not None else getattr(ratings, attr, None)
    if size is None:
        return int(ids.max()) + 1
    if isinstance(size, bool) or not isinstance(size, int) or size < int(ids.max()) + 1:
        raise ValueError(f"{name} must be an int larger than every id (largest id {int(ids.max())}), got {size!r}")
    return size


def global_mean(train) -> float:
    """The mean training rating: the best constant prediction under squared error."""
    _check_ratings(train)
    return float(train.rating.double().mean())


def rating_counts(ratings, num_users: int | None = None,
                  num_items: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratings per user (U,), ratings per item (I,)), long; sizes default to ``ratings.num_users`` / ``num_items``."""
    _check_ratings(ratings, "ratings", need_rating=False)
    U = _size(ratings, "num_users", ratings.user, num_users, "num_users")
    I = _size(ratings, "num_items", ratings.item, num_items, "num_items")
    return torch.bincount(ratings.user, minlength=U), torch.bincount(ratings.item, minlength=I)


def popularity(train, num_items: int | None = None) -> torch.Tensor:
    """Number of training ratings of each item, (I,) long: the popularity score for implicit-feedback ranking.

    ``num_items`` defaults to ``train.num_items``. Ranking every user's candidates by this
    score recommends the same best-sellers to everyone, a strong baseline on sparse data.
    """
    _check_ratings(train, need_rating=False)
    I = _size(train, "num_items", train.item, num_items, "num_items")
    return torch.bincount(train.item, minlength=I)


def seen_masks(train, ratings) -> tuple[torch.Tensor, torch.Tensor]:
    """(user seen, item seen): two bool (N,) masks, whether each rating's user / item occurs in ``train``.

    A rating whose user (or item) is not seen in training is a cold-start case for that side.
    """
    _check_ratings(train, need_rating=False)
    _check_ratings(ratings, "ratings", need_rating=False)
    size_u = max(int(train.user.max()), int(ratings.user.max())) + 1
    size_i = max(int(train.item.max()), int(ratings.item.max())) + 1
    user_known = torch.bincount(train.user, minlength=size_u) > 0
    item_known = torch.bincount(train.item, minlength=size_i) > 0
    return user_known[ratings.user.to(user_known.device)], item_known[ratings.item.to(item_known.device)]


def rmse(pred, target) -> float:
    """Root mean squared error between predictions and targets of the same shape (tensors or sequences)."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.numel() == 0:
        raise ValueError("rmse of no ratings is undefined: pred and target are empty")
    diff = pred.detach().double().cpu() - target.detach().double().cpu()
    return float(diff.pow(2).mean().sqrt())


@dataclass
class Biases:
    """A fitted bias model: ``mu`` (float), ``user_bias`` (U,), ``item_bias`` (I,); ``predict(user, item)``.

    ``objective`` holds the regularised squared error J after each sweep of ``fit_biases``
    (the first entry is J at the start, all biases 0).
    """

    mu: float
    user_bias: torch.Tensor
    item_bias: torch.Tensor
    reg_user: float = 0.0
    reg_item: float = 0.0
    objective: list = field(default_factory=list)

    @property
    def num_iters(self) -> int:
        """Sweeps run (the length of ``objective`` minus its starting value)."""
        return max(len(self.objective) - 1, 0)

    def predict(self, user, item) -> torch.Tensor:
        """Predicted ratings mu + b_u + b_i, (N,) float, for parallel id tensors ``user`` and ``item``.

        Ids beyond the tables (users or items not in the training data at all) get bias 0,
        like those in the tables without training ratings.
        """
        user, item = torch.as_tensor(user), torch.as_tensor(item)
        if user.shape != item.shape or user.ndim != 1:
            raise ValueError(f"user and item must be 1-D id tensors of one length, got shapes "
                             f"{tuple(user.shape)} and {tuple(item.shape)}")
        if user.dtype.is_floating_point or item.dtype.is_floating_point:
            raise ValueError("user and item must hold integer ids, not floats")
        if len(user) and (int(user.min()) < 0 or int(item.min()) < 0):
            raise ValueError("user and item ids must be non-negative")
        return self.mu + _lookup(self.user_bias, user) + _lookup(self.item_bias, item)


def _lookup(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """table[ids], with 0 for ids beyond the table."""
    ids = ids.to(table.device)
    inside = ids < len(table)
    return torch.where(inside, table[ids.clamp(max=len(table) - 1)], torch.zeros((), dtype=table.dtype,
                                                                                     device=table.device))


def _objective(residual: torch.Tensor, bu: torch.Tensor, bi: torch.Tensor, reg_user: float, reg_item: float) -> float:
    return float(residual.double().pow(2).sum() + reg_user * bu.double().pow(2).sum()
                 + reg_item * bi.double().pow(2).sum())


def fit_biases(train, reg_user: float = 2.0, reg_item: float = 2.0, num_iters: int = 50, *, fit_user: bool = True,
               fit_item: bool = True, tol: float = 1e-5, num_users: int | None = None,
               num_items: int | None = None) -> Biases:
    """Fit mu + b_u + b_i to ``train`` by alternating closed-form updates (users, then items), L2-regularised.

    ``reg_user`` and ``reg_item`` (>= 0) shrink the bias of a user or item with few ratings
    towards 0: ``b_u = sum (r - mu - b_i) / (reg_user + n_u)``, so with ``reg_user = 2`` a
    single rating moves the user's bias by a third of its residual. The defaults (2, 2) are
    the values section 8.1 chooses on MovieTweetings' validation ratings. ``fit_user=False`` or
    ``fit_item=False`` keeps that side at 0 (the "item biases only" / "user biases only"
    models; with one side the first sweep is already exact). Sweeps stop after ``num_iters``
    or when no bias moves by more than ``tol``. Table sizes default to ``train.num_users`` /
    ``train.num_items``. The biases live on the device of ``train``'s tensors.
    """
    _check_ratings(train)
    for name, reg in (("reg_user", reg_user), ("reg_item", reg_item)):
        if isinstance(reg, bool) or not isinstance(reg, (int, float)) or not math.isfinite(reg) or reg < 0:
            raise ValueError(f"{name} must be a finite number >= 0 (the L2 penalty on the biases), got {reg!r}")
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ValueError(f"num_iters must be a positive int (alternating sweeps), got {num_iters!r}")
    if not (fit_user or fit_item):
        raise ValueError("fit_user and fit_item are both False: use global_mean for the model without biases")
    U = _size(train, "num_users", train.user, num_users, "num_users")
    I = _size(train, "num_items", train.item, num_items, "num_items")
    user, item, rating = train.user, train.item.to(train.user.device), train.rating.to(train.user.device).float()
    mu = float(rating.double().mean())
    n_u = torch.bincount(user, minlength=U).float()
    n_i = torch.bincount(item, minlength=I).float()
    bu = torch.zeros(U, device=user.device)
    bi = torch.zeros(I, device=user.device)
    centred = rating - mu
    history = [_objective(centred, bu, bi, reg_user, reg_item)]
    for _ in range(num_iters):
        old_u, old_i = bu, bi
        if fit_user:
            sums = torch.zeros(U, device=user.device).index_add_(0, user, centred - bi[item])
            bu = torch.where(n_u > 0, sums / (reg_user + n_u).clamp(min=1e-12), torch.zeros_like(sums))
        if fit_item:
            sums = torch.zeros(I, device=user.device).index_add_(0, item, centred - bu[user])
            bi = torch.where(n_i > 0, sums / (reg_item + n_i).clamp(min=1e-12), torch.zeros_like(sums))
        history.append(_objective(centred - bu[user] - bi[item], bu, bi, reg_user, reg_item))
        change = max(float((bu - old_u).abs().max()), float((bi - old_i).abs().max()))
        if change <= tol or not (fit_user and fit_item):
            break
    return Biases(mu, bu, bi, float(reg_user), float(reg_item), history)

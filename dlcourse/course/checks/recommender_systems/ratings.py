"""Lab 8 exercises 1 and 2: regularised user and item biases, and one SGD step of biased matrix factorisation."""

from __future__ import annotations

import math

import torch

from ....data.movietweetings import Ratings
from ....models.matrix_factorisation import BiasedMF
from ....topics import rec_baselines
from .. import (CheckFailed, Mistake, as_float, call, close, diagnose, expect_sequence, expect_tensor,
                expect_unchanged, fresh, passed)

# Exercise 1 -----------------------------------------------------------------------------


def _solve_biases(index: torch.Tensor, residual: torch.Tensor, size: int, reg: float, regularise: bool):
    """sum of the residuals of each id / (number of its ratings + reg); an id without ratings gets 0."""
    total = torch.zeros(size, dtype=torch.float64).index_add(0, index, residual)
    count = torch.bincount(index, minlength=size).double()
    return total / (count + reg) if regularise else total / count.clamp(min=1)


def reference_biases(train: Ratings, reg_user: float, reg_item: float, num_iters: int, *, center: bool = True,
                     regularise: bool = True, order: str = "users first", swap: bool = False, package: bool = True):
    """(mu, user_bias, item_bias) after ``num_iters`` alternating sweeps; keywords build the typical mistakes.

    A sweep sets every user's bias to the regularised mean of its residuals r - mu - b_i, then
    every item's bias from the new user biases. ``center=False`` leaves mu out of the residuals,
    ``regularise=False`` divides by the count alone, ``order="stale"`` computes the item biases
    from the previous sweep's user biases (Jacobi), ``order="items first"`` starts with the items,
    ``swap=True`` exchanges the two regularisation strengths. The right answer comes from the
    package's ``rec_baselines.fit_biases`` (``package=False``: from the formula here).
    """
    if package and (center, regularise, order, swap) == (True, True, "users first", False):
        fitted = rec_baselines.fit_biases(train, reg_user, reg_item, num_iters, tol=0.0)
        return fitted.mu, fitted.user_bias.double(), fitted.item_bias.double()
    rating = train.rating.double()
    mu = rating.mean()
    base = rating - mu if center else rating
    user_bias = torch.zeros(train.num_users, dtype=torch.float64)
    item_bias = torch.zeros(train.num_items, dtype=torch.float64)
    reg_u, reg_i = (reg_item, reg_user) if swap else (reg_user, reg_item)
    for _ in range(num_iters):
        if order == "items first":
            item_bias = _solve_biases(train.item, base - user_bias[train.user], train.num_items, reg_i, regularise)
            user_bias = _solve_biases(train.user, base - item_bias[train.item], train.num_users, reg_u, regularise)
            continue
        new_user = _solve_biases(train.user, base - item_bias[train.item], train.num_users, reg_u, regularise)
        source = user_bias if order == "stale" else new_user
        item_bias = _solve_biases(train.item, base - source[train.user], train.num_items, reg_i, regularise)
        user_bias = new_user
    return float(mu), user_bias, item_bias


def _bias_case() -> Ratings:
    """40 ratings by users 0-5 of items 0-6; user 6 and item 7 have none (they appear only later)."""
    g = torch.Generator().manual_seed(fresh(8))
    user = torch.cat([torch.arange(6), torch.randint(6, (34,), generator=g)])
    item = torch.cat([torch.arange(7)[:6], torch.randint(7, (34,), generator=g)])
    rating = torch.randint(11, (40,), generator=g).float()
    return Ratings(user, item, rating, torch.arange(40), 7, 8, [f"movie {i}" for i in range(8)], [[]] * 8)


BIAS_MISTAKES = [
    Mistake(dict(center=False), "you left the global mean out of the residuals: each bias should fit what mu does "
                                "not explain, r - mu - b_i (and r - mu - b_u); without mu, the biases absorb the "
                                "mean rating and the prediction mu + b_u + b_i counts it more than once"),
    Mistake(dict(regularise=False), "your biases are not regularised: divide the sum of a user's residuals by "
                                    "(number of their ratings + reg_user), not by the count alone. Otherwise a user "
                                    "with a single rating gets that rating's whole residual as bias"),
    Mistake(dict(swap=True), "you exchanged the two strengths: reg_user goes with the user biases, reg_item with "
                             "the item biases"),
    Mistake(dict(order="stale"), "you updated the item biases from the user biases of the previous sweep (both "
                                 "updates from stale values, a Jacobi iteration). It converges to the same biases, "
                                 "but more slowly, and this check compares after 1 and 3 sweeps: update the users "
                                 "first, then the items from the NEW user biases (your answer passes the "
                                 "200-sweep case)"),
    Mistake(dict(order="items first"), "you updated the items before the users; the check compares after 1 and 3 "
                                       "sweeps, so follow the order asked: users first, then items from the new user "
                                       "biases (both orders converge to the same biases)"),
]


def check_fit_biases(fit_biases) -> None:
    """Against the package's ``fit_biases`` after 1, 3 and 200 sweeps; unseen ids get 0; inputs unchanged."""
    train = _bias_case()
    unseen_users, unseen_items = [6], [7]
    for reg_user, reg_item, num_iters in [(2.0, 5.0, 1), (2.0, 5.0, 3), (0.5, 3.0, 200)]:
        copy = Ratings(train.user.clone(), train.item.clone(), train.rating.clone(), train.time.clone(),
                       train.num_users, train.num_items, train.titles, train.genres)
        out = call(fit_biases, "fit_biases", copy, reg_user, reg_item, num_iters)
        mu, user_bias, item_bias = expect_sequence(out, 3, "fit_biases should return the triple "
                                                   "(mu, user_bias, item_bias)")
        mu = as_float(mu, "mu")
        user_bias = expect_tensor(user_bias, (train.num_users,), "user_bias (one entry per user id 0..num_users-1, "
                                  "users without a training rating included)").double()
        item_bias = expect_tensor(item_bias, (train.num_items,), "item_bias (one entry per item id "
                                  "0..num_items-1, items without a training rating included)").double()
        expect_unchanged([train.user, train.item, train.rating], [copy.user, copy.item, copy.rating],
                         "fit_biases changed the ratings it was given; use out-of-place operations")
        want_mu, want_user, want_item = reference_biases(train, reg_user, reg_item, num_iters)
        if not math.isclose(mu, want_mu, abs_tol=1e-6):
            raise CheckFailed(f"mu should be the mean of the training ratings, {want_mu:.4f}; got {mu:.4f}")
        if close(user_bias, want_user, 1e-5) and close(item_bias, want_item, 1e-5):
            continue

        def matches(**kw):
            _, u, i = reference_biases(train, reg_user, reg_item, num_iters, **kw)
            return close(user_bias.nan_to_num(0.0), u, 1e-5) and close(item_bias.nan_to_num(0.0), i, 1e-5)

        unseen = torch.cat([user_bias[unseen_users], item_bias[unseen_items]])
        diagnose(BIAS_MISTAKES, matches)
        diagnose([Mistake(lambda: not torch.all(unseen == 0), "a user or a movie without training ratings should get "
                                                                "bias 0, so that the prediction falls back to mu "
                                                                f"(+ the other bias); user 6 got {unseen[0]:.4g} and "
                                                                f"movie 7 got {unseen[1]:.4g}")])
        raise CheckFailed(f"with reg_user = {reg_user}, reg_item = {reg_item} and {num_iters} sweep(s) your biases "
                          f"differ from the alternating updates by up to "
                          f"{max((user_bias - want_user).abs().max(), (item_bias - want_item).abs().max()):.3g}: "
                          "b_u = sum of (r - mu - b_i) / (n_u + reg_user), then b_i = sum of (r - mu - b_u) / "
                          "(n_i + reg_item), starting from zeros")
    passed("fit_biases matches the alternating closed-form updates; unseen users and movies fall back to 0")


# Exercise 2 -----------------------------------------------------------------------------


def _autograd_step(mu, user_bias, item_bias, P, Q, user, item, rating, lr, reg):
    """One SGD step by autograd on the package's ``BiasedMF`` holding the given parameters (mu fixed)."""
    model = BiasedMF(P.shape[0], Q.shape[0], P.shape[1]).double()
    params = [model.user_bias, model.item_bias, model.user_factors.weight, model.item_factors.weight]
    with torch.no_grad():
        for param, value in zip(params, (user_bias, item_bias, P, Q)):
            param.copy_(value)
        model.mu.fill_(mu)
    error = rating - model(user, item)
    penalty = (model.user_factors(user).pow(2).sum(1) + model.item_factors(item).pow(2).sum(1)
               + model.user_bias[user].pow(2) + model.item_bias[item].pow(2))
    loss = (error.pow(2) + reg * penalty).sum()
    grads = torch.autograd.grad(loss, params)
    return tuple((p - lr * g).detach() for p, g in zip(params, grads))


def reference_mf_step(mu, user_bias, item_bias, P, Q, user, item, rating, lr, reg, *, sign: float = 1.0,
                      factor: float = 2.0, reg_factor: float = 2.0, sequential: bool = False,
                      reg_mode: str = "per rating", accumulate: bool = True, package: bool = True):
    """(user_bias, item_bias, P, Q) after one SGD step on the summed loss; keywords build the typical mistakes.

    The right step is autograd's on ``BiasedMF``. ``sign=-1`` climbs the loss; ``factor`` and
    ``reg_factor`` are the 2s of the error's and the regulariser's derivatives; ``sequential``
    computes the item factors' gradient from the already updated user factors; ``reg_mode``
    ``"none"`` leaves the regulariser out, ``"all rows"`` decays every row once (weight decay);
    ``accumulate=False`` lets the last of a repeated user's or item's ratings overwrite the others.
    ``package=False`` takes the right step from the formula here instead of autograd.
    """
    right = (sign, factor, reg_factor, sequential, reg_mode, accumulate) == (1.0, 2.0, 2.0, False, "per rating", True)
    if package and right:
        return _autograd_step(mu, user_bias, item_bias, P, Q, user, item, rating, lr, reg)
    error = rating - (mu + user_bias[user] + item_bias[item] + (P[user] * Q[item]).sum(1))  # (B,)
    lam = 0.0 if reg_mode == "none" else reg_factor * reg
    per_rating = 0.0 if reg_mode == "all rows" else 1.0

    def step(param, index, data_grad, rows):  # rows: the param's rows at the batch's ids
        grad = data_grad + per_rating * lam * rows
        if not accumulate:
            new = param.clone()
            new[index] = param[index] - sign * lr * grad
            return new
        total = torch.zeros_like(param).index_add(0, index, grad)
        if reg_mode == "all rows":
            total = total + lam * param
        return param - sign * lr * total

    new_user_bias = step(user_bias, user, -factor * error, user_bias[user])
    new_item_bias = step(item_bias, item, -factor * error, item_bias[item])
    new_P = step(P, user, -factor * error[:, None] * Q[item], P[user])
    P_for_q = new_P if sequential else P
    new_Q = step(Q, item, -factor * error[:, None] * P_for_q[user], Q[item])
    return new_user_bias, new_item_bias, new_P, new_Q


def _mf_case(num_users, num_items, dim, batch, seed):
    """Parameters and a minibatch; in a batch of more than two ratings a user and an item occur twice."""
    g = torch.Generator().manual_seed(fresh(seed))
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    user = torch.randint(num_users, (batch,), generator=g)
    item = torch.randint(num_items, (batch,), generator=g)
    if batch > 2:  # a repeated user and a repeated item
        user[-1], item[-1] = user[0], item[1]
    rating = torch.randint(11, (batch,), generator=g).double()
    return (7.0, 0.5 * randn(num_users), 0.5 * randn(num_items), 0.7 * randn(num_users, dim),
            0.7 * randn(num_items, dim), user, item, rating, 0.01, 0.1)


MF_MISTAKES = [
    Mistake(dict(sign=-1.0), "your step climbs the loss: the gradient of (r - r_hat)^2 with respect to b_u is "
                             "-2 e (with e = r - r_hat), and SGD subtracts lr times the gradient, so b_u grows by "
                             "2 lr e when the prediction is too low"),
    Mistake(dict(factor=1.0, reg_factor=1.0), "your step is half the gradient: the derivative of e^2 is 2 e e' and "
                                              "that of lambda p^2 is 2 lambda p. (Many texts fold the 2 into the "
                                              "learning rate; here the step must match autograd on the loss as "
                                              "written)"),
    Mistake(dict(reg_factor=1.0), "the regulariser's derivative is 2 lambda p_u (and 2 lambda b_u), not lambda p_u"),
    Mistake(dict(factor=1.0), "the error term's derivative is -2 e q_i (and -2 e for the biases): you left out the 2"),
    Mistake(dict(sequential=True), "you computed the item factors' gradient from the user factors you had just "
                                   "updated: compute every gradient at the old parameters first (keep a copy of "
                                   "p_u), then update them all"),
    Mistake(dict(reg_mode="none"), "your step leaves out the regulariser: add 2 lambda p_u to the gradient of p_u "
                                   "(and 2 lambda q_i, 2 lambda b_u, 2 lambda b_i to theirs)"),
    Mistake(dict(reg_mode="all rows"), "you decayed every row of P and Q (weight decay on the whole matrices); the "
                                       "loss regularises only the users and items of the minibatch, once per rating "
                                       "they appear in"),
    Mistake(dict(accumulate=False), "a user (or movie) that appears twice in the minibatch must receive both "
                                    "ratings' gradients: with indexing assignment (P[user] = ...) the last one "
                                    "overwrites the others. Accumulate with index_add (or a loop with +=)"),
]


def check_mf_sgd_step(mf_sgd_step) -> None:
    """Against autograd on ``BiasedMF`` for minibatches with repeated users and movies; inputs unchanged."""
    for shape in [(5, 4, 3, 1, 0), (6, 5, 3, 8, 1), (9, 7, 4, 20, 2)]:  # users, items, dim, batch, seed
        args = _mf_case(*shape)
        copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        out = call(mf_sgd_step, "mf_sgd_step", *copies)
        names = ["user_bias", "item_bias", "P", "Q"]
        got = expect_sequence(out, 4, "mf_sgd_step should return the updated (user_bias, item_bias, P, Q)")
        got = [expect_tensor(g, tuple(a.shape), f"the updated {n}").double() for g, a, n in zip(got, args[1:5], names)]
        expect_unchanged([a for a in args if isinstance(a, torch.Tensor)],
                         [c for c in copies if isinstance(c, torch.Tensor)],
                         "mf_sgd_step changed its inputs in place; return new tensors (P - lr * grad, ...)")
        want = reference_mf_step(*args)
        if all(close(g, w, 1e-9) for g, w in zip(got, want)):
            continue
        diagnose(MF_MISTAKES, lambda **kw: all(close(g, w, 1e-9) for g, w in zip(got, reference_mf_step(*args, **kw))))
        worst = max(range(4), key=lambda n: (got[n] - want[n]).abs().max())
        raise CheckFailed(f"for a minibatch of {shape[3]} rating(s) your updated {names[worst]} differs from "
                          f"autograd's SGD step by up to {(got[worst] - want[worst]).abs().max():.3g}")
    passed("mf_sgd_step takes the same step as autograd on BiasedMF, repeated users and movies included")

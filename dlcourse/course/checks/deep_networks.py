"""Checks for lab 1: forward pass, error terms, Algorithm 4-1 update, diagnosis, Adam (chapter 1)."""

from __future__ import annotations

import torch

from ...topics.gradflow import RECIPE, train_recipe
from . import (CheckFailed, Exercise, Mistake, call, close, close_all, diagnose, expect_sequence, expect_tensor,
               expect_unchanged, facing_students, fresh, passed)

sigmoid, relu, tanh = torch.sigmoid, torch.relu, torch.tanh


def _with_bias(Z):
    return torch.cat([torch.ones(len(Z), 1, dtype=Z.dtype), Z], dim=1)


def _net(sizes, seed):
    g = torch.Generator().manual_seed(fresh(seed))
    Us = [torch.randn(n, m + 1, generator=g, dtype=torch.float64) / m**0.5 for m, n in zip(sizes[:-1], sizes[1:])]
    X = torch.randn(7, sizes[0], generator=g, dtype=torch.float64)
    Y = torch.nn.functional.one_hot(torch.randint(sizes[-1], (7,), generator=g), sizes[-1]).double()
    return Us, X, Y


def reference_forward(Us, X, taus, *, bias_first=True, last_activation=True, activation=None):
    """Eq. 4.5; the keywords build the typical wrong variants (``activation``: one for every layer)."""
    Z = X
    taus = [activation] * len(Us) if activation is not None else taus
    for l, (U, tau) in enumerate(zip(Us, taus), start=1):
        Zb = _with_bias(Z) if bias_first else torch.cat([Z, torch.ones(len(Z), 1, dtype=Z.dtype)], 1)
        S = Zb @ U.T
        Z = tau(S) if (last_activation or l < len(Us)) else S
    return Z


# Exercise 1 -----------------------------------------------------------------------------

FORWARD_MISTAKES = [
    Mistake(dict(bias_first=False), "the bias is column 0 of each U^l (eq. 4.3 puts z_0 = 1 first): prepend the "
                                    "column of ones, don't append it"),
    Mistake(dict(last_activation=False), "the output layer applies its activation too: o = tau_L(U^L z^{L-1})"),
    Mistake(dict(activation=sigmoid), "layer l must use its own activation taus[l-1]; you used the sigmoid "
                                      "everywhere"),
]


def check_forward(forward) -> None:
    """forward(Us, X, taus) -> O (t, c), eq. 4.5 with the bias in column 0 of each U."""
    cases = [([5, 4, 3], [relu, sigmoid], 0), ([6, 8, 8, 4], [tanh, relu, sigmoid], 1),
             ([3, 2], [sigmoid], 2)]
    for sizes, taus, seed in cases:
        Us, X, _ = _net(sizes, seed)
        want = reference_forward(Us, X, taus)
        got = expect_tensor(call(forward, "forward", [U.clone() for U in Us], X.clone(), taus),
                            want.shape, f"forward(...) for layer sizes {sizes}")
        if not close(got, want):
            diagnose(FORWARD_MISTAKES, lambda **kw: close(got, reference_forward(Us, X, taus, **kw)),
                     otherwise=f"forward(...) for layer sizes {sizes} is off by up to "
                               f"{(got - want).abs().max().item():.3g}; compare one layer at a time with eq. 4.5")
    passed("Exercise 1: forward pass matches eq. 4.5 on three networks")


# Exercise 2 -----------------------------------------------------------------------------

def reference_deltas(Us, Zs, Y, *, sign=1.0, derivative=True):
    """Eqs. 4.6 and 4.8 for sigmoid layers; the keywords build the typical wrong variants."""
    O = Zs[-1]
    d = (O * (1 - O) if derivative else 1.0) * (Y - O) * sign
    out = [d]
    for l in range(len(Us) - 1, 0, -1):
        Z = Zs[l]
        d = (Z * (1 - Z) if derivative else 1.0) * (d @ Us[l][:, 1:])
        out.insert(0, d)
    return out


def _forward_cache(Us, X):
    Ss, Zs = [None], [X]
    for U in Us:
        Ss.append(_with_bias(Zs[-1]) @ U.T)
        Zs.append(torch.sigmoid(Ss[-1]))
    return Ss, Zs


DELTA_L_MISTAKES = [
    Mistake(dict(sign=-1.0), "delta^L has the wrong sign: eq. 4.6 uses (y_k - o_k), not (o_k - y_k)"),
    Mistake(dict(derivative=False), "delta^L is missing the factor tau'(s^L) = o (1 - o) of eq. 4.6"),
]


def check_deltas(deltas) -> None:
    """deltas(Us, Ss, Zs, Y) -> [delta^1, ..., delta^L], each (t, n_l), sigmoid layers."""
    for sizes, seed in [([5, 4, 3], 3), ([6, 8, 5, 4], 4)]:
        Us, X, Y = _net(sizes, seed)
        Ss, Zs = _forward_cache(Us, X)
        want = reference_deltas(Us, Zs, Y)
        got = call(deltas, "deltas", [U.clone() for U in Us], [None] + [S.clone() for S in Ss[1:]],
                   [Z.clone() for Z in Zs], Y.clone())
        length = f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""
        got = expect_sequence(got, len(Us), f"deltas should return a list of {len(Us)} tensors, delta^1 ... "
                                            f"delta^L (got {type(got).__name__}{length})")
        shapes = [tuple(g.shape) if isinstance(g, torch.Tensor) else None for g in got]
        diagnose([
            Mistake(lambda: shapes[::-1] == [tuple(w.shape) for w in want] and len(set(shapes)) > 1,
                    "your list is in reverse order: return [delta^1, ..., delta^L], first layer first"),
            *(Mistake(lambda s=s, w=w: s is not None and len(s) == 2 and s[1] == w.shape[1] + 1,
                      f"delta^{l} has one column too many: drop the bias column of U^{l + 1} (U[:, 1:]) in "
                      "eq. 4.8; no error flows back into the constant 1")
              for l, (s, w) in enumerate(zip(shapes, want), start=1)),
        ])
        for l, (g, w) in enumerate(zip(got, want), start=1):
            expect_tensor(g, w.shape, f"delta^{l}")
        if close_all(got, want):
            continue
        if not close(got[-1], want[-1]):
            diagnose(DELTA_L_MISTAKES, lambda **kw: close(got[-1], reference_deltas(Us, Zs, Y, **kw)[-1]),
                     otherwise="delta^L (eq. 4.6) is wrong; the hidden layers were not checked yet")
        bad = next(l for l, (g, w) in enumerate(zip(got, want), start=1) if not close(g, w))
        raise CheckFailed(f"delta^L is right but delta^{bad} is not: in eq. 4.8 multiply delta^{bad + 1} by "
                          f"U^{bad + 1} without its bias column, then by tau'(s^{bad}) = z (1 - z)")
    passed("Exercise 2: error terms match eqs. 4.6 and 4.8 on two networks")


# Exercise 3 -----------------------------------------------------------------------------

def reference_sgd_step(Us, X, Y, lr, *, sign=1.0, mean=True):
    """Algorithm 4-1, lines 4-22; ``sign=-1`` climbs the gradient, ``mean=False`` sums the batch's loss."""
    Us = [U.clone().requires_grad_() for U in Us]
    O = _forward_cache(Us, X)[1][-1]
    J = 0.5 * ((Y - O) ** 2).sum() / (len(X) if mean else 1)
    grads = torch.autograd.grad(J, Us)
    return [(U - sign * lr * g).detach() for U, g in zip(Us, grads)]


def check_sgd_step(sgd_step) -> None:
    """sgd_step(Us, X, Y, lr) -> new Us after one Algorithm 4-1 update (lines 4-22)."""
    Us, X, Y = _net([6, 8, 5, 4], 5)
    lr = 0.5
    originals = [U.clone() for U in Us]
    got = call(sgd_step, "sgd_step", Us, X, Y, lr)
    expect_unchanged(originals, Us, "sgd_step changed the matrices passed in: return new matrices instead "
                                    "(U - lr * dU / t creates new tensors)")
    want = reference_sgd_step(Us, X, Y, lr)
    got = expect_sequence(got, len(want), f"sgd_step should return a list of {len(want)} matrices U^1 ... U^L")
    for l, (g, w) in enumerate(zip(got, want), start=1):
        expect_tensor(g, w.shape, f"the new U^{l}")
    steps = [g - U for g, U in zip(got, Us)]

    def matches(**kw):  # compare the steps, not the new weights: a wrong step is small beside U
        variant = reference_sgd_step(Us, X, Y, **{"lr": lr, **kw})
        return close_all(steps, [w - U for w, U in zip(variant, Us)])

    if not matches():
        t = len(X)
        diagnose([
            Mistake(dict(sign=-1.0), "you moved the weights up the gradient: line 22 subtracts rho * (1/t) * Delta U"),
            Mistake(dict(mean=False), f"your step is {t}x too large, a factor of the batch size t = {t}: divide the "
                                      "summed gradient by t (line 22)"),
            Mistake(dict(lr=1.0), "your step ignores the learning rate rho (lr)"),
        ], matches, otherwise="the new weights are wrong; check that dU^l = -delta^l^T [1, Z^{l-1}] is summed over "
                              "the batch (eqs. 4.7 and 4.9) before the update")
    passed("Exercise 3: one Algorithm 4-1 step matches gradient descent on the mean loss")


# Exercise 4 -----------------------------------------------------------------------------

DIAGNOSES = ("learning rate too large", "vanishing gradients", "overfitting", "labels shuffled")
BROKEN = dict(depth=10, width=64, activation="sigmoid", init="small", residual=False, norm=False)
def check_diagnosis(diagnosis, fix) -> None:
    """diagnosis: one of DIAGNOSES; fix: dict changing BROKEN so the same recipe trains it."""
    from ...data.digits import digits_split

    if diagnosis not in DIAGNOSES:
        raise CheckFailed(f"diagnosis must be one of {DIAGNOSES}, got {diagnosis!r}")
    if diagnosis != "vanishing gradients":
        raise CheckFailed(f"{diagnosis!r} does not fit the evidence: the loss sits at log(10) from the first "
                          "step, and compare the gradient norms of the first and the last layer")
    passed("Exercise 4a: the diagnosis is right")
    if not isinstance(fix, dict):
        raise CheckFailed(f"fix should be a dict of the settings you change, got {type(fix).__name__}")
    unknown = set(fix) - set(BROKEN)
    if unknown:
        raise CheckFailed(f"fix may only change {sorted(BROKEN)}; unknown keys {sorted(unknown)}")
    if fix.get("depth", BROKEN["depth"]) != BROKEN["depth"] or fix.get("width", BROKEN["width"]) != BROKEN["width"]:
        raise CheckFailed("keep depth 10 and width 64: the point is to make the deep network train")
    config = {**BROKEN, **fix}
    X, X_test, y, y_test = digits_split()
    try:
        acc, ratio = train_recipe(config, X, y, X_test, y_test)
    except ValueError as err:
        raise CheckFailed(f"your fix is not a valid network: {err}") from err
    if acc < 0.90:
        raise CheckFailed(f"with your fix the network reaches only {acc:.1%} test accuracy after "
                          f"{RECIPE['steps']} SGD steps (need 90 %); its last/first gradient ratio is {ratio:.3g}")
    passed(f"Exercise 4b: the fixed network trains ({acc:.1%} test accuracy, gradient ratio {ratio:.3g})")


# Exercise 5 -----------------------------------------------------------------------------

def reference_adam(p, grads, lr, betas, eps, *, bias_correction=True):
    """``p`` after one Adam step per gradient in ``grads``; the keyword builds the typical wrong variant."""
    p = p.clone()
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        mh, vh = (m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)) if bias_correction else (m, v)
        p = p - lr * mh / (vh.sqrt() + eps)
    return p


def check_adam_step(adam_step) -> None:
    """adam_step(p, grad, state, lr, betas, eps) updates p in place, keeping its moments in ``state``."""
    g = torch.Generator().manual_seed(fresh(6))
    target = torch.randn(5, generator=g, dtype=torch.float64)
    lr, betas, eps = 0.05, (0.9, 0.999), 1e-8
    p_ref = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p_ref], lr=lr, betas=betas, eps=eps)
    p = torch.zeros(5, dtype=torch.float64)
    state: dict = {}
    grads = []
    for step in range(1, 21):
        grad = 2 * (p - target) * torch.arange(1, 6, dtype=torch.float64)  # an ill-scaled quadratic
        grads.append(grad.clone())
        returned = call(adam_step, "adam_step", p, grad, state, lr=lr, betas=betas, eps=eps)
        if returned is not None and returned is not p:
            raise CheckFailed("adam_step should update p in place (p.sub_(...) or p -= ...) and return None")
        opt.zero_grad()
        p_ref.grad = 2 * (p_ref.detach() - target) * torch.arange(1, 6, dtype=torch.float64)
        opt.step()
        if not close(p, p_ref.detach(), 1e-10):
            start = torch.zeros(5, dtype=torch.float64)
            diagnose([Mistake(dict(bias_correction=False), f"step {step} differs from torch.optim.Adam: you skipped "
                              "the bias correction m / (1 - beta1^t), v / (1 - beta2^t)")],
                     lambda **kw: close(p, reference_adam(start, grads, lr, betas, eps, **kw), 1e-10),
                     otherwise=f"after step {step} your parameters differ from torch.optim.Adam by up to "
                               f"{(p - p_ref.detach()).abs().max().item():.3g}"
                               + (" (keep m, v and the step count t in `state` between calls)" if step > 1 else ""))
    passed("Exercise 5: 20 steps of your Adam match torch.optim.Adam")


CHECKS = {
    "Exercise 1": Exercise("forward", check_forward),
    "Exercise 2": Exercise("deltas", check_deltas),
    "Exercise 3": Exercise("sgd_step", check_sgd_step),
    "Exercise 4": Exercise(("diagnosis", "fix"), check_diagnosis),
    "Exercise 5": Exercise("adam_step", check_adam_step),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone

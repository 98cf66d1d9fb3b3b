"""Checks for lab 2: LSTM cell, gradient clipping, a clipped training step; attention from ``attention`` (chapter 2)."""

from __future__ import annotations

import copy
import itertools
import math

import torch
from torch import nn

from ...data.synthetic import adding_problem
from ...models.rnn import AddingRNN
from . import (CheckFailed, Exercise, Mistake, as_float, call, close, close_all, diagnose, expect_sequence,
               expect_tensor, expect_unchanged, facing_students, fresh, passed)
from .attention import check_additive_attention, check_attention_reading

sigmoid, tanh = torch.sigmoid, torch.tanh
GATES = "ifgo"  # PyTorch stacks the four gate blocks of weight_ih / weight_hh in this order


# Exercise 1 -----------------------------------------------------------------------------

def reference_lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, *, order: str = GATES,
                        g_act=tanh, forget: bool = True, input_gate: bool = True,
                        h_from: str = "tanh_new", both_biases: bool = True):
    """An LSTM step; the keywords build the typical wrong variants the check recognises."""
    z = x @ weight_ih.T + h @ weight_hh.T + bias_ih + (bias_hh if both_biases else 0)  # (B, 4H)
    blocks = dict(zip(order, z.chunk(4, dim=1)))
    i, f, g, o = sigmoid(blocks["i"]), sigmoid(blocks["f"]), g_act(blocks["g"]), sigmoid(blocks["o"])
    c_new = (f * c if forget else c) + (i * g if input_gate else g)
    h_new = o * {"tanh_new": tanh(c_new), "new": c_new, "tanh_old": tanh(c)}[h_from]
    return h_new, c_new


def _lstm_case(batch, n_in, n_hidden, seed):
    torch.manual_seed(fresh(seed))
    cell = nn.LSTMCell(n_in, n_hidden).double()
    g = torch.Generator().manual_seed(fresh(seed))
    x = torch.randn(batch, n_in, generator=g, dtype=torch.float64)
    h = torch.randn(batch, n_hidden, generator=g, dtype=torch.float64)
    c = 2 * torch.randn(batch, n_hidden, generator=g, dtype=torch.float64)  # large enough for tanh(c) to matter
    params = [p.detach().clone() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    with torch.no_grad():
        want = cell(x, (h, c))
    return (x, h, c, *params), want


LSTM_MISTAKES = [
    *(Mistake(dict(order="".join(order)), f"you read the gate blocks in the order {', '.join(order)}; PyTorch "
              "stacks the 4H rows of weight_ih and weight_hh as [i; f; g; o]: rows 0:H input gate, H:2H forget "
              "gate, 2H:3H the candidate g, 3H:4H output gate")
      for order in itertools.permutations(GATES) if "".join(order) != GATES),
    Mistake(dict(h_from="new"), "c_new is right but h_new is not: h_t = o * tanh(c_t); you forgot the tanh on the cell"),
    Mistake(dict(h_from="tanh_old"), "c_new is right but h_new is not: h_t = o * tanh(c_t) uses the new cell state, "
                                     "not the c passed in"),
    Mistake(dict(g_act=sigmoid), "the candidate g uses tanh (values in -1..1), not the sigmoid; only i, f and o are "
                                 "sigmoid gates"),
    Mistake(dict(forget=False), "c_t = f * c_{t-1} + i * g: the forget gate f must multiply the previous cell state"),
    Mistake(dict(input_gate=False), "c_t = f * c_{t-1} + i * g: the input gate i must multiply the candidate g"),
    Mistake(dict(both_biases=False), "add both biases: the pre-activations are x W_ih^T + b_ih + h W_hh^T + b_hh"),
]


def check_lstm_cell(lstm_cell) -> None:
    """lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h_new, c_new), as nn.LSTMCell."""
    for batch, n_in, n_hidden, seed in [(3, 5, 4, 0), (1, 2, 7, 1), (6, 8, 3, 2)]:
        args, (h_want, c_want) = _lstm_case(batch, n_in, n_hidden, seed)
        copies = [a.clone() for a in args]
        got = call(lstm_cell, "lstm_cell", *copies)
        expect_unchanged(args, copies, "lstm_cell changed its inputs in place; compute new tensors instead")
        got = expect_sequence(got, 2, f"lstm_cell should return a pair (h_new, c_new), got {type(got).__name__}")
        shape = (batch, n_hidden)
        h_got = expect_tensor(got[0], shape, f"h_new for batch {batch}, input size {n_in}, hidden size {n_hidden}")
        c_got = expect_tensor(got[1], shape, f"c_new for batch {batch}, input size {n_in}, hidden size {n_hidden}")
        if close_all((h_got, c_got), (h_want, c_want), 1e-6):
            continue
        which = "c_new and h_new" if not close(c_got, c_want, 1e-6) else "h_new"
        swapped = Mistake(lambda: close_all((c_got, h_got), (h_want, c_want), 1e-6),
                          "you returned (c_new, h_new); return them in the order (h_new, c_new), like nn.LSTMCell")
        diagnose([swapped, *LSTM_MISTAKES], lambda **kw: close_all((h_got, c_got), reference_lstm_cell(*args, **kw), 1e-6),
                 otherwise=f"{which} differ from nn.LSTMCell by up to "
                           f"{max((h_got - h_want).abs().max().item(), (c_got - c_want).abs().max().item()):.3g} "
                           f"(batch {batch}, input size {n_in}, hidden size {n_hidden}); compute z = x W_ih^T + b_ih "
                           "+ h W_hh^T + b_hh, split it into four blocks of H columns, and follow the gate equations")
    passed("Exercise 1: lstm_cell matches nn.LSTMCell on three shapes")


# Exercise 2 -----------------------------------------------------------------------------

EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by total_norm + 1e-6


def reference_clip(grads, max_norm, *, mode: str = "global", eps: float = EPS, only_above: bool = True):
    """Clipped copies and the total norm; ``mode`` and the keywords build the typical wrong variants."""
    norms = torch.stack([g.norm() for g in grads])
    total = norms.norm()
    if mode == "per_tensor":
        scales = [max_norm / (n + eps) for n in norms]
    else:
        measure = (norms ** 2).sum() if mode == "no_sqrt" else total
        scales = [max_norm / (measure + eps)] * len(grads)
    if only_above:
        scales = [torch.clamp(s, max=1.0) for s in scales]
    return [g * s for g, s in zip(grads, scales)], total


def _clip_cases():
    g = torch.Generator().manual_seed(fresh(3))
    shapes = [(3, 4), (4,), (2, 2, 2), (5, 1)]

    def grads(total, big=None):
        gs = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        if big is not None:
            gs[big] = gs[big] * 20  # one layer dominates, as in an exploding recurrent weight
        norm = torch.stack([x.norm() for x in gs]).norm()
        return [x * (total / norm) for x in gs]

    return [(grads(10.0), 1.0, "a total norm of 10 clipped to 1"),
            (grads(0.5), 1.0, "a total norm of 0.5, below max_norm = 1"),
            (grads(7.0, big=0), 2.5, "one large tensor, total norm 7 clipped to 2.5")]


def check_clip_by_global_norm(clip_by_global_norm) -> None:
    """clip_by_global_norm(grads, max_norm) scales the tensors in place and returns the total norm."""
    for grads, max_norm, what in _clip_cases():
        want, total = reference_clip(grads, max_norm)
        mine = [x.clone() for x in grads]
        returned = call(clip_by_global_norm, "clip_by_global_norm", mine, max_norm)
        if isinstance(returned, (list, tuple)):
            raise CheckFailed("clip_by_global_norm should scale the tensors of grads in place (g.mul_(scale)) and "
                              "return the total norm, a number, as torch.nn.utils.clip_grad_norm_ does")
        if returned is None:
            raise CheckFailed("clip_by_global_norm should return the total norm of the gradients (before clipping)")
        norm = as_float(returned, "the value clip_by_global_norm returns")
        for x, ref in zip(mine, grads):
            expect_tensor(x, ref.shape, "a clipped gradient")
        total = total.item()
        if not math.isclose(norm, total, rel_tol=1e-9):
            diagnose([
                Mistake(lambda: math.isclose(norm, sum((x ** 2).sum().item() for x in grads), rel_tol=1e-9),
                        f"for {what} you returned {norm:.4g}, the sum of squares: the total norm is its square root, "
                        f"sqrt(sum_k ||g_k||^2) = {total:.4g}"),
                Mistake(lambda: math.isclose(norm, sum(x.norm().item() for x in grads), rel_tol=1e-9),
                        "the total norm is sqrt(sum_k ||g_k||^2), the norm of all entries together, not the sum of "
                        "the per-tensor norms"),
                Mistake(lambda: math.isclose(norm, min(max_norm, total), rel_tol=1e-5),
                        "return the total norm measured before clipping (what clip_grad_norm_ returns), not the "
                        "norm after it"),
            ], otherwise=f"for {what} you returned {norm:.6g}; the total norm is {total:.6g}")
        if close_all(mine, want, 1e-10):
            continue
        worst = max((x - w).abs().max().item() for x, w in zip(mine, want))
        diagnose([
            Mistake(lambda: all(torch.equal(x, ref) for x, ref in zip(mine, grads)),
                    f"for {what} the tensors in grads did not change: scale them in place (g.mul_(scale)), do not "
                    "build new tensors"),
            Mistake(dict(mode="per_tensor"), "you clipped each tensor by its own norm; clip by the global norm: one "
                    "scale max_norm / (total_norm + 1e-6) for all tensors, so the direction is kept"),
            Mistake(dict(only_above=False), f"for {what} you rescaled gradients whose total norm was already below "
                    "max_norm: scale = min(1, max_norm / (total_norm + 1e-6)) leaves small gradients alone"),
            Mistake(dict(mode="no_sqrt"), "your scale uses the sum of squares; divide by the norm, its square root"),
            Mistake(dict(eps=0.0), "almost: clip_grad_norm_ divides by total_norm + 1e-6, not total_norm (the 1e-6 "
                    "guards against a zero norm)"),
        ], lambda **kw: close_all(mine, reference_clip(grads, max_norm, **kw)[0], 1e-10),
            otherwise=f"for {what} the clipped gradients differ from clip_grad_norm_'s by up to {worst:.3g}")
    passed("Exercise 2: clip_by_global_norm matches torch.nn.utils.clip_grad_norm_ in three cases")


# Exercises 3 (additive attention) and 4 (reading an attention map): see attention.py.


# Exercise 5 -----------------------------------------------------------------------------

def reference_train_step(model, X, y, optimizer, max_norm, *, clip: bool = True, zero_grad: bool = True,
                         reduction: str = "mean"):
    if zero_grad:
        optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y, reduction=reduction)
    loss.backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm if clip else float("inf"))
    optimizer.step()
    return total.item()


def _train_case(steps: int = 4):
    torch.manual_seed(fresh(7))
    model = AddingRNN(8).double()
    g = torch.Generator().manual_seed(fresh(8))
    batches = [tuple(t.double() for t in adding_problem(16, 10, g)) for _ in range(steps)]
    return model, batches


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _reference_run(model, batches, max_norm, **kw):
    """Gradient norms and parameters after each step, from a copy of ``model``."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    norms, params = [], []
    for X, y in batches:
        norms.append(reference_train_step(model, X, y, opt, max_norm, **kw))
        params.append(_params(model))
    return norms, params


def check_train_step(train_step) -> None:
    """train_step(model, X, y, optimizer, max_norm) -> the gradient norm before clipping; clips, then steps."""
    max_norm = 0.05  # small, so clipping is active on every step of the check
    model, batches = _train_case()
    want_norms, want_params = _reference_run(model, batches, max_norm)
    mine = copy.deepcopy(model)
    opt = torch.optim.SGD(mine.parameters(), lr=0.1)
    for step, (X, y) in enumerate(batches):
        returned = call(train_step, "train_step", mine, X.clone(), y.clone(), opt, max_norm)
        if returned is None:
            raise CheckFailed("train_step should return the total gradient norm before clipping")
        norm = as_float(returned, "the value train_step returns")
        params = _params(mine)
        params_right = close_all(params, want_params[step], 1e-9)
        if params_right and math.isclose(norm, want_norms[step], rel_tol=1e-7):
            continue

        def variant(**kw):  # the reference run with a typical mistake, up to this step: (norm, parameters)
            norms, after = _reference_run(model, batches[:step + 1], max_norm, **kw)
            return norms[step], after[step]

        diagnose([
            Mistake(lambda: close_all(params, variant(clip=False)[1], 1e-9), f"step {step + 1} did not clip: call "
                    "clip_by_global_norm on the parameters' .grad after loss.backward() and before optimizer.step()"),
            Mistake(lambda: step > 0 and close_all(params, variant(zero_grad=False)[1], 1e-9), f"step {step + 1} "
                    "added this batch's gradients to the last one's: zero the gradients (optimizer.zero_grad()) "
                    "before loss.backward()"),
            Mistake(lambda: math.isclose(norm, max_norm, rel_tol=1e-5)
                    and not math.isclose(want_norms[step], max_norm, rel_tol=1e-5),
                    "return the gradient norm measured before clipping (what clip_by_global_norm returns), not "
                    "after it"),
            Mistake(lambda: math.isclose(norm, variant(reduction="sum")[0], rel_tol=1e-7), f"your gradient norm is "
                    f"{len(y)}x too large, the batch size: use the mean squared error, "
                    "nn.functional.mse_loss(model(X), y), not the sum"),
            Mistake(lambda: params_right, f"the parameters are right after step {step + 1} but you returned "
                    f"{norm:.6g}; the gradient norm before clipping was {want_norms[step]:.6g}"),
        ], otherwise=f"after step {step + 1} the parameters differ from the reference by up to "
                     f"{max((p - w).abs().max().item() for p, w in zip(params, want_params[step])):.3g}: "
                     "zero_grad, mse_loss(model(X), y), backward, clip, optimizer.step()")
    passed(f"Exercise 5: {len(batches)} steps of train_step match backward, clip_grad_norm_ and an SGD step")


CHECKS = {
    "Exercise 1": Exercise("lstm_cell", check_lstm_cell),
    "Exercise 2": Exercise("clip_by_global_norm", check_clip_by_global_norm),
    "Exercise 3": Exercise("additive_attention", check_additive_attention),
    "Exercise 4": Exercise(("month_position", "day_zero_position"), check_attention_reading),
    "Exercise 5": Exercise("train_step", check_train_step),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone

"""Checks for lab 2: LSTM cell, gradient clipping, masked additive attention, reading an attention map (chapter 2)."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
from torch import nn

from ...data.synthetic import adding_problem
from ...models.rnn import AddingRNN
from ...topics.attention_maps import date_attention
from . import CheckFailed, call, close, expect_tensor, passed

sigmoid, tanh = torch.sigmoid, torch.tanh
GATES = "ifgo"  # PyTorch stacks the four gate blocks of weight_ih / weight_hh in this order


def _as_float(value, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CheckFailed(f"{what} should be a number (a float or a one-element tensor), got {type(value).__name__}")


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
    torch.manual_seed(seed)
    cell = nn.LSTMCell(n_in, n_hidden).double()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_in, generator=g, dtype=torch.float64)
    h = torch.randn(batch, n_hidden, generator=g, dtype=torch.float64)
    c = 2 * torch.randn(batch, n_hidden, generator=g, dtype=torch.float64)  # large enough for tanh(c) to matter
    params = [p.detach().clone() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    with torch.no_grad():
        want = cell(x, (h, c))
    return (x, h, c, *params), want


def _lstm_diagnosis(got, args) -> str | None:
    """A message for a known mistake that reproduces ``got`` (h_new, c_new), or None."""
    def same(**kw):
        h_ref, c_ref = reference_lstm_cell(*args, **kw)
        return close(got[0], h_ref, 1e-6) and close(got[1], c_ref, 1e-6)

    for perm in itertools.permutations(GATES):
        order = "".join(perm)
        if order != GATES and same(order=order):
            return (f"you read the gate blocks in the order {', '.join(order)}; PyTorch stacks the 4H rows of "
                    "weight_ih and weight_hh as [i; f; g; o]: rows 0:H input gate, H:2H forget gate, "
                    "2H:3H the candidate g, 3H:4H output gate")
    if same(h_from="new"):
        return "c_new is right but h_new is not: h_t = o * tanh(c_t); you forgot the tanh on the cell"
    if same(h_from="tanh_old"):
        return "c_new is right but h_new is not: h_t = o * tanh(c_t) uses the new cell state, not the c passed in"
    if same(g_act=sigmoid):
        return "the candidate g uses tanh (values in -1..1), not the sigmoid; only i, f and o are sigmoid gates"
    if same(forget=False):
        return "c_t = f * c_{t-1} + i * g: the forget gate f must multiply the previous cell state"
    if same(input_gate=False):
        return "c_t = f * c_{t-1} + i * g: the input gate i must multiply the candidate g"
    if same(both_biases=False):
        return "add both biases: the pre-activations are x W_ih^T + b_ih + h W_hh^T + b_hh"
    return None


def check_lstm_cell(lstm_cell) -> None:
    """lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h_new, c_new), as nn.LSTMCell."""
    for batch, n_in, n_hidden, seed in [(3, 5, 4, 0), (1, 2, 7, 1), (6, 8, 3, 2)]:
        args, (h_want, c_want) = _lstm_case(batch, n_in, n_hidden, seed)
        copies = [a.clone() for a in args]
        got = call(lstm_cell, "lstm_cell", *copies)
        if any(not torch.equal(a, b) for a, b in zip(args, copies)):
            raise CheckFailed("lstm_cell changed its inputs in place; compute new tensors instead")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed(f"lstm_cell should return a pair (h_new, c_new), got {type(got).__name__}")
        shape = (batch, n_hidden)
        h_got = expect_tensor(got[0], shape, f"h_new for batch {batch}, input size {n_in}, hidden size {n_hidden}")
        c_got = expect_tensor(got[1], shape, f"c_new for batch {batch}, input size {n_in}, hidden size {n_hidden}")
        if close(h_got, h_want, 1e-6) and close(c_got, c_want, 1e-6):
            continue
        if close(h_got, c_want, 1e-6) and close(c_got, h_want, 1e-6):
            raise CheckFailed("you returned (c_new, h_new); return them in the order (h_new, c_new), like nn.LSTMCell")
        message = _lstm_diagnosis((h_got, c_got), args)
        if message:
            raise CheckFailed(message)
        which = "c_new and h_new" if not close(c_got, c_want, 1e-6) else "h_new"
        raise CheckFailed(f"{which} differ from nn.LSTMCell by up to "
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
    g = torch.Generator().manual_seed(3)
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
        norm = _as_float(returned, "the value clip_by_global_norm returns")
        for x, ref in zip(mine, grads):
            expect_tensor(x, ref.shape, "a clipped gradient")
        total = total.item()
        if not math.isclose(norm, total, rel_tol=1e-9):
            sum_sq = sum((x ** 2).sum().item() for x in grads)
            if math.isclose(norm, sum_sq, rel_tol=1e-9):
                raise CheckFailed(f"for {what} you returned {norm:.4g}, the sum of squares: the total norm is its "
                                  f"square root, sqrt(sum_k ||g_k||^2) = {total:.4g}")
            if math.isclose(norm, sum(x.norm().item() for x in grads), rel_tol=1e-9):
                raise CheckFailed("the total norm is sqrt(sum_k ||g_k||^2), the norm of all entries together, "
                                  "not the sum of the per-tensor norms")
            if math.isclose(norm, min(max_norm, total), rel_tol=1e-5):
                raise CheckFailed("return the total norm measured before clipping (what clip_grad_norm_ returns), "
                                  "not the norm after it")
            raise CheckFailed(f"for {what} you returned {norm:.6g}; the total norm is {total:.6g}")
        if all(close(x, w, 1e-10) for x, w in zip(mine, want)):
            continue
        if all(torch.equal(x, ref) for x, ref in zip(mine, grads)):
            raise CheckFailed(f"for {what} the tensors in grads did not change: scale them in place "
                              "(g.mul_(scale)), do not build new tensors")
        if all(close(x, w, 1e-10) for x, w in zip(mine, reference_clip(grads, max_norm, mode="per_tensor")[0])):
            raise CheckFailed("you clipped each tensor by its own norm; clip by the global norm: one scale "
                              "max_norm / (total_norm + 1e-6) for all tensors, so the direction is kept")
        if all(close(x, w, 1e-10) for x, w in zip(mine, reference_clip(grads, max_norm, only_above=False)[0])):
            raise CheckFailed(f"for {what} you rescaled gradients whose total norm was already below max_norm: "
                              "scale = min(1, max_norm / (total_norm + 1e-6)) leaves small gradients alone")
        if all(close(x, w, 1e-10) for x, w in zip(mine, reference_clip(grads, max_norm, mode="no_sqrt")[0])):
            raise CheckFailed("your scale uses the sum of squares; divide by the norm, its square root")
        if all(close(x, w, 1e-10) for x, w in zip(mine, reference_clip(grads, max_norm, eps=0.0)[0])):
            raise CheckFailed("almost: clip_grad_norm_ divides by total_norm + 1e-6, not total_norm "
                              "(the 1e-6 guards against a zero norm)")
        worst = max((x - w).abs().max().item() for x, w in zip(mine, want))
        raise CheckFailed(f"for {what} the clipped gradients differ from clip_grad_norm_'s by up to {worst:.3g}")
    passed("Exercise 2: clip_by_global_norm matches torch.nn.utils.clip_grad_norm_ in three cases")


# Exercise 3 -----------------------------------------------------------------------------

def reference_additive_attention(s, H, mask, W, U, v, *, softmax_dim: int = 1, mask_mode: str = "before",
                                 use_tanh: bool = True):
    """Weights (B, T) and context (B, D); the keywords build the typical wrong variants."""
    pre = (s @ W.T)[:, None, :] + H @ U.T  # (B, T, A)
    e = (tanh(pre) if use_tanh else pre) @ v  # (B, T)
    if mask_mode == "before":
        e = e.masked_fill(~mask, float("-inf"))
    elif mask_mode == "inverted":
        e = e.masked_fill(mask, float("-inf"))
    a = torch.softmax(e, dim=softmax_dim)
    if mask_mode == "after":
        a = a * mask
    context = (a[:, :, None] * H).sum(dim=1)  # (B, D)
    return a, context


def _attention_case(batch, T, S, D, A, lengths, seed):
    g = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T), True at real tokens
    return randn(batch, S), randn(batch, T, D), mask, randn(A, S), randn(A, D), randn(A)


def check_additive_attention(additive_attention) -> None:
    """additive_attention(s, H, mask, W, U, v) -> (weights (B, T), context (B, D))."""
    cases = [(3, 5, 4, 6, 7, [5, 3, 1], 4), (2, 4, 3, 2, 5, [2, 4], 5)]
    for batch, T, S, D, A, lengths, seed in cases:
        args = _attention_case(batch, T, S, D, A, lengths, seed)
        s, H, mask = args[:3]
        copies = [a.clone() for a in args]
        got = call(additive_attention, "additive_attention", *copies)
        if any(not torch.equal(a, b) for a, b in zip(args, copies)):
            raise CheckFailed("additive_attention changed its inputs in place (masked_fill_ on an input?); "
                              "use the out-of-place versions")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed(f"additive_attention should return a pair (weights, context), got {type(got).__name__}")
        a = expect_tensor(got[0], (batch, T), f"weights for B = {batch}, T = {T}")
        context = expect_tensor(got[1], (batch, D), f"context for B = {batch}, D = {D}")
        want_a, want_c = reference_additive_attention(*args)
        if close(a, want_a) and close(context, want_c):
            continue
        variant = lambda **kw: reference_additive_attention(*args, **kw)[0]  # noqa: E731
        if torch.isnan(a).any():
            raise CheckFailed("some weights are NaN: a row whose scores are all -inf has no softmax. The mask is "
                              "True at real tokens; set the scores of the padded positions (~mask) to -inf")
        if torch.allclose(a[mask], torch.ones_like(a[mask])):
            raise CheckFailed("every real position got weight 1: you took the softmax over an axis of size 1; "
                              "take it over the source positions j, the T axis of the (B, T) scores")
        if (a[~mask] != 0).any():
            if close(a, variant(mask_mode="none")):
                raise CheckFailed("padded positions (mask False) got weight: you ignored the mask. Set their "
                                  "scores to -inf before the softmax so they get exactly zero weight")
            if close(a.nan_to_num(), variant(mask_mode="inverted").nan_to_num()):
                raise CheckFailed("you masked the real tokens and kept the padding: mask is True at real tokens, "
                                  "so fill the scores where ~mask")
            raise CheckFailed("padded positions (mask False) must get exactly zero weight; set their scores to "
                              "-inf (masked_fill) before the softmax")
        sums = a.sum(dim=1)
        if not torch.allclose(sums, torch.ones_like(sums)):
            if close(a, variant(mask_mode="after")):
                raise CheckFailed("you zeroed the padded weights after the softmax, so the rest no longer sums to 1 "
                                  f"(row sums {', '.join(f'{x:.2f}' for x in sums.tolist())}); mask the scores with "
                                  "-inf before the softmax instead")
            if close(a, variant(softmax_dim=0)):
                raise CheckFailed("you took the softmax over the batch axis (dim 0); each example's weights must "
                                  "sum to 1 over its source positions j: softmax over dim 1")
            raise CheckFailed(f"each row of weights must sum to 1, yours sum to "
                              f"{', '.join(f'{x:.3g}' for x in sums.tolist())}")
        if close(a, variant(use_tanh=False)):
            raise CheckFailed("the scores are e_j = v^T tanh(W s + U h_j): you left out the tanh")
        if not close(a, want_a):
            raise CheckFailed(f"the weights differ from the reference by up to {(a - want_a).abs().max().item():.3g}: "
                              "compute e_j = v^T tanh(W s + U h_j) for every j, then a softmax over j")
        raise CheckFailed("the weights are right but the context is not: c = sum_j a_j h_j, a weighted sum of the "
                          "rows of H, shape (B, D)")
    passed("Exercise 3: additive_attention matches the reference; rows sum to 1 and padding gets zero weight")


# Exercise 4 -----------------------------------------------------------------------------

QUESTION_DATE = "March 3, 2021"
QUESTIONS = {"month_position": (6, "the second digit of the month"),
             "day_zero_position": (8, "the leading zero of the day")}


def _check_position(name: str, answer, alignment) -> None:
    step, what = QUESTIONS[name]
    row = alignment.weights[step]
    source = alignment.source
    if isinstance(answer, str):
        raise CheckFailed(f"{name} should be the source position j, an int counted from 0, not the character "
                          f"{answer!r}")
    integer_tensor = isinstance(answer, torch.Tensor) and answer.numel() == 1 and not answer.is_floating_point()
    if isinstance(answer, bool) or not (isinstance(answer, (int, np.integer)) or integer_tensor):
        raise CheckFailed(f"{name} should be an int (a source position j), got {type(answer).__name__}")
    answer = int(answer)
    if not 0 <= answer < len(source):
        raise CheckFailed(f"{name} = {answer} is not a source position: j runs from 0 to {len(source) - 1}")
    best = int(row.argmax())
    if answer == best:
        return
    if answer == best + 1:
        raise CheckFailed(f"{name} = {answer} is one too far: positions count from 0 (the first character "
                          f"{source[0]!r} is j = 0)")
    hint = ""
    if name == "month_position" and answer == int(alignment.weights[step - 1].argmax()):
        hint = (f" Position {answer} ({source[answer]!r}) is where the decoder looks for the first digit of the "
                f"month (t = {step - 1}); you want the next row.")
    if name == "day_zero_position" and answer == int(alignment.weights[step + 1].argmax()):
        hint = (f" Position {answer} ({source[answer]!r}) holds the day's digit, which the decoder reads for the "
                f"last output character (t = {step + 1}). Here it writes a zero that is not in the input: what tells "
                "it the day has only one digit?")
    raise CheckFailed(f"{name}: in the row of output step t = {step} ({what}) position {answer} "
                      f"({source[answer]!r}) gets weight {row[answer]:.2f}, and another position gets more "
                      f"({row[best]:.2f}). Find the brightest cell of that row.{hint}")


def check_attention_reading(month_position, day_zero_position) -> None:
    """The source positions attended to most at two output steps of the map of QUESTION_DATE."""
    alignment = date_attention(QUESTION_DATE)
    _check_position("month_position", month_position, alignment)
    passed(f"Exercise 4a: at t = 6 the decoder looks at {alignment.source[int(month_position)]!r}")
    _check_position("day_zero_position", day_zero_position, alignment)
    passed(f"Exercise 4b: at t = 8 the decoder looks at {alignment.source[int(day_zero_position)]!r}")


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
    torch.manual_seed(7)
    model = AddingRNN(8).double()
    g = torch.Generator().manual_seed(8)
    batches = [tuple(t.double() for t in adding_problem(16, 10, g)) for _ in range(steps)]
    return model, batches


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _reference_run(model, batches, max_norm, **kw):
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
    variants = {name: _reference_run(model, batches, max_norm, **kw) for name, kw in
                [("no clip", dict(clip=False)), ("no zero_grad", dict(zero_grad=False)),
                 ("sum", dict(reduction="sum"))]}
    mine = copy.deepcopy(model)
    opt = torch.optim.SGD(mine.parameters(), lr=0.1)
    for step, (X, y) in enumerate(batches):
        returned = call(train_step, "train_step", mine, X.clone(), y.clone(), opt, max_norm)
        if returned is None:
            raise CheckFailed("train_step should return the total gradient norm before clipping")
        norm = _as_float(returned, "the value train_step returns")
        params = _params(mine)
        if all(close(p, w, 1e-9) for p, w in zip(params, want_params[step])) and math.isclose(
                norm, want_norms[step], rel_tol=1e-7):
            continue
        same_as = lambda name: all(close(p, w, 1e-9) for p, w in zip(params, variants[name][1][step]))  # noqa: E731
        if same_as("no clip"):
            raise CheckFailed(f"step {step + 1} did not clip: call clip_by_global_norm on the parameters' .grad "
                              "after loss.backward() and before optimizer.step()")
        if step > 0 and same_as("no zero_grad"):
            raise CheckFailed(f"step {step + 1} added this batch's gradients to the last one's: zero the gradients "
                              "(optimizer.zero_grad()) before loss.backward()")
        if math.isclose(norm, max_norm, rel_tol=1e-5) and not math.isclose(want_norms[step], max_norm, rel_tol=1e-5):
            raise CheckFailed("return the gradient norm measured before clipping (what clip_by_global_norm "
                              "returns), not after it")
        if math.isclose(norm, variants["sum"][0][step], rel_tol=1e-7):
            raise CheckFailed(f"your gradient norm is {len(y)}x too large, the batch size: use the mean squared "
                              "error, nn.functional.mse_loss(model(X), y), not the sum")
        if all(close(p, w, 1e-9) for p, w in zip(params, want_params[step])):
            raise CheckFailed(f"the parameters are right after step {step + 1} but you returned {norm:.6g}; the "
                              f"gradient norm before clipping was {want_norms[step]:.6g}")
        raise CheckFailed(f"after step {step + 1} the parameters differ from the reference by up to "
                          f"{max((p - w).abs().max().item() for p, w in zip(params, want_params[step])):.3g}: "
                          "zero_grad, mse_loss(model(X), y), backward, clip, optimizer.step()")
    passed(f"Exercise 5: {len(batches)} steps of train_step match backward, clip_grad_norm_ and an SGD step")


CHECKS = {
    "Exercise 1": ("lstm_cell", check_lstm_cell),
    "Exercise 2": ("clip_by_global_norm", check_clip_by_global_norm),
    "Exercise 3": ("additive_attention", check_additive_attention),
    "Exercise 4": (("month_position", "day_zero_position"), check_attention_reading),
    "Exercise 5": ("train_step", check_train_step),
}

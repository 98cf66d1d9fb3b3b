"""Lab 2's checks name the typical mistakes (tests/test_labs.py checks that the solutions pass)."""

import numpy as np
import pytest
import torch
from torch import nn

from dlcourse.course.checks import attention
from dlcourse.course.checks import rnn_attention as checks
from dlcourse.data.dates import MONTHS
from dlcourse.data.synthetic import adding_problem
from dlcourse.models.rnn import AddingRNN
from dlcourse.topics import attention_maps
from labtest import feedback, solution_namespace


@pytest.fixture(scope="module")
def solution():
    """The names the solution notebook defines for its exercises."""
    return solution_namespace("lab02_rnn_attention")


# Exercise 1 -----------------------------------------------------------------------------

def variant(**kw):
    return lambda *args: checks.reference_lstm_cell(*args, **kw)


def test_lstm_cell_feedback(solution):
    f = solution["lstm_cell"]
    for order in ["igfo", "ifog", "oifg", "figo"]:
        message = feedback(checks.check_lstm_cell, variant(order=order))
        assert f"order {', '.join(order)}" in message and "[i; f; g; o]" in message
    assert "forgot the tanh on the cell" in feedback(checks.check_lstm_cell, variant(h_from="new"))
    assert "not the c passed in" in feedback(checks.check_lstm_cell, variant(h_from="tanh_old"))
    assert "not the sigmoid" in feedback(checks.check_lstm_cell, variant(g_act=torch.sigmoid))
    assert "forget gate f must multiply" in feedback(checks.check_lstm_cell, variant(forget=False))
    assert "input gate i must multiply" in feedback(checks.check_lstm_cell, variant(input_gate=False))
    assert "add both biases" in feedback(checks.check_lstm_cell, variant(both_biases=False))
    assert "(h_new, c_new)" in feedback(checks.check_lstm_cell, lambda *a: f(*a)[::-1])
    assert "should return a pair" in feedback(checks.check_lstm_cell, lambda *a: f(*a)[0])
    assert "should have shape" in feedback(checks.check_lstm_cell, lambda *a: tuple(x[:1] for x in f(*a)))
    assert "differ from nn.LSTMCell" in feedback(checks.check_lstm_cell, lambda *a: tuple(1.01 * x for x in f(*a)))
    assert "raised ZeroDivisionError" in feedback(checks.check_lstm_cell, lambda *a: 1 / 0)

    def in_place(x, h, c, *weights):
        h_new, c_new = f(x, h, c, *weights)
        c.copy_(c_new)
        return h_new, c_new
    assert "changed its inputs in place" in feedback(checks.check_lstm_cell, in_place)


def test_lstm_reference_matches_pytorch():
    cell = nn.LSTMCell(3, 4).double()
    x, h, c = torch.randn(2, 3).double(), torch.randn(2, 4).double(), torch.randn(2, 4).double()
    params = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    with torch.no_grad():
        got = checks.reference_lstm_cell(x, h, c, *params)
        want = cell(x, (h, c))
    assert all(torch.allclose(a, b) for a, b in zip(got, want))


# Exercise 2 -----------------------------------------------------------------------------

def clip_variant(**kw):
    def clip(grads, max_norm):
        clipped, total = checks.reference_clip(grads, max_norm, **kw)
        for g, new in zip(grads, clipped):
            g.copy_(new)
        return total
    return clip


def test_clip_feedback(solution):
    clip = solution["clip_by_global_norm"]
    assert "each tensor by its own norm" in feedback(checks.check_clip_by_global_norm, clip_variant(mode="per_tensor"))
    assert "already below max_norm" in feedback(checks.check_clip_by_global_norm, clip_variant(only_above=False))
    assert "sum of squares; divide by the norm" in feedback(checks.check_clip_by_global_norm, clip_variant(mode="no_sqrt"))
    assert "total_norm + 1e-6" in feedback(checks.check_clip_by_global_norm, clip_variant(eps=0.0))

    assert "the sum of squares: the total norm is its square root" in feedback(
        checks.check_clip_by_global_norm, lambda grads, m: sum(float((g ** 2).sum()) for g in grads))

    def copies(grads, max_norm):
        return checks.reference_clip(grads, max_norm)
    assert "in place" in feedback(checks.check_clip_by_global_norm, copies)

    def not_in_place(grads, max_norm):
        return clip([g.clone() for g in grads], max_norm)
    assert "did not change" in feedback(checks.check_clip_by_global_norm, not_in_place)

    def norm_after(grads, max_norm):
        clip(grads, max_norm)
        return torch.stack([g.norm() for g in grads]).norm()
    assert "measured before clipping" in feedback(checks.check_clip_by_global_norm, norm_after)

    assert "should return the total norm" in feedback(checks.check_clip_by_global_norm, lambda g, m: None)
    assert "should be a number" in feedback(checks.check_clip_by_global_norm, lambda g, m: "big")


def test_clip_sum_of_norms_feedback():
    def sum_of_norms(grads, max_norm):
        total = sum(float(g.norm()) for g in grads)
        clip_variant()(grads, max_norm)
        return total
    assert "not the sum of the per-tensor norms" in feedback(checks.check_clip_by_global_norm, sum_of_norms)


def test_reference_clip_matches_pytorch():
    for grads, max_norm, _ in checks._clip_cases():
        params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        total = nn.utils.clip_grad_norm_(params, max_norm)
        clipped, want_total = checks.reference_clip(grads, max_norm)
        assert torch.allclose(total, want_total, rtol=1e-12)
        assert all(torch.allclose(p.grad, c, rtol=1e-12, atol=0) for p, c in zip(params, clipped))


# Exercise 3 -----------------------------------------------------------------------------

def attention_variant(**kw):
    return lambda *args: attention.reference_additive_attention(*args, **kw)


def test_attention_feedback(solution):
    attend = solution["additive_attention"]
    check = attention.check_additive_attention
    assert "over the batch axis" in feedback(check, attention_variant(softmax_dim=0))
    assert "after the softmax" in feedback(check, attention_variant(mask_mode="after"))
    assert "ignored the mask" in feedback(check, attention_variant(mask_mode="none"))
    assert "True at real tokens" in feedback(check, attention_variant(mask_mode="inverted"))
    assert "left out the tanh" in feedback(check, attention_variant(use_tanh=False))
    assert "context is not" in feedback(check, lambda *a: (attend(*a)[0], 2 * attend(*a)[1]))
    assert "axis of size 1" in feedback(check, lambda s, H, mask, *w: (mask.double(), attend(s, H, mask, *w)[1]))
    assert "should have shape" in feedback(check, lambda *a: (attend(*a)[0].T, attend(*a)[1]))
    assert "exactly zero weight" in feedback(check, lambda s, H, mask, *w: (
        attend(s, H, mask, *w)[0] + 1e-3 * (~mask), attend(s, H, mask, *w)[1]))

    def in_place(s, H, mask, W, U, v):
        out = attend(s, H, mask, W, U, v)
        H.mul_(1.0001)
        return out
    assert "changed its inputs in place" in feedback(check, in_place)

    def with_large_negative(s, H, mask, W, U, v):  # -1e9 instead of -inf is fine in float64
        e = torch.tanh((s @ W.T)[:, None] + H @ U.T) @ v
        a = torch.softmax(e.masked_fill(~mask, -1e9), dim=1)
        return a, torch.einsum("bt,btd->bd", a, H)
    check(with_large_negative)


# Exercise 4 -----------------------------------------------------------------------------

def test_attention_reading_feedback():
    check = attention.check_attention_reading
    check(2, 7)
    check(np.int64(2), torch.tensor(7))
    assert "not the character" in feedback(check, "r", 7)
    assert "should be an int" in feedback(check, 2.0, 7)
    assert "should be an int" in feedback(check, True, 7)
    assert "not a source position" in feedback(check, 13, 7)
    assert "one too far" in feedback(check, 3, 7)
    assert "first digit of the month" in feedback(check, 0, 7)
    assert "only one digit" in feedback(check, 2, 6)
    message = feedback(check, 5, 7)
    assert "t = 6" in message and "brightest cell" in message


def test_date_attention_is_a_valid_deterministic_map():
    a = attention_maps.date_attention("March 3, 2021")
    assert a.weights.shape == (10, 13) and "".join(a.output) == "2021-03-03"
    assert np.allclose(a.weights.sum(axis=1), 1)
    assert np.array_equal(a.weights, attention_maps.date_attention("March 3, 2021").weights)
    assert list(a.weights.argmax(axis=1)[[0, 1, 2, 3, 5, 6, 8, 9]]) == [9, 10, 11, 12, 0, 2, 7, 6]
    two_digit = attention_maps.date_attention("May 17, 1999")
    assert list(two_digit.weights.argmax(axis=1)[[6, 8, 9]]) == [2, 4, 5]  # 'y' of May; '1' then '7'
    numbered = attention_maps.date_attention("March 3, 2021", numbered=True)
    assert numbered.source[2] == "2 'r'" and numbered.output[6] == "6 '3'"
    for bad in ["2021-03-03", "Mar 3, 2021", "March 32, 2021", 20210303]:
        with pytest.raises(ValueError, match="dates like"):
            attention_maps.date_attention(bad)


def test_every_month_has_a_telling_letter():
    prefixes = {m[:attention_maps._telling_letter(m) + 1] for m in MONTHS}
    assert len(prefixes) == 12
    assert attention_maps._telling_letter("March") == 2 and attention_maps._telling_letter("November") == 0


# Exercise 5 -----------------------------------------------------------------------------

def step_variant(**kw):
    return lambda model, X, y, opt, max_norm: checks.reference_train_step(model, X, y, opt, max_norm, **kw)


def test_train_step_feedback(solution):
    step = solution["train_step"]
    check = checks.check_train_step
    assert "did not clip" in feedback(check, step_variant(clip=False))
    assert "zero the gradients" in feedback(check, step_variant(zero_grad=False))
    assert "the batch size" in feedback(check, step_variant(reduction="sum"))
    assert "should return the total gradient norm" in feedback(check, lambda *a: step(*a) and None)

    def norm_after(model, X, y, opt, max_norm):
        step(model, X, y, opt, max_norm)
        return max_norm
    assert "before clipping" in feedback(check, norm_after)

    def clip_after_step(model, X, y, opt, max_norm):
        opt.zero_grad()
        nn.functional.mse_loss(model(X), y).backward()
        opt.step()
        return float(nn.utils.clip_grad_norm_(model.parameters(), max_norm))
    assert "before optimizer.step()" in feedback(check, clip_after_step)

    def wrong_loss(model, X, y, opt, max_norm):
        opt.zero_grad()
        nn.functional.l1_loss(model(X), y).backward()
        total = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
        return float(total)
    assert "differ from the reference" in feedback(check, wrong_loss)


def test_adding_problem_and_model():
    X, y = adding_problem(5, 12, torch.Generator().manual_seed(0))
    assert X.shape == (5, 12, 2) and y.shape == (5,)
    assert torch.equal(X[..., 1].sum(dim=1), torch.full((5,), 2.0))
    assert torch.allclose(y, (X[..., 0] * X[..., 1]).sum(dim=1)) and ((0 <= y) & (y < 2)).all()
    assert AddingRNN(8)(X).shape == (5,)
    with pytest.raises(ValueError, match="T >= 2"):
        adding_problem(5, 1)

"""Checks for attention: masked additive attention, reading an attention map (lab 2, chapter 2)."""

from __future__ import annotations

import numpy as np
import torch

from ...topics.attention_maps import date_attention
from . import (CheckFailed, Mistake, call, close, diagnose, expect_sequence, expect_tensor, expect_unchanged,
               fresh, passed)

tanh = torch.tanh


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
    g = torch.Generator().manual_seed(fresh(seed))
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T), True at real tokens
    return randn(batch, S), randn(batch, T, D), mask, randn(A, S), randn(A, D), randn(A)


def _attention_mistakes(a, mask, want_a, sums) -> list[Mistake]:
    """The typical mistakes in weights ``a`` (B, T), most telling first; the last one is any wrong weight."""
    row_sums = ", ".join(f"{x:.2f}" for x in sums.tolist())
    return [
        Mistake(lambda: torch.isnan(a).any(), "some weights are NaN: a row whose scores are all -inf has no softmax. "
                "The mask is True at real tokens; set the scores of the padded positions (~mask) to -inf"),
        Mistake(lambda: torch.allclose(a[mask], torch.ones_like(a[mask])), "every real position got weight 1: you "
                "took the softmax over an axis of size 1; take it over the source positions j, the T axis of the "
                "(B, T) scores"),
        Mistake(dict(mask_mode="none"), "padded positions (mask False) got weight: you ignored the mask. Set their "
                "scores to -inf before the softmax so they get exactly zero weight"),
        Mistake(dict(mask_mode="inverted"), "you masked the real tokens and kept the padding: mask is True at real "
                "tokens, so fill the scores where ~mask"),
        Mistake(lambda: (a[~mask] != 0).any(), "padded positions (mask False) must get exactly zero weight; set "
                "their scores to -inf (masked_fill) before the softmax"),
        Mistake(dict(mask_mode="after"), "you zeroed the padded weights after the softmax, so the rest no longer "
                f"sums to 1 (row sums {row_sums}); mask the scores with -inf before the softmax instead"),
        Mistake(dict(softmax_dim=0), "you took the softmax over the batch axis (dim 0); each example's weights "
                "must sum to 1 over its source positions j: softmax over dim 1"),
        Mistake(lambda: not torch.allclose(sums, torch.ones_like(sums)), "each row of weights must sum to 1, yours "
                f"sum to {', '.join(f'{x:.3g}' for x in sums.tolist())}"),
        Mistake(dict(use_tanh=False), "the scores are e_j = v^T tanh(W s + U h_j): you left out the tanh"),
        Mistake(lambda: not close(a, want_a), f"the weights differ from the reference by up to "
                f"{(a - want_a).abs().max().item():.3g}: compute e_j = v^T tanh(W s + U h_j) for every j, then a "
                "softmax over j"),
    ]


def check_additive_attention(additive_attention) -> None:
    """additive_attention(s, H, mask, W, U, v) -> (weights (B, T), context (B, D))."""
    cases = [(3, 5, 4, 6, 7, [5, 3, 1], 4), (2, 4, 3, 2, 5, [2, 4], 5)]
    for batch, T, S, D, A, lengths, seed in cases:
        args = _attention_case(batch, T, S, D, A, lengths, seed)
        s, H, mask = args[:3]
        copies = [a.clone() for a in args]
        got = call(additive_attention, "additive_attention", *copies)
        expect_unchanged(args, copies, "additive_attention changed its inputs in place (masked_fill_ on an input?); "
                                       "use the out-of-place versions")
        got = expect_sequence(got, 2, "additive_attention should return a pair (weights, context), got "
                                      f"{type(got).__name__}")
        a = expect_tensor(got[0], (batch, T), f"weights for B = {batch}, T = {T}")
        context = expect_tensor(got[1], (batch, D), f"context for B = {batch}, D = {D}")
        want_a, want_c = reference_additive_attention(*args)
        if close(a, want_a) and close(context, want_c):
            continue
        sums = a.sum(dim=1)
        diagnose(_attention_mistakes(a, mask, want_a, sums),  # NaN-safe: the inverted mask leaves empty rows
                 lambda **kw: close(a.nan_to_num(), reference_additive_attention(*args, **kw)[0].nan_to_num()),
                 otherwise="the weights are right but the context is not: c = sum_j a_j h_j, a weighted sum of the "
                           "rows of H, shape (B, D)")
    passed("Exercise 3: additive_attention matches the reference; rows sum to 1 and padding gets zero weight")


# Exercise 4 -----------------------------------------------------------------------------

QUESTION_DATE = "March 3, 2021"
QUESTIONS = {  # answer -> (output step t, what the decoder writes there, the neighbouring row students pick, why)
    "month_position": (6, "the second digit of the month", -1, "is where the decoder looks for the first digit of "
                       "the month (t = {t}); you want the next row."),
    "day_zero_position": (8, "the leading zero of the day", +1, "holds the day's digit, which the decoder reads for "
                          "the last output character (t = {t}). Here it writes a zero that is not in the input: "
                          "what tells it the day has only one digit?"),
}


def _check_position(name: str, answer, alignment) -> None:
    step, what, neighbour, why = QUESTIONS[name]
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
    wrong_cell = (f"{name}: in the row of output step t = {step} ({what}) position {answer} ({source[answer]!r}) "
                  f"gets weight {row[answer]:.2f}, and another position gets more ({row[best]:.2f}). Find the "
                  "brightest cell of that row.")
    diagnose([
        Mistake(lambda: answer == best + 1, f"{name} = {answer} is one too far: positions count from 0 (the first "
                f"character {source[0]!r} is j = 0)"),
        Mistake(lambda: answer == int(alignment.weights[step + neighbour].argmax()),
                f"{wrong_cell} Position {answer} ({source[answer]!r}) {why.format(t=step + neighbour)}"),
    ], otherwise=wrong_cell)


def check_attention_reading(month_position, day_zero_position) -> None:
    """The source positions attended to most at two output steps of the map of QUESTION_DATE."""
    alignment = date_attention(QUESTION_DATE)
    _check_position("month_position", month_position, alignment)
    passed(f"Exercise 4a: at t = 6 the decoder looks at {alignment.source[int(month_position)]!r}")
    _check_position("day_zero_position", day_zero_position, alignment)
    passed(f"Exercise 4b: at t = 8 the decoder looks at {alignment.source[int(day_zero_position)]!r}")

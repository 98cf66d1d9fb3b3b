"""The checks package's shared pieces: the Exercise record, the mistake table and its helpers."""

import pytest
import torch

from dlcourse.course.checks import (CheckFailed, Exercise, Mistake, as_float, call, close_all, diagnose,
                                    expect_raises, expect_sequence, expect_unchanged)
from labtest import feedback


def check_nothing(*args):
    pass


def test_an_exercise_always_holds_a_tuple_of_names():
    assert Exercise("forward", check_nothing).names == ("forward",)
    assert Exercise(("diagnosis", "fix"), check_nothing).names == ("diagnosis", "fix")
    for bad in [(), ["forward"], "not a name", ("x", 3)]:
        with pytest.raises(ValueError, match="Exercise names should be"):
            Exercise(bad, check_nothing)
    with pytest.raises(TypeError, match="should be a function"):
        Exercise("forward", "check_forward")


def test_diagnose_names_the_first_mistake_that_fits():
    def matches(scale=1.0):
        return scale == 2.0

    table = [Mistake(dict(scale=3.0), "three"), Mistake(lambda: False, "never"), Mistake(dict(scale=2.0), "two"),
             Mistake(lambda: True, "any")]
    assert feedback(diagnose, table, matches) == "two"
    assert feedback(diagnose, table[3:]) == "any"
    assert diagnose(table[:2], matches) is None  # nothing fits: the check goes on
    assert feedback(lambda: diagnose(table[:2], matches, otherwise="generic")) == "generic"
    with pytest.raises(TypeError, match="needs `matches`"):
        diagnose(table)


def test_a_mistake_needs_a_variant_and_a_message():
    with pytest.raises(TypeError, match="dict of reference keywords or a predicate"):
        Mistake("scale=2", "two")
    with pytest.raises(ValueError, match="non-empty string"):
        Mistake(dict(scale=2.0), "")


def test_helpers_fail_with_the_given_words():
    assert expect_sequence((1, 2), 2, "a pair") == [1, 2]
    assert feedback(expect_sequence, [1], 2, "should return a pair") == "should return a pair"
    a = torch.ones(3)
    assert feedback(expect_unchanged, [a], [a + 1], "changed its inputs") == "changed its inputs"
    assert close_all([a], [a + 1e-12]) and not close_all([a], [a, a])
    assert as_float(torch.tensor([2.5]), "x") == 2.5 and as_float(3, "x") == 3.0
    assert "should be a number" in feedback(as_float, True, "the norm")
    assert "f raised ZeroDivisionError" in feedback(call, lambda: 1 / 0, "f")
    with pytest.raises(NotImplementedError):
        call(lambda: (_ for _ in ()).throw(NotImplementedError("hint")), "f")


def test_expect_raises_says_what_was_expected():
    def lenient(low, high):
        return low

    def wrong_error(low, high):
        raise TypeError("no")

    def strict(low, high):
        raise ValueError("0 < low < high")

    expect_raises(strict, "f", (0.0, 1.0), "0 < low < high")
    assert feedback(expect_raises, lenient, "f", (0.0, 1.0), "0 < low < high") == (
        "f(0.0, 1.0) returned instead of raising ValueError: 0 < low < high")
    assert "raised TypeError; raise a ValueError" in feedback(expect_raises, wrong_error, "f", (0.0, 1.0), "why")
    with pytest.raises(CheckFailed):
        expect_raises(lenient, "f", (1, 2), "why", error=KeyError)

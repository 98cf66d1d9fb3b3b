"""Checks for the labs: shared helpers, the mistake table and the registry of labs (lab 1).

A lab's check cell calls ``check_<name>(student_object)``. The checks live here, not in the
notebook, so that the same checks grade a submitted notebook (``dlcourse grade``). Each lab
has one module here, holding references and checks only, in one shape:

* a reference implementation whose keywords build the typical wrong variants;
* checks that raise ``CheckFailed`` with specific feedback and recognise typical mistakes
  with a table of ``Mistake(variant, message)`` walked by ``diagnose``;
* ``CHECKS``: exercise label -> ``Exercise(names, check)``.

``LABS`` maps a lab's full name to its module; ``checks_for(lab)`` returns its ``CHECKS``.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from ..feedback import show_check_failures_briefly

LABS = {  # lab (the notebook's name in solutions/ and labs/) -> its module in this package
    "lab01_deep_networks": "deep_networks",
    "lab02_rnn_attention": "rnn_attention",
    "lab03_methodology": "methodology",
    "lab04_large_scale": "large_scale",
    "lab05_vision_preprocessing": "vision_preprocessing",
    "lab06_speech_recognition": "speech_recognition",
    "lab07_natural_language": "natural_language",
    "lab08_recommender_systems": "recommender_systems",
    "lab09_knowledge_graphs": "knowledge_graphs",
}


SALT = 0
"""Added to the seed of every input a check draws at random (``fresh``). It is 0 in a lab, so a
student sees the same inputs each time; the grader sets a new one for each submission."""


def fresh(seed: int) -> int:
    """The seed ``seed`` for this submission's inputs."""
    return seed + SALT


class CheckFailed(AssertionError):
    """The student's answer is wrong; the message says how."""


class ExerciseNotDone(CheckFailed, NotImplementedError):
    """A check called an exercise's stub: the student has not written that code yet."""


@dataclass(frozen=True)
class Exercise:
    """One entry of a ``CHECKS`` table: the names a student defines, and the check called with them.

    ``names`` is a tuple; one name may be given as a string: ``Exercise("forward", check_forward)``.
    """

    names: tuple[str, ...]
    check: Callable[..., None]

    def __post_init__(self):
        names = (self.names,) if isinstance(self.names, str) else self.names
        if not (isinstance(names, tuple) and names and all(isinstance(n, str) and n.isidentifier() for n in names)):
            raise ValueError(f"Exercise names should be a name or a non-empty tuple of names the student "
                             f"defines, e.g. 'forward' or ('diagnosis', 'fix'); got {self.names!r}")
        if not callable(self.check):
            raise TypeError(f"Exercise check should be a function, got {type(self.check).__name__}")
        object.__setattr__(self, "names", names)


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer and the feedback for it.

    ``variant`` recognises it: either the keyword arguments with which the check's reference
    reproduces the wrong answer (a dict, passed to ``diagnose``'s ``matches``), or a predicate
    called without arguments that is true when the answer shows the mistake.
    """

    variant: Mapping[str, Any] | Callable[[], bool]
    message: str

    def __post_init__(self):
        if not (isinstance(self.variant, Mapping) or callable(self.variant)):
            raise TypeError(f"Mistake variant should be a dict of reference keywords or a predicate, "
                            f"got {type(self.variant).__name__}")
        if not isinstance(self.message, str) or not self.message:
            raise ValueError(f"Mistake message should be a non-empty string, got {self.message!r}")


def diagnose(mistakes: Iterable[Mistake], matches: Callable[..., bool] | None = None, *,
             otherwise: str | None = None) -> None:
    """Raise ``CheckFailed`` with the message of the first mistake in ``mistakes`` the answer shows.

    A mistake given by keywords fits when ``matches(**keywords)`` is true (the answer equals the
    reference built with them); one given by a predicate fits when the predicate is true. The
    table is walked in order, so put the more specific mistakes first. When none fits, raise
    ``otherwise`` if given, or return so that the check can go on.
    """
    for mistake in mistakes:
        if callable(mistake.variant):
            fits = mistake.variant()
        elif matches is None:
            raise TypeError(f"diagnose needs `matches` for the keyword variant {dict(mistake.variant)}")
        else:
            fits = matches(**mistake.variant)
        if fits:
            raise CheckFailed(mistake.message)
    if otherwise is not None:
        raise CheckFailed(otherwise)


def passed(message: str) -> None:
    print(f"✔ {message}")


def call(fn: Callable, name: str, *args, **kwargs):
    """Call the student's ``fn``; re-raise NotImplementedError, wrap anything else with context."""
    if not callable(fn):
        raise CheckFailed(f"{name} should be a function, but it is a {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:
        raise CheckFailed(f"{name} raised {type(err).__name__}: {err}") from err


def expect_raises(fn: Callable, name: str, args: tuple, why: str, error: type[Exception] = ValueError) -> None:
    """``fn(*args)`` must raise ``error``; ``why`` says what the valid input is."""
    try:
        fn(*args)
    except error:
        return
    except NotImplementedError:
        raise
    except Exception as err:
        raise CheckFailed(f"{name}{args} raised {type(err).__name__}; raise a {error.__name__} that says what is "
                          f"expected: {why}") from err
    raise CheckFailed(f"{name}{args} returned instead of raising {error.__name__}: {why}")


def expect_sequence(value, length: int, message: str) -> list:
    """``value`` as a list if it is a list or tuple of ``length`` items; otherwise fail with ``message``."""
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise CheckFailed(message)
    return list(value)


def expect_tensor(value, shape: tuple, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor of shape {shape}, got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}")
    return value


def expect_unchanged(originals: Sequence[torch.Tensor], passed_in: Sequence[torch.Tensor], message: str) -> None:
    """Fail with ``message`` if the student's function changed the tensors it was given."""
    if any(not torch.equal(a, b) for a, b in zip(originals, passed_in)):
        raise CheckFailed(message)


def as_float(value, what: str) -> float:
    """A number the student returned (a float, an int or a one-element tensor) as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CheckFailed(f"{what} should be a number (a float or a one-element tensor), got {type(value).__name__}")


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-8) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)


def close_all(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], tol: float = 1e-8) -> bool:
    """Two lists of tensors of the same length, pairwise ``close``."""
    return len(xs) == len(ys) and all(close(x, y, tol) for x, y in zip(xs, ys))


def isclose_all(xs: Sequence[float], ys: Sequence[float], rel_tol: float) -> bool:
    """Two lists of numbers of the same length, pairwise ``math.isclose``."""
    return len(xs) == len(ys) and all(math.isclose(x, y, rel_tol=rel_tol) for x, y in zip(xs, ys))


def _student_facing(label: str, check: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(check)
    def run(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except ExerciseNotDone:
            raise
        except NotImplementedError as err:
            hint = str(err).partition(": ")[2] or str(err)
            raise ExerciseNotDone(f"{label} is not done yet: replace the `raise NotImplementedError` with your code"
                                  + (f" ({hint})" if hint else "")) from None
    return run


def facing_students(namespace: dict) -> None:
    """Make the checks of a lab module's ``CHECKS`` say in one line when an exercise is not done yet.

    Called at the end of each lab's check module with ``globals()``: the module's check functions
    (the ones its lab imports) and its table are replaced by versions that turn a stub's
    ``NotImplementedError`` into ``ExerciseNotDone`` (still a ``NotImplementedError``). In a notebook,
    a failed check then shows its message alone, without a traceback (``dlcourse.course.feedback``).
    """
    table = namespace["CHECKS"]
    for label, exercise in list(table.items()):
        wrapped = _student_facing(label, exercise.check)
        namespace[exercise.check.__name__] = wrapped
        table[label] = Exercise(exercise.names, wrapped)


def lab_module(lab: str) -> ModuleType:
    """The check module of ``lab``, a full lab name such as ``lab01_deep_networks``."""
    if lab not in LABS:
        raise ValueError(f"unknown lab {lab!r}: expected one of {', '.join(LABS)} (a lab is registered in "
                         "LABS in dlcourse/course/checks/__init__.py)")
    return importlib.import_module(f"{__name__}.{LABS[lab]}")


def checks_for(lab: str) -> dict[str, Exercise]:
    """The ``CHECKS`` table of ``lab``: exercise label -> ``Exercise(names, check)``."""
    return lab_module(lab).CHECKS


show_check_failures_briefly()  # in a notebook: a failed check shows its message, not a traceback

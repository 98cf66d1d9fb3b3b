"""Checks for the labs: each raises ``CheckFailed`` with specific feedback (introduced in lab 1).

A lab's check cell calls ``check_<name>(student_object)``. The checks live here, not in
the notebook, so that the same checks can grade a submitted notebook.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class CheckFailed(AssertionError):
    """The student's answer is wrong; the message says how."""


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


def expect_tensor(value, shape: tuple, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor of shape {shape}, got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}")
    return value


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-8) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)

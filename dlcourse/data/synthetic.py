"""Synthetic tasks with a known answer, generated on the fly (introduced in chapter 2)."""

from __future__ import annotations

import torch


def adding_problem(batch_size: int, T: int, generator: torch.Generator | None = None):
    """X (B, T, 2): random values and a marker on two of them, one in each half; y (B,): their sum."""
    if T < 2:
        raise ValueError(f"the adding problem needs T >= 2 time steps, got {T}")
    values = torch.rand(batch_size, T, generator=generator)
    rows = torch.arange(batch_size)
    marks = torch.zeros(batch_size, T)
    marks[rows, torch.randint(0, T // 2, (batch_size,), generator=generator)] = 1
    marks[rows, torch.randint(T // 2, T, (batch_size,), generator=generator)] = 1
    return torch.stack([values, marks], dim=-1), (values * marks).sum(dim=1)

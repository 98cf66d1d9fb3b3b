"""Shared pieces of the lab tests: a solution notebook's definitions, and a check's feedback."""

from __future__ import annotations

import symtable
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from dlcourse.course.checks import CheckFailed, checks_for
from dlcourse.course.nb import SETUP_CELL_ID

ROOT = Path(__file__).resolve().parent.parent


def _names(source: str) -> tuple[set[str], set[str]]:
    """The names a cell binds, and the global names it reads (in function bodies too)."""
    table = symtable.symtable(source, "cell", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    read = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    scopes = list(table.get_children())
    while scopes:
        scope = scopes.pop()
        read |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
        scopes += scope.get_children()
    return bound, read


def solution_cells(lab: str) -> list[str]:
    """The code cells of ``solutions/<lab>.ipynb`` that its exercises' names need, in order.

    Walking back from the end, a cell is kept when it binds a name a kept cell (or an exercise)
    reads; experiments, figures and check cells whose names nothing needs are left out.
    """
    nb = nbformat.read(ROOT / "solutions" / f"{lab}.ipynb", as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code" and c.get("id") != SETUP_CELL_ID]
    needed = {name for exercise in checks_for(lab).values() for name in exercise.names}
    kept = []
    for source in reversed(sources):
        bound, read = _names(source)
        if bound & needed:
            kept.append(source)
            needed = (needed - bound) | read
    return kept[::-1]


def solution_namespace(lab: str) -> dict:
    """Run the cells of ``solution_cells(lab)`` in one namespace and return it."""
    threads = torch.get_num_threads()  # a setup() cell would set one thread for the whole test session
    namespace: dict = {}
    try:
        for source in solution_cells(lab):
            exec(compile(source, f"solutions/{lab}.ipynb", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
    return namespace


def feedback(check, *args) -> str:
    """The message of the ``CheckFailed`` that ``check(*args)`` must raise."""
    with pytest.raises(CheckFailed) as err:
        check(*args)
    return str(err.value)

"""Shared pieces of the lab-check tests: a solution notebook's definitions, and a check's feedback."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from dlcourse.course.checks import CheckFailed

ROOT = Path(__file__).resolve().parent.parent


def solution_namespace(lab: str, starts: tuple[str, ...]) -> dict:
    """Run the code cells of ``solutions/<lab>.ipynb`` that start with one of ``starts``; return their names."""
    nb = nbformat.read(ROOT / "solutions" / f"{lab}.ipynb", as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(starts):
            exec(cell.source, namespace)
    return namespace


def feedback(check, *args) -> str:
    """The message of the ``CheckFailed`` that ``check(*args)`` must raise."""
    with pytest.raises(CheckFailed) as err:
        check(*args)
    return str(err.value)

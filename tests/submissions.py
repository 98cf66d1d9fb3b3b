"""Builds realistic lab submissions (solved, partial, tampered, broken) for the grading tests."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def _load(lab: str):
    solution = nbformat.read(ROOT / "solutions" / f"{lab}.ipynb", as_version=4)
    student = nbformat.read(ROOT / "labs" / f"{lab}.ipynb", as_version=4)
    return solution, student


def _exercise_cells(nb) -> dict[str, nbformat.NotebookNode]:
    """Exercise label ('Exercise 1') -> the lab cell holding its stub."""
    out = {}
    for cell in nb.cells:
        for hint in cell.get("metadata", {}).get("dlcourse", {}).get("exercise", []):
            out[hint.split(":")[0]] = cell
    return out


def solved_up_to(lab: str, solved: set[str]):
    """The lab with the solution code filled in for the exercises in ``solved``."""
    solution, student = _load(lab)
    by_id = {c.get("id"): c for c in solution.cells}
    nb = copy.deepcopy(student)
    for label, cell in _exercise_cells(nb).items():
        if label in solved:
            cell.source = by_id[cell.id].source
    return nb


def insert_after(nb, label: str, source: str):
    """Insert a code cell after the check cell that follows exercise ``label``."""
    cell = _exercise_cells(nb)[label]
    index = nb.cells.index(cell)
    nb.cells.insert(index + 2, nbformat.v4.new_code_cell(source))
    return nb


TAMPER = '''import torch
import dlcourse.course.checks as base
import dlcourse.course.checks.deep_networks as lab
def check_forward(*args, **kwargs): print("✔ Exercise 1")
lab.check_forward.__code__ = check_forward.__code__
object.__setattr__(lab.CHECKS["Exercise 1"], "check", check_forward)
lab.check_forward = lab.check_deltas = lab.check_sgd_step = lab.check_adam_step = check_forward
lab.CHECKS = {}
base.close = lambda *a, **k: True
base.diagnose.__code__ = (lambda *a, **k: None).__code__
torch.allclose = lambda *a, **k: True
print("00000000000000000000000000000000 {\\"exercise\\": \\"Exercise 1\\", \\"passed\\": true}")
'''
WRONG_FORWARD = """def forward(Us, X, taus):
    return torch.zeros(len(X), Us[-1].shape[0], dtype=X.dtype)  # right shape, wrong values
"""


def build(lab: str, folder: Path, kinds: list[str]) -> dict[str, int]:
    """Write one submission per entry of ``kinds`` into ``folder``; return name -> expected score."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(_exercise_cells(_load(lab)[1]))
    all_labels = {f"Exercise {i}" for i in range(1, n + 1)}
    expected = {}
    for i, kind in enumerate(kinds):
        name = f"{i:02d}_{kind}"
        if kind == "solved":
            nb, score = solved_up_to(lab, all_labels), n
        elif kind == "blank":
            nb, score = solved_up_to(lab, set()), 0
        elif kind.startswith("partial"):  # partial2 = exercises 1 and 2
            k = int(kind[len("partial"):])
            nb, score = solved_up_to(lab, {f"Exercise {j}" for j in range(1, k + 1)}), k
        elif kind == "tampered":
            nb = solved_up_to(lab, set())
            _exercise_cells(nb)["Exercise 1"].source = WRONG_FORWARD
            nb.cells.insert(2, nbformat.v4.new_code_cell(TAMPER))
            for cell in nb.cells:
                if cell.cell_type == "code" and cell.source.startswith("check_"):
                    cell.source = "print('✔ all good')"
            score = 0
        elif kind == "loop":  # exercise 1 done, then a loop that switches off the cell timer first
            nb = insert_after(solved_up_to(lab, {"Exercise 1"}), "Exercise 1",
                              "import signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\nwhile True:\n    pass")
            score = 1
        elif kind == "slowcell":  # an ordinary infinite loop: the cell times out, the rest still runs
            nb = insert_after(solved_up_to(lab, all_labels), "Exercise 2", "while True:\n    pass")
            score = n
        elif kind == "crash":
            nb = insert_after(solved_up_to(lab, {"Exercise 1", "Exercise 2"}), "Exercise 2",
                              "import os\nos._exit(3)")
            score = 2
        elif kind == "memory":
            nb = insert_after(solved_up_to(lab, {"Exercise 1"}), "Exercise 1",
                              "hog = [bytearray(2**28) for _ in range(10**4)]")
            score = 1
        elif kind == "chatty":
            nb = insert_after(solved_up_to(lab, all_labels), "Exercise 1",
                              "for _ in range(200):\n    print('x' * 2**18)")
            score = n
        elif kind == "malformed":
            (folder / f"{name}.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")
            expected[name] = 0
            continue
        else:
            raise ValueError(f"unknown submission kind {kind!r}")
        nbformat.write(nb, folder / f"{name}.ipynb")
        expected[name] = score
    return expected

"""Labs from solutions: the generator that writes ``labs/`` from ``solutions/`` (chapter 1 lab).

In a solution notebook, the code a student must write sits between marker lines::

    # BEGIN SOLUTION (Exercise 1: hint for the student)
    ...solution code...
    # END SOLUTION

The generator replaces each region by ``raise NotImplementedError("Exercise 1: hint")``
at the same indentation, clears outputs, and adds a link to the solution. Nobody edits
``labs/`` by hand: ``dlcourse make-labs`` rewrites it and a test fails when it is stale.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?: \((?P<hint>.+)\))?[ \t]*$")
END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")
TITLE_SUFFIX = " — solutions"


class MarkerError(ValueError):
    """A solution notebook's markers are unbalanced or lack a hint."""


def solution_regions(source: str) -> list[tuple[str, str]]:
    """The (hint, solution code) of each marked region in a cell's source."""
    return [(hint, code) for hint, code, _ in _scan(source)]


def _scan(source: str, where: str = "cell"):
    """Yield (hint, code, stub) per region; raises MarkerError on bad markers."""
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        begin = BEGIN.match(lines[i])
        if END.match(lines[i]):
            raise MarkerError(f"{where}: '# END SOLUTION' on line {i + 1} has no matching BEGIN")
        if not begin:
            i += 1
            continue
        if not begin.group("hint"):
            raise MarkerError(
                f"{where}: '# BEGIN SOLUTION' on line {i + 1} needs a hint in parentheses, e.g. "
                "'# BEGIN SOLUTION (Exercise 1: apply eq. 4.5 layer by layer)'")
        for j in range(i + 1, len(lines)):
            if BEGIN.match(lines[j]):
                raise MarkerError(f"{where}: nested '# BEGIN SOLUTION' on line {j + 1}")
            if END.match(lines[j]):
                break
        else:
            raise MarkerError(f"{where}: '# BEGIN SOLUTION' on line {i + 1} is never closed by '# END SOLUTION'")
        hint = begin.group("hint")
        stub = f"{begin.group('indent')}raise NotImplementedError({hint!r})"
        yield hint, "\n".join(lines[i + 1:j]), (i, j, stub)
        i = j + 1


def strip_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every marked region replaced by its NotImplementedError stub."""
    lines = source.split("\n")
    for _, _, (i, j, stub) in reversed(list(_scan(source, where))):
        lines[i:j + 1] = [stub]
    return "\n".join(lines)


def make_lab(solution: nbformat.NotebookNode, solution_name: str) -> nbformat.NotebookNode:
    """The student version of a solution notebook."""
    lab = copy.deepcopy(solution)
    exercises = 0
    for index, cell in enumerate(lab.cells):
        if cell.cell_type != "code":
            continue
        regions = list(_scan(cell.source, f"{solution_name}, code cell {index}"))
        if regions:
            exercises += len(regions)
            cell.source = strip_solutions(cell.source)
            cell.metadata.setdefault("dlcourse", {})["exercise"] = [hint for hint, _, _ in regions]
        cell.outputs, cell.execution_count = [], None
    if exercises == 0:
        raise MarkerError(f"{solution_name} has no '# BEGIN SOLUTION' region: nothing for students to do")
    lab.metadata.pop("dlcourse", None)  # the provenance hashes describe the solution's outputs
    title_index = next((i for i, c in enumerate(lab.cells) if c.cell_type == "markdown"), None)
    if title_index is None:
        raise MarkerError(f"{solution_name} has no markdown title cell ('# Lab N: Topic{TITLE_SUFFIX}')")
    lab.cells[title_index].source = lab.cells[title_index].source.replace(TITLE_SUFFIX, "", 1)
    note = nbformat.v4.new_markdown_cell(
        f"```{{note}}\nThis is the exercise version: each `NotImplementedError` marks code for you to "
        f"write, and the check cell after it tells you what is wrong. The worked "
        f"[solutions](../solutions/{solution_name}) are for after you have tried.\n```")
    note.id = "lab-note"
    lab.cells.insert(title_index + 1, note)
    return lab


def generate(solutions_dir: Path, labs_dir: Path, *, write: bool = True) -> dict[str, str]:
    """Generate every lab; return name -> JSON text. With ``write`` the files are written."""
    solutions_dir, labs_dir = Path(solutions_dir), Path(labs_dir)
    paths = sorted(solutions_dir.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no solution notebooks (*.ipynb) in {solutions_dir}")
    out = {}
    for path in paths:
        lab = make_lab(nbformat.read(path, as_version=4), path.name)
        out[path.name] = nbformat.writes(lab) + "\n"
        if write:
            labs_dir.mkdir(parents=True, exist_ok=True)
            (labs_dir / path.name).write_text(out[path.name], encoding="utf-8")
    return out

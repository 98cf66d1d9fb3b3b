"""Every lab, driven by its CHECKS table: the solution passes, the stubs raise, each exercise is in place.

Also: labs/ is generated from solutions/, up to date and free of solution code. A new lab needs
no code here, only its entry in ``dlcourse.course.checks.LABS``.
"""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dlcourse.course import checks, labs
from labtest import solution_namespace

ROOT = Path(__file__).resolve().parent.parent
LABS = list(checks.LABS)


def test_every_lab_is_registered_with_its_checks():
    assert LABS == sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb")), (
        "solutions/ and checks.LABS list different labs: register each lab in dlcourse/course/checks/__init__.py")
    for lab in LABS:
        table = checks.checks_for(lab)
        assert list(table) == [f"Exercise {i}" for i in range(1, len(table) + 1)], f"{lab}: exercises 1, 2, ..."
        assert all(isinstance(e, checks.Exercise) for e in table.values()), f"{lab}: CHECKS holds Exercise records"
        module = checks.lab_module(lab)
        assert all(hasattr(e.check, "__wrapped__") and getattr(module, e.check.__name__) is e.check
                   for e in table.values()), f"{lab}: end its check module with facing_students(globals())"


def test_an_unknown_lab_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown lab 'lab99'.*lab01_deep_networks.*lab03_methodology"):
        checks.checks_for("lab99")


def _code_cells(lab: str) -> list[str]:
    nb = nbformat.read(ROOT / "solutions" / f"{lab}.ipynb", as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("lab", LABS)
def test_every_exercise_has_its_region_and_then_its_check_cell(lab):
    cells = _code_cells(lab)
    hints = [[hint for hint, _ in labs.solution_regions(source)] for source in cells]
    table = checks.checks_for(lab)
    labels = {hint.split(":")[0] for cell in hints for hint in cell}
    assert labels == set(table), f"{lab}: the regions' hints name {sorted(labels)}, CHECKS has {sorted(table)}"
    for label, exercise in table.items():
        last = max(i for i, cell in enumerate(hints) if any(h.startswith(f"{label}:") for h in cell))
        call = f"{exercise.check.__name__}({', '.join(exercise.names)})"
        assert last + 1 < len(cells) and call in cells[last + 1], (
            f"{lab}: the code cell after {label}'s solution should call {call}")


@pytest.fixture(scope="module", params=LABS)
def solved(request):
    return request.param, solution_namespace(request.param)


@pytest.mark.parametrize("salt", [0, 7919], ids=["lab inputs", "fresh inputs"])
def test_the_solution_passes_every_check(solved, salt, capsys, monkeypatch):
    lab, namespace = solved
    monkeypatch.setattr(checks, "SALT", salt)  # the grader draws a new salt for each submission
    for label, exercise in checks.checks_for(lab).items():
        missing = [n for n in exercise.names if n not in namespace]
        assert not missing, f"{lab}: the solution never defines {missing} ({label})"
        exercise.check(*(namespace[n] for n in exercise.names))
    assert capsys.readouterr().out.count("✔") >= len(checks.checks_for(lab))


def test_every_solution_has_a_lab_and_labs_are_up_to_date():
    generated = labs.generate(ROOT / "solutions", ROOT / "labs", write=False)
    on_disk = {p.name for p in (ROOT / "labs").glob("*.ipynb")}
    assert on_disk == set(generated), "labs/ and solutions/ hold different notebooks: run `dlcourse make-labs`"
    for name, text in generated.items():
        assert (ROOT / "labs" / name).read_text(encoding="utf-8") == text, (
            f"labs/{name} is not what the generator makes of solutions/{name}: run `dlcourse make-labs`")


@pytest.mark.parametrize("lab", LABS)
def test_labs_contain_no_solution_code(lab):
    lab_text = (ROOT / "labs" / f"{lab}.ipynb").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in lab_text and "END SOLUTION" not in lab_text
    lab_sources = "\n".join(c.source for c in nbformat.reads(lab_text, as_version=4).cells)
    regions = [code for source in _code_cells(lab) for _, code in labs.solution_regions(source)]
    assert regions, f"{lab} has no exercise"
    for code in regions:
        for line in code.splitlines():
            line = line.strip()
            if len(line) >= 16 and not line.startswith("#"):
                assert line not in lab_sources, f"solution line leaked into labs/{lab}.ipynb: {line!r}"


@pytest.mark.parametrize("lab", LABS)
def test_every_stub_raises_its_not_implemented_error(lab):
    nb = nbformat.read(ROOT / "labs" / f"{lab}.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT / "labs")}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    exercises = [(i, c) for i, c in enumerate(code) if c.metadata.get("dlcourse", {}).get("exercise")]
    assert exercises
    for i, cell in exercises:
        hints = cell.metadata["dlcourse"]["exercise"]
        # A stub inside a function raises when its check cell calls it; a top-level stub at once.
        errors = [o for c in code[i:i + 2] for o in c.outputs if o.output_type == "error"]
        assert errors, f"the stub {hints[0]!r} and its check cell ran without error"
        # A stub run directly raises its NotImplementedError; through a check, one line saying it is not done.
        assert errors[0].ename in ("NotImplementedError", "ExerciseNotDone"), f"{hints[0]!r}: got {errors[0].ename}"
        label = hints[0].split(":")[0]
        if errors[0].ename == "ExerciseNotDone":
            assert errors[0].evalue.startswith(f"{label} is not done yet")
            assert any(hint.split(": ", 1)[1] in errors[0].evalue for hint in hints)
            assert len(errors[0].traceback) == 1, "a check's traceback was shown for an exercise not done yet"
        else:
            assert errors[0].evalue in hints


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab 9: X — solutions")] + [
        nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_generator_replaces_regions_with_indented_stubs_and_links_the_solution():
    source = "def f(x):\n    # BEGIN SOLUTION (Exercise 1: double it)\n    y = 2 * x\n    return y\n    # END SOLUTION\n"
    lab = labs.make_lab(_nb(source), "lab09_x.ipynb")
    assert lab.cells[0].source == "# Lab 9: X"
    assert "../solutions/lab09_x.ipynb" in lab.cells[1].source
    assert lab.cells[2].source == "def f(x):\n    raise NotImplementedError('Exercise 1: double it')\n"
    namespace = {}
    exec(lab.cells[2].source, namespace)
    with pytest.raises(NotImplementedError, match="double it"):
        namespace["f"](1)


@pytest.mark.parametrize("source, message", [
    ("# BEGIN SOLUTION (E1: h)\nx = 1\n", "never closed"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "needs a hint"),
    ("x = 1\n# END SOLUTION\n", "no matching BEGIN"),
    ("# BEGIN SOLUTION (E1: h)\n# BEGIN SOLUTION (E2: h)\n# END SOLUTION\n", "nested"),
])
def test_generator_rejects_bad_markers(source, message):
    with pytest.raises(labs.MarkerError, match=message):
        labs.make_lab(_nb(source), "lab09_x.ipynb")


def test_generator_rejects_a_solution_without_exercises():
    with pytest.raises(labs.MarkerError, match="nothing for students to do"):
        labs.make_lab(_nb("x = 1"), "lab09_x.ipynb")
    assert re.search("hint", labs.BEGIN.pattern)

"""Committed notebooks: outputs from the current code, the Colab cell, the book's table of contents."""

import re
from pathlib import Path

import nbformat
import pytest

from dlcourse.course import nb as nbtools

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = sorted((ROOT / "chapters").rglob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
ALL = EXECUTED + sorted((ROOT / "labs").glob("*.ipynb"))
ids = lambda p: str(p.relative_to(ROOT))  # noqa: E731


@pytest.mark.parametrize("path", EXECUTED, ids=ids)
def test_outputs_come_from_the_current_code(path):
    reason = nbtools.stale_reason(nbformat.read(path, as_version=4))
    assert reason is None, f"{ids(path)}: {reason}; run `dlcourse execute {ids(path)}` and commit the outputs"


@pytest.mark.parametrize("path", EXECUTED, ids=ids)
def test_no_unexpected_errors_and_no_widget_state(path):
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", []):
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_first_cell_is_the_colab_setup_cell_from_config(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "code" and first.get("id") == nbtools.SETUP_CELL_ID
    assert first.source == nbtools.setup_cell_source(nbtools.repository_url())
    assert "remove-cell" in first.metadata.get("tags", [])


def test_setup_cell_installs_only_in_colab():
    source = nbtools.setup_cell_source("https://example.org/course")
    assert '"google.colab" in sys.modules' in source and "git+https://example.org/course.git" in source
    assert source.count("%pip") == 1


@pytest.mark.parametrize("path", sorted((ROOT / "chapters").rglob("*.ipynb")), ids=ids)
def test_chapter_notebooks_follow_the_house_shape(path):
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert re.match(r"# \d+\.\d+ ", markdown[0]) and "{admonition}" in markdown[0]
    assert any("## Summary" in m for m in markdown)
    if "ch00" not in str(path):
        assert any("## Exercises" in m for m in markdown) and any("{cite}" in m for m in markdown)
    code = [c for c in nb.cells if c.cell_type == "code"][1:]
    assert "generator, device = setup(seed=" in "".join(c.source for c in code[:2]), (
        f"{ids(path)}: the second code cell should be the setup call `generator, device = setup(seed=0)`")
    for cell in code:
        assert len(cell.source.splitlines()) <= 30, f"a code cell of {ids(path)} is over 30 lines"


def test_toc_lists_every_page_and_nothing_missing():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(\S+)", toc))
    for name in listed:
        assert any((ROOT / f"{name}{ext}").is_file() for ext in (".md", ".ipynb")), f"_toc.yml lists missing {name}"
    for path in ALL:
        assert str(path.relative_to(ROOT).with_suffix("")) in listed, f"{ids(path)} is not in _toc.yml"


@pytest.mark.parametrize("path", EXECUTED, ids=ids)
def test_the_thread_policy_is_set_only_by_setup(path):
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    for call in ("set_num_threads(", "threadpool_limits("):
        assert call not in source, f"{ids(path)} calls {call}...): the CPU-thread policy belongs to dlcourse.setup()"


def _top_level_definitions(path):
    """(kind, name, normalised AST) of each top-level class and function in a notebook's code cells."""
    import ast

    out = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or cell.get("id") == nbtools.SETUP_CELL_ID:
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                                         and isinstance(node.body[0].value, ast.Constant)) else node.body
                out.append((type(node).__name__, node.name, ast.dump(ast.Module(body=body, type_ignores=[]))))
    return out


def test_no_two_chapter_notebooks_define_the_same_model_or_function():
    """Save on second use: a class (model) or a function body that a second notebook needs lives in the package."""
    seen: dict = {}
    for path in sorted((ROOT / "chapters").rglob("*.ipynb")):
        for kind, name, body in _top_level_definitions(path):
            for key in ((kind, name) if kind == "ClassDef" else None, ("body", body)):
                if key is None:
                    continue
                first = seen.setdefault(key, path)
                assert first == path, (
                    f"{ids(path)} defines {name} again ({ids(first)} defines the same "
                    f"{'class' if key[0] == 'ClassDef' else 'function'}): move it to dlcourse/models or dlcourse/data "
                    "and import it (the first notebook may build it in view and assert it equals the package's)")

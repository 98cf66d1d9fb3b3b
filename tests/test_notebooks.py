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
    assert "seed_everything(" in "".join(c.source for c in code[:2]) and "get_device()" in "".join(c.source for c in code[:2])
    for cell in code:
        assert len(cell.source.splitlines()) <= 30, f"a code cell of {ids(path)} is over 30 lines"


def test_toc_lists_every_page_and_nothing_missing():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(\S+)", toc))
    for name in listed:
        assert any((ROOT / f"{name}{ext}").is_file() for ext in (".md", ".ipynb")), f"_toc.yml lists missing {name}"
    for path in ALL:
        assert str(path.relative_to(ROOT).with_suffix("")) in listed, f"{ids(path)} is not in _toc.yml"

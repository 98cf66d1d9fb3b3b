"""Notebook tooling: the Colab setup cell, execution in place, and provenance hashes (chapter 0).

``dlcourse execute NOTEBOOK...`` re-runs notebooks so their committed outputs are the
ones the current code produces. Before running, it makes the first cell the Colab
setup cell (built from the repository URL in ``_config.yml``); after running, it
records a hash of every code cell's source in the notebook metadata, which the tests
compare with the sources, so an edited cell whose outputs were not regenerated fails CI.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import nbformat

from ..progress import STATIC_ENV

ROOT = Path(__file__).resolve().parents[2]
SETUP_CELL_ID = "colab-setup"
SOURCE_ENV = "DLCOURSE_SOURCE"


def repository_url(config: Path | None = None) -> str:
    """The repository URL written once in ``_config.yml`` (``repository: url:``)."""
    config = config or ROOT / "_config.yml"
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: run from a checkout of the course repository")
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", config.read_text(encoding="utf-8"), re.M)
    if not match:
        raise ValueError(f"{config} has no 'repository: url:' entry; add the course's repository URL there")
    return match.group(1)


def setup_cell_source(url: str) -> str:
    """Source of the Colab setup cell: installs the course package in Colab, nothing elsewhere."""
    return (
        "# Colab setup: in Google Colab, install the course package (pip adds only what Colab lacks).\n"
        "# Elsewhere this cell does nothing: install locally with the README's commands.\n"
        "import os, sys\n"
        "if \"google.colab\" in sys.modules or \"COLAB_RELEASE_TAG\" in os.environ:\n"
        f"    %pip install --quiet {{os.environ.get(\"{SOURCE_ENV}\", \"git+{url}.git\")}}\n"
    )


def setup_cell(url: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(setup_cell_source(url))
    cell.id = SETUP_CELL_ID
    cell.metadata["tags"] = ["remove-cell"]
    return cell


def ensure_setup_cell(nb: nbformat.NotebookNode, url: str) -> None:
    """Make the first code cell of ``nb`` the current Colab setup cell."""
    cells = [c for c in nb.cells if c.get("id") != SETUP_CELL_ID]
    nb.cells = [setup_cell(url)] + cells


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def code_hashes(nb: nbformat.NotebookNode) -> list[str]:
    return [source_hash(c.source) for c in nb.cells if c.cell_type == "code"]


def stale_reason(nb: nbformat.NotebookNode) -> str | None:
    """Why ``nb``'s outputs may not come from its current code, or None if they do."""
    recorded = nb.metadata.get("dlcourse", {}).get("code_hashes")
    if recorded is None:
        return "it was never executed with `dlcourse execute`"
    current = code_hashes(nb)
    if len(recorded) != len(current):
        return f"it had {len(recorded)} code cells when executed and has {len(current)} now"
    for i, (old, new) in enumerate(zip(recorded, current)):
        if old != new:
            return f"code cell {i} changed after the notebook was executed"
    return None


def execute(path: Path, *, timeout: int = 600, url: str | None = None) -> float:
    """Execute the notebook at ``path`` in place; return the wall time in seconds."""
    from nbclient import NotebookClient

    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise FileNotFoundError(f"{path} is not a notebook file (.ipynb)")
    nb = nbformat.read(path, as_version=4)
    ensure_setup_cell(nb, url or repository_url())
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    previous = os.environ.get(STATIC_ENV)
    os.environ[STATIC_ENV] = "1"  # the kernel inherits it: progress bars print their final state
    try:
        client.execute()
    finally:
        if previous is None:
            del os.environ[STATIC_ENV]
        else:
            os.environ[STATIC_ENV] = previous
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)  # widget state would make the site load a widget manager
    nb.metadata["dlcourse"] = {"code_hashes": code_hashes(nb)}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, path)
    return seconds

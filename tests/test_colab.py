"""A notebook runs in a fresh environment holding only what Colab preinstalls.

The environment is built offline from the wheelhouse that scripts/test.sh fills. The
kernel sees COLAB_RELEASE_TAG, as in Colab, so the notebook's first cell installs the course
package, from this checkout instead of the repository URL.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
NOTEBOOK = ROOT / "chapters" / "ch01_deep_networks" / "01_deep_mlp.ipynb"


def run(*args, cwd, **kwargs):
    """Run a command outside the checkout, so that nothing imports from it by accident."""
    return subprocess.run(args, check=True, capture_output=True, text=True, cwd=cwd, **kwargs)


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason="run scripts/test.sh first: it fills .cache/wheelhouse")
def test_notebook_runs_in_a_colab_like_environment(tmp_path):
    venv = tmp_path / "colab"
    run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE),
               "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONFIG_FILE": os.devnull}
    run(str(python), "-m", "pip", "install", "--quiet", "-r", str(ROOT / "tests" / "colab_preinstalled.txt"),
        env=offline, cwd=tmp_path)
    assert run(str(python), "-c", "import importlib.util as u; print(u.find_spec('dlcourse'))", cwd=tmp_path).stdout.strip() == "None"

    kernels = tmp_path / "share" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    env = {"COLAB_RELEASE_TAG": "test", "DLCOURSE_SOURCE": str(ROOT), "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(WHEELHOUSE), "PIP_CONFIG_FILE": os.devnull, "MPLBACKEND": "Agg",
           "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python", "env": env}))
    os.environ["JUPYTER_PATH"] = str(tmp_path / "share")
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="colab",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        del os.environ["JUPYTER_PATH"]
    installed = run(str(python), "-m", "pip", "list", "--format=json", env=offline, cwd=tmp_path).stdout
    names = {p["name"].lower(): p["version"] for p in json.loads(installed)}
    assert "dlcourse" in names and "pooch" in names
    assert names["torch"].startswith("2.13.0"), "the setup cell must not replace Colab's torch"
    checks = [o.text for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert any("check passed" in text for text in checks)

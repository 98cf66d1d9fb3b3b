"""Each chapter's first notebook and each lab's solution run in a fresh Colab-like environment.

The environment holds only what tests/colab_preinstalled.txt lists (Colab's versions, on this
machine's Python 3.11 and CPU torch 2.13.0: that file says why), built once per run, offline,
from the wheelhouse that scripts/test.sh fills. Its kernel sees
COLAB_RELEASE_TAG, as in Colab, so each notebook's first cell installs the course package,
from a clean copy of this checkout instead of the repository URL. The test asserts that the
notebook runs without error and that the install only added packages: every preinstalled one
(torch and numpy above all) keeps its version. After each notebook the environment goes back
to the preinstalled set, so every notebook starts as a fresh Colab session does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dlcourse.course.nb import SETUP_CELL_ID, SOURCE_ENV

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
PREINSTALLED = ROOT / "tests" / "colab_preinstalled.txt"
KERNEL = "dlcourse-colab-test"
# What a `git clone` of the repository gives pip to build the course package from.
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE", "dlcourse")

# The first notebook of every chapter (new chapters are picked up) and every lab's solution.
NOTEBOOKS = [sorted(chapter.glob("*.ipynb"))[0] for chapter in sorted(ROOT.glob("chapters/*/"))
             if any(chapter.glob("*.ipynb"))] + sorted(ROOT.glob("solutions/*.ipynb"))

LIST_DISTRIBUTIONS = """
import json, re
from importlib.metadata import distributions
print(json.dumps({re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in distributions()}))
"""

pytestmark = pytest.mark.skipif(
    not WHEELHOUSE.is_dir(), reason="run scripts/test.sh first: it fills .cache/wheelhouse")


def run(*args, **kwargs) -> str:
    """Run a command, failing with its output if it fails."""
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Colab:
    """A virtual environment holding Colab's preinstalled packages, and a kernel running in it."""

    def __init__(self, home: Path):
        self.venv = home / "venv"
        self.python = self.venv / "bin" / "python"
        self.jupyter_path = home / "share"
        self.source = home / "course"
        # pip inside the environment sees only the wheelhouse: no index, no machine-wide
        # config (this machine's pip.conf caps torch and adds local wheel folders).
        self.pip_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE),
                        "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        self.env = {**os.environ, **self.pip_env}
        self.env.pop("PYTHONPATH", None)
        self.seconds: dict[str, tuple[float, float, int]] = {}

    def build(self) -> None:
        run(sys.executable, "-m", "venv", str(self.venv), cwd=self.venv.parent)
        self.pip("install", "--quiet", "--no-compile", "-r", str(PREINSTALLED))  # no .pyc: faster
        found = run(str(self.python), "-c", "import importlib.util as u; print(u.find_spec('dlcourse'))",
                    cwd=self.venv.parent, env=self.env)
        assert found.strip() == "None", "the Colab-like environment must not see the checkout's package"
        self.preinstalled = self.packages()
        for name in PACKAGE_FILES:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, self.source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            elif path.is_file():
                self.source.mkdir(exist_ok=True)
                shutil.copy2(path, self.source / name)
        spec = self.jupyter_path / "kernels" / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(self.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Colab-like", "language": "python",
            # As in Colab; the setup cell installs from SOURCE_ENV instead of the repository URL.
            "env": {"COLAB_RELEASE_TAG": "colab-test", SOURCE_ENV: str(self.source),
                    "VIRTUAL_ENV": str(self.venv), "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}",
                    "PYTHONPATH": "", **self.pip_env}}))

    def pip(self, *args: str) -> str:
        return run(str(self.python), "-m", "pip", *args, cwd=self.venv.parent, env=self.env)

    def packages(self) -> dict[str, str]:
        """Installed distributions by normalised name, with their versions (what `pip list` shows)."""
        listed = run(str(self.python), "-c", LIST_DISTRIBUTIONS, cwd=self.venv.parent, env=self.env)
        return json.loads(listed)

    def reset(self) -> None:
        """Back to the preinstalled set: remove what a notebook added, restore what it replaced."""
        now = self.packages()
        added = sorted(set(now) - set(self.preinstalled))
        if added:
            self.pip("uninstall", "--yes", *added)
        changed = [f"{name}=={version}" for name, version in self.preinstalled.items() if now.get(name) != version]
        if changed:
            self.pip("install", "--quiet", "--no-deps", *changed)
        assert self.packages() == self.preinstalled


class TimesReport:
    """Writes the notebooks' times in the Colab-like environment into pytest's final summary."""

    def __init__(self, colab: Colab, built: float):
        self.colab, self.built, self.all = colab, built, float("nan")

    def pytest_terminal_summary(self, terminalreporter):
        if not self.colab.seconds:
            return
        tr = terminalreporter
        tr.section("Colab-like environment: notebook times (setup cell included)")
        tr.write_line(f"{self.built:7.1f} s  building the environment")
        for name, (total, setup_cell, added) in self.colab.seconds.items():
            tr.write_line(f"{total:7.1f} s  {name} (setup cell {setup_cell:.1f} s, adds {added} packages)")
        tr.write_line(f"{self.all:7.1f} s  in all (with resetting the environment between notebooks)")


@pytest.fixture(scope="module")
def colab(tmp_path_factory, request):
    started = time.perf_counter()
    env = Colab(tmp_path_factory.mktemp("colab"))
    env.build()
    report = TimesReport(env, time.perf_counter() - started)
    request.config.pluginmanager.register(report, "colab-times")
    yield env
    report.all = time.perf_counter() - started


def cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return float("nan")
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_runs_in_colab_and_its_setup_cell_only_adds(path, colab, monkeypatch):
    name = str(path.relative_to(ROOT))
    colab.reset()
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].get("id") == SETUP_CELL_ID, f"{name}: the first cell must be the Colab setup cell"
    monkeypatch.setenv("JUPYTER_PATH", str(colab.jupyter_path))
    started = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name=KERNEL,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - started

    installed = colab.packages()
    added = sorted(set(installed) - set(colab.preinstalled))
    colab.seconds[name] = (seconds, cell_seconds(nb.cells[0]), len(added))
    print(f"{name}: {seconds:.1f} s; the setup cell added {', '.join(added)}")
    for text in (o.text for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"):
        print(f"stderr: {text.strip()}")
    for package in ("torch", "numpy"):
        assert installed.get(package) == colab.preinstalled[package], (
            f"{name}: the setup cell replaced Colab's {package} {colab.preinstalled[package]} "
            f"with {installed.get(package)}")
    replaced = {p: f"{v} -> {installed.get(p)}" for p, v in colab.preinstalled.items() if installed.get(p) != v}
    assert not replaced, f"{name}: the setup cell changed preinstalled packages: {replaced}"
    assert "dlcourse" in added, f"{name}: the setup cell did not install the course package"

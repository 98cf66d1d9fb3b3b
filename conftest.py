"""Shared test set-up: offline data, a headless plotting backend, per-notebook timings."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests and CI read datasets from the local mirror, never from the network. nbval's kernels
# inherit this environment.
if "DLCOURSE_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["DLCOURSE_DATA"] = str(SHARED_DATA)

_notebook_seconds: dict[str, float] = defaultdict(float)
_started = time.perf_counter()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    tr = terminalreporter
    tr.section("notebook run times (budget: 90 s each)")
    for path, seconds in sorted(_notebook_seconds.items(), key=lambda kv: -kv[1]):
        flag = "  OVER BUDGET" if seconds > 90 else ""
        tr.write_line(f"{seconds:7.1f} s  {path}{flag}")
    tr.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  all notebooks; "
                  f"{time.perf_counter() - _started:.0f} s whole session")

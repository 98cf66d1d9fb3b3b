"""Grading submitted lab notebooks against the course's checks (introduced with lab 1).

``dlcourse grade LAB FOLDER`` runs every notebook in FOLDER in its own process, under a
time limit per cell and per submission and a memory limit, and writes ``scores.csv``
(one row per student, one column per exercise) and ``summary.md``.

What a submission cannot do:

* Fake a pass. The grader imports the lab's checks before any student code runs and calls
  those references; the student's own check cells are not run, so editing, deleting or
  redefining them changes nothing.
* Stop the grading of others, or lose work it completed. Each exercise is checked as soon
  as the cell that defines it has run, and the result is written at once; a later crash,
  infinite loop, memory blow-up or flood of output ends only that submission, and only
  after its completed exercises were recorded. A file that is not a notebook scores zero.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    student: str
    scores: dict = field(default_factory=dict)  # exercise -> 1.0 / 0.0
    feedback: dict = field(default_factory=dict)  # exercise -> message
    status: str = "running"
    seconds: float = 0.0


def _limit_memory(megabytes: int):
    def apply():
        limit = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.setsid()  # its own process group, so a timeout kills every child too
    return apply


def grade_one(lab: str, path: Path, *, timeout: float = 300, cell_timeout: float = 60,
              memory_mb: int = 4096) -> Result:
    """Grade one submission in a separate process; never raises for a bad submission."""
    from .checks import checks_for  # imports torch, which only grading needs

    table = checks_for(lab)
    result = Result(student=path.stem, scores={e: 0.0 for e in table})
    for label, exercise in table.items():
        result.feedback[label] = f"never defined {', '.join(f'`{n}`' for n in exercise.names)}"
    start = time.perf_counter()
    nonce = secrets.token_hex(16)
    read_end, write_end = os.pipe()
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read_end, 65536), b"")))
    reader.start()
    cmd = [sys.executable, "-m", "dlcourse.course.runner", lab, str(path.resolve()), str(cell_timeout), str(write_end)]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                pass_fds=(write_end,), cwd=path.parent, preexec_fn=_limit_memory(memory_mb),
                                env={**os.environ, "MPLBACKEND": "Agg"})
    finally:
        os.close(write_end)
    try:
        proc.communicate(f"{nonce}\n".encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        result.status = f"stopped at the {timeout:.0f} s time limit"
    reader.join()
    os.close(read_end)
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if not line.startswith(nonce + " "):
            continue  # only the runner knows the nonce
        record = json.loads(line[len(nonce) + 1:])
        if record.get("exercise") in result.scores:
            result.scores[record["exercise"]] = float(record["passed"])
            result.feedback[record["exercise"]] = record["message"]
        elif "status" in record and not result.status.startswith("stopped"):
            result.status = record["status"]
    if result.status == "running" or (result.status == "completed" and proc.returncode != 0):
        result.status = f"ended early with exit code {proc.returncode} (a crash or the memory limit)"
    result.seconds = time.perf_counter() - start
    return result


def grade(lab: str, folder: Path, out: Path, *, jobs: int = 1, **limits) -> list[Result]:
    """Grade every ``*.ipynb`` in ``folder``, ``jobs`` at a time; write ``scores.csv`` and ``summary.md``."""
    from .checks import checks_for

    folder, out = Path(folder), Path(out)
    exercises = list(checks_for(lab))
    if not folder.is_dir():
        raise FileNotFoundError(f"submission folder {folder} does not exist")
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no submitted notebooks (*.ipynb) in {folder}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")

    def run(path: Path) -> Result:
        result = grade_one(lab, path, **limits)
        print(f"{result.student:>24}  {sum(result.scores.values()):.0f}/{len(exercises)}  "
              f"{result.seconds:5.1f} s  {result.status}", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:  # each job waits on its own process
        results = list(pool.map(run, paths))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *exercises, "total", "status"])
        for r in results:
            writer.writerow([r.student, *(f"{r.scores[e]:.0f}" for e in exercises),
                             f"{sum(r.scores.values()):.0f}", r.status])
    (out / "summary.md").write_text(summary(lab, exercises, results), encoding="utf-8")
    return results


def summary(lab: str, exercises: list[str], results: list[Result]) -> str:
    n = len(results)
    lines = [f"# Grades for {lab}", "", f"{n} submissions, {len(exercises)} exercises.", "",
             "| exercise | solved by |", "|---|---|"]
    for e in exercises:
        solved = sum(r.scores[e] for r in results)
        lines.append(f"| {e} | {solved:.0f} of {n} ({solved / n:.0%}) |")
    lines += ["", "| student | score | status | feedback on unsolved exercises |", "|---|---|---|---|"]
    for r in results:
        notes = "; ".join(f"{e}: {r.feedback[e]}"
                          for e in exercises if not r.scores[e])
        notes = notes.replace("|", "/").replace("\n", " ")[:400]
        lines.append(f"| {r.student} | {sum(r.scores.values()):.0f}/{len(exercises)} | {r.status} | {notes} |")
    return "\n".join(lines) + "\n"

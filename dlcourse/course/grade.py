"""Grading submitted lab notebooks against the course's checks (introduced with lab 1).

``dlcourse grade LAB FOLDER`` grades every notebook in FOLDER and writes ``scores.csv`` (one
row per student, one column per exercise) and ``summary.md``. Each submission gets two
processes: a check process (``checker``) that holds the checks and their references and never
runs student code, and a student process (``submission``) that runs the cells and calls the
student's functions when a check asks, answering with plain data only. So:

* A verdict cannot be faked. Student code cannot reach the checks, the references, the
  verdicts or the channel they travel on; it can only return wrong values. Each submission's
  checks draw fresh inputs (a per-submission salt), so answers cannot be looked up.
* Where the kernel has Landlock, the student process cannot read the checks, the solutions,
  the other submissions or the grades, write outside its empty working folder, open network
  connections, or signal processes outside its own tree (``sandbox``).
* A submission cannot stop the grading of others or lose work it completed. Each exercise is
  checked as soon as the cell defining it has run, and the verdict is written at once; a crash,
  a hang, a flood or an oversized message ends only that submission, under time and memory
  limits, and every process it started is killed. A file that is not a notebook scores zero.
"""

from __future__ import annotations

import csv
import json
import os
import random
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
    confined: bool = False


def grade_one(lab: str, path: Path, *, timeout: float = 300, cell_timeout: float = 60, memory_mb: int = 4096,
              salt: int | None = None, hidden: tuple = (), confine: bool = True, max_mb: float = 50,
              max_cells: int = 2000) -> Result:
    """Grade one submission in its own check and student processes; never raises for a bad submission."""
    from .checks import checks_for  # imports torch, which only grading needs

    table = checks_for(lab)
    result = Result(student=path.stem, scores={e: 0.0 for e in table})
    for label, exercise in table.items():
        result.feedback[label] = f"never defined {', '.join(f'`{n}`' for n in exercise.names)}"
    start = time.perf_counter()
    settings = dict(lab=lab, notebook=os.path.abspath(path), timeout=timeout, cell_timeout=cell_timeout,
                    memory_mb=memory_mb, salt=submission_salt(None, "") if salt is None else salt,
                    hidden=[os.path.abspath(p) for p in hidden], confine=confine, max_bytes=int(max_mb * 2**20),
                    max_cells=max_cells)
    read_end, write_end = os.pipe()
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read_end, 65536), b"")))
    reader.start()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "dlcourse.course.checker", json.dumps(settings), str(write_end)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                pass_fds=(write_end,), start_new_session=True, env={**os.environ, "MPLBACKEND": "Agg"})
    finally:
        os.close(write_end)
    try:  # the check process keeps the limits; this is a safety net
        errors = proc.communicate(timeout=timeout + 60)[1].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        errors = ""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        result.status = f"stopped at the {timeout:.0f} s time limit"
    reader.join()
    os.close(read_end)
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        record = json.loads(line)  # written by the check process only
        if record.get("exercise") in result.scores:
            result.scores[record["exercise"]] = float(record["passed"])
            result.feedback[record["exercise"]] = record["message"]
        elif "confined" in record:
            result.confined = record["confined"]
        elif "status" in record and not result.status.startswith("stopped"):
            result.status = record["status"]
    if result.status == "running":  # the check process failed: a fault of the grader, not of the submission
        last = errors.strip().splitlines()[-1:] or ["no message"]
        result.status = f"grading failed (the check process ended with exit code {proc.returncode}: {last[0][:300]})"
    result.seconds = time.perf_counter() - start
    return result


def submission_salt(seed: int | None, name: str) -> int:
    """The salt of a submission's check inputs: drawn at random, or derived from ``seed`` and the file name."""
    return secrets.randbelow(10**9) if seed is None else random.Random(f"{seed}/{name}").randrange(10**9)


def grade(lab: str, folder: Path, out: Path, *, jobs: int = 1, seed: int | None = None, **limits) -> list[Result]:
    """Grade every ``*.ipynb`` in ``folder``, ``jobs`` at a time; write ``scores.csv`` and ``summary.md``.

    ``seed`` fixes each submission's salt (for reproducible tests); by default it is drawn at random.
    """
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
    from .sandbox import hide_memory

    hide_memory()  # a submission running as this user cannot open this process's result pipes through /proc

    def run(path: Path) -> Result:
        result = grade_one(lab, path, salt=submission_salt(seed, path.name), hidden=(folder, out), **limits)
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
    confined = sum(r.confined for r in results)
    lines = [f"# Grades for {lab}", "", f"{n} submissions, {len(exercises)} exercises.",
             f"{confined} of {n} ran confined (Landlock: the checks, solutions, other submissions and grades out of "
             "reach; see the instructor guide).", "", "| exercise | solved by |", "|---|---|"]
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

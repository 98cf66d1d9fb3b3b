"""The grader against hostile submissions: attacks score nothing, bad files fail only themselves.

Every attack starts from the blank lab 1 and solves nothing, so it must score exactly 0; the
honest solution beside them must still score 5/5 and the blank lab 0.
"""

import json
import os
import struct
import subprocess
import sys
import time

import nbformat
import pytest

from attacks import ATTACKS, build_attacks
from dlcourse.course import grade, sandbox
from dlcourse.course.checker import read_cells, NotebookError
from submissions import build, insert_after, solved_up_to

LAB = "lab01_deep_networks"
LIMITS = dict(timeout=90, cell_timeout=20, memory_mb=3072)
LANDLOCK = sandbox.landlock_abi() >= 6


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    expected = build(LAB, folder, ["solved", "blank"])
    expected.update(build_attacks(folder))
    results = grade.grade(LAB, folder, tmp_path_factory.mktemp("grades"), jobs=2, seed=0, **LIMITS)
    return expected, {r.student: r for r in results}


def test_no_attack_scores_and_the_honest_solution_still_does(attacked):
    expected, results = attacked
    if not LANDLOCK:  # without Landlock the solutions on disk are readable (the instructor guide says so)
        expected = {name: score for name, score in expected.items() if not name.endswith("read_solutions")}
    assert {name: sum(results[name].scores.values()) for name in expected} == expected
    assert all(expected[name] == 0 for name in expected if name[3:] in ATTACKS)
    assert len([name for name in expected if name[3:] in ATTACKS]) >= 8


@pytest.mark.skipif(not LANDLOCK, reason="needs Landlock (Linux 6.12 or later) for the student process's confinement")
def test_student_processes_were_confined(attacked):
    _, results = attacked
    assert all(r.confined for r in results.values())


LEFT_BEHIND = '''import subprocess, sys
for _ in range(2):  # detached grandchildren in their own sessions, which outlive a process-group kill
    subprocess.Popen([sys.executable, "-c", "import os, time\\nos.setsid()\\ntime.sleep(600)", "{marker}"],
                     start_new_session=True)
'''
FLOOD = '''import os, socket, struct
for fd in range(3, 64):  # the channel to the check process: claim a message of a terabyte
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    if s.family == socket.AF_UNIX:
        s.sendall(struct.pack("<Q", 2**40))
'''
HANG = '''import os, signal, socket, struct, time
signal.setitimer(signal.ITIMER_REAL, 0)  # switch off the cell's timer
for fd in range(3, 64):  # half a message, then silence
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    if s.family == socket.AF_UNIX:
        s.sendall(struct.pack("<Q", 100) + b"{{")
time.sleep(120)
'''
WRITE_OUT = '''from pathlib import Path
for target in [Path("{out}") / "scores.csv", Path("{other}")]:
    try:
        target.write_text("overwritten")
    except OSError:
        pass
'''


def _write(nb, path):
    nbformat.write(nb, path)
    return path


def test_processes_channels_and_files_of_a_submission_cannot_outlive_or_reach_beyond_it(tmp_path):
    folder, out = tmp_path / "submissions", tmp_path / "grades"
    folder.mkdir()
    out.mkdir()
    marker = f"dlcourse-left-behind-{os.getpid()}-{time.time_ns()}"
    other = _write(solved_up_to(LAB, {"Exercise 1"}), folder / "00_other.ipynb")
    (out / "scores.csv").write_text("before")
    cases = {"01_left_behind": LEFT_BEHIND.format(marker=marker), "02_flood": FLOOD, "03_hang": HANG,
             "04_write_out": WRITE_OUT.format(out=out, other=other)}
    for name, source in cases.items():
        _write(insert_after(solved_up_to(LAB, {"Exercise 1"}), "Exercise 1", source), folder / f"{name}.ipynb")
    results = {r.student: r for r in grade.grade(LAB, folder, out, jobs=2, seed=0, **LIMITS)}
    assert {name: sum(r.scores.values()) for name, r in results.items()} == dict.fromkeys(results, 1.0)
    alive = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, marker)]
    assert alive == [], "processes a submission started outlived it"
    assert "over the" in results["02_flood"].status and "limit" in results["02_flood"].status
    assert "time limit" in results["03_hang"].status
    assert results["01_left_behind"].status == "completed"
    if LANDLOCK:
        assert "overwritten" not in other.read_text()
    assert (out / "scores.csv").read_text().startswith("student,")  # rewritten by the grader, not the submission


def _cmdline_has(pid: str, marker: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def test_hostile_files_fail_only_themselves(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    _write(solved_up_to(LAB, {"Exercise 1", "Exercise 2"}), folder / "00_solved2.ipynb")
    (folder / "01_not_json.ipynb").write_text('{"cells": [ not json', encoding="utf-8")
    (folder / "02_list.ipynb").write_text("[1, 2, 3]", encoding="utf-8")
    nb = solved_up_to(LAB, {"Exercise 1"})
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="x" * 3 * 2**20)]
    _write(nb, folder / "03_huge.ipynb")
    many = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1") for _ in range(3000)])
    _write(many, folder / "04_many_cells.ipynb")
    odd = json.loads(nbformat.writes(solved_up_to(LAB, {"Exercise 1"})))
    odd["cells"][1:1] = [{"cell_type": "weird", "source": 42}, {"cell_type": "code", "source": 7}, "not a cell",
                         {"cell_type": "code", "source": ["deep = " + "[" * 500 + "]" * 500]}]
    (folder / "05_odd_cells.ipynb").write_text(json.dumps(odd), encoding="utf-8")
    os.symlink(folder / "00_solved2.ipynb", folder / "06_link.ipynb")
    (folder / "07_nested.ipynb").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    results = {r.student: r for r in grade.grade(LAB, folder, tmp_path / "grades", jobs=2, seed=0, max_mb=2,
                                                max_cells=2000, **LIMITS)}
    scores = {name: sum(r.scores.values()) for name, r in results.items()}
    assert scores == {"00_solved2": 2, "01_not_json": 0, "02_list": 0, "03_huge": 0, "04_many_cells": 0,
                      "05_odd_cells": 1, "06_link": 0, "07_nested": 0}
    assert "not a valid notebook" in results["01_not_json"].status
    assert "no list of cells" in results["02_list"].status
    assert "MB limit" in results["03_huge"].status
    assert "3000 code cells" in results["04_many_cells"].status
    assert results["05_odd_cells"].status == "completed"
    assert "not a regular file" in results["06_link"].status
    assert "not a valid notebook" in results["07_nested"].status


def test_reading_cells_refuses_what_it_cannot_read(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["a = 1\n", "b = 2"]},
                                          {"cell_type": "markdown", "source": "text"},
                                          {"cell_type": "code", "id": "colab-setup", "source": "pip"}]}))
    assert read_cells(str(path), 2**20, 10) == ["a = 1\nb = 2"]
    with pytest.raises(NotebookError, match="over the limit of 0"):
        read_cells(str(path), 2**20, 0)
    with pytest.raises(NotebookError, match="MB limit"):
        read_cells(str(path), 10, 10)


def test_a_malformed_message_from_the_student_process_is_a_channel_error():
    from dlcourse.course import wire

    good = wire.encode({"op": "return", "value": [1, 2.5, "x"]})
    assert wire.decode(good) == {"op": "return", "value": [1, 2.5, "x"]}
    head = json.dumps({"v": {"A": 0, "dt": "float64", "sh": [1000]}, "b": [8]}).encode()
    for body in [b"", b"\x05\x00\x00\x00{}", struct.pack("<I", len(head)) + head + b"\x00" * 8,
                 wire.encode({"op": "x"})[:-1] + b"!"]:
        with pytest.raises(wire.ChannelError):
            wire.decode(body)
    for node in [{"DC": "os:system", "f": {}}, {"Z": 1}, {"D": [[[1], 2]]}]:
        head = json.dumps({"v": node, "b": []}).encode()
        with pytest.raises(wire.ChannelError):
            wire.decode(struct.pack("<I", len(head)) + head)


@pytest.mark.skipif(not LANDLOCK, reason="needs Landlock (Linux 6.12 or later)")
def test_a_confined_process_cannot_read_hidden_files_write_outside_or_signal_out(tmp_path):
    hidden, work = tmp_path / "hidden", tmp_path / "work"
    hidden.mkdir()
    work.mkdir()
    (hidden / "answers.txt").write_text("42")
    code = f'''
import os, sys
from dlcourse.course import sandbox
assert sandbox.confine([{str(hidden)!r}], [{str(work)!r}])
def denied(fn):
    try:
        fn()
    except OSError:
        return True
    return False
print(denied(lambda: open({str(hidden / "answers.txt")!r}).read()),
      denied(lambda: open({str(tmp_path / "x.txt")!r}, "w")),
      not denied(lambda: open({str(work / "ok.txt")!r}, "w")),
      denied(lambda: os.kill({os.getpid()}, 0)))
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True"] * 4, out.stderr


MISTAKES = {  # (lab, exercise) -> a typical wrong answer, defined after the lab's stubs
    ("lab01_deep_networks", "Exercise 1"): '''
def forward(Us, X, taus):
    Z = X
    for U, tau in zip(Us, taus):
        Z = tau(torch.cat([Z, torch.ones(len(Z), 1, dtype=Z.dtype)], 1) @ U.T)  # bias appended, not prepended
    return Z
''',
    ("lab01_deep_networks", "Exercise 5"): '''
def adam_step(p, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    m = state.setdefault("m", torch.zeros_like(p))
    v = state.setdefault("v", torch.zeros_like(p))
    m.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    p.sub_(lr * m / (v.sqrt() + eps))  # no bias correction
''',
    ("lab02_rnn_attention", "Exercise 5"): '''
def train_step(model, X, y, optimizer, max_norm):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(X), y)
    loss.backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    optimizer.step()  # never clipped
    return norm
''',
}


@pytest.mark.parametrize("lab", sorted({lab for lab, _ in MISTAKES}))
def test_graded_feedback_is_the_feedback_a_student_sees_in_the_lab(lab, tmp_path, monkeypatch):
    import torch

    from dlcourse.course import checks
    from labtest import feedback

    folder = tmp_path / "submissions"
    folder.mkdir()
    cases = {label: source for (which, label), source in MISTAKES.items() if which == lab}
    nb = solved_up_to(lab, set())
    for source in cases.values():
        nb.cells.append(nbformat.v4.new_code_cell(source))
    _write(nb, folder / "mistakes.ipynb")
    (result,) = grade.grade(lab, folder, tmp_path / "grades", seed=3, **LIMITS)
    monkeypatch.setattr(checks, "SALT", grade.submission_salt(3, "mistakes.ipynb"))
    for label, source in cases.items():
        namespace = {"torch": torch}
        exec(source, namespace)
        exercise = checks.checks_for(lab)[label]
        expected = feedback(exercise.check, *(namespace[n] for n in exercise.names))
        assert result.feedback[label] == f"CheckFailed: {expected}"[:500]

"""The grading command: real submissions, each in its own process, scored by the course's checks."""

import csv

import pytest

from dlcourse.course import grade
from dlcourse.course.checks import LABS
from submissions import build

LAB = "lab01_deep_networks"
KINDS = ["solved", "blank", "partial2", "tampered", "loop", "slowcell", "crash", "memory", "chatty", "malformed"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    expected = build(LAB, folder, KINDS)
    out = tmp_path_factory.mktemp("grades")
    results = grade.grade(LAB, folder, out, jobs=2, seed=0, timeout=60, cell_timeout=20, memory_mb=3072)
    return expected, {r.student: r for r in results}, out


def test_each_submission_scores_exactly_what_it_completed(graded):
    expected, results, _ = graded
    assert {name: sum(r.scores.values()) for name, r in results.items()} == expected


def test_failures_are_reported_not_fatal(graded):
    _, results, _ = graded
    assert results["00_solved"].status == "completed"
    assert "not a valid notebook" in results["09_malformed"].status
    assert "time limit" in results["04_loop"].status
    assert results["05_slowcell"].status == "completed"  # the looping cell timed out, the rest ran
    assert "exit code 3" in results["06_crash"].status
    assert "not attempted" in results["01_blank"].feedback["Exercise 1"]
    assert "CheckFailed" in results["03_tampered"].feedback["Exercise 1"]


def test_score_table_and_summary(graded):
    expected, _, out = graded
    rows = list(csv.DictReader(open(out / "scores.csv", encoding="utf-8")))
    assert [r["student"] for r in rows] == sorted(expected)
    assert {r["student"]: int(r["total"]) for r in rows} == expected
    assert set(rows[0]) == {"student", "Exercise 1", "Exercise 2", "Exercise 3", "Exercise 4", "Exercise 5",
                            "total", "status"}
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert f"{len(expected)} submissions, 5 exercises" in summary and "| 00_solved | 5/5 | completed |" in summary
    confined = sum(r.confined for r in graded[1].values())
    assert f"{confined} of {len(expected)} ran confined" in summary


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown lab 'lab99'.*lab01_deep_networks"):
        grade.grade("lab99", tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no submitted notebooks"):
        grade.grade(LAB, tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        grade.grade(LAB, tmp_path / "missing", tmp_path / "out")


@pytest.mark.parametrize("lab", [lab for lab in LABS if lab != LAB])
def test_every_other_lab_grades_solved_partial_and_blank_submissions(lab, tmp_path):
    expected = build(lab, tmp_path / "submissions", ["solved", "partial2", "blank"])
    results = grade.grade(lab, tmp_path / "submissions", tmp_path / "grades", jobs=2, seed=1, timeout=180,
                          cell_timeout=90, memory_mb=4096)
    assert {r.student: sum(r.scores.values()) for r in results} == expected
    assert all(r.status == "completed" for r in results)

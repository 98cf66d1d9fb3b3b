"""What a student sees when a lab's check fails in a notebook: the message, without a traceback."""

import re

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dlcourse.course.checks import CheckFailed, ExerciseNotDone, deep_networks
from dlcourse.course.feedback import brief, show_check_failures_briefly


@pytest.fixture
def shell():
    shell = InteractiveShell.instance(colors="nocolor")
    assert show_check_failures_briefly(shell)
    shell.user_ns["check_forward"] = deep_networks.check_forward
    yield shell
    InteractiveShell.clear_instance()


def _run(shell, capsys, source: str) -> str:
    shell.run_cell(source, store_history=False)
    return re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).strip()  # without the colour codes


def test_an_exercise_not_done_yet_is_one_line(shell, capsys):
    out = _run(shell, capsys, "def forward(Us, X, taus):\n    raise NotImplementedError('Exercise 1: prepend ones')\n"
                              "check_forward(forward)")
    assert "Exercise 1 is not done yet" in out and "prepend ones" in out
    assert len(out.splitlines()) == 1 and "Traceback" not in out


def test_a_wrong_answer_shows_the_checks_message_and_not_its_source(shell, capsys):
    out = _run(shell, capsys, "import torch\ndef forward(Us, X, taus):\n"
                              "    return torch.zeros(len(X), Us[-1].shape[0], dtype=X.dtype)\ncheck_forward(forward)")
    assert out.startswith("✘ Check failed: forward(...) for layer sizes") and "eq. 4.5" in out
    assert "Traceback" not in out and "def check_forward" not in out and "FORWARD_MISTAKES" not in out


def test_other_errors_keep_their_traceback(shell, capsys):
    out = _run(shell, capsys, "1 / 0")
    assert "ZeroDivisionError" in out and "Traceback" in out


def test_the_stub_error_is_still_a_not_implemented_error_for_the_grader():
    def forward(Us, X, taus):
        raise NotImplementedError("Exercise 1: prepend ones")

    with pytest.raises(NotImplementedError) as err:
        deep_networks.check_forward(forward)
    assert isinstance(err.value, ExerciseNotDone) and isinstance(err.value, CheckFailed)
    assert brief(err.value)[0].count("\n") == 0
    assert deep_networks.CHECKS["Exercise 1"].check is deep_networks.check_forward

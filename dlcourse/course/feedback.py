"""How a lab's check reports to the student in a notebook: a short message, not a traceback.

A check that fails raises ``CheckFailed`` (an exercise not written yet, ``ExerciseNotDone``). By
default IPython would show a traceback through the course's checking code, with its source and
the hints for other mistakes. ``show_check_failures_briefly`` registers a handler with the running
IPython shell (Jupyter, JupyterLab, Colab) that shows only the message, in one short block; other
errors keep their tracebacks. Outside IPython it does nothing.
"""

from __future__ import annotations

import sys

RED, GREY, RESET = "\x1b[31m", "\x1b[90m", "\x1b[0m"


def brief(error: BaseException) -> list[str]:
    """The lines a student sees for a failed check."""
    from .checks import ExerciseNotDone

    if isinstance(error, ExerciseNotDone):
        return [f"{GREY}… {error}{RESET}"]
    return [f"{RED}✘ Check failed: {error}{RESET}"]


def _handler(shell, etype, value, tb, tb_offset=None):
    lines = brief(value)
    shell._showtraceback(etype, value, lines)  # as an error output (a notebook marks the cell failed), these lines only
    return lines


def show_check_failures_briefly(shell=None) -> bool:
    """Register the short display of ``CheckFailed`` with ``shell`` (default: the running IPython shell)."""
    if shell is None:
        if "IPython" not in sys.modules:
            return False  # no notebook or IPython shell runs here; importing IPython would only cost start-up
        shell = sys.modules["IPython"].get_ipython()
    if shell is None:
        return False
    from .checks import CheckFailed

    shell.set_custom_exc((CheckFailed,), _handler)
    return True

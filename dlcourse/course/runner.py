"""Runs one submission for ``dlcourse.grade``: its cells in order, then the course's checks.

Started by the grader as ``python -m dlcourse.course.runner LAB NOTEBOOK CELL_TIMEOUT FD``,
with a memory limit. The student's output is discarded; results go to the grader on the
pipe FD, each line tagged with a nonce read from standard input before any student code
runs, so printed text cannot pass for a result.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import sys
from types import FunctionType, ModuleType

from dlcourse.course.nb import SETUP_CELL_ID

FROZEN_PACKAGE = "dlcourse.course.checks"
"""The checks package and its modules (the lab's among them): put back whole before each check."""
GUARDED_MODULES = ("builtins", "torch", "torch.nn.functional")
"""What the checks call besides their own package: names student code rebinds are put back before
each check, names it adds are kept (torch gains submodules lazily)."""


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time limit."""


def frozen_modules(lab: str) -> list[ModuleType]:
    """The modules of ``FROZEN_PACKAGE`` once ``lab``'s check module is imported."""
    from dlcourse.course import checks

    checks.lab_module(lab)
    return [m for name, m in sorted(sys.modules.items())
            if name == FROZEN_PACKAGE or name.startswith(FROZEN_PACKAGE + ".")]


def _snapshot(modules: list[ModuleType], whole: bool) -> list:
    """What ``restore`` puts back: each module's names, and the code of the functions they hold."""
    saved = []
    for module in modules:
        names = dict(vars(module))
        code = {f: (f.__code__, f.__defaults__, f.__kwdefaults__) for f in names.values() if isinstance(f, FunctionType)}
        saved.append((module, names, code, whole))
    return saved


def main(lab: str, path: str, cell_timeout: float, results_fd: int) -> None:
    nonce = sys.stdin.readline().strip()
    channel = os.fdopen(results_fd, "w", buffering=1)

    def send(record: dict) -> None:
        channel.write(f"{nonce} {json.dumps(record)}\n")

    import nbformat

    from dlcourse.course.checks import checks_for

    # Bound now, before any student code runs: the names and the check of every exercise.
    table = {label: (exercise.names, exercise.check) for label, exercise in checks_for(lab).items()}
    snapshots = (_snapshot(frozen_modules(lab), whole=True)
                 + _snapshot([importlib.import_module(name) for name in GUARDED_MODULES], whole=False))

    def restore() -> None:
        """Undo any change student code made to the checks, torch or builtins."""
        for module, saved, code, whole in snapshots:
            current = vars(module)
            if whole:
                for name in [n for n in current if n not in saved]:
                    del current[name]
            for name, value in saved.items():
                if current.get(name, None) is not value:
                    current[name] = value
            for function, (body, defaults, kwdefaults) in code.items():
                if function.__code__ is not body:
                    function.__code__ = body
                function.__defaults__, function.__kwdefaults__ = defaults, kwdefaults

    try:
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "code" and c.get("id") != SETUP_CELL_ID]
    except Exception as err:  # not JSON, not a notebook, unreadable
        send({"status": f"not a valid notebook ({type(err).__name__})"})
        return

    import torch
    from IPython.core.interactiveshell import InteractiveShell

    torch.set_num_threads(1)  # lab models are small; one thread per submission lets jobs run side by side

    shell = InteractiveShell.instance(colors="nocolor")
    shell.showtraceback = lambda *args, **kwargs: None  # tracebacks would go to discarded output anyway

    def on_alarm(signum, frame):
        raise CellTimeout(f"cell ran longer than {cell_timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    attempted: dict = {}

    def check_ready() -> None:
        ns = shell.user_ns
        for exercise, (names, check) in table.items():
            if not all(n in ns for n in names):
                continue
            objects = tuple(ns[n] for n in names)
            key = tuple(id(o) for o in objects)
            if attempted.get(exercise) == key:
                continue
            attempted[exercise] = key
            restore()
            signal.setitimer(signal.ITIMER_REAL, cell_timeout)
            try:
                check(*objects)
                passed, message = True, "passed"
            except NotImplementedError:
                passed, message = False, "not attempted (the stub still raises NotImplementedError)"
            except CellTimeout:
                passed, message = False, f"the check ran longer than {cell_timeout:.0f} s"
            except BaseException as err:  # CheckFailed, or anything student code raised
                passed, message = False, f"{type(err).__name__}: {err}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            send({"exercise": exercise, "passed": passed, "message": message[:500]})

    for cell in cells:
        signal.setitimer(signal.ITIMER_REAL, cell_timeout)
        try:
            shell.run_cell(cell.source, store_history=False, silent=True)
        except CellTimeout:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        check_ready()
    send({"status": "completed"})


if __name__ == "__main__":
    lab, path, cell_timeout, results_fd = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    sys.stdout = sys.stderr = io.TextIOWrapper(open(os.devnull, "wb"))
    main(lab, path, cell_timeout, results_fd)
    os._exit(0)  # skip interpreter teardown, which student threads could hang

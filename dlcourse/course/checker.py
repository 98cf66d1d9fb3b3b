"""The check process of ``dlcourse grade``: one per submission; it never runs student code.

Started by the grader as ``python -m dlcourse.course.checker SETTINGS_JSON RESULT_FD``. It reads
the notebook's code cells itself (as JSON, with size limits), starts the student process
(``dlcourse.course.submission``) in an empty folder, sends it one cell at a time, and after
each cell runs the lab's checks for every exercise whose names are now defined, calling the
student's functions through proxies (``remote``). Only this process writes to RESULT_FD, one
JSON line per verdict and a last one with the status. Before it ends, it kills every process
the submission started (it is their subreaper) and removes the student's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

from . import sandbox, wire
from .nb import ROOT, SETUP_CELL_ID
STARTUP_SECONDS = 120
"""How long the student process may take to start (it imports torch) before the submission fails."""


class NotebookError(ValueError):
    """The submitted file is not a notebook this grader can read."""


def read_cells(path: str, max_bytes: int, max_cells: int) -> list[str]:
    """The sources of the notebook's code cells, except the setup cell; ``NotebookError`` when unreadable."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise NotebookError("not a regular file (a link or a folder is not graded)")
    if info.st_size > max_bytes:
        raise NotebookError(f"the file is {info.st_size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit "
                            "(clear large outputs before submitting)")
    try:
        with open(path, "rb") as f:
            nb = json.loads(f.read())
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise NotebookError(f"not a valid notebook (not JSON: {type(err).__name__})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("not a valid notebook (no list of cells)")
    sources = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code" or cell.get("id") == SETUP_CELL_ID:
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if isinstance(source, str):
            sources.append(source)
    if len(sources) > max_cells:
        raise NotebookError(f"the notebook has {len(sources)} code cells, over the limit of {max_cells}")
    return sources


def public_constants(lab: str) -> dict[str, dict]:
    """Module -> the upper-case constants of plain data the lab's cells may import from its check module."""
    from .checks import lab_module

    module = lab_module(lab)
    values = {}
    for name, value in vars(module).items():
        if name.isupper():
            try:
                wire.encode(value)
            except (TypeError, ValueError):
                continue
            values[name] = value
    return {module.__name__: values}


def hidden_paths(extra: list[str]) -> list[str]:
    """What the student process may not read: the checks, the solutions and the repository's history and site."""
    from . import checks

    paths = [os.path.dirname(checks.__file__)] + [str(ROOT / p) for p in ("solutions", ".git", "_build")]
    return [p for p in paths + extra if os.path.exists(p)]


def _student_limits(memory_mb: int):
    def apply():
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if os.geteuid() == 0:  # root without capabilities: no reading other processes' memory or descriptors
            sandbox.drop_capabilities()
        try:
            sandbox.die_with_parent()
        except OSError:
            pass  # not on Linux: the check process kills it when it ends
    return apply


def main(settings: dict, result_fd: int) -> None:
    results = os.fdopen(result_fd, "w", buffering=1)

    def report(record: dict) -> None:
        results.write(json.dumps(record) + "\n")

    sandbox.become_subreaper()
    sandbox.hide_memory()
    start = time.monotonic()
    deadline = start + settings["timeout"]
    try:
        cells = read_cells(settings["notebook"], settings["max_bytes"], settings["max_cells"])
    except (NotebookError, OSError) as err:
        report({"status": str(err) if isinstance(err, NotebookError) else f"could not be read ({err.strerror})"})
        return

    mine, theirs = socket.socketpair()
    workdir = tempfile.mkdtemp(prefix="dlcourse-submission-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "TMPDIR": workdir,
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": workdir, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           **{k: os.environ[k] for k in ("DLCOURSE_DATA", "DLCOURSE_CACHE", "PYTHONPATH", "LANG") if k in os.environ}}
    proc = subprocess.Popen([sys.executable, "-m", "dlcourse.course.submission", str(theirs.fileno())],
                            pass_fds=(theirs.fileno(),), cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_student_limits(settings["memory_mb"]))
    theirs.close()
    import torch  # while the student process starts

    from . import checks
    from .remote import CheckSide

    torch.set_num_threads(1)  # the checks' models are small; one thread per process lets jobs run side by side
    checks.SALT = settings["salt"]  # fresh inputs for this submission
    table = checks.checks_for(settings["lab"])
    names = sorted({n for exercise in table.values() for n in exercise.names})
    side = CheckSide(mine, settings["cell_timeout"] + 5)
    status = "completed"
    try:
        side.send({"public": public_constants(settings["lab"]), "names": names, "cell_timeout": settings["cell_timeout"],
                   "hidden": hidden_paths(settings["hidden"]), "confine": settings["confine"]}, track=False)
        ready = side.receive(timeout=STARTUP_SECONDS)
        report({"confined": bool(ready.get("confined"))})
        attempted: dict = {}
        for source in cells:
            side.timeout = min(settings["cell_timeout"] + 5, deadline - time.monotonic())
            if side.timeout <= 0:
                raise wire.ChannelError("past the time limit")
            side.send({"op": "run", "source": source}, track=False)
            ran = side.receive()
            defined = ran.get("names") if ran.get("op") == "ran" else None
            if not isinstance(defined, dict):
                raise wire.ChannelError("a malformed message (no names after a cell)")
            for label, exercise in table.items():
                tokens = tuple(defined.get(n) for n in exercise.names)
                if None in tokens or attempted.get(label) == tokens:
                    continue
                attempted[label] = tokens
                verdict = _verdict(side, exercise)
                report({"exercise": label, "passed": verdict["passed"], "message": verdict["message"]})
                if "fatal" in verdict:
                    raise verdict["fatal"]
    except wire.ChannelError as err:
        if time.monotonic() >= deadline - 1:
            status = f"stopped at the {settings['timeout']:.0f} s time limit"
        elif _ended(proc):
            status = f"ended early with exit code {proc.returncode} (a crash or the memory limit)"
        else:
            status = f"stopped: {err}"
    finally:
        try:
            side.sock.settimeout(1)
            side.send({"op": "end"}, track=False)
        except (wire.ChannelError, OSError):
            pass
        proc.kill()  # already ended, normally; then everything it left behind
        sandbox.kill_descendants()
        shutil.rmtree(workdir, ignore_errors=True)
    report({"status": status})


def _ended(proc: subprocess.Popen) -> bool:
    """Whether the student process has ended (waiting briefly: a channel error may come just before its exit)."""
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return False
    return True


def _verdict(side, exercise) -> dict:
    try:
        objects = [side.request({"op": "get", "name": n}) for n in exercise.names]
        exercise.check(*objects)
        return {"passed": True, "message": "passed"}
    except NotImplementedError:
        return {"passed": False, "message": "not attempted (the stub still raises NotImplementedError)"}
    except wire.ChannelError as err:
        return {"passed": False, "message": f"the submission's code stopped answering ({err})", "fatal": err}
    except Exception as err:  # CheckFailed, anything the student's code raised, or a value the check did not expect
        return {"passed": False, "message": f"{type(err).__name__}: {err}"[:500]}


if __name__ == "__main__":
    sys.stdout = open(os.devnull, "w")
    main(json.loads(sys.argv[1]), int(sys.argv[2]))
    os._exit(0)

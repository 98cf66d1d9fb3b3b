"""The student process of ``dlcourse grade``: runs a submission's cells and calls its functions.

Started by the check process (``dlcourse.course.checker``) as ``python -m
dlcourse.course.submission FD`` with a socket on FD, in an empty working folder, under a memory
limit and, where the kernel has Landlock, confined (``sandbox.confine``). It never sees a check:
the course's check modules cannot be imported here (a stand-in module gives the lab's check
cells no-op ``check_*`` functions and the public constants the lab uses). The check process
asks it to run a cell, to report a name's value, or to call a function with given inputs; it
answers with plain data (``wire``) and with the state of the inputs after the call, so that
changes made in place reach the check process as data too.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import io
import os
import pickle
import signal
import socket
import sys

import torch

from . import sandbox, wire
from .remote import CHECKS_PACKAGE, raised, rebuild_exception


class CellTimeout(BaseException):
    """Raised inside student code that ran past its time limit."""


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves every module of the checks package as a stand-in: no-op checks and public constants."""

    def __init__(self, public: dict[str, dict]):
        self.public = public

    def find_spec(self, fullname, path=None, target=None):
        if fullname == CHECKS_PACKAGE or fullname.startswith(CHECKS_PACKAGE + "."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        values = self.public.get(module.__name__, {})
        module.__path__ = []

        def getattr_(name):
            if name in values:
                return values[name]
            if name.startswith("check_"):
                return lambda *args, **kwargs: None  # the grader checks in its own process
            raise AttributeError(f"{name} is not available while a submission is graded")

        module.__getattr__ = getattr_


class Callback:
    """A function of the check process (a spy, an objective, a hook) that student code may call."""

    def __init__(self, side: "StudentSide", number: int):
        self._side, self._number = side, number

    def __call__(self, *args, **kwargs):
        return self._side.request({"op": "callback", "c": self._number, "args": args, "kwargs": kwargs})


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, side: "StudentSide"):
        super().__init__(io.BytesIO(data))
        self.side = side

    def persistent_load(self, pid):
        side, kind = self.side, pid[0]
        if kind == "H":
            return side.handles[pid[1]]
        if kind == "C":
            return Callback(side, pid[1])
        if kind == "X":
            return side.sent[pid[1]]
        k = pid[1]
        if kind == "T":
            obj = wire.decode(pid[2])
        elif kind == "G":
            obj = torch.Generator(device=pid[3])
            obj.set_state(torch.frombuffer(bytearray(pid[2]), dtype=torch.uint8))
        else:  # "O": a module, optimizer, list or dict, pickled on its own
            obj = _Unpickler(pid[2], side).load()
        if k is not None:
            side.sent[k] = obj
            side.refs[id(obj)] = k
        return obj


class StudentSide:
    def __init__(self, sock: socket.socket, cell_timeout: float, names: list[str]):
        from IPython.core.interactiveshell import InteractiveShell

        self.sock, self.cell_timeout, self.names = sock, cell_timeout, names
        self.handles: dict[int, object] = {}
        self.handle_ids: dict[int, int] = {}
        self.sent: dict[int, object] = {}  # objects the check process sent with the current request
        self.refs: dict[int, int] = {}
        self.shell = InteractiveShell.instance(colors="nocolor")
        self.shell.showtraceback = lambda *args, **kwargs: None
        signal.signal(signal.SIGALRM, self._alarm)

    def _alarm(self, signum, frame):
        raise CellTimeout(f"ran longer than {self.cell_timeout:.0f} s")

    # Encoding ---------------------------------------------------------------------------

    def handle(self, obj) -> dict:
        h = self.handle_ids.get(id(obj))
        if h is None:
            h = len(self.handles) + 1
            self.handles[h], self.handle_ids[id(obj)] = obj, h
        try:
            name = str(type(obj).__name__)[:80]
        except Exception:
            name = "object"
        return {"H": h, "t": name, "call": callable(obj), "mod": isinstance(obj, torch.nn.Module)}

    def _sync(self, enc: wire.Encoder) -> wire.Node:
        """The state of every object the check process sent, after student code ran on them."""
        out = []
        for k, obj in self.sent.items():
            if isinstance(obj, torch.Tensor):
                out.append({"T": [k, "t", enc.tensor(obj)]})
            elif isinstance(obj, torch.Generator):
                out.append({"T": [k, "g", enc.tensor(obj.get_state())]})
            elif isinstance(obj, torch.nn.Module):
                replaced = [[n, enc.tensor(v)] for n, v in obj.state_dict(keep_vars=True).items() if id(v) not in self.refs]
                out.append({"T": [k, "m", {"L": [m.training for m in obj.modules()]}, {"D": replaced}]})
            elif isinstance(obj, torch.optim.Optimizer):
                out.append({"T": [k, "o", enc(obj.state_dict())]})
            elif type(obj) is list:
                out.append({"T": [k, "l", {"L": [enc(v) for v in obj]}]})
            elif type(obj) is dict:
                out.append({"T": [k, "d", {"D": [[enc(a), enc(b)] for a, b in obj.items()]}]})
        return wire.Node({"L": out})

    def send(self, message: dict) -> None:
        enc = wire.Encoder(self.refs, self.handle)
        try:
            message = {**message, "sync": self._sync(enc)} if message["op"] in ("return", "raise", "callback") else message
            body = enc.frame(enc(message))
        except Exception as err:  # student objects that fail while being read
            enc = wire.Encoder()
            body = enc.frame(enc(raised(err)))
        wire.send_frame(self.sock, body)

    # Serving ----------------------------------------------------------------------------

    def receive(self) -> dict:
        return _Unpickler(wire.recv_frame(self.sock, limit=2**62), self).load()

    def request(self, message: dict):
        """Ask the check process (a callback); serve its requests until the answer comes."""
        self.send(message)
        while True:
            reply = self.receive()
            if reply["op"] == "return":
                return reply["value"]
            if reply["op"] == "raise":
                raise rebuild_exception(reply["type"], reply["bases"], reply["msg"])
            self.serve(reply)

    def _timed(self, fn, *args, **kwargs):
        signal.setitimer(signal.ITIMER_REAL, self.cell_timeout)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _gradients(self, value) -> list:
        """For a one-element result autograd can differentiate: its gradient for each input tensor."""
        if not (isinstance(value, torch.Tensor) and value.grad_fn is not None and value.numel() == 1):
            return []
        inputs = [(k, t) for k, t in self.sent.items() if isinstance(t, torch.Tensor) and t.requires_grad]
        if not inputs:
            return []
        grads = self._timed(torch.autograd.grad, value.sum(), [t for _, t in inputs], allow_unused=True,
                            retain_graph=True)
        return [(k, g) for (k, _), g in zip(inputs, grads) if g is not None]

    def serve(self, message: dict) -> None:
        op = message["op"]
        if op == "run":
            try:
                self._timed(self.shell.run_cell, message["source"], store_history=False, silent=True)
            except CellTimeout:
                pass
            ns = self.shell.user_ns
            self.send({"op": "ran", "names": {n: id(ns[n]) if n in ns else None for n in self.names}})
            return
        if op == "end":
            raise SystemExit
        try:
            if op == "get":
                value = self.shell.user_ns[message["name"]]
            elif op == "getattr":
                value = getattr(message["target"], message["name"])
            else:  # "call"
                value = self._timed(message["target"], *message["args"], **message["kwargs"])
            self.send({"op": "return", "value": value, "grads": self._gradients(value)})
        except BaseException as err:  # anything student code raised, a timeout among them
            self.send(raised(err))

    def run(self) -> None:
        while True:
            self.sent.clear()  # a new request from the check process: its objects are the ones to report
            self.refs.clear()
            self.serve(self.receive())


def main(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    setup = pickle.loads(wire.recv_frame(sock, limit=2**62))
    sys.meta_path.insert(0, _StandIn(setup["public"]))
    torch.set_num_threads(1)  # lab models are small; one thread per submission lets jobs run side by side
    confined = sandbox.confine(setup["hidden"], [os.getcwd()]) if setup["confine"] else False
    side = StudentSide(sock, setup["cell_timeout"], setup["names"])
    wire.send_frame(sock, wire.encode({"op": "ready", "confined": confined}))
    try:
        side.run()
    except (SystemExit, wire.ChannelError):
        pass


if __name__ == "__main__":
    sys.stdout = sys.stderr = io.TextIOWrapper(open(os.devnull, "wb"))
    main(int(sys.argv[1]))
    os._exit(0)  # skip interpreter teardown, which student threads could hang

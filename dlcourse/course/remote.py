"""The check process's side of the channel: student objects as proxies, inputs sent by value.

A check is called with proxies for the student's functions and objects. Calling one sends
the inputs to the student process (tensors by value; modules, optimizers, lists and dicts
pickled with them; a local function of the check, such as a spy, an objective or a forward
hook, as a callback that the student process can only call) and waits for plain data back.
The state of every input after the call (tensors, gradients, a module's mode, an optimizer's
moments, a dict filled in place) is copied into the check's own objects, so checks written
for in-process calls work unchanged; what the student process returns is never code.
"""

from __future__ import annotations

import builtins
import functools
import io
import pickle
import socket
import types

import torch

from . import wire

CHECKS_PACKAGE = "dlcourse.course.checks"


def rebuild_exception(name: str, bases: list, message: str) -> Exception:
    """An exception named like the one raised in the other process, of its nearest builtin class."""
    base = next((getattr(builtins, b) for b in bases if isinstance(b, str) and isinstance(getattr(builtins, b, None), type)
                 and issubclass(getattr(builtins, b), Exception)), Exception)
    return _exception_class(str(name)[:80] or "Exception", base)(str(message))


def raised(err: BaseException) -> dict:
    """The message that reports ``err`` to the other process (rebuilt there by ``rebuild_exception``)."""
    bases = [c.__name__ for c in type(err).__mro__ if c.__module__ == "builtins"]
    try:
        text = str(err)[:2000]
    except Exception:  # a student's exception whose __str__ fails
        text = "(its message could not be read)"
    return {"op": "raise", "type": str(type(err).__name__)[:80], "bases": bases, "msg": text}


@functools.lru_cache(maxsize=256)
def _exception_class(name: str, base: type) -> type:
    return type(name, (base,), {"__module__": "submission"})


class Remote:
    """An object that lives in the student process; attribute reads are requests to it."""

    __slots__ = ("_side", "_h", "_info")

    def __init__(self, side: "CheckSide", info: dict):
        object.__setattr__(self, "_side", side)
        object.__setattr__(self, "_h", info["H"])
        object.__setattr__(self, "_info", info)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._side.request({"op": "getattr", "target": self, "name": name})

    def __repr__(self):
        return f"<{self._info.get('t')} object>"

    @property
    def __class__(self):  # isinstance(model, nn.Module) holds for a student's module
        return torch.nn.Module if self._info.get("mod") is True else type(self)


class RemoteCallable(Remote):
    __slots__ = ()

    def __call__(self, *args, **kwargs):
        return self._side.request({"op": "call", "target": self, "args": args, "kwargs": kwargs})


@functools.lru_cache(maxsize=256)
def _proxy_class(name: str, is_callable: bool) -> type:
    return type(name, (RemoteCallable if is_callable else Remote,), {"__slots__": ()})


def _is_check_function(obj) -> bool:
    """A function of the check process that cannot be sent by name: local, a lambda, or from the checks."""
    if isinstance(obj, types.MethodType):
        return True
    if isinstance(obj, functools.partial):
        return True
    if isinstance(obj, types.FunctionType):
        return ("<locals>" in obj.__qualname__ or obj.__name__ == "<lambda>"
                or (obj.__module__ or "").startswith(CHECKS_PACKAGE))
    return False


class _ToStudent(pickle.Pickler):
    def __init__(self, file, side: "CheckSide", track: bool, root=None, in_object: bool = False):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.side, self.track, self.root, self.in_object = side, track, root, in_object

    def persistent_id(self, obj):
        side = self.side
        if obj is self.root or obj is None or type(obj) in (int, float, str, bool, tuple):
            return None
        if isinstance(obj, Remote):
            return ("H", object.__getattribute__(obj, "_h"))
        if self.track and id(obj) in side.sent_ids:
            return ("X", side.sent_ids[id(obj)])
        if isinstance(obj, torch.Tensor):
            enc = wire.Encoder()
            return ("T", side.register(obj) if self.track else None, enc.frame(enc.tensor(obj)))
        if isinstance(obj, torch.Generator):
            return ("G", side.register(obj) if self.track else None, obj.get_state().numpy().tobytes(), str(obj.device))
        if _is_check_function(obj):
            return ("C", side.callback(obj))
        container = type(obj) in (list, dict) and not self.in_object
        if self.track and (container or isinstance(obj, (torch.nn.Module, torch.optim.Optimizer))):
            k = side.register(obj)
            buf = io.BytesIO()
            _ToStudent(buf, side, True, root=obj, in_object=self.in_object or not container).dump(obj)
            return ("O", k, buf.getvalue())
        if (type(obj).__module__ or "").startswith(CHECKS_PACKAGE):
            raise TypeError(f"a {type(obj).__name__} of the checks cannot be sent to the student process")
        return None


def _set_tensor(target: torch.Tensor, value: torch.Tensor) -> None:
    with torch.no_grad():
        if target.shape == value.shape and target.dtype == value.dtype:
            target.copy_(value)
        else:
            target.data = value.to(target.device)
    if target.is_leaf:
        target.grad = None if value.grad is None else value.grad.to(target.device)


class _RemoteGradient(torch.autograd.Function):
    """A value computed in the student process whose gradients with respect to ``inputs`` came with it."""

    @staticmethod
    def forward(ctx, value, grads, *inputs):
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return (None, None, *[grad_output.sum() * g for g in ctx.grads])


class CheckSide:
    """Requests to the student process, with the time limit ``timeout`` for each answer."""

    def __init__(self, sock: socket.socket, timeout: float, limit: int = wire.MAX_FRAME):
        self.sock, self.timeout, self.limit = sock, timeout, limit
        self.sent: dict[int, object] = {}
        self.sent_ids: dict[int, int] = {}
        self.callbacks: list = []
        self.depth = 0
        self.callback_failure: BaseException | None = None

    def register(self, obj) -> int:
        k = len(self.sent)
        self.sent[k], self.sent_ids[id(obj)] = obj, k
        return k

    def callback(self, fn) -> int:
        for i, known in enumerate(self.callbacks):
            if known is fn:
                return i
        self.callbacks.append(fn)
        return len(self.callbacks) - 1

    def proxy(self, info: dict):
        if type(info.get("H")) is not int or not isinstance(info.get("t"), str):
            raise ValueError("bad handle")
        return _proxy_class(info["t"][:80] or "object", info.get("call") is True)(self, info)

    def send(self, message: dict, track: bool = True) -> None:
        buf = io.BytesIO()
        _ToStudent(buf, self, track, root=message).dump(message)
        wire.send_frame(self.sock, buf.getvalue())

    def receive(self, timeout: float | None = None) -> dict:
        body = wire.recv_frame(self.sock, timeout=self.timeout if timeout is None else timeout, limit=self.limit)
        message = wire.decode(body, ref=self.sent.__getitem__, handle=self.proxy)
        if not (isinstance(message, dict) and isinstance(message.get("op"), str)):
            raise wire.ChannelError("a malformed message (no operation)")
        return message

    def request(self, message: dict):
        """Send a request; serve callbacks; copy the inputs' new state back; return the answer."""
        if self.depth == 0:
            self.sent.clear()
            self.sent_ids.clear()
            self.callback_failure = None
        self.depth += 1
        try:
            self.send(message)
            while True:
                reply = self.receive()
                self._apply(reply.get("sync"))
                if reply["op"] == "return":
                    value = self._attach_gradients(reply.get("value"), reply.get("grads"))
                    break
                if reply["op"] == "raise":
                    raise rebuild_exception(reply.get("type", "Exception"), reply.get("bases", []), reply.get("msg", ""))
                if reply["op"] != "callback":
                    raise wire.ChannelError(f"an unexpected message {reply['op'][:40]!r}")
                self._serve_callback(reply)
        finally:
            self.depth -= 1
        if self.depth == 0 and self.callback_failure is not None:
            raise self.callback_failure  # a spy or objective failed the check; student code cannot swallow that
        return value

    def _attach_gradients(self, value, grads):
        """A one-element result that the student process differentiated, joined to this process's inputs."""
        if not (isinstance(value, torch.Tensor) and value.numel() == 1 and isinstance(grads, list) and grads):
            return value
        pairs = [(self.sent.get(k), g) for k, g in grads if type(k) is int]
        pairs = [(x, g) for x, g in pairs if isinstance(x, torch.Tensor) and x.requires_grad
                 and isinstance(g, torch.Tensor) and g.shape == x.shape]
        if not pairs:
            return value
        return _RemoteGradient.apply(value.detach(), [g.to(x.dtype) for x, g in pairs], *[x for x, _ in pairs])

    def _serve_callback(self, message: dict) -> None:
        number, args, kwargs = message.get("c"), message.get("args", ()), message.get("kwargs", {})
        if type(number) is not int or not 0 <= number < len(self.callbacks) or not isinstance(args, tuple) \
                or not isinstance(kwargs, dict):
            raise wire.ChannelError("a malformed callback")
        from .checks import CheckFailed

        try:
            value = self.callbacks[number](*args, **kwargs)
        except Exception as err:
            if isinstance(err, CheckFailed) and self.callback_failure is None:
                self.callback_failure = err
            self.send(raised(err), track=False)
            return
        self.send({"op": "return", "value": value}, track=False)

    def _apply(self, sync) -> None:
        """Copy the state the student process reports into the objects this process sent."""
        if not isinstance(sync, list):
            return
        for item in sync:
            if not (isinstance(item, tuple) and len(item) >= 3 and type(item[0]) is int):
                raise wire.ChannelError("a malformed state report")
            obj, kind = self.sent.get(item[0]), item[1]
            try:
                if kind == "t" and isinstance(obj, torch.Tensor) and isinstance(item[2], torch.Tensor):
                    _set_tensor(obj, item[2])
                elif kind == "g" and isinstance(obj, torch.Generator):
                    obj.set_state(item[2])
                elif kind == "m" and isinstance(obj, torch.nn.Module) and len(item) == 4:
                    for module, flag in zip(obj.modules(), item[2]):
                        module.training = flag is True
                    own = obj.state_dict(keep_vars=True)
                    for name, value in item[3].items():
                        if name in own and isinstance(value, torch.Tensor):
                            _set_tensor(own[name], value)
                elif kind == "o" and isinstance(obj, torch.optim.Optimizer):
                    obj.load_state_dict(item[2])
                elif kind == "l" and type(obj) is list and isinstance(item[2], list):
                    obj[:] = item[2]
                elif kind == "d" and type(obj) is dict and isinstance(item[2], dict):
                    obj.clear()
                    obj.update(item[2])
            except (RuntimeError, ValueError, TypeError, KeyError, IndexError):
                pass  # a state that does not fit the object: the check sees the object as it was

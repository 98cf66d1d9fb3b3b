"""The channel between the check process and the student process of ``dlcourse grade``.

Messages are frames (an 8-byte length, then the body) on a Unix socket. What the student
process sends is plain data only: JSON for numbers, strings, lists, tuples and dicts, and raw
bytes of a whitelisted dtype for tensors and arrays; decoding it runs no code of the sender's
choosing (no pickle). Anything else the student process holds stays there and travels as a
handle, a number the check process can ask about. What the check process sends (its inputs to
the student's functions, which may be modules or optimizers) is a pickle, read only by the
student process.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import socket
import struct
import time

import numpy as np
import torch

MAX_FRAME = 512 * 2**20
"""The largest message the check process accepts from the student process, in bytes."""
MAX_DEPTH = 40
MAX_ITEMS = 1_000_000

_DTYPES = {torch.float16: "float16", torch.float32: "float32", torch.float64: "float64",
           torch.complex64: "complex64", torch.complex128: "complex128", torch.int8: "int8",
           torch.int16: "int16", torch.int32: "int32", torch.int64: "int64", torch.uint8: "uint8",
           torch.bool: "bool"}
_NUMPY = {name: np.dtype(name) for name in _DTYPES.values()}
_TORCH = {name: dtype for dtype, name in _DTYPES.items()}


class ChannelError(RuntimeError):
    """The other process broke the protocol: closed the channel, sent too much or malformed data, or hung."""


# Frames ---------------------------------------------------------------------------------

def send_frame(sock: socket.socket, body: bytes) -> None:
    try:
        sock.sendall(struct.pack("<Q", len(body)))
        sock.sendall(body)
    except OSError as err:
        raise ChannelError(f"the channel closed while sending ({err})") from err


def recv_frame(sock: socket.socket, *, timeout: float | None = None, limit: int = MAX_FRAME) -> bytes:
    """One frame; ``ChannelError`` when it is over ``limit`` bytes or does not arrive within ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    (size,) = struct.unpack("<Q", _recv_exact(sock, 8, deadline))
    if size > limit:
        raise ChannelError(f"a message of {size} bytes is over the {limit}-byte limit")
    return _recv_exact(sock, size, deadline)


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelError("no answer within the time limit")
            sock.settimeout(left)
        try:
            k = sock.recv_into(view[got:], min(n - got, 1 << 22))
        except TimeoutError:
            raise ChannelError("no answer within the time limit") from None
        except OSError as err:
            raise ChannelError(f"the channel failed ({err})") from err
        if k == 0:
            raise ChannelError("the other process closed the channel (it ended or crashed)")
        got += k
    return bytes(buf)


# Plain data -----------------------------------------------------------------------------

class Node:
    """A value already in the encoded form (built by hand from ``Encoder`` parts); passed through as it is."""

    def __init__(self, node):
        self.node = node


class Encoder:
    """Turns a value into JSON plus byte blobs; ``refs`` maps id(object) -> number for objects the
    check process sent (they go back as references), ``handle`` numbers any other object."""

    def __init__(self, refs: dict[int, int] | None = None, handle=None):
        self.refs, self.handle, self.blobs = refs or {}, handle, []

    def tensor(self, t: torch.Tensor, with_grad: bool = True) -> dict:
        t_data = t.detach()
        if t_data.layout != torch.strided:
            t_data = t_data.to_dense()
        t_data = t_data.cpu().resolve_conj().resolve_neg()
        bf16 = t_data.dtype == torch.bfloat16
        if bf16:
            t_data = t_data.float()
        if t_data.dtype not in _DTYPES:
            raise TypeError(f"tensors of dtype {t_data.dtype} are not supported")
        self.blobs.append(t_data.contiguous().numpy().tobytes())
        out = {"A": len(self.blobs) - 1, "dt": _DTYPES[t_data.dtype], "sh": list(t_data.shape),
               "rg": bool(t.requires_grad), "p": isinstance(t, torch.nn.Parameter), "bf": bf16}
        if with_grad and t.grad is not None:
            out["g"] = self.tensor(t.grad, with_grad=False)
        return out

    def __call__(self, x, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ValueError("the value is nested too deeply")
        if type(x) is Node:
            return x.node
        if id(x) in self.refs:
            return {"R": self.refs[id(x)]}
        if x is None or type(x) in (bool, str):
            return x
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, int):
            return int(x) if abs(int(x)) < 2**53 else {"I": str(int(x))}
        if isinstance(x, float):
            return {"F": repr(float(x))} if not math.isfinite(x) else float(x)
        if isinstance(x, str):
            return str(x)
        if isinstance(x, complex):
            return {"C": [repr(x.real), repr(x.imag)]}
        if isinstance(x, np.generic) and x.dtype.name in _TORCH:
            return self(x.item(), depth)
        if isinstance(x, torch.Tensor) and type(x) in (torch.Tensor, torch.nn.Parameter):
            return self.tensor(x)
        if isinstance(x, np.ndarray) and x.dtype.name in _TORCH and type(x) is np.ndarray:
            return {**self.tensor(torch.from_numpy(np.ascontiguousarray(x))), "np": True}
        if isinstance(x, (list, tuple, set, frozenset, dict, torch.Size)) and len(x) > MAX_ITEMS:
            raise ValueError(f"a container of {len(x)} items is over the {MAX_ITEMS}-item limit")
        if isinstance(x, torch.Size) or type(x) is tuple:
            return {"T": [self(v, depth + 1) for v in x]}
        if type(x) is list:
            return {"L": [self(v, depth + 1) for v in x]}
        if type(x) in (set, frozenset):
            return {"S": [self(v, depth + 1) for v in x]}
        if isinstance(x, dict) and type(x).__module__ in ("builtins", "collections"):
            return {"D": [[self(k, depth + 1), self(v, depth + 1)] for k, v in x.items()]}
        if dataclasses.is_dataclass(x) and _course_class(type(x).__module__):
            return {"DC": f"{type(x).__module__}:{type(x).__qualname__}",
                    "f": {f.name: self(getattr(x, f.name), depth + 1) for f in dataclasses.fields(x)}}
        if self.handle is None:
            raise TypeError(f"{type(x).__name__} is not plain data")
        return self.handle(x)

    def frame(self, value) -> bytes:
        head = json.dumps({"v": value, "b": [len(b) for b in self.blobs]}).encode()
        return struct.pack("<I", len(head)) + head + b"".join(self.blobs)


def encode(value, refs=None, handle=None) -> bytes:
    """A message body holding ``value`` (see ``Encoder``)."""
    enc = Encoder(refs, handle)
    return enc.frame(enc(value))


class Decoder:
    """Reads what ``Encoder`` wrote, checking every field; ``ref(k)`` and ``handle(info)`` give objects."""

    def __init__(self, body: bytes, ref=None, handle=None):
        try:
            (n,) = struct.unpack_from("<I", body)
            head = json.loads(body[4:4 + n])
            sizes = head["b"]
            if not (isinstance(sizes, list) and all(type(s) is int and s >= 0 for s in sizes)):
                raise ValueError("bad blob sizes")
            offsets = np.cumsum([4 + n] + sizes).tolist()
            if offsets[-1] != len(body):
                raise ValueError("the blobs do not fill the message")
        except (ValueError, KeyError, TypeError, struct.error, RecursionError) as err:
            raise ChannelError(f"a malformed message ({err})") from None
        self.body, self.offsets, self.head = body, offsets, head
        self.ref, self.handle, self.items = ref, handle, 0

    def value(self):
        try:
            return self(self.head["v"], 0)
        except ChannelError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, RecursionError, OverflowError) as err:
            raise ChannelError(f"a malformed message ({type(err).__name__}: {err})") from None

    def tensor(self, node: dict) -> torch.Tensor:
        i, shape, dt = node["A"], node["sh"], node["dt"]
        if type(i) is not int or not 0 <= i < len(self.offsets) - 1 or dt not in _NUMPY:
            raise ValueError("bad array")
        if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
            raise ValueError("bad shape")
        blob = self.body[self.offsets[i]:self.offsets[i + 1]]
        if math.prod(shape) * _NUMPY[dt].itemsize != len(blob):
            raise ValueError("the array's bytes do not match its shape")
        array = np.frombuffer(blob, dtype=_NUMPY[dt]).reshape(shape).copy()
        if node.get("np"):
            return array
        t = torch.from_numpy(array)
        if node.get("bf") is True:
            t = t.bfloat16()
        if node.get("p") is True and t.is_floating_point():
            t = torch.nn.Parameter(t, requires_grad=bool(node.get("rg")))
        elif node.get("rg") is True and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_()
        if isinstance(node.get("g"), dict):
            t.grad = self.tensor(node["g"])
        return t

    def dataclass(self, name, values, depth: int):
        """A record of one of the course's dataclasses, filled field by field without running its code."""
        module, _, qualname = str(name).partition(":")
        if not (_course_class(module) and isinstance(values, dict)):
            raise ValueError(f"unexpected record {str(name)[:80]!r}")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{str(name)[:80]!r} is not a dataclass")
        obj = object.__new__(cls)
        for field in dataclasses.fields(cls):
            object.__setattr__(obj, field.name, self(values[field.name], depth + 1) if field.name in values else None)
        return obj

    def __call__(self, node, depth: int):
        self.items += 1
        if depth > MAX_DEPTH + 2 or self.items > 4 * MAX_ITEMS:
            raise ValueError("the message is nested too deeply or holds too many items")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is not dict or len(node) == 0:
            raise ValueError(f"unexpected {type(node).__name__}")
        if "A" in node:
            return self.tensor(node)
        (tag, body), = list(node.items())[:1]
        if tag == "I":
            return int(body)
        if tag == "F":
            return float(body)
        if tag == "C":
            return complex(float(body[0]), float(body[1]))
        if tag in ("T", "L", "S"):
            if type(body) is not list:
                raise ValueError("bad sequence")
            items = [self(v, depth + 1) for v in body]
            return tuple(items) if tag == "T" else items if tag == "L" else set(items)
        if tag == "D":
            if type(body) is not list or any(type(kv) is not list or len(kv) != 2 for kv in body):
                raise ValueError("bad dict")
            return {self(k, depth + 1): self(v, depth + 1) for k, v in body}
        if tag == "DC":
            return self.dataclass(body, node.get("f"), depth)
        if tag == "R" and self.ref is not None and type(body) is int:
            return self.ref(body)
        if tag == "H" and self.handle is not None and type(body) is int:
            return self.handle(node)
        raise ValueError(f"unknown tag {tag!r}")


def _course_class(module: str) -> bool:
    """Dataclasses of the course's teaching code travel as data (those of its tooling do not)."""
    return module.startswith("dlcourse.") and not module.startswith("dlcourse.course")


def decode(body: bytes, ref=None, handle=None):
    """The value in a message body written by ``encode``; ``ChannelError`` if it is malformed."""
    return Decoder(body, ref, handle).value()

"""Confining a submission's process on Linux: Landlock, the parent-death signal, a subreaper.

* ``confine`` (Landlock, Linux 5.13+; used where the kernel has it) lets the calling process
  read every file except the hidden ones (the course's checks, its solutions, the submissions
  and the grades), write only below its own working folder, open no TCP connection, and signal
  or trace no process outside its own tree. It is irreversible and inherited by children.
* ``die_with_parent`` makes the kernel kill a process when the one that started it ends.
* ``drop_capabilities`` leaves a process started by root without root's powers over others.
* ``become_subreaper`` and ``kill_descendants`` let the check process find and kill every
  process a submission started, even those that left its process group or lost their parent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import time

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_CAPBSET_DROP, _PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS = 1, 4, 24, 36, 38
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same number on x86-64 and arm64
_RULE_PATH_BENEATH = 1
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_CHANGES = sum(1 << i for i in range(4, 13))  # remove, make char/dir/reg/sock/fifo/block/sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14
_NET_BIND, _NET_CONNECT = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1


def _prctl(option: int, value: int) -> None:
    if not hasattr(_libc, "prctl"):
        raise OSError(38, "prctl is Linux only")
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def die_with_parent() -> None:
    """SIGKILL this process when its parent ends (call it in the child, e.g. as ``preexec_fn``)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def drop_capabilities() -> None:
    """Empty the capability bounding set, so that a program this process runs next has no capabilities,
    even as root (it cannot trace, read the memory of or open the files of other users' or non-dumpable
    processes). Call it in the child before it starts the program (as ``preexec_fn``)."""
    for cap in range(64):
        if not hasattr(_libc, "prctl") or _libc.prctl(_PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            return  # past the last capability (EINVAL), or not allowed to drop them (EPERM): nothing more to do


def become_subreaper() -> bool:
    """Orphaned descendants of this process are re-parented to it rather than to init (False where unsupported)."""
    try:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return False
    return True


def hide_memory() -> bool:
    """No process of the same user without CAP_SYS_PTRACE may read this one's memory or file descriptors
    (False where unsupported)."""
    try:
        _prctl(_PR_SET_DUMPABLE, 0)
    except OSError:
        return False
    return True


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def kill_descendants(rounds: int = 100) -> int:
    """SIGKILL every descendant of this (subreaper) process and reap it; returns how many were killed."""
    me, killed = os.getpid(), 0
    if not os.path.isdir("/proc"):
        return 0
    for _ in range(rounds):
        kids = _children(me)
        if not kids:
            break
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.01)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
    return killed


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 where Landlock is missing or disabled."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux" or not hasattr(_libc, "syscall"):
        return 0
    version = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def _readable_cover(hidden: list[str]) -> list[str]:
    """Paths whose subtrees together hold every file except those under ``hidden`` (real paths)."""
    def inside(path, root):
        return path == root or path.startswith(root.rstrip("/") + "/")

    out = []

    def visit(folder):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            real = os.path.realpath(entry.path)
            if any(inside(real, h) for h in hidden):
                continue  # hidden, or a link into something hidden
            if any(inside(h, real) for h in hidden):
                if entry.is_dir(follow_symlinks=False):
                    visit(entry.path)  # a real folder that holds something hidden: allow its other entries
                continue  # a link to such a folder: reachable through its real path only
            out.append(entry.path)

    visit("/")
    return out


def confine(hidden: list[str], writable: list[str]) -> bool:
    """Restrict this process and its future children (see the module docstring); False without Landlock."""
    abi = landlock_abi()
    if abi < 1:
        return False
    fs = _EXECUTE | _WRITE_FILE | _READ_FILE | _READ_DIR | _CHANGES
    fs |= (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    attr = struct.pack("<QQQ", fs, _NET_BIND | _NET_CONNECT if abi >= 4 else 0,
                       _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(_CREATE_RULESET, ctypes.c_char_p(attr[:size]), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        hidden = [os.path.realpath(h) for h in hidden]
        rules = [(p, _READ_FILE | _READ_DIR | _EXECUTE) for p in _readable_cover(hidden)]
        rules += [(os.path.realpath(w), fs) for w in writable] + [("/dev/null", _READ_FILE | _WRITE_FILE)]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(f"/proc/self/fd/{fd}"):
                    access &= _EXECUTE | _WRITE_FILE | _READ_FILE | (_TRUNCATE if abi >= 3 else 0)
                rule = struct.pack("<Qi", access, fd)
                if _libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                 ctypes.c_char_p(rule), ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        if _libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return True

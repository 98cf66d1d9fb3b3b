"""Data parallelism with torch.distributed: DDP workers and a launcher that never hangs (chapter 4).

``launch`` starts ``world_size`` worker processes with ``torch.multiprocessing`` (spawn), joins
them within a deadline and returns what each worker's function returned. A worker that raises
or dies makes ``launch`` end the others and raise ``WorkerError`` naming the worker and the
cause; a run past ``timeout`` raises ``TimeoutError``. Workers live here, not in a notebook:
spawn starts a fresh interpreter that imports the worker by its module path.

Run ``torchrun --nproc-per-node=2 -m dlcourse.topics.distributed`` to start the same DDP
worker with PyTorch's own launcher. The pipeline of model parallelism is in
``dlcourse.topics.pipeline``, asynchronous SGD (Hogwild, stale gradients) in
``dlcourse.topics.async_sgd``.
"""

from __future__ import annotations

import copy
import os
import pickle
import signal
import socket
import tempfile
import time
import traceback
from datetime import timedelta
from multiprocessing.connection import wait
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


class WorkerError(RuntimeError):
    """A worker process failed: ``rank`` names it, ``cause`` is its error line, ``details`` its traceback."""

    def __init__(self, rank: int, world_size: int, cause: str, details: str = ""):
        super().__init__(f"worker {rank} of {world_size} failed: {cause}")
        self.rank, self.world_size, self.cause, self.details = rank, world_size, cause, details


def free_port() -> int:
    """A TCP port that is free now: bind port 0 and let the operating system choose."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_backend(world_size: int) -> str:
    """``"nccl"`` when there is one CUDA device per worker, else ``"gloo"`` (CPU tensors)."""
    return "nccl" if dist.is_nccl_available() and torch.cuda.device_count() >= world_size else "gloo"


def rank_device(rank: int) -> torch.device:
    """The device of worker ``rank``: its own GPU under nccl, else the CPU."""
    return torch.device("cuda", rank) if dist.is_initialized() and dist.get_backend() == "nccl" \
        else torch.device("cpu")


def _entry(rank, fn, world_size, backend, port, timeout, outdir, args):
    torch.set_num_threads(1)  # one core per worker: the workers share the machine
    try:
        if backend is not None:
            if backend == "nccl":
                torch.cuda.set_device(rank)
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                    world_size=world_size, timeout=timedelta(seconds=timeout))
        result = fn(rank, world_size, *args)
        torch.save(result, Path(outdir) / f"result{rank}.pt")
    except BaseException as exc:  # record when and why, then let torch.multiprocessing exit with 1
        cause = (f"{type(exc).__name__}: {exc}".strip().splitlines() or [type(exc).__name__])[0]
        record = (time.time(), cause, traceback.format_exc())
        (Path(outdir) / f"error{rank}.pkl").write_bytes(pickle.dumps(record))
        raise
    finally:
        if backend is not None and dist.is_initialized():
            dist.destroy_process_group()


def _stop(processes, grace: float = 1.0) -> None:
    """Terminate every live process, then kill what is still alive after ``grace`` seconds."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _check_launch(fn, world_size, backend, timeout) -> str | None:
    if not callable(fn):
        raise ValueError(f"fn must be a function fn(rank, world_size, *args), got {fn!r}")
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module in (None, "__main__") or "<" in name:
        raise ValueError(f"fn {name or fn!r} is defined in {module or 'no module'}: spawned processes import "
                         "their function by module path, so define it at the top level of a .py module "
                         "(as dlcourse.topics.distributed does), not in a notebook or inside another function")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int (number of processes), got {world_size!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if backend == "auto":
        backend = default_backend(world_size)
    if backend not in (None, "gloo", "nccl"):
        raise ValueError(f"backend must be 'auto', 'gloo', 'nccl' or None (no process group), got {backend!r}")
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise ValueError(f"backend 'nccl' needs one CUDA device per worker: {world_size} workers, "
                         f"{torch.cuda.device_count()} devices; use 'gloo' or fewer workers")
    return backend


def launch(fn, world_size: int = 2, args: tuple = (), *, backend: str | None = "auto",
           timeout: float = 60.0) -> list:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` spawned processes; return their results.

    ``backend``: ``"auto"`` (``default_backend``), ``"gloo"``, ``"nccl"``, or ``None`` for plain
    processes without a process group (Hogwild). Each result comes back through ``torch.save``.
    CPU tensors in ``args`` reach the workers in shared memory: a worker that changes them in
    place changes them for everyone, the caller included (Hogwild relies on it; workers that
    must not, copy first). Raises ``WorkerError`` for the first worker that failed (the others
    are terminated) and ``TimeoutError`` if they have not all finished after ``timeout`` seconds.
    """
    backend = _check_launch(fn, world_size, backend, timeout)
    with tempfile.TemporaryDirectory(prefix="dlcourse-launch-") as outdir:
        context = mp.start_processes(
            _entry, args=(fn, world_size, backend, free_port(), timeout, outdir, tuple(args)),
            nprocs=world_size, join=False, start_method="spawn")
        processes, deadline = context.processes, time.monotonic() + timeout
        running = {p.sentinel: rank for rank, p in enumerate(processes)}
        try:
            while running:
                ready = wait(list(running), timeout=max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise TimeoutError(f"workers {sorted(running.values())} of {world_size} still running "
                                       f"after {timeout:g} s; all workers terminated")
                for sentinel in ready:
                    rank = running.pop(sentinel)
                    processes[rank].join()
                    # exit code 0 without a result: interrupted (torch's wrapper swallows Ctrl-C)
                    if processes[rank].exitcode != 0 or not (Path(outdir) / f"result{rank}.pt").exists():
                        _stop(processes)
                        raise _failure(rank, world_size, processes[rank].exitcode, Path(outdir))
            return [torch.load(Path(outdir) / f"result{r}.pt", weights_only=False) for r in range(world_size)]
        finally:  # on every way out (error, timeout, Ctrl-C) no worker survives
            _stop(processes)
            for name in context.error_files:  # torch's own traceback files, unused here
                Path(name).unlink(missing_ok=True)


def _failure(rank: int, world_size: int, exitcode: int, outdir: Path) -> WorkerError:
    """The error that came first: a worker whose peer died fails too, but later, with a connection error."""
    records = {int(p.stem[5:]): pickle.loads(p.read_bytes()) for p in outdir.glob("error*.pkl")}
    if records:
        first = min(records, key=lambda r: records[r][0])
        return WorkerError(first, world_size, *records[first][1:])
    if exitcode < 0:
        return WorkerError(rank, world_size, f"killed by signal {signal.Signals(-exitcode).name}")
    return WorkerError(rank, world_size, f"exited with code {exitcode}" if exitcode else "exited without a result")


def demo_worker(rank: int, world_size: int, fail_rank: int | None = None, hang: bool = False) -> float:
    """All-reduce (sum) the ranks; worker ``fail_rank`` raises instead (or, with ``hang``, sleeps for ever)."""
    if rank == fail_rank:
        if hang:
            time.sleep(3600)
        raise ValueError(f"worker {rank} could not read its data shard")
    t = torch.tensor([float(rank)], device=rank_device(rank))
    dist.all_reduce(t)  # the others wait here for a failed worker: without a launcher, for ever
    return t.item()


# ---- data parallelism -------------------------------------------------------------------

def global_batches(n: int, batch_size: int, num_steps: int, seed: int) -> list[torch.Tensor]:
    """``num_steps`` index tensors (batch_size,) drawn with replacement from ``range(n)``: every worker draws the same."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(n, (batch_size,), generator=generator) for _ in range(num_steps)]


def sgd_reference(model: nn.Module, X, y, *, lr: float, num_steps: int, batch_size: int, seed: int) -> list[float]:
    """Plain SGD in one process on the global batches of ``global_batches``; returns the step losses."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for idx in global_batches(len(X), batch_size, num_steps, seed):
        loss = F.cross_entropy(model(X[idx]), y[idx])  # mean over the global batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def ddp_worker(rank, world_size, model, X, y, lr, num_steps, batch_size, seed):
    """The same SGD under DDP: each worker takes its 1/world_size of every global batch.

    Returns the trained ``state_dict`` (on the CPU) and the worker's local losses.
    """
    device = rank_device(rank)
    model = copy.deepcopy(model).to(device)  # a private copy: ``model`` arrived in shared memory
    ddp = DDP(model, device_ids=[rank] if device.type == "cuda" else None)  # broadcasts rank 0's weights
    optimizer = torch.optim.SGD(ddp.parameters(), lr=lr)
    losses = []
    for idx in global_batches(len(X), batch_size, num_steps, seed):
        mine = idx.chunk(world_size)[rank]  # (batch_size / world_size,): this worker's shard
        loss = F.cross_entropy(ddp(X[mine].to(device)), y[mine].to(device))  # mean over the shard
        optimizer.zero_grad()
        loss.backward()  # DDP all-reduces the gradients during backward and divides by world_size
        optimizer.step()
        losses.append(loss.item())
    return {k: v.cpu() for k, v in model.state_dict().items()}, losses


def train_ddp(model: nn.Module, X, y, *, lr: float, num_steps: int, batch_size: int, seed: int = 0,
              world_size: int = 2, backend: str = "auto", timeout: float = 60.0) -> list:
    """Check the arguments, then ``launch(ddp_worker, ...)``; returns each worker's (state_dict, losses)."""
    if X.ndim != 2 or y.shape != (len(X),):
        raise ValueError(f"expected X (N, D) and y (N,), got {tuple(X.shape)} and {tuple(y.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1 \
            or not isinstance(world_size, int) or world_size < 1 or batch_size % world_size:
        raise ValueError(f"batch_size (the global batch) must be a positive multiple of world_size, got "
                         f"batch_size={batch_size!r}, world_size={world_size!r}; each worker takes "
                         "batch_size // world_size examples")
    if not isinstance(num_steps, int) or num_steps < 1 or not lr > 0:
        raise ValueError(f"num_steps must be a positive int and lr positive, got {num_steps!r} and {lr!r}")
    args = (model, X, y, lr, num_steps, batch_size, seed)
    return launch(ddp_worker, world_size, args, backend=backend, timeout=timeout)


def max_difference(a: dict, b: dict) -> float:
    """max |a[k] - b[k]| over the tensors of two state dicts with the same keys."""
    return max((a[k].detach().cpu() - b[k].detach().cpu()).abs().max().item() for k in a)


def _median_ms(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def timing_worker(rank, world_size, sizes, widths, local_batch, reps=10):
    """Median times in ms: an all-reduce of ``sizes`` float32 numbers; per MLP width, one step's parts.

    Returns ``{"allreduce": [(numbers, ms)], "steps": [{width, params, compute_ms, allreduce_ms,
    ddp_step_ms}]}``: the forward+backward alone, the all-reduce of all its gradients, a DDP step.
    """
    device, out = rank_device(rank), {"allreduce": [], "steps": []}
    for numel in sizes:
        t = torch.ones(numel, device=device)
        dist.all_reduce(t)  # warm-up
        out["allreduce"].append((numel, _median_ms(lambda: dist.all_reduce(t), reps)))
    for width in widths:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                              nn.Linear(width, 10)).to(device)
        ddp = DDP(model, device_ids=[rank] if device.type == "cuda" else None)
        X, y = torch.randn(local_batch, 64, device=device), torch.randint(10, (local_batch,), device=device)
        flat = torch.zeros(sum(p.numel() for p in model.parameters()), device=device)  # all gradients

        def compute():
            with ddp.no_sync():  # forward + backward without communication
                F.cross_entropy(ddp(X), y).backward()

        def ddp_step():
            F.cross_entropy(ddp(X), y).backward()

        for _ in range(2):  # warm-up: allocations, DDP's first-iteration bucketing
            ddp_step()
        out["steps"].append({"width": width, "params": flat.numel(), "compute_ms": _median_ms(compute, reps),
                             "allreduce_ms": _median_ms(lambda: dist.all_reduce(flat), reps),
                             "ddp_step_ms": _median_ms(ddp_step, reps)})
    return out


def main() -> None:
    """Entry point for ``torchrun --nproc-per-node=2 -m dlcourse.topics.distributed``: DDP equals one process."""
    from ..data.digits import digits_data
    from ..models.mlp import mlp

    torch.set_num_threads(1)
    if "WORLD_SIZE" not in os.environ:
        raise SystemExit("start this module with torchrun, e.g. torchrun --nproc-per-node=2 -m "
                         "dlcourse.topics.distributed (it reads RANK and WORLD_SIZE from the environment)")
    dist.init_process_group(default_backend(int(os.environ["WORLD_SIZE"])), timeout=timedelta(seconds=60))
    rank, world_size = dist.get_rank(), dist.get_world_size()
    data = digits_data()
    torch.manual_seed(0)
    model = mlp(64, (128, 128), 10)
    reference = copy.deepcopy(model)
    state, _ = ddp_worker(rank, world_size, model, data.X_train, data.y_train, 0.1, 10, 64, 0)
    sgd_reference(reference, data.X_train, data.y_train, lr=0.1, num_steps=10, batch_size=64, seed=0)
    if rank == 0:
        diff = max_difference(state, reference.state_dict())
        print(f"torchrun, {world_size} workers: max |DDP - single process| = {diff:.1e}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

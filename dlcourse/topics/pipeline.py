"""Model parallelism: a network split into two pipeline stages on two processes (chapter 4).

``pipeline_worker`` runs in the two processes that ``dlcourse.topics.distributed.launch``
starts: worker 0 holds the first layers, worker 1 the rest, and the activations at the cut
(forward) and their gradients (backward) travel between them with ``send`` and ``recv``.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .distributed import launch, rank_device


def split_stages(model: nn.Sequential, split: int) -> tuple[nn.Sequential, nn.Sequential]:
    """``model[:split]`` and ``model[split:]``: the two stages of a pipeline (they share the layers)."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"split_stages expects an nn.Sequential, got {type(model).__name__}")
    if isinstance(split, bool) or not isinstance(split, int) or not 0 < split < len(model):
        raise ValueError(f"split must be an int with 0 < split < {len(model)} (the number of layers), got {split!r}")
    if not any(isinstance(m, nn.Linear) for m in model[split:]):
        raise ValueError(f"the second stage model[{split}:] must contain an nn.Linear (it sizes the activation)")
    return model[:split], model[split:]


def pipeline_worker(rank, world_size, model, X, y, split, num_microbatches):
    """Worker 0 runs ``model[:split]``, worker 1 ``model[split:]``; activations and their gradients travel by send/recv.

    The batch is cut into micro-batches: all forwards, then all backwards (GPipe's schedule).
    The loss is the mean cross-entropy over the whole batch. Worker 0 returns its stage's
    gradients; worker 1 returns its gradients, the logits (N, C) and the loss.
    """
    if world_size != 2:
        raise ValueError(f"pipeline_worker runs two stages on exactly two workers, got world_size={world_size}")
    device = rank_device(rank)
    stage = split_stages(copy.deepcopy(model), split)[rank].to(device)  # a private copy of this stage
    width = next(m for m in split_stages(model, split)[1] if isinstance(m, nn.Linear)).in_features
    kept = []  # per micro-batch: (activation at the cut, logits, loss) on worker 1, (activation,) on 0
    for Xm, ym in zip(X.chunk(num_microbatches), y.chunk(num_microbatches)):
        if rank == 0:
            h = stage(Xm.to(device))  # (M, H): the activation at the cut
            dist.send(h.detach().contiguous(), dst=1)
            kept.append((h,))
        else:
            h = torch.empty(len(Xm), width, device=device)  # (M, H), filled by the receive
            dist.recv(h, src=0)
            h.requires_grad_()
            logits = stage(h)  # (M, C)
            kept.append((h, logits, F.cross_entropy(logits, ym.to(device), reduction="sum") / len(X)))
    for item in reversed(kept):
        if rank == 0:
            grad = torch.empty_like(item[0])
            dist.recv(grad, src=1)  # dLoss/dh from the next stage
            item[0].backward(grad)
        else:
            item[2].backward()
            dist.send(item[0].grad.contiguous(), dst=0)
    grads = {name: p.grad.cpu() for name, p in stage.named_parameters()}
    if rank == 0:
        return {"grads": grads}
    return {"grads": grads, "logits": torch.cat([k[1] for k in kept]).detach().cpu(),
            "loss": sum(k[2].item() for k in kept)}


def run_pipeline(model: nn.Sequential, X: torch.Tensor, y: torch.Tensor, *, split: int, num_microbatches: int,
                 timeout: float = 60.0) -> list[dict]:
    """Check the arguments, then ``launch(pipeline_worker, 2, ...)``; returns both workers' results."""
    split_stages(model, split)
    if X.ndim != 2 or y.shape != (len(X),):
        raise ValueError(f"expected X (N, D) and y (N,), got {tuple(X.shape)} and {tuple(y.shape)}")
    if isinstance(num_microbatches, bool) or not isinstance(num_microbatches, int) \
            or not 1 <= num_microbatches <= len(X):
        raise ValueError(f"num_microbatches must be an int from 1 to the batch size {len(X)}, got {num_microbatches!r}")
    return launch(pipeline_worker, 2, (model, X, y, split, num_microbatches), timeout=timeout)

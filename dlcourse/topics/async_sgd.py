"""Asynchronous SGD: Hogwild on shared memory and the stale gradients of a parameter server (chapter 4).

``hogwild_worker`` runs in processes started by ``dlcourse.topics.distributed.launch``: every
worker updates the same parameters, held in shared memory, without locks. ``stale_sgd``
simulates in one process what a parameter server does to the gradients it receives: each
update applies a gradient computed on the weights of ``delay`` updates ago.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


def hogwild_worker(rank: int, world_size: int, models: list[nn.Module], X: torch.Tensor, y: torch.Tensor,
                   lr: float, num_steps: int, batch_size: int, seed: int, clock: torch.Tensor) -> list[dict]:
    """Lock-free SGD on shared models: each worker reads and updates the same parameters in place.

    ``models`` holds one network per repetition, their parameters in shared memory
    (``model.share_memory()``); ``clock`` (len(models), world_size) is a shared int64 tensor in
    which worker ``rank`` counts its own updates, so that it can see how many updates of the
    others landed while it computed a gradient. Called directly with ``world_size=1`` this is
    plain sequential SGD. Returns, per model, ``{"losses": [...], "staleness": [...]}``.
    """
    if not 0 <= rank < world_size or clock.shape != (len(models), world_size):
        raise ValueError(f"clock must have shape (len(models), world_size) = ({len(models)}, {world_size}) "
                         f"and 0 <= rank < world_size; got shape {tuple(clock.shape)} and rank {rank}")
    out = []
    for s, model in enumerate(models):
        if dist.is_initialized():
            dist.barrier()  # start each model together; no gradient ever passes through the group
        generator = torch.Generator().manual_seed(1000 * seed + 10 * s + rank)  # each worker its own batches
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        losses, staleness = [], []
        for _ in range(num_steps):
            seen = (clock[s].sum() - clock[s, rank]).item()  # the others' updates so far
            idx = torch.randint(len(X), (batch_size,), generator=generator)
            loss = F.cross_entropy(model(X[idx]), y[idx])  # reads the shared weights as they are now
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()  # writes into the shared weights, no lock
            clock[s, rank] += 1
            staleness.append((clock[s].sum() - clock[s, rank]).item() - seen)
            losses.append(loss.item())
        out.append({"losses": losses, "staleness": staleness})
    return out


def stack_models(make_model: Callable[[], nn.Module], num_seeds: int) -> tuple[nn.Module, dict]:
    """``num_seeds`` initialisations of ``make_model()`` (seeds 0, 1, ...), stacked for ``torch.func``.

    Returns one of the models (its structure, for ``functional_call``) and a dict of parameters,
    each with a leading seed dimension: (S, *shape).
    """
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"num_seeds must be a positive int, got {num_seeds!r}")
    models = []
    for seed in range(num_seeds):
        torch.manual_seed(seed)
        models.append(make_model())
    names = [name for name, _ in models[0].named_parameters()]
    params = {k: torch.stack([dict(m.named_parameters())[k].detach() for m in models]) for k in names}
    return models[0], params


def stale_sgd(model: nn.Module, params: dict, X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor,
              y_val: torch.Tensor, *, delay: int, lr: float, num_steps: int, batch_size: int,
              eval_every: int, seed: int = 0) -> torch.Tensor:
    """SGD on S stacked networks in which every update uses the gradient at the weights of ``delay`` steps ago.

    ``theta_{t+1} = theta_t - lr * grad L_t(theta_{t - delay})``: what a parameter server does when
    a gradient arrives after ``delay`` other updates (in the first steps, the initial weights).
    ``delay=0`` is ordinary SGD. Every delay sees the same minibatches for the same ``seed``.
    Returns the validation loss of each network every ``eval_every`` steps and at the end:
    (S, num_steps // eval_every + 1).
    """
    for name, value in (("delay", delay), ("num_steps", num_steps), ("batch_size", batch_size),
                        ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "delay" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'delay' else 'positive'} int, got {value!r}")
    if num_steps % eval_every:
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of eval_every ({eval_every})")

    def loss_fn(p, Xb, yb):
        return F.cross_entropy(functional_call(model, p, (Xb,)), yb)

    grad_fn = vmap(grad(loss_fn))  # per network: the gradient on its own minibatch
    val_fn = vmap(loss_fn, in_dims=(0, None, None))  # per network: the loss on the whole validation set
    generator = torch.Generator().manual_seed(seed)
    num_nets = next(iter(params.values())).shape[0]
    params = {k: v.clone() for k, v in params.items()}
    past = deque([params], maxlen=delay + 1)  # theta_{t-delay}, ..., theta_t
    curve = []
    for step in range(num_steps):
        if step % eval_every == 0:
            curve.append(val_fn(params, X_val, y_val))
        idx = torch.randint(len(X), (num_nets, batch_size), generator=generator).to(X.device)  # (S, B)
        g = grad_fn(past[0], X[idx], y[idx])  # at the oldest weights kept: delay steps ago
        params = {k: params[k] - lr * g[k] for k in params}
        past.append(params)
    curve.append(val_fn(params, X_val, y_val))
    return torch.stack(curve, dim=1).detach()  # (S, evaluations)

"""dlcourse.topics.distributed, pipeline and async_sgd: DDP equals one process, failures never hang."""

import copy
import multiprocessing
import os
import shutil
import subprocess
import sys
import time

import psutil
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.data.digits import digits_data
from dlcourse.models.mlp import mlp
from dlcourse.topics.async_sgd import hogwild_worker, stack_models, stale_sgd
from dlcourse.topics.distributed import WorkerError, demo_worker, launch, max_difference, sgd_reference, train_ddp
from dlcourse.topics.pipeline import run_pipeline, split_stages


@pytest.fixture(scope="module")
def data():
    return digits_data()


def _workers_left():
    """Live child processes of this test process that run a spawned worker."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "spawn_main" in " ".join(p.cmdline())]


def test_ddp_equals_single_process_sgd_on_the_global_batch(data):
    torch.manual_seed(0)
    model = mlp(64, (32,), 10)
    before, reference = copy.deepcopy(model.state_dict()), copy.deepcopy(model)
    (state0, _), (state1, _) = train_ddp(model, data.X_train, data.y_train, lr=0.2, num_steps=5, batch_size=32,
                                         backend="gloo", timeout=60)
    sgd_reference(reference, data.X_train, data.y_train, lr=0.2, num_steps=5, batch_size=32, seed=0)
    assert max_difference(state0, state1) == 0.0  # every worker holds the same weights
    assert max_difference(state0, reference.state_dict()) <= 1e-6
    assert max_difference(before, reference.state_dict()) > 1e-3  # the steps did change the weights
    assert max_difference(before, model.state_dict()) == 0.0  # the caller's model is untouched


def test_a_failing_worker_raises_worker_error_quickly():
    start = time.monotonic()
    with pytest.raises(WorkerError, match="worker 1 of 2 failed: ValueError") as info:
        launch(demo_worker, 2, (1,), backend="gloo", timeout=60)
    assert info.value.rank == 1 and "could not read its data shard" in info.value.cause
    assert "Traceback" in info.value.details
    assert time.monotonic() - start < 30  # far below the timeout: the failure is seen, not waited out
    assert not _workers_left()


def test_a_hanging_worker_hits_the_timeout_and_no_process_survives():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"workers \[.*1.*\] of 2 still running after 3 s"):
        launch(demo_worker, 2, (1, True), backend="gloo", timeout=3)
    assert time.monotonic() - start < 15
    assert not _workers_left() and not multiprocessing.active_children()


def test_the_pipeline_equals_the_whole_model(data):
    torch.manual_seed(0)
    model = mlp(64, (32, 16), 10)
    X, y = data.X_train[:48], data.y_train[:48]
    first, second = run_pipeline(model, X, y, split=2, num_microbatches=4, timeout=60)
    logits = model(X)
    F.cross_entropy(logits, y).backward()
    torch.testing.assert_close(second["logits"], logits.detach(), rtol=0, atol=1e-6)
    for stage, result in zip(split_stages(model, 2), (first, second)):
        for name, p in stage.named_parameters():
            torch.testing.assert_close(result["grads"][name], p.grad, rtol=0, atol=1e-6)


def test_bad_arguments_raise_value_errors_that_say_what_to_do(data):
    def local(rank, world_size):
        return rank

    with pytest.raises(ValueError, match="top level of a .py module"):
        launch(local)
    with pytest.raises(ValueError, match="top level of a .py module"):
        launch(lambda rank, world_size: rank)
    with pytest.raises(ValueError, match="world_size must be a positive int"):
        launch(demo_worker, 0)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        launch(demo_worker, 2, timeout=-1)
    with pytest.raises(ValueError, match="backend must be"):
        launch(demo_worker, 2, backend="mpi")
    with pytest.raises(ValueError, match="positive multiple of world_size"):
        train_ddp(mlp(64, (8,), 10), data.X_train, data.y_train, lr=0.1, num_steps=2, batch_size=33)
    with pytest.raises(ValueError, match=r"expected X \(N, D\)"):
        train_ddp(mlp(64, (8,), 10), data.X_train[0], data.y_train, lr=0.1, num_steps=2, batch_size=32)
    with pytest.raises(ValueError, match="0 < split < 3"):
        split_stages(mlp(64, (8,), 10), 3)
    with pytest.raises(ValueError, match="num_microbatches must be an int from 1"):
        run_pipeline(mlp(64, (8,), 10), data.X_train[:8], data.y_train[:8], split=2, num_microbatches=0)
    model, params = stack_models(lambda: mlp(64, (8,), 10), 2)
    with pytest.raises(ValueError, match="delay must be a non-negative int"):
        stale_sgd(model, params, data.X_train, data.y_train, data.X_val, data.y_val, delay=-1, lr=0.1,
                  num_steps=10, batch_size=8, eval_every=5)
    with pytest.raises(ValueError, match="multiple of eval_every"):
        stale_sgd(model, params, data.X_train, data.y_train, data.X_val, data.y_val, delay=1, lr=0.1,
                  num_steps=10, batch_size=8, eval_every=3)
    with pytest.raises(ValueError, match="clock must have shape"):
        hogwild_worker(0, 1, [model], data.X_train, data.y_train, 0.1, 1, 8, 0, torch.zeros(1, 2))


def test_stale_sgd_applies_the_gradient_of_the_weights_delay_steps_ago():
    torch.manual_seed(0)
    X, y = torch.randn(40, 3), torch.randint(2, (40,))
    model, params = stack_models(lambda: nn.Linear(3, 2), 1)
    delay, lr, num_steps, batch_size = 2, 0.5, 6, 4
    curve = stale_sgd(model, params, X, y, X, y, delay=delay, lr=lr, num_steps=num_steps, batch_size=batch_size,
                      eval_every=num_steps, seed=3)
    generator = torch.Generator().manual_seed(3)
    history = [{k: v[0].clone() for k, v in params.items()}]  # theta_0, theta_1, ...
    for t in range(num_steps):
        idx = torch.randint(len(X), (1, batch_size), generator=generator)[0]
        old = {k: v.clone().requires_grad_() for k, v in history[max(0, t - delay)].items()}
        loss = F.cross_entropy(torch.func.functional_call(model, old, (X[idx],)), y[idx])
        grads = torch.autograd.grad(loss, list(old.values()))
        history.append({k: history[t][k] - lr * g for k, g in zip(old, grads)})
    final = F.cross_entropy(torch.func.functional_call(model, history[-1], (X,)), y)
    assert curve.shape == (1, 2)
    torch.testing.assert_close(curve[0, -1], final.detach(), rtol=0, atol=1e-6)


def test_hogwild_with_one_worker_is_sequential_sgd(data):
    model, _ = stack_models(lambda: mlp(64, (16,), 10), 1)
    reference = copy.deepcopy(model)
    out = hogwild_worker(0, 1, [model], data.X_train, data.y_train, 0.1, 20, 16, 0, torch.zeros(1, 1, dtype=torch.long))
    assert out[0]["staleness"] == [0] * 20  # nobody else writes
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(20):
        idx = torch.randint(len(data.X_train), (16,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(reference(data.X_train[idx]), data.y_train[idx]).backward()
        optimizer.step()
    assert max_difference(model.state_dict(), reference.state_dict()) == 0.0


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun is not installed next to this Python")
def test_the_module_runs_under_torchrun():
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    result = subprocess.run([torchrun, "--standalone", "--nproc-per-node=2", "-m",
                             "dlcourse.topics.distributed"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    diff = float(result.stdout.split("=")[-1])
    assert diff <= 1e-6, result.stdout

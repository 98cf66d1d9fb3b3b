import numpy as np
import pytest
import torch

from dlcourse import Timer, get_device, seed_everything, synchronize


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("dlcourse.device._mps_available", lambda: True)
    assert get_device().type == "mps"
    monkeypatch.setattr("dlcourse.device._mps_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_get_device_explicit_choice():
    assert get_device("cpu") == torch.device("cpu")


def test_get_device_rejects_unknown_kind():
    with pytest.raises(ValueError, match="expected one of cuda, mps, cpu"):
        get_device("tpu")


def test_get_device_unavailable_cuda_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA was requested"):
        get_device("cuda")


def test_timer_measures_and_synchronize_accepts_cpu():
    synchronize("cpu")
    with Timer("cpu") as t:
        sum(range(10000))
    assert 0 < t.seconds < 5


def test_seed_everything_makes_draws_repeatable():
    g1 = seed_everything(123)
    a = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=g1))
    g2 = seed_everything(123)
    b = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=g2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])
    seed_everything(124)
    assert not torch.equal(torch.rand(3), a[0])


@pytest.mark.parametrize("bad, error", [("1", TypeError), (1.5, TypeError), (True, TypeError),
                                        (-1, ValueError), (2**32, ValueError)])
def test_seed_everything_rejects_bad_seeds(bad, error):
    with pytest.raises(error, match="seed"):
        seed_everything(bad)

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


def test_setup_seeds_picks_the_device_and_sets_one_cpu_thread(capsys):
    import dlcourse

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        generator, device = dlcourse.setup(seed=3)
        assert device.type == get_device().type and torch.get_num_threads() == 1
        assert torch.equal(torch.rand(3, generator=generator), torch.rand(3, generator=torch.Generator().manual_seed(3)))
        assert torch.equal(torch.rand(2), (torch.manual_seed(3), torch.rand(2))[1])  # the global RNG was seeded
        assert "device: cpu, 1 CPU thread" in capsys.readouterr().out
        torch.set_num_threads(2)
        dlcourse.setup(seed=0, cpu_threads=None)
        assert torch.get_num_threads() == 2  # None leaves PyTorch's own choice alone
    finally:
        torch.set_num_threads(before)


def test_setup_leaves_threads_alone_on_a_gpu(monkeypatch):
    import dlcourse

    before = torch.get_num_threads()
    monkeypatch.setattr(dlcourse, "get_device", lambda prefer=None: torch.device("cuda"))
    try:
        torch.set_num_threads(2)
        _, device = dlcourse.setup(seed=0)
        assert device.type == "cuda" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_setup_rejects_a_bad_thread_count(bad):
    import dlcourse

    with pytest.raises(ValueError, match="cpu_threads must be a positive int or None"):
        dlcourse.setup(seed=0, cpu_threads=bad)

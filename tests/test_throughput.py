"""FLOP and byte counts, honest timing, the thread helper and the roofline (chapter 4, 4.1-4.2)."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from dlcourse.topics import roofline, throughput


def test_flop_counts_follow_the_formulas():
    assert throughput.matmul_flops(2, 3, 4) == 2 * 2 * 3 * 4
    # relu(x @ W + b): 2BIO for the product, BO for the bias, BO for the ReLU
    assert throughput.dense_flops(16, 256, 128) == 2 * 16 * 256 * 128 + 2 * 16 * 128
    assert throughput.dense_flops(16, 256, 128, bias=False, relu=False) == throughput.matmul_flops(16, 256, 128)
    assert throughput.dense_flops(1, 1, 1, relu=False) == 3


def test_flop_count_matches_an_explicit_count_of_the_loops():
    batch, n_in, n_out = 3, 5, 2
    mults = adds = compares = 0
    for _ in range(batch):
        for _ in range(n_out):
            adds += 1  # s = b[j] + ...: the bias
            for _ in range(n_in):
                mults += 1
                adds += 1
            compares += 1  # max(s, 0)
    # per output: I multiplications, I additions into the sum, one for the bias, one comparison
    assert mults + adds + compares == throughput.dense_flops(batch, n_in, n_out)


def test_byte_counts_and_intensity():
    assert throughput.matmul_bytes(2, 3, 4, itemsize=4) == 4 * (6 + 12 + 8)
    assert throughput.dense_bytes(2, 3, 4, itemsize=2) == 2 * (6 + 12 + 8 + 4)
    assert throughput.elementwise_bytes(10, 4) == 120  # c = a + b: two reads, one write
    assert throughput.elementwise_bytes(10, 4, reads=1, writes=1) == 80  # a copy
    add = throughput.arithmetic_intensity(10, throughput.elementwise_bytes(10, 4))
    assert add == pytest.approx(1 / 12)
    # a batch raises the intensity of a dense layer
    one, many = (throughput.dense_flops(b, 1024, 1024) / throughput.dense_bytes(b, 1024, 1024) for b in (1, 256))
    assert one < 1 < 50 < many


@pytest.mark.parametrize("call, message", [
    (lambda: throughput.matmul_flops(0, 3, 4), "m must be an int >= 1"),
    (lambda: throughput.matmul_flops(2, 3.0, 4), "k must be an int >= 1"),
    (lambda: throughput.dense_flops(True, 3, 4), "batch must be an int >= 1"),
    (lambda: throughput.dense_bytes(2, 0, 4), "in_features must be an int >= 1"),
    (lambda: throughput.matmul_bytes(2, 3, 4, itemsize=0), "itemsize must be an int >= 1"),
    (lambda: throughput.elementwise_bytes(10, 4, reads=0, writes=0), "at least one array"),
    (lambda: throughput.elementwise_bytes(-1), "numel must be an int >= 1"),
    (lambda: throughput.arithmetic_intensity(10, 0), "nbytes must be a positive finite number"),
    (lambda: throughput.arithmetic_intensity(-1, 8), "flops must be a number >= 0"),
])
def test_bad_counts_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_time_call_returns_positive_medians_and_counts_calls():
    calls = []
    timing = throughput.time_call(lambda: calls.append(1), repeats=5, warmup=2, number=3)
    assert len(timing.times) == 5 and timing.number == 3
    assert len(calls) == 2 + 5 * 3  # warm-up calls, then repeats x number
    assert timing.median > 0 and all(t > 0 for t in timing.times)
    q1, q3 = timing.spread
    assert q1 <= timing.median <= q3
    slow, fast = timing.rate_spread(1.0)
    assert slow <= timing.rate(1.0) <= fast


def test_time_call_picks_enough_calls_for_a_short_function():
    timing = throughput.time_call(lambda: None, repeats=3, min_seconds=0.005)
    assert timing.number > 10 and timing.median > 0
    x = torch.ones(64, 64)
    timing = throughput.time_call(lambda: x @ x, device="cpu", repeats=3)
    assert timing.median > 0 and math.isfinite(timing.rate(throughput.matmul_flops(64, 64, 64)))


def test_timing_statistics():
    timing = throughput.Timing((3.0, 1.0, 2.0, 100.0, 2.0), 1)
    assert timing.median == 2.0  # the one slow, interrupted repeat does not move the median
    assert timing.rate(4.0) == 2.0
    assert timing.best == 1.0 and timing.best_rate(4.0) == 4.0  # a ceiling: the fastest repeat
    single = throughput.Timing((0.5,), 1)
    assert single.spread == (0.5, 0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"repeats": 0}, "repeats must be an int >= 1"),
    ({"warmup": -1}, "warmup must be an int >= 0"),
    ({"number": 0}, "number must be an int >= 1"),
    ({"min_seconds": 0}, "min_seconds must be a positive"),
])
def test_time_call_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        throughput.time_call(lambda: None, **kwargs)


def test_time_call_rejects_a_non_callable():
    with pytest.raises(ValueError, match="fn must be a callable"):
        throughput.time_call(42)


def test_num_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    target = 2 if before == 1 else 1
    with throughput.num_threads(target) as n:
        assert n == target and torch.get_num_threads() == target
    assert torch.get_num_threads() == before


def test_num_threads_restores_the_thread_count_on_error():
    before = torch.get_num_threads()
    target = 2 if before == 1 else 1
    with pytest.raises(RuntimeError, match="inside the block"):
        with throughput.num_threads(target):
            assert torch.get_num_threads() == target
            raise RuntimeError("inside the block")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4"])
def test_num_threads_rejects_bad_counts_without_changing_anything(bad):
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="number of threads"):
        with throughput.num_threads(bad):
            pass
    assert torch.get_num_threads() == before


def test_hardware_descriptions():
    info = throughput.cpu_info()
    assert set(info) == {"model", "cores", "torch_threads", "capability", "flags"}
    assert info["cores"] >= 1 and isinstance(info["model"], str) and info["model"]
    assert set(info["flags"]) <= set(throughput.CPU_FLAGS)
    assert "CPU" in throughput.device_label("cpu")
    assert throughput.hardware_description("cpu").startswith(info["model"])
    assert set(throughput.blas_libraries()) == {"numpy", "torch"}


def test_time_interleaved_times_each_function_once_per_round():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    timings = throughput.time_interleaved(fns, repeats=3, warmup=0, min_seconds=1e-9)
    assert set(timings) == {"a", "b"}
    assert all(len(t.times) == 3 and t.median > 0 for t in timings.values())
    # after calibration (a probe and one timed call each), the rounds alternate a, b, a, b, ...
    assert order[:4] == ["a", "a", "b", "b"] and order[4:] == ["a", "b"] * 3
    x = torch.ones(32, 32)
    timings = throughput.time_interleaved({"matmul": lambda: x @ x, "copy": lambda: x.clone()}, repeats=2)
    assert timings["matmul"].rate(throughput.matmul_flops(32, 32, 32)) > 0
    with pytest.raises(ValueError, match="at least one name"):
        throughput.time_interleaved({})
    with pytest.raises(ValueError, match="callable"):
        throughput.time_interleaved({"a": 3})


def test_roofline_bound_is_the_lower_of_the_two_roofs():
    peak, bandwidth = 100e9, 10e9  # ridge point at 10 FLOP per byte
    assert roofline.ridge_point(peak, bandwidth) == 10.0
    assert roofline.roofline_bound(1.0, peak, bandwidth) == 10e9  # memory-bound: I * B
    assert roofline.roofline_bound(50.0, peak, bandwidth) == 100e9  # compute-bound: P
    assert roofline.roofline_bound(10.0, peak, bandwidth) == 100e9  # both at the ridge
    bounds = roofline.roofline_bound(np.array([0.1, 1.0, 100.0]), peak, bandwidth)
    assert isinstance(bounds, np.ndarray) and np.allclose(bounds, [1e9, 10e9, 100e9])
    assert roofline.bound_by(1.0, peak, bandwidth) == "memory"
    assert roofline.bound_by(20.0, peak, bandwidth) == "compute"


@pytest.mark.parametrize("call, message", [
    (lambda: roofline.roofline_bound(1.0, 0, 1e9), "peak_flops must be a positive finite number"),
    (lambda: roofline.roofline_bound(1.0, 1e9, -1), "bandwidth must be a positive finite number"),
    (lambda: roofline.roofline_bound(0.0, 1e9, 1e9), "intensity must be positive"),
    (lambda: roofline.roofline_bound([1.0, np.nan], 1e9, 1e9), "intensity must be positive"),
    (lambda: roofline.ridge_point(float("inf"), 1e9), "peak_flops must be a positive finite number"),
])
def test_roofline_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_plot_roofline_draws_the_roof_and_the_points():
    fig, ax = plt.subplots()
    roofline.plot_roofline(ax, 100e9, 10e9, {"add": (1 / 12, 0.8e9), "matmul": (80.0, 60e9)},
                           extra_ceilings={"float32": 50e9}, roof_label="roof (bf16)")
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(label.startswith("roof (bf16)") for label in labels)
    assert "add" in labels and "matmul" in labels and any(label.startswith("float32") for label in labels)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="at least one measured operation"):
        roofline.plot_roofline(ax, 100e9, 10e9, {})
    with pytest.raises(ValueError, match="point 'bad'"):
        roofline.plot_roofline(ax, 100e9, 10e9, {"bad": (0.0, 1e9)})
    plt.close(fig)

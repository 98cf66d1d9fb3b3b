"""dlcourse.topics.ctc: collapse, greedy and prefix beam search decoding, the forward score, error rates (6.4)."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from dlcourse.topics.ctc import (beam_search, collapse, ctc_log_prob, edit_distance, emissions, error_rate,
                                 greedy_decode)


def _torch_log_prob(log_probs, labels, blank=0):
    """log P(labels | X) from nn.functional.ctc_loss (reduction 'sum' over one line = -log P)."""
    T = log_probs.shape[0]
    if not labels:
        return float(log_probs[:, blank].sum())
    loss = F.ctc_loss(log_probs.double().unsqueeze(1), torch.tensor([labels]), torch.tensor([T]),
                      torch.tensor([len(labels)]), blank=blank, reduction="sum", zero_infinity=False)
    return -float(loss)


def _brute_force(log_probs, blank=0):
    """P(y | X) for every y, by summing the probability of every path (C^T of them)."""
    T, C = log_probs.shape
    probs = log_probs.double().exp()
    totals = {}
    for path in itertools.product(range(C), repeat=T):
        y = tuple(collapse(path, blank))
        totals[y] = totals.get(y, 0.0) + math.prod(float(probs[t, c]) for t, c in enumerate(path))
    return totals


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse([0, 3, 3, 0, 3, 5, 5, 0]) == [3, 3, 5]
    assert collapse([1, 1, 1]) == [1]
    assert collapse([0, 0]) == []
    assert collapse([]) == []
    assert collapse([2, 2, 1, 1, 2], blank=2) == [1]
    assert collapse(torch.tensor([0, 4, 0, 4])) == [4, 4]


def test_collapse_rejects_a_bad_blank_and_2d_paths():
    with pytest.raises(ValueError, match="blank"):
        collapse([1, 2], blank=-1)
    with pytest.raises(ValueError, match=r"\(T,\)"):
        collapse(torch.zeros(2, 3, dtype=torch.long))


def test_greedy_decode_on_a_hand_made_posteriogram():
    best = [0, 3, 3, 0, 3, 5, 5, 0]
    log_probs = torch.log(torch.full((8, 6), 0.02).scatter(1, torch.tensor(best)[:, None], 0.9))
    assert greedy_decode(log_probs) == [[3, 3, 5]]
    batch = torch.stack([log_probs, log_probs.flip(0)], dim=1)  # (T, B, C)
    assert greedy_decode(batch) == [[3, 3, 5], [5, 3, 3]]
    assert greedy_decode(batch, torch.tensor([3, 8])) == [[3], [5, 3, 3]]


def test_emissions_are_the_first_frames_of_the_non_blank_runs():
    best = [0, 3, 3, 0, 3, 5, 5, 0]
    log_probs = torch.log(torch.full((8, 6), 0.02).scatter(1, torch.tensor(best)[:, None], 0.9))
    assert emissions(log_probs) == [(1, 3), (4, 3), (5, 5)]
    assert [c for _, c in emissions(log_probs)] == greedy_decode(log_probs)[0]
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        emissions(log_probs[:, None])


def test_greedy_decode_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(T, C\) or \(T, B, C\)"):
        greedy_decode(torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(T, C\) or \(T, B, C\)"):
        greedy_decode(torch.zeros(5, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="lengths"):
        greedy_decode(torch.zeros(5, 2, 3), torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="blank"):
        greedy_decode(torch.zeros(5, 3), blank=3)


def test_forward_recursion_matches_nn_ctc_loss_and_brute_force():
    g = torch.Generator().manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(4, 3, generator=g, dtype=torch.float64), -1)
    totals = _brute_force(log_probs)
    assert sum(totals.values()) == pytest.approx(1.0)
    for y, p in totals.items():
        assert float(ctc_log_prob(log_probs, list(y))) == pytest.approx(math.log(p), abs=1e-9)
        assert _torch_log_prob(log_probs, list(y)) == pytest.approx(math.log(p), abs=1e-9)
    assert ctc_log_prob(log_probs, [1, 1, 1]) == float("-inf")  # needs 5 frames: 1 - 1 - 1


def test_forward_recursion_on_a_hand_computed_case():
    # two frames, classes (blank, a): P(a) = p(-a) + p(a-) + p(aa) = .4*.6 + .6*.4 + .6*.6
    probs = torch.tensor([[0.4, 0.6], [0.4, 0.6]], dtype=torch.float64)
    assert float(ctc_log_prob(probs.log(), [1]).exp()) == pytest.approx(0.84)
    assert float(ctc_log_prob(probs.log(), []).exp()) == pytest.approx(0.16)


def test_beam_search_finds_the_most_probable_sequence_where_greedy_does_not():
    # The blank is the best class at every frame, so the best path decodes to nothing (P = .125);
    # but "1" collects 1--, -1-, --1 (3 x .4 x .25), 11-, -11 (2 x .16 x .5) and 111 (.064): P = .524.
    probs = torch.tensor([[0.5, 0.4, 0.1]] * 3, dtype=torch.float64)
    log_probs = probs.log()
    totals = _brute_force(log_probs)
    best = max(totals, key=totals.get)
    assert greedy_decode(log_probs) == [[]]
    assert best == (1,) and totals[best] == pytest.approx(0.524) and totals[()] == pytest.approx(0.125)
    assert beam_search(log_probs, beam_width=8) == [1]


@pytest.mark.parametrize("seed", range(20))
def test_beam_search_is_never_worse_than_greedy_and_exact_with_a_wide_beam(seed):
    g = torch.Generator().manual_seed(seed)
    T = 3 + seed % 2
    log_probs = torch.log_softmax(2 * torch.randn(T, 3, generator=g, dtype=torch.float64), -1)
    totals = _brute_force(log_probs)
    greedy = greedy_decode(log_probs)[0]
    for width in (4, 8):
        found = beam_search(log_probs, beam_width=width)
        assert _torch_log_prob(log_probs, found) >= _torch_log_prob(log_probs, greedy) - 1e-9
    wide = beam_search(log_probs, beam_width=64)  # keeps every prefix: exact
    assert totals[tuple(wide)] == pytest.approx(max(totals.values()))


def test_beam_search_prune_keeps_the_answer_on_a_peaky_output():
    best = [0, 3, 3, 0, 3, 5, 5, 0]
    log_probs = torch.log_softmax(torch.full((8, 6), -4.0).scatter(1, torch.tensor(best)[:, None], 4.0), -1)
    assert beam_search(log_probs) == beam_search(log_probs, prune=math.log(1e-3)) == [3, 3, 5]


def test_beam_search_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        beam_search(torch.zeros(4, 1, 3))
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(torch.zeros(4, 3), beam_width=0)


def test_edit_distance_hand_computed():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([], [4, 5]) == 2
    assert edit_distance([4, 5], []) == 2
    assert edit_distance([1, 2, 3], [1, 3]) == 1  # a deletion
    assert edit_distance([1, 3], [1, 2, 3]) == 1  # an insertion
    assert edit_distance([1, 2, 3], [3, 2, 1]) == 2  # two substitutions


def test_error_rate_sums_distances_over_reference_length():
    assert error_rate([[1, 2, 3], [4, 5]], [[1, 3], [4, 5, 6]]) == pytest.approx(2 / 5)
    assert error_rate([[1]], [[2, 3, 4]]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        error_rate([[1]], [[1], [2]])
    with pytest.raises(ValueError, match="no symbols"):
        error_rate([[], []], [[1], []])


def test_plot_posteriogram_draws_two_panels_and_rejects_bad_shapes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlcourse.topics.ctc_plots import plot_posteriogram

    features = torch.randn(40, 100)
    log_probs = torch.log_softmax(torch.randn(25, 11), -1)
    fig = plot_posteriogram(features, log_probs, frame_seconds=0.01, output_frame_seconds=0.04,
                            starts=[0.0, 0.5], digits=[3, 5])
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(F, T\)"):
        plot_posteriogram(features[None], log_probs, frame_seconds=0.01, output_frame_seconds=0.04)
    with pytest.raises(ValueError, match="one start per digit"):
        plot_posteriogram(features, log_probs, frame_seconds=0.01, output_frame_seconds=0.04,
                          starts=[0.0], digits=[3, 5])

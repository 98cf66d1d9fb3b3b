"""Classical isolated-word recognition: deltas, MFCC frames, the GMM classifier and DTW (chapter 6)."""

import numpy as np
import pytest
import torch

from dlcourse.topics import classical_asr as ca


def brute_force_dtw(cost):
    n, m = cost.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(n):
        for j in range(m):
            D[i + 1, j + 1] = cost[i, j] + min(D[i, j], D[i + 1, j], D[i, j + 1])
    return D[1:, 1:]


def test_deltas_of_a_ramp_are_its_slope_and_the_shape_grows():
    ramp = np.stack([np.arange(10.0), 3 * np.arange(10.0)], axis=1)  # (10, 2)
    out = ca.add_deltas(ramp, order=2)
    assert out.shape == (10, 6)
    np.testing.assert_allclose(out[2:-2, 2:4], [[1.0, 3.0]] * 6, atol=1e-6)  # away from the repeated edges
    np.testing.assert_allclose(out[4:-4, 4:6], 0.0, atol=1e-6)  # a ramp does not accelerate
    assert ca.add_deltas(ramp, order=0).shape == (10, 2)
    with pytest.raises(ValueError, match="order"):
        ca.add_deltas(ramp, order=3)
    with pytest.raises(ValueError, match=r"\(T, D\)"):
        ca.add_deltas(np.zeros(5))


def test_utterance_features_batched_equal_one_at_a_time_and_are_mean_normalised():
    from dlcourse.topics.speech_features import mfcc

    g = torch.Generator().manual_seed(0)
    waves = [torch.randn(n, generator=g) * 0.1 for n in (800, 2400, 1600)]
    feats = ca.utterance_features(waves, batch_size=2)
    for w, f in zip(waves, feats):
        single = mfcc(w).T.numpy()
        assert f.shape == (single.shape[0], 26) and f.dtype == np.float32
        np.testing.assert_allclose(f[:, :13], single - single.mean(axis=0), atol=1e-3)
    raw = ca.utterance_features(waves[:1], delta_order=0, mean_normalise=False)[0]
    np.testing.assert_allclose(raw, mfcc(waves[0]).T.numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="1-D float tensor"):
        ca.utterance_features([torch.zeros(2, 100)])
    with pytest.raises(ValueError, match="at least one"):
        ca.utterance_features([])


@pytest.mark.parametrize("n, m", [(1, 1), (1, 6), (6, 1), (3, 7), (9, 4), (8, 8)])
def test_dtw_cumulative_matches_the_textbook_recursion(n, m):
    cost = torch.rand(3, n, m, generator=torch.Generator().manual_seed(n * 10 + m), dtype=torch.float64)
    D = ca.dtw_cumulative(cost)
    for b in range(3):
        np.testing.assert_allclose(D[b].numpy(), brute_force_dtw(cost[b].numpy()))


def test_dtw_hand_computed_example_and_path():
    a, b = [0.0, 1.0, 2.0], [0.0, 2.0]  # costs |a_i - b_j|: [[0, 2], [1, 1], [2, 0]]
    assert ca.dtw_distance(a, b, normalise=False) == pytest.approx(1.0)
    assert ca.dtw_distance(a, b) == pytest.approx(1.0 / 5)
    total, path = ca.dtw_path(a, b)
    assert total == pytest.approx(1.0)
    assert path == [(0, 0), (1, 0), (2, 1)]


def test_dtw_of_a_sequence_with_itself_and_with_a_stretched_copy():
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
    assert ca.dtw_distance(x, x) == 0.0
    assert ca.dtw_distance(x, x.repeat_interleave(2, dim=0)) == 0.0  # every frame said twice as long
    smooth = torch.cumsum(x, dim=0) / 5  # a slowly varying sequence, stretched by 1.5 with interpolation
    stretched = torch.nn.functional.interpolate(smooth.T[None], size=45, mode="linear", align_corners=True)[0].T
    other = torch.cumsum(torch.randn(30, 4, generator=torch.Generator().manual_seed(2)), dim=0) / 5
    assert ca.dtw_distance(smooth, stretched) < 0.2 * ca.dtw_distance(smooth, other)


def test_dtw_path_is_monotone_and_its_costs_add_up():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(12, 3, generator=g), torch.randn(7, 3, generator=g)
    total, path = ca.dtw_path(a, b)
    assert path[0] == (0, 0) and path[-1] == (11, 6)
    assert all((i2 - i1, j2 - j1) in {(1, 0), (0, 1), (1, 1)} for (i1, j1), (i2, j2) in zip(path, path[1:]))
    assert total == pytest.approx(sum(float(torch.dist(a[i], b[j])) for i, j in path), rel=1e-5)


def test_dtw_is_not_a_metric_the_triangle_inequality_can_fail():
    a, b, c = [0.0], [1.0, 1.0, 1.0], [1.0]
    ab, ac, cb = (ca.dtw_distance(x, y, normalise=False) for x, y in [(a, b), (a, c), (c, b)])
    assert (ab, ac, cb) == (3.0, 1.0, 0.0)
    assert ab > ac + cb


def test_dtw_distances_in_blocks_equal_pairwise_distances_and_pick_the_nearest():
    g = torch.Generator().manual_seed(4)
    queries = [torch.randn(n, 3, generator=g) for n in (5, 9, 3, 12, 7)]
    templates = [torch.randn(n, 3, generator=g) for n in (4, 11, 6)]
    table = ca.dtw_distances(queries, templates, block=2)
    expected = torch.tensor([[ca.dtw_distance(q, t) for t in templates] for q in queries])
    torch.testing.assert_close(table, expected, atol=1e-4, rtol=1e-4)
    labels = ca.nearest_template(table, [7, 8, 9])
    assert labels.tolist() == [[7, 8, 9][k] for k in expected.argmin(dim=1).tolist()]
    with pytest.raises(ValueError, match="same number of features"):
        ca.dtw_distances(queries, [torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="one label per template"):
        ca.nearest_template(table, [1, 2])
    with pytest.raises(ValueError, match=r"\(\.\.\., n, m\)"):
        ca.dtw_cumulative(torch.zeros(3))


def synthetic_sequences(n_per_class=12, seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    seqs, labels = [], []
    for y, mu in enumerate(means):
        for _ in range(n_per_class):
            seqs.append(mu + rng.normal(size=(int(rng.integers(5, 15)), 2)))
            labels.append(y)
    return seqs, np.array(labels)


def test_gmm_classifier_separates_synthetic_classes():
    seqs, labels = synthetic_sequences()
    clf = ca.GMMClassifier(n_components=2).fit(seqs, labels)
    test, test_labels = synthetic_sequences(seed=1)
    assert clf.score(test, test_labels) == 1.0
    scores = clf.log_likelihoods(test[:3])
    assert scores.shape == (3, 3)
    np.testing.assert_allclose(scores[0], clf.frame_log_likelihoods(test[0]).sum(axis=0))
    np.testing.assert_allclose(clf.decision_scores(test[:3]) - scores, np.log(1 / 3) * np.ones((3, 3)))


def test_gmm_classifier_ignores_frame_order():
    seqs, labels = synthetic_sequences()
    clf = ca.GMMClassifier(n_components=2).fit(seqs, labels)
    x = seqs[0]
    shuffled = x[np.random.default_rng(0).permutation(len(x))]
    np.testing.assert_allclose(clf.log_likelihoods([x]), clf.log_likelihoods([shuffled]))
    np.testing.assert_allclose(clf.log_likelihoods([x]), clf.log_likelihoods([x[::-1]]))


def test_gmm_classifier_errors_are_clear():
    seqs, labels = synthetic_sequences()
    with pytest.raises(ValueError, match="not fitted"):
        ca.GMMClassifier().predict(seqs)
    with pytest.raises(ValueError, match="covariance_type"):
        ca.GMMClassifier(covariance_type="diagonal")
    with pytest.raises(ValueError, match="n_components"):
        ca.GMMClassifier(n_components=0)
    with pytest.raises(ValueError, match="one label per sequence"):
        ca.GMMClassifier().fit(seqs, labels[:-1])
    with pytest.raises(ValueError, match="fewer than n_components"):
        ca.GMMClassifier(n_components=1000).fit(seqs, labels)
    clf = ca.GMMClassifier(n_components=1).fit(seqs, labels)
    with pytest.raises(ValueError, match="features per frame"):
        clf.predict([np.zeros((4, 3))])

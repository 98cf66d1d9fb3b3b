"""Classical isolated-word recognition on MFCC frames: Gaussian mixtures and dynamic time warping (chapter 6).

* ``add_deltas`` and ``utterance_features``: 13 MFCCs per 10 ms frame, optionally with their
  time derivatives (deltas), and per-utterance cepstral mean normalisation (CMN). An
  utterance becomes a float32 array (T, D): T frames of D features.
* ``GMMClassifier``: one Gaussian mixture model per class, fitted to all training frames of
  that class. It scores an utterance X = (x_1, ..., x_T) by
  log P(X | y) + log P(y) = sum_t log p(x_t | y) + log P(y), which treats the frames as
  independent draws: a bag of frames, blind to their order. By Bayes' rule the arg max of
  this score is the arg max of P(y | X).
* Dynamic time warping (DTW): ``dtw_cumulative`` fills the table
  D[i, j] = c[i, j] + min(D[i-1, j], D[i, j-1], D[i-1, j-1]) of the cheapest monotone
  alignment of two sequences, one anti-diagonal at a time and for a whole batch of pairs at
  once; ``dtw_distance`` and ``dtw_path`` handle one pair, ``dtw_distances`` all pairs of two
  lists, and ``nearest_template`` classifies by the closest labelled template. Distances are
  divided by n + m, so that long and short pairs compare fairly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

COVARIANCE_TYPES = ("diag", "full", "spherical", "tied")
EXACT = "donot_use_mm_for_euclid_dist"  # cdist without the matrix-product shortcut: exact 0 for equal frames


def add_deltas(frames: np.ndarray, order: int = 1, width: int = 2) -> np.ndarray:
    """Append derivatives up to ``order``: (T, D) -> (T, D * (order + 1)).

    The delta of c_t is sum_{n=1}^{width} n (c_{t+n} - c_{t-n}) / (2 sum_n n^2), with the
    first and last frames repeated at the edges; the delta-delta is the delta of the delta.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty array (T, D), got shape {frames.shape}")
    if order not in (0, 1, 2) or width < 1:
        raise ValueError(f"need order in (0, 1, 2) and width >= 1, got order={order}, width={width}")
    parts, current = [frames], frames
    weights = np.arange(1, width + 1, dtype=np.float32)
    for _ in range(order):
        padded = np.pad(current, ((width, width), (0, 0)), mode="edge")
        T = len(current)
        diff = sum(w * (padded[width + n: width + n + T] - padded[width - n: width - n + T])
                   for n, w in zip(range(1, width + 1), weights))
        current = diff / (2 * float((weights ** 2).sum()))
        parts.append(current)
    return np.concatenate(parts, axis=1).astype(np.float32)


def utterance_features(waves: Sequence[torch.Tensor], n_mfcc: int = 13, delta_order: int = 1,
                       mean_normalise: bool = True, batch_size: int = 100) -> list[np.ndarray]:
    """MFCC frames of each waveform: a list of float32 arrays (T_i, n_mfcc * (delta_order + 1)).

    With ``mean_normalise`` the mean over the utterance's frames is subtracted from every
    static coefficient (CMN), removing a constant channel or loudness offset. The MFCCs come
    from ``speech_features.feature_batch`` (similar lengths together, ``batch_size`` at a time).
    """
    from .speech_features import feature_batch, mel_filterbank

    if len(waves) == 0:
        raise ValueError("utterance_features needs at least one waveform")
    for k, w in enumerate(waves):
        if not isinstance(w, torch.Tensor) or w.ndim != 1 or not w.is_floating_point() or len(w) == 0:
            raise ValueError(f"waves[{k}] must be a non-empty 1-D float tensor (n_samples,), got "
                             f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}")
    feats, lengths = feature_batch(waves, kind="mfcc", chunk=batch_size, n_mfcc=n_mfcc, filterbank=mel_filterbank())
    out = []
    for f, n in zip(feats, lengths.tolist()):
        c = f[:, :n].T.numpy()  # (T_i, n_mfcc): the real frames only
        if mean_normalise:
            c = c - c.mean(axis=0, keepdims=True)
        out.append(add_deltas(c, order=delta_order))
    return out


def _check_sequences(sequences: Sequence[np.ndarray], dim: int | None = None) -> list[np.ndarray]:
    if len(sequences) == 0:
        raise ValueError("expected a non-empty list of (T, D) frame arrays")
    seqs = [np.asarray(s, dtype=np.float64) for s in sequences]
    for k, s in enumerate(seqs):
        if s.ndim != 2 or len(s) == 0:
            raise ValueError(f"sequence {k} must be a 2-D array (T, D) with T >= 1 frames, got shape {s.shape}")
        if s.shape[1] != (dim if dim is not None else seqs[0].shape[1]):
            raise ValueError(f"sequence {k} has {s.shape[1]} features per frame, expected "
                             f"{dim if dim is not None else seqs[0].shape[1]}: use the same features throughout")
    return seqs


class GMMClassifier:
    """One ``sklearn.mixture.GaussianMixture`` per class; predicts arg max_y sum_t log p(x_t | y) + log P(y).

    EM stops when the mean log-likelihood per frame improves by less than ``tol``.
    """

    def __init__(self, n_components: int = 8, covariance_type: str = "diag", reg_covar: float = 1e-3,
                 max_iter: int = 200, tol: float = 1e-3, random_state: int = 0, use_prior: bool = True):
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive int, got {n_components!r}")
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
        self.n_components, self.covariance_type, self.reg_covar = n_components, covariance_type, reg_covar
        if tol <= 0 or max_iter < 1:
            raise ValueError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")
        self.max_iter, self.tol, self.random_state, self.use_prior = max_iter, tol, random_state, use_prior
        self.classes_: np.ndarray | None = None

    def fit(self, sequences: Sequence[np.ndarray], labels: Sequence[int]) -> GMMClassifier:
        """Fit one mixture per class to the pooled frames of that class's sequences."""
        from sklearn.mixture import GaussianMixture

        seqs = _check_sequences(sequences)
        labels = np.asarray(labels)
        if labels.shape != (len(seqs),):
            raise ValueError(f"need one label per sequence: {len(seqs)} sequences, labels of shape {labels.shape}")
        self.classes_ = np.unique(labels)
        self.dim_ = seqs[0].shape[1]
        counts = np.array([(labels == c).sum() for c in self.classes_])
        self.log_prior_ = np.log(counts / counts.sum())
        self.models_ = []
        for c in self.classes_:
            frames = np.concatenate([s for s, y in zip(seqs, labels) if y == c])
            if len(frames) < self.n_components:
                raise ValueError(f"class {c} has {len(frames)} frames, fewer than n_components = "
                                 f"{self.n_components}: use fewer components or more data")
            gmm = GaussianMixture(self.n_components, covariance_type=self.covariance_type,
                                  reg_covar=self.reg_covar, max_iter=self.max_iter, tol=self.tol,
                                  random_state=self.random_state)
            self.models_.append(gmm.fit(frames))
        return self

    def frame_log_likelihoods(self, frames: np.ndarray) -> np.ndarray:
        """log p(x_t | y) for every frame and class: (T, n_classes)."""
        self._check_fitted()
        frames = _check_sequences([frames], self.dim_)[0]
        return np.stack([m.score_samples(frames) for m in self.models_], axis=1)

    def log_likelihoods(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """log P(X | y) = sum_t log p(x_t | y) for every sequence and class: (N, n_classes)."""
        self._check_fitted()
        seqs = _check_sequences(sequences, self.dim_)
        frames = np.concatenate(seqs)
        starts = np.cumsum([0] + [len(s) for s in seqs[:-1]])
        per_frame = np.stack([m.score_samples(frames) for m in self.models_], axis=1)  # (total frames, C)
        return np.add.reduceat(per_frame, starts, axis=0)

    def decision_scores(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """log P(X | y) + log P(y), which differs from log P(y | X) by a constant per sequence: (N, n_classes)."""
        scores = self.log_likelihoods(sequences)
        return scores + self.log_prior_ if self.use_prior else scores

    def predict(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """The class with the highest decision score, for each sequence: (N,)."""
        return self.classes_[self.decision_scores(sequences).argmax(axis=1)]

    def score(self, sequences: Sequence[np.ndarray], labels: Sequence[int]) -> float:
        """Accuracy on labelled sequences."""
        labels = np.asarray(labels)
        if labels.shape != (len(sequences),):
            raise ValueError(f"need one label per sequence: {len(sequences)} sequences, labels of shape {labels.shape}")
        return float((self.predict(sequences) == labels).mean())

    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise ValueError("this GMMClassifier is not fitted yet: call fit(sequences, labels) first")


def _check_cost(cost: torch.Tensor) -> None:
    if not isinstance(cost, torch.Tensor) or cost.ndim < 2 or not cost.is_floating_point() or 0 in cost.shape[-2:]:
        raise ValueError(f"cost must be a float tensor (..., n, m) with n, m >= 1, got "
                         f"{tuple(cost.shape) if isinstance(cost, torch.Tensor) else type(cost).__name__}")


def _dtw_diagonals(cost: torch.Tensor) -> torch.Tensor:
    """S[k, b, i + 1] = D_b[i, k - i] for a batch (B, n, m); S[k, b, 0] and cells off the table are inf."""
    B, n, m = cost.shape
    K, L = n + m - 1, 2 * n + m - 1
    padded = torch.nn.functional.pad(cost, (n, L - n - m), value=float("inf"))  # (B, n, L)
    # skew[b, i, k] = padded[b, i, n + k - i]: row i shifted left by i puts anti-diagonal k in column k
    skew = padded.as_strided((B, n, K), (n * L, L - 1, 1), padded.storage_offset() + n)
    skew = skew.permute(2, 0, 1).contiguous()  # (K, B, n)
    S = torch.empty((K, B, n + 1), dtype=cost.dtype, device=cost.device)
    S[:, :, 0] = float("inf")  # the cell above row 0
    S[0, :, 1:] = skew[0]
    for k in range(1, K):
        best = torch.minimum(S[k - 1, :, :n], S[k - 1, :, 1:])  # from (i - 1, j) and from (i, j - 1)
        if k >= 2:
            best = torch.minimum(best, S[k - 2, :, :n])  # from (i - 1, j - 1)
        torch.add(skew[k], best, out=S[k, :, 1:])
    return S


def dtw_cumulative(cost: torch.Tensor) -> torch.Tensor:
    """Cumulative DTW costs of a batch of local-cost tables: (..., n, m) -> (..., n, m).

    D[i, j] = cost[i, j] + min(D[i-1, j], D[i, j-1], D[i-1, j-1]), D[0, 0] = cost[0, 0]. The
    cells of one anti-diagonal (i + j = k) depend only on the two previous anti-diagonals,
    so each of the n + m - 1 steps updates a whole anti-diagonal of every table at once.
    Padding at the ends of i or j never affects the cells before it.
    """
    _check_cost(cost)
    n, m = cost.shape[-2:]
    S = _dtw_diagonals(cost.reshape(-1, n, m).contiguous())
    ii, jj = torch.meshgrid(torch.arange(n, device=cost.device), torch.arange(m, device=cost.device), indexing="ij")
    return S[ii + jj, :, ii + 1].permute(2, 0, 1).reshape(cost.shape)


def _as_tensor(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if t.ndim == 1:
        t = t[:, None]  # a 1-D sequence is T frames of one feature
    if t.ndim != 2 or len(t) == 0:
        raise ValueError(f"{name} must be a sequence (T,) or (T, D) with T >= 1, got shape {tuple(t.shape)}")
    return t


def dtw_distance(a, b, normalise: bool = True) -> float:
    """DTW distance between two sequences (T_a, D) and (T_b, D) under Euclidean frame distance.

    With ``normalise`` the total cost is divided by T_a + T_b.
    """
    a, b = _as_tensor(a, "a"), _as_tensor(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b need the same number of features per frame, got {a.shape[1]} and {b.shape[1]}")
    total = float(dtw_cumulative(torch.cdist(a, b, compute_mode=EXACT))[-1, -1])
    return total / (len(a) + len(b)) if normalise else total


def dtw_path(a, b) -> tuple[float, list[tuple[int, int]]]:
    """Total (unnormalised) DTW cost and the optimal alignment path [(0, 0), ..., (T_a - 1, T_b - 1)]."""
    a, b = _as_tensor(a, "a"), _as_tensor(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b need the same number of features per frame, got {a.shape[1]} and {b.shape[1]}")
    D = dtw_cumulative(torch.cdist(a, b, compute_mode=EXACT).double()).numpy()
    i, j = len(a) - 1, len(b) - 1
    path = [(i, j)]
    while (i, j) != (0, 0):
        steps = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]  # diagonal first: ties prefer the shorter path
        i, j = min((s for s in steps if s[0] >= 0 and s[1] >= 0), key=lambda s: D[s])
        path.append((i, j))
    return float(D[-1, -1]), path[::-1]


def _pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1], dtype=seqs[0].dtype)
    for k, s in enumerate(seqs):
        out[k, :len(s)] = s
    return out, lengths


def dtw_distances(queries: Sequence, templates: Sequence, normalise: bool = True, block: int = 48,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised DTW distance of every query to every template: (n_queries, n_templates).

    Queries and templates are sorted by length and processed in blocks of ``block`` x
    ``block`` pairs, so little work goes into padding.
    """
    qs = [_as_tensor(q, f"queries[{k}]") for k, q in enumerate(queries)]
    ts = [_as_tensor(t, f"templates[{k}]") for k, t in enumerate(templates)]
    if not qs or not ts:
        raise ValueError("dtw_distances needs at least one query and one template")
    dims = {s.shape[1] for s in qs + ts}
    if len(dims) != 1:
        raise ValueError(f"all sequences need the same number of features per frame, got {sorted(dims)}")
    if block < 1:
        raise ValueError(f"block must be a positive int, got {block}")
    out = torch.empty(len(qs), len(ts))
    q_order = sorted(range(len(qs)), key=lambda k: len(qs[k]))
    t_order = sorted(range(len(ts)), key=lambda k: len(ts[k]))
    for q0 in range(0, len(qs), block):
        qi = q_order[q0:q0 + block]
        Q, lq = _pad([qs[k] for k in qi])
        Q = Q.to(device)
        for t0 in range(0, len(ts), block):
            ti = t_order[t0:t0 + block]
            T, lt = _pad([ts[k] for k in ti])
            cost = torch.cdist(Q[:, None], T.to(device)[None], compute_mode=EXACT).flatten(0, 1)  # (bq * bt, n, m)
            S = _dtw_diagonals(cost)  # the last cell (lq - 1, lt - 1) lies on anti-diagonal lq + lt - 2
            last = (lq[:, None] + lt[None] - 2).flatten().to(device)
            rows = lq[:, None].expand(-1, len(ti)).flatten().to(device)
            D = S[last, torch.arange(len(last), device=device), rows].reshape(len(qi), len(ti)).cpu()
            if normalise:
                D = D / (lq[:, None] + lt[None]).float()
            out[torch.tensor(qi)[:, None], torch.tensor(ti)[None]] = D
    return out


def nearest_template(distances: torch.Tensor, template_labels: Sequence[int]) -> torch.Tensor:
    """The label of the closest template for each query, from a (n_queries, n_templates) distance table."""
    labels = torch.as_tensor(np.asarray(template_labels))
    if distances.ndim != 2 or labels.shape != (distances.shape[1],):
        raise ValueError(f"need distances (n_queries, n_templates) and one label per template, got "
                         f"{tuple(distances.shape)} and {tuple(labels.shape)}")
    return labels[distances.argmin(dim=1)]

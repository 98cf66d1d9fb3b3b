"""n-gram language models: counts, smoothing, interpolation and perplexity (chapter 7, section 1).

An n-gram model factorises P(x_1..x_T) with the chain rule and keeps only the last n-1 words
of each history: P(x_t | x_{t-n+1..t-1}) = P_n(x_{t-n+1..t}) / P_{n-1}(x_{t-n+1..t-1}).
``NGramModel`` estimates that conditional from counts in one of three ways:

* ``"mle"``: c(h w) / c(h), with c(h) = sum_w c(h w). An unseen context gives a row of
  zeros (0/0 is taken as 0, never NaN) and an unseen word in a seen context probability 0.
* ``"add_k"``: (c(h w) + k) / (c(h) + k |V|) at the model's order (Laplace for k = 1).
* ``"kneser_ney"``: interpolated Kneser-Ney in the form of Chen & Goodman (1999). With a
  discount D_j at order j, a_j the raw count at the highest order and the continuation count
  N1+(. h w) (distinct words seen before h w) at lower orders, T(h) = sum_w a_j(h w):
  p_j(w | h) = max(a_j(h w) - D_j, 0) / T(h) + D_j N1+(h .) / T(h) * p_{j-1}(w | h'),
  h' = h without its first word; when T(h) = 0 the context is skipped (p_j = p_{j-1}).
  The recursion ends in the uniform distribution 1/|V|, so no word has probability 0.

Counting is vectorised: a j-gram is stored as the integer key (index of its (j-1)-word prefix
among the distinct (j-1)-grams) * |V| + (last word), in one sorted array per order. The j-grams
of one context are then a contiguous block of that array, so ``prob_vector`` costs O(|V| +
number of followers) per order and ``log_probs`` is a handful of ``np.searchsorted`` calls.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

SMOOTHINGS = ("mle", "add_k", "kneser_ney")


def _as_ids(ids, vocab_size: int | None = None, name: str = "ids") -> np.ndarray:
    """A 1-D int64 array of word ids, checked against ``vocab_size``."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D sequence of integer word ids, got shape {arr.shape} "
                         f"and dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if vocab_size is not None and arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise ValueError(f"{name} contains id {bad}, outside the vocabulary 0..{vocab_size - 1}")
    return arr


def ngram_counts(ids, n: int) -> Counter:
    """Counter mapping each n-tuple of word ids in ``ids`` (reading order) to its count."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    seq = _as_ids(ids).tolist()
    return Counter(zip(*(seq[i:] for i in range(n))))


class NGramModel:
    """An order-``order`` n-gram model over ids ``0 .. vocab_size-1`` (see the module docstring).

    ``discount`` is one D in (0, 1] for every order or a sequence of ``order`` values (order 1
    first); ``k`` > 0 is the pseudo-count of ``"add_k"``. ``prob_vector`` keeps the last
    ``cache_size`` distributions it computed (read-only arrays; copy one to modify it).
    """

    def __init__(self, order: int, vocab_size: int, smoothing: str = "kneser_ney", discount=0.75,
                 k: float = 1.0, cache_size: int = 1024):
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be a positive int (1 = unigram, 2 = bigram, ...), got {order!r}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"unknown smoothing {smoothing!r}: choose one of {', '.join(SMOOTHINGS)}")
        discounts = (discount,) * order if np.isscalar(discount) else tuple(discount)
        if len(discounts) != order or not all(0.0 < float(d) <= 1.0 for d in discounts):
            raise ValueError(f"discount must be a number in (0, 1] or {order} such numbers (one per order, "
                             f"order 1 first), got {discount!r}")
        if not float(k) > 0.0:
            raise ValueError(f"k (the add-k pseudo-count) must be > 0, got {k!r}")
        self.order, self.vocab_size, self.smoothing = order, vocab_size, smoothing
        self.discount, self.k = tuple(float(d) for d in discounts), float(k)
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()
        self._fitted = False

    def __repr__(self) -> str:
        extra = {"kneser_ney": f", discount={self.discount}", "add_k": f", k={self.k}", "mle": ""}[self.smoothing]
        return f"NGramModel(order={self.order}, vocab_size={self.vocab_size}, smoothing={self.smoothing!r}{extra})"

    # ------------------------------------------------------------------ fitting
    def fit(self, ids) -> NGramModel:
        """Count the 1- to ``order``-grams of ``ids`` (a 1-D tensor, array or list) and return self."""
        x = _as_ids(ids, self.vocab_size)
        if len(x) < self.order:
            raise ValueError(f"fit needs at least order = {self.order} words, got {len(x)}")
        V, N = self.vocab_size, len(x)
        self.keys, self.raw, self.cont = [None], [None], [None] * (self.order + 1)   # index j = order j
        prev = np.zeros(N, dtype=np.int64)                          # index of the (j-1)-gram ending at t
        for j in range(1, self.order + 1):
            prefix = prev[j - 2:N - 1] if j > 1 else np.zeros(N, dtype=np.int64)
            keys, first, inverse, counts = np.unique(prefix * V + x[j - 1:], return_index=True,
                                                     return_inverse=True, return_counts=True)
            grams = np.full(N, -1, dtype=np.int64)
            grams[j - 1:] = inverse.reshape(-1)
            if j > 1:   # continuation count of each (j-1)-gram: distinct words seen before it
                self.cont[j - 1] = np.bincount(prev[first + j - 1], minlength=len(self.keys[j - 1]))
            self.keys.append(keys)
            self.raw.append(counts.astype(np.float64))
            prev = grams
        # per order j: the statistic a_j, and per context (a (j-1)-gram index) T and N1+(h .)
        self.a, self.total, self.types, self.raw_total = [None], [None], [None], [None]
        for j in range(1, self.order + 1):
            a = self.raw[j] if (j == self.order or self.smoothing != "kneser_ney") else self.cont[j].astype(np.float64)
            ctx = self.keys[j] // V
            num_ctx = len(self.keys[j - 1]) if j > 1 else 1
            self.a.append(a)
            self.total.append(np.bincount(ctx, weights=a, minlength=num_ctx))
            self.types.append(np.bincount(ctx, weights=(a > 0).astype(np.float64), minlength=num_ctx))
            self.raw_total.append(np.bincount(ctx, weights=self.raw[j], minlength=num_ctx))
        self.num_train_words = N
        self._cache.clear()
        self._fitted = True
        return self

    def num_distinct(self, j: int) -> int:
        """Number of distinct j-grams seen in training (1 <= j <= order)."""
        self._check_fitted()
        if not 1 <= j <= self.order:
            raise ValueError(f"j must be between 1 and order = {self.order}, got {j}")
        return len(self.keys[j])

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ValueError("this NGramModel is not fitted yet: call model.fit(train_ids) first")

    def _lookup(self, j: int, prefix: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Index of the j-gram (prefix's (j-1)-gram, word) among the training j-grams, or -1."""
        keys = self.keys[j]
        query = np.maximum(prefix, 0) * self.vocab_size + words
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where((prefix >= 0) & (keys[pos] == query), pos, -1)

    def _context_index(self, C: np.ndarray, j: int) -> np.ndarray:
        """Index of the context (last j-1 words of each row of C) among training (j-1)-grams, or -1."""
        M, m = C.shape
        g = np.zeros(M, dtype=np.int64)
        for i in range(1, j):   # build the (j-1)-gram word by word
            g = self._lookup(i, g, C[:, m - (j - 1) + (i - 1)])
        return g

    # ------------------------------------------------------------------ distributions
    def prob_matrix(self, contexts) -> np.ndarray:
        """Next-word distributions (M, V) for contexts (M, L): row m uses the last order-1 ids of row m.

        Rows with fewer than order-1 ids use the lower orders. Memory is M x V float64: chunk
        large batches. (For ``"mle"`` a row whose context was never seen is all zeros.)
        """
        self._check_fitted()
        if isinstance(contexts, torch.Tensor):
            contexts = contexts.detach().cpu().numpy()
        C = np.asarray(contexts)
        if C.ndim != 2 or (C.size and not np.issubdtype(C.dtype, np.integer)):
            raise ValueError(f"contexts must be an integer array of shape (M, context_length), got shape {C.shape}")
        C = _as_ids(C.reshape(-1), self.vocab_size, "contexts").reshape(C.shape)
        C = C[:, max(C.shape[1] - self.order + 1, 0):]   # only the last order-1 ids matter
        M, V, top = C.shape[0], self.vocab_size, C.shape[1] + 1
        kn = self.smoothing == "kneser_ney"
        # p_j = lam_j * p_{j-1} + f_j: collect each level's weight lam_j and seen-word part f_j,
        # then build the (M, V) matrix in one dense pass plus sparse additions
        const = np.full(M, 1.0 / V) if kn else np.zeros(M)   # added to every word
        parts = []
        for j in (range(1, top + 1) if kn else [top]):
            D = self.discount[j - 1] if kn else 0.0
            c = self._context_index(C, j)
            T = np.where(c >= 0, (self.total if kn else self.raw_total)[j][np.maximum(c, 0)], 0.0)
            denom = T + self.k * V if self.smoothing == "add_k" else np.where(T > 0, T, 1.0)
            if self.smoothing == "add_k":
                const = self.k / denom
            rows = np.flatnonzero(T > 0)
            lam = np.ones(M)
            if kn:
                lam[rows] = D * self.types[j][c[rows]] / T[rows]
            if j == 1:   # one context (the empty one) for every row: a dense row vector
                vec = np.zeros(V)
                if len(rows):
                    vec[self.keys[1] % V] = np.maximum(self.a[1] - D, 0.0) / denom[0]
                parts.append((lam, vec, None))
                continue
            lo = np.searchsorted(self.keys[j], c[rows] * V)
            lengths = np.searchsorted(self.keys[j], (c[rows] + 1) * V) - lo
            idx = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(lo, lengths)
            row_of = np.repeat(rows, lengths)
            parts.append((lam, None, (row_of, self.keys[j][idx] % V,
                                      np.maximum(self.a[j][idx] - D, 0.0) / denom[row_of])))
        above = np.ones(M)                        # product of the weights of the levels above
        scale = []
        for lam, _, _ in reversed(parts):
            scale.append(above)
            above = above * lam
        scale.reverse()
        P = np.multiply.outer(scale[0], parts[0][1]) if parts[0][1] is not None else np.zeros((M, V))
        P += (const * above)[:, None] if kn else const[:, None]
        for (_, _, sparse), s in zip(parts, scale):
            if sparse is not None:
                row_of, words, values = sparse
                P[row_of, words] += s[row_of] * values
        return P

    def prob_vector(self, context) -> np.ndarray:
        """P(. | context) as a read-only array (V,); uses the last order-1 ids of ``context``."""
        ctx = tuple(_as_ids(context, self.vocab_size, "context").tolist()[max(len(context) - self.order + 1, 0):])
        hit = self._cache.get(ctx)
        if hit is not None:
            self._cache.move_to_end(ctx)
            return hit
        p = self.prob_matrix(np.array([ctx], dtype=np.int64).reshape(1, len(ctx)))[0]
        p.flags.writeable = False
        if self.cache_size > 0:
            self._cache[ctx] = p
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return p

    def prob(self, context, word: int) -> float:
        """P(word | last order-1 ids of context)."""
        if not 0 <= int(word) < self.vocab_size:
            raise ValueError(f"word id {word} is outside the vocabulary 0..{self.vocab_size - 1}")
        return float(self.prob_vector(context)[int(word)])

    def log_probs(self, ids, start: int | None = None) -> np.ndarray:
        """Natural-log P(ids[t] | ids[t-order+1..t-1]) for t = start .. len(ids)-1 (-inf where P = 0).

        ``start`` defaults to order-1, the first position with a full history; the chapter
        compares models with ``start=5``.
        """
        self._check_fitted()
        x = _as_ids(ids, self.vocab_size)
        n, V = self.order, self.vocab_size
        start = n - 1 if start is None else start
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not n - 1 <= start < len(x):
            raise ValueError(f"start must be an int between order-1 = {n - 1} (a full history for the first "
                             f"scored word) and len(ids)-1 = {len(x) - 1}, got {start!r}")
        t = np.arange(start, len(x))
        grams = [np.zeros(len(x), dtype=np.int64)]        # grams[j][t]: index of the j-gram ending at t
        for j in range(1, n + 1):
            g = np.full(len(x), -1, dtype=np.int64)
            g[j - 1:] = self._lookup(j, grams[j - 1][j - 2:len(x) - 1] if j > 1 else np.zeros(len(x), np.int64),
                                     x[j - 1:])
            grams.append(g)
        levels = range(1, n + 1) if self.smoothing == "kneser_ney" else [n]
        p = np.full(len(t), 1.0 / V)
        for j in levels:
            c = grams[j - 1][t - 1] if j > 1 else np.zeros(len(t), np.int64)
            g = grams[j][t]
            a = np.where(g >= 0, self.a[j][np.maximum(g, 0)], 0.0)
            if self.smoothing == "kneser_ney":
                D = self.discount[j - 1]
                T = np.where(c >= 0, self.total[j][np.maximum(c, 0)], 0.0)
                N1 = np.where(c >= 0, self.types[j][np.maximum(c, 0)], 0.0)
                safe = np.where(T > 0, T, 1.0)
                p = np.where(T > 0, (np.maximum(a - D, 0.0) + D * N1 * p) / safe, p)
            else:
                T = np.where(c >= 0, self.raw_total[j][np.maximum(c, 0)], 0.0)
                if self.smoothing == "add_k":
                    p = (a + self.k) / (T + self.k * V)
                else:
                    p = np.where(T > 0, a / np.where(T > 0, T, 1.0), 0.0)
        with np.errstate(divide="ignore"):
            return np.log(p)


def _stack(log_prob_arrays) -> np.ndarray:
    arrays = [np.asarray(a, dtype=np.float64) for a in log_prob_arrays]
    if not arrays or any(a.ndim != 1 for a in arrays) or len({len(a) for a in arrays}) != 1 or not len(arrays[0]):
        raise ValueError("log_prob_arrays must be a non-empty list of 1-D arrays of the same non-zero length "
                         "(one log-probability per scored word, same words for every model)")
    return np.stack(arrays)


def _logsumexp(Z: np.ndarray, axis: int = 0) -> np.ndarray:
    m = np.max(Z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis) + np.log(np.sum(np.exp(Z - m), axis=axis))


def interpolate_log_probs(log_prob_arrays, weights) -> np.ndarray:
    """log sum_k w_k p_k for per-word log-probabilities of K models, computed stably (logsumexp)."""
    L = _stack(log_prob_arrays)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(L) or np.any(w < 0) or not np.isclose(w.sum(), 1.0, atol=1e-6):
        raise ValueError(f"weights must be {len(L)} non-negative numbers summing to 1 (one per model), "
                         f"got {np.asarray(weights).tolist()}")
    with np.errstate(divide="ignore"):
        return _logsumexp(np.log(w)[:, None] + L)


def mixture_weights_em(log_prob_arrays, num_iters: int = 50) -> np.ndarray:
    """Mixture weights (K,) maximising the mean held-out log-likelihood of sum_k w_k p_k (EM).

    E step: responsibility of model k for word t, w_k p_k(t) / sum_k' w_k' p_k'(t); M step:
    w_k = mean responsibility. Each step cannot lower the held-out likelihood (Jelinek & Mercer).
    """
    L = _stack(log_prob_arrays)
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 0:
        raise ValueError(f"num_iters must be a non-negative int, got {num_iters!r}")
    if np.any(np.all(np.isneginf(L), axis=0)):
        raise ValueError("some word has probability 0 under every model: no mixture can score it")
    w = np.full(len(L), 1.0 / len(L))
    for _ in range(num_iters):
        with np.errstate(divide="ignore"):
            joint = np.log(w)[:, None] + L
        w = np.exp(joint - _logsumexp(joint)).mean(axis=1)
        w /= w.sum()
    return w


def perplexity(log_probs) -> float:
    """exp(-mean natural-log probability); inf if any word has probability 0."""
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 1 or not len(lp):
        raise ValueError(f"perplexity expects a non-empty 1-D array of log-probabilities, got shape {lp.shape}")
    return float(np.exp(-lp.mean()))


def unseen_fraction(train_ids, heldout_ids, n: int) -> float:
    """Fraction of the held-out n-grams (occurrences, not types) never seen in the training ids."""
    seen = ngram_counts(train_ids, n)
    held = ngram_counts(heldout_ids, n)
    total = sum(held.values())
    if not total:
        raise ValueError(f"the held-out ids have fewer than n = {n} words: no n-gram to check")
    return sum(c for g, c in held.items() if g not in seen) / total

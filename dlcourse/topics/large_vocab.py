"""Output layers for a large vocabulary (chapter 7, section 3; Goodfellow et al. 12.4.3).

Every layer sits on top of a hidden vector ``h`` (B, H) and offers ``.loss(h, y)``, the
training objective (a scalar, averaged over the batch), and ``.log_prob(h, y)``, the exact
normalised natural-log probability log P(y | C) of each target for evaluation. The sampled
methods (``ImportanceSampledSoftmax``, ``NCE``, ``RankingLoss``) train on a few sampled words
but are evaluated with the full softmax of their own output weights. ``ShortList`` needs the
contexts as well, because its tail probabilities come from an n-gram model:
``.log_prob(h, y, contexts)``.

Samples are drawn on the CPU from the layer's own ``torch.Generator`` (pass ``generator`` or
``seed``), so that a run is reproducible on any device.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _check_h(h: torch.Tensor, hidden_dim: int) -> None:
    if not isinstance(h, torch.Tensor) or h.ndim != 2 or h.shape[1] != hidden_dim:
        got = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(f"h must be a (batch, {hidden_dim}) float tensor of hidden vectors, got {got}")


def _check_y(y: torch.Tensor, batch: int, vocab_size: int) -> None:
    if not isinstance(y, torch.Tensor) or y.shape != (batch,) or y.dtype != torch.long:
        got = f"{tuple(y.shape)} {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be a ({batch},) LongTensor of word ids (one per row of h), got {got}")
    if batch and (int(y.min()) < 0 or int(y.max()) >= vocab_size):
        raise ValueError(f"word ids must lie in 0..{vocab_size - 1}, got {int(y.min())}..{int(y.max())}")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class FullSoftmax(nn.Module):
    """The plain output layer: a_i = b_i + sum_j W_ij h_j for every word, then a softmax over all |V|."""

    def __init__(self, hidden_dim: int, vocab_size: int):
        super().__init__()
        self.hidden_dim = _positive_int("hidden_dim", hidden_dim)
        self.vocab_size = _positive_int("vocab_size", vocab_size)
        self.linear = nn.Linear(hidden_dim, vocab_size)

    def log_prob_all(self, h: torch.Tensor) -> torch.Tensor:
        """(B, V) log-probabilities of every word."""
        _check_h(h, self.hidden_dim)
        return F.log_softmax(self.linear(h), dim=1)

    def log_prob(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_h(h, self.hidden_dim)
        _check_y(y, h.shape[0], self.vocab_size)
        a = self.linear(h)
        return a.gather(1, y[:, None]).squeeze(1) - torch.logsumexp(a, dim=1)

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy -log P(y|C); costs O(|V| H) per example."""
        _check_h(h, self.hidden_dim)
        _check_y(y, h.shape[0], self.vocab_size)
        return F.cross_entropy(self.linear(h), y)


def frequency_classes(counts: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class of each word id (V,): contiguous id ranges holding about equal total count.

    Word i goes to class floor(K * (count of ids < i) / total count), and the classes are then
    renumbered 0, 1, ... without gaps. A word holding more than 1/K of the count alone fills
    several bins, so there can be fewer than ``num_classes`` classes. With ids sorted by falling
    count (as in ``WordVocab``) the first classes hold a few frequent words, the last many rare ones.
    """
    if not isinstance(counts, torch.Tensor) or counts.ndim != 1 or counts.numel() == 0:
        raise ValueError("counts must be a non-empty 1-D tensor (V,) of word counts, e.g. WordVocab.counts")
    _positive_int("num_classes", num_classes)
    counts = counts.double()
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("counts must be non-negative with a positive total")
    if num_classes > counts.numel():
        raise ValueError(f"num_classes={num_classes} exceeds the vocabulary size {counts.numel()}")
    before = torch.cumsum(counts, 0) - counts
    bins = torch.clamp((num_classes * before / counts.sum()).floor().long(), max=num_classes - 1)
    return torch.unique_consecutive(bins, return_inverse=True)[1]


class ClassSoftmax(nn.Module):
    """Two-level hierarchical softmax: P(y|C) = P(class(y)|C) P(y|class(y), C) (Goodman 2001).

    ``word_class`` (V,) gives each word its class 0..K-1 (every class non-empty), e.g. from
    ``frequency_classes``. Each class has its own weight matrix, so a training step touches K
    class scores plus the words of the classes present in the batch, not all |V| words.
    """

    def __init__(self, hidden_dim: int, word_class: torch.Tensor):
        super().__init__()
        self.hidden_dim = _positive_int("hidden_dim", hidden_dim)
        if not isinstance(word_class, torch.Tensor) or word_class.ndim != 1 or word_class.dtype != torch.long:
            raise ValueError("word_class must be a (V,) LongTensor of class ids, e.g. frequency_classes(counts, K)")
        num_classes = int(word_class.max()) + 1
        sizes = torch.bincount(word_class, minlength=num_classes)
        if int(word_class.min()) < 0 or (sizes == 0).any():
            raise ValueError("class ids must be 0..K-1 with every class holding at least one word")
        self.vocab_size, self.num_classes = word_class.numel(), num_classes
        order = torch.argsort(word_class, stable=True)              # words grouped by class
        position = torch.empty_like(order)
        position[order] = torch.arange(order.numel())
        starts = torch.cumsum(sizes, 0) - sizes
        self.register_buffer("word_class", word_class.clone())
        self.register_buffer("order", order)                         # sorted position -> word id
        self.register_buffer("index_in_class", position - starts[word_class])
        self.class_layer = nn.Linear(hidden_dim, num_classes)
        bound = 1 / math.sqrt(hidden_dim)
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(int(s), hidden_dim).uniform_(-bound, bound))
                                        for s in sizes)
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(int(s)).uniform_(-bound, bound)) for s in sizes)

    def log_prob_all(self, h: torch.Tensor) -> torch.Tensor:
        """(B, V) log-probabilities of every word, in vocabulary order; their exp sums to 1 per row."""
        _check_h(h, self.hidden_dim)
        class_lp = F.log_softmax(self.class_layer(h), dim=1)
        within = torch.cat([F.log_softmax(h @ w.T + b, dim=1) for w, b in zip(self.weights, self.biases)], dim=1)
        sorted_lp = within + class_lp[:, self.word_class[self.order]]
        return torch.empty_like(sorted_lp).index_copy_(1, self.order, sorted_lp)

    def _log_probs_sorted(self, h: torch.Tensor, y: torch.Tensor):
        """log P(y|C) with the batch sorted by class, and the sorting permutation: one small
        matrix product per class present in the batch, on a contiguous block of rows."""
        _check_h(h, self.hidden_dim)
        _check_y(y, h.shape[0], self.vocab_size)
        cls = self.word_class[y]
        cls_sorted, perm = torch.sort(cls, stable=True)
        classes, sizes = torch.unique_consecutive(cls_sorted, return_counts=True)
        class_lp = F.log_softmax(self.class_layer(h[perm]), dim=1).gather(1, cls_sorted[:, None]).squeeze(1)
        sizes = sizes.tolist()
        hs, targets = h[perm].split(sizes), self.index_in_class[y[perm]].split(sizes)
        within = [F.log_softmax(torch.addmm(self.biases[c], hc, self.weights[c].T), dim=1).gather(1, t[:, None])
                  for c, hc, t in zip(classes.tolist(), hs, targets)]
        return class_lp + torch.cat(within).squeeze(1), perm

    def log_prob(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B,) log P(y|C), computing only the classes of the targets."""
        lp, perm = self._log_probs_sorted(h, y)
        return lp[torch.argsort(perm)]

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean -log P(y|C) = -log P(class|C) - log P(y|class, C)."""
        return -self._log_probs_sorted(h, y)[0].mean()


def importance_weights(sample_scores: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Self-normalised importance weights w_i = (p~_i / q_i) / sum_j (p~_j / q_j), p~ = exp(a).

    ``sample_scores`` (B, m) are the scores a of the m sampled words, ``log_q`` their log
    proposal probabilities, (m,) or (B, m). The softmax normaliser of p cancels; rows sum to 1.
    """
    if not isinstance(sample_scores, torch.Tensor) or sample_scores.ndim != 2:
        raise ValueError("sample_scores must be a (B, m) tensor of the sampled words' scores")
    if not isinstance(log_q, torch.Tensor) or log_q.shape not in {(sample_scores.shape[1],), sample_scores.shape}:
        raise ValueError(f"log_q must have shape ({sample_scores.shape[1]},) or {tuple(sample_scores.shape)}")
    return torch.softmax(sample_scores - log_q, dim=1)


class _SampledOutput(nn.Module):
    """Output weights trained from sampled words; evaluated with the full softmax of those weights.

    The biases start at log q, so that the untrained layer is the proposal's (e.g. unigram) model.
    """

    def __init__(self, hidden_dim: int, vocab_size: int, proposal: torch.Tensor | None, num_samples: int,
                 *, generator: torch.Generator | None = None, seed: int = 0, sparse: bool = False):
        super().__init__()
        self.hidden_dim = _positive_int("hidden_dim", hidden_dim)
        self.vocab_size = _positive_int("vocab_size", vocab_size)
        self.num_samples = _positive_int("num_samples", num_samples)
        q = torch.ones(vocab_size) if proposal is None else proposal
        if not isinstance(q, torch.Tensor) or q.shape != (vocab_size,) or (q < 0).any() or q.sum() <= 0:
            raise ValueError(f"proposal must be a non-negative ({vocab_size},) tensor with a positive sum "
                             "(e.g. the unigram counts); it is normalised here")
        self._q = (q.detach().double() / q.double().sum()).float().cpu()
        self.register_buffer("log_q", self._q.log())
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)
        self.weight = nn.Embedding(vocab_size, hidden_dim, sparse=sparse)   # sparse=True: SGD / SparseAdam only
        self.bias = nn.Embedding(vocab_size, 1, sparse=sparse)
        nn.init.uniform_(self.weight.weight, -1 / math.sqrt(hidden_dim), 1 / math.sqrt(hidden_dim))
        with torch.no_grad():            # start from the proposal (the unigram): normalised, as NCE assumes
            self.bias.weight.copy_(self.log_q.clamp(min=-30.0)[:, None])
        self.last_samples: torch.Tensor | None = None

    def sample(self) -> torch.Tensor:
        """Draw num_samples word ids from the proposal (with replacement), shared by the batch."""
        ids = torch.multinomial(self._q, self.num_samples, replacement=True, generator=self.generator)
        self.last_samples = ids.to(self.log_q.device)
        return self.last_samples

    def scores_of(self, h: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(B, len(ids)) scores a_i = b_i + W_i . h of the given words."""
        return h @ self.weight(ids).T + self.bias(ids).squeeze(1)

    def target_scores(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (h * self.weight(y)).sum(1) + self.bias(y).squeeze(1)

    def all_scores(self, h: torch.Tensor) -> torch.Tensor:
        """(B, V) scores a of every word (what the full softmax would normalise)."""
        _check_h(h, self.hidden_dim)
        return torch.addmm(self.bias.weight.squeeze(1), h, self.weight.weight.T)

    def log_prob_all(self, h: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.all_scores(h), dim=1)

    def log_prob(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_y(y, h.shape[0], self.vocab_size)
        a = self.all_scores(h)
        return a.gather(1, y[:, None]).squeeze(1) - torch.logsumexp(a, dim=1)

    def _prepare(self, h, y):
        _check_h(h, self.hidden_dim)
        _check_y(y, h.shape[0], self.vocab_size)
        n = self.sample()
        return n, self.target_scores(h, y), self.scores_of(h, n)


class ImportanceSampledSoftmax(_SampledOutput):
    """Biased importance sampling (Bengio & Senecal 2008) with m words drawn from ``proposal``.

    The loss -a_y + log sum_i exp(a_{n_i} - log q_{n_i}) - log m is the sampled estimate of
    -log P(y|C); its gradient is -(da_y - sum_i w_i da_{n_i}) with ``importance_weights`` w,
    the normalised weights already containing the 1/m.
    """

    def __init__(self, hidden_dim: int, vocab_size: int, proposal: torch.Tensor, num_samples: int, **kwargs):
        super().__init__(hidden_dim, vocab_size, proposal, num_samples, **kwargs)

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, a_y, a_n = self._prepare(h, y)
        log_z = torch.logsumexp(a_n - self.log_q[n], dim=1) - math.log(self.num_samples)
        return (log_z - a_y).mean()


class NCE(_SampledOutput):
    """Noise-contrastive estimation (Gutmann & Hyvarinen 2010; Mnih & Teh 2012), self-normalised.

    k noise words from q (the unigram, shared by the batch); a word w is classified as data vs
    noise with logit s(w) = a_w - log(k q_w), i.e. the model log p~ = a with log Z fixed at 0.
    """

    def __init__(self, hidden_dim: int, vocab_size: int, proposal: torch.Tensor, num_samples: int, **kwargs):
        super().__init__(hidden_dim, vocab_size, proposal, num_samples, **kwargs)

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, a_y, a_n = self._prepare(h, y)
        log_k = math.log(self.num_samples)
        s_y, s_n = a_y - log_k - self.log_q[y], a_n - log_k - self.log_q[n]
        return (F.softplus(-s_y) + F.softplus(s_n).sum(1)).mean()


class RankingLoss(_SampledOutput):
    """Hinge ranking loss sum_i max(0, 1 - a_y + a_i) over sampled negatives (Collobert & Weston).

    Negatives come from ``proposal`` (uniform when None); a sample equal to the target is
    skipped. The scores are not probabilities: ``log_prob`` applies a softmax to them anyway.
    """

    def __init__(self, hidden_dim: int, vocab_size: int, num_samples: int, proposal: torch.Tensor | None = None,
                 **kwargs):
        super().__init__(hidden_dim, vocab_size, proposal, num_samples, **kwargs)

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, a_y, a_n = self._prepare(h, y)
        hinge = F.relu(1 - a_y[:, None] + a_n) * (n[None, :] != y[:, None])
        return hinge.sum(1).mean()


class ShortList(nn.Module):
    """Short list L = ids 0..L-1 (<unk> and the L-1 most frequent words) for the network, tail T to an n-gram.

    The network gives a softmax over L + 1 outputs: the L short-list words and one "tail"
    output, P(i in T | C). A tail word's probability is P(i in T | C) times the n-gram's
    P(i | C) renormalised over T. ``tail_model`` needs ``.prob_vector(context)``
    (V,), like ``ngrams.NGramModel``; ``contexts`` (B, c) are the preceding word ids.
    """

    def __init__(self, hidden_dim: int, vocab_size: int, shortlist_size: int, tail_model):
        super().__init__()
        self.hidden_dim = _positive_int("hidden_dim", hidden_dim)
        self.vocab_size = _positive_int("vocab_size", vocab_size)
        if not 1 <= _positive_int("shortlist_size", shortlist_size) < vocab_size:
            raise ValueError(f"shortlist_size must lie in 1..{vocab_size - 1}, got {shortlist_size}")
        if not hasattr(tail_model, "prob_vector"):
            raise ValueError("tail_model must offer .prob_vector(context) -> (V,) probabilities (an NGramModel)")
        self.shortlist_size, self.tail_model = shortlist_size, tail_model
        self.linear = nn.Linear(hidden_dim, shortlist_size + 1)

    def _targets(self, y: torch.Tensor) -> torch.Tensor:
        return torch.where(y < self.shortlist_size, y, torch.full_like(y, self.shortlist_size))

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the L + 1 outputs: the network's share of -log P(y|C) (the n-gram term is constant)."""
        _check_h(h, self.hidden_dim)
        _check_y(y, h.shape[0], self.vocab_size)
        return F.cross_entropy(self.linear(h), self._targets(y))

    def tail_conditional(self, contexts: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """(M, V) float64 P(y = i | C, i in T) for contexts (M, c): the n-gram's probabilities, zero on
        the short list, renormalised over T (uniform over T if the n-gram gives T no mass).

        Uses the tail model's batched ``prob_matrix`` when it has one, else ``prob_vector`` per row.
        """
        contexts = contexts.detach().cpu()
        rows = []
        for part in contexts.split(chunk):
            if hasattr(self.tail_model, "prob_matrix"):
                rows.append(torch.as_tensor(self.tail_model.prob_matrix(part.numpy()), dtype=torch.float64))
            else:
                rows.append(torch.stack([torch.as_tensor(self.tail_model.prob_vector(c.tolist()), dtype=torch.float64)
                                         for c in part]))
        p = torch.cat(rows) if rows else torch.zeros(0, self.vocab_size, dtype=torch.float64)
        p[:, : self.shortlist_size] = 0
        mass = p.sum(1, keepdim=True)
        empty = (mass <= 0).squeeze(1)
        p[empty, self.shortlist_size:] = 1.0
        return p / p.sum(1, keepdim=True)

    def _check_contexts(self, contexts, batch):
        if not isinstance(contexts, torch.Tensor) or contexts.ndim != 2 or contexts.shape[0] != batch:
            raise ValueError(f"contexts must be a ({batch}, c) LongTensor of the preceding word ids (e.g. the "
                             "network's context windows X), one row per row of h")

    def log_prob_all(self, h: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        """(B, V) log P(i|C) of every word under the mixture; exp sums to 1 per row."""
        _check_h(h, self.hidden_dim)
        self._check_contexts(contexts, h.shape[0])
        lp = F.log_softmax(self.linear(h), dim=1).double()
        out = lp[:, -1:] + self.tail_conditional(contexts).to(lp.device).log()
        out[:, : self.shortlist_size] = lp[:, :-1]
        return out.float()

    def log_prob(self, h: torch.Tensor, y: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        """(B,) log P(y|C); the n-gram is consulted only for the targets in the tail."""
        _check_h(h, self.hidden_dim)
        _check_y(y, h.shape[0], self.vocab_size)
        self._check_contexts(contexts, h.shape[0])
        out = F.log_softmax(self.linear(h), dim=1).gather(1, self._targets(y)[:, None]).squeeze(1)
        tail = torch.zeros(y.shape[0], dtype=torch.float64)
        rows = torch.nonzero(y >= self.shortlist_size).squeeze(1).cpu()
        if rows.numel():
            p = self.tail_conditional(contexts[rows.to(contexts.device)])
            tail[rows] = p.gather(1, y.cpu()[rows][:, None]).squeeze(1).log()
        return out + tail.to(out)

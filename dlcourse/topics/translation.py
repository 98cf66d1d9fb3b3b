"""Beam search, corpus BLEU and attention maps for neural machine translation (chapter 7, section 5).

``beam_search`` decodes any model with the chapter-2 interface
``encode(x, x_len) -> (memory, s_0)`` and ``step(y_prev, s, memory) -> (logits, s, weights)``
(``dlcourse.models.seq2seq``). Several sentences are decoded at once: each keeps its own
``beam_size`` hypotheses, and the rows of all beams form one batch for ``step``.

``corpus_bleu`` wraps ``sacrebleu.metrics.BLEU``: hypotheses and references are token lists
of the same tokenizer (``dlcourse.data.tatoeba.tokenize``), joined with spaces and scored
with sacrebleu's ``tokenize="none"``, so that both sides are split in exactly the same way.
A source with several translations has them all as references.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .attention_maps import Alignment


@dataclass
class Hypothesis:
    """One decoded output: ids (without <sos>; ending with <eos> when ``finished``), its total
    log-probability, its length-normalised ``score`` and the attention weights of its steps
    (``(len(tokens), T_src)``, or None for a model without attention)."""

    tokens: list[int]
    log_prob: float
    score: float
    weights: torch.Tensor | None
    finished: bool


def length_normalizer(length: int, alpha: float) -> float:
    """Wu et al.'s (2016) length penalty ((5 + length) / 6) ** alpha; alpha = 0 ranks by log-probability."""
    return ((5.0 + length) / 6.0) ** alpha


def _map(fn, tree):
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_map(fn, t) for t in tree)
    return tree


def _check_args(model, x, x_len, beam_size, max_len, length_penalty) -> None:
    for name, value in [("beam_size", beam_size), ("max_len", max_len)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not math.isfinite(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a finite number >= 0 (0: no normalisation), got {length_penalty!r}")
    if not all(hasattr(model, a) for a in ("encode", "step", "sos", "eos")):
        raise ValueError("beam_search needs a model with encode(x, x_len), step(y_prev, s, memory), sos and eos "
                         "(the interface of dlcourse.models.seq2seq)")
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.dtype != torch.long:
        raise ValueError(f"x must be padded source ids of shape (B, T) and dtype long, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(x_len, torch.Tensor) or x_len.shape != (len(x),):
        raise ValueError(f"x_len must be a tensor of shape (B,) = ({len(x)},)")


@torch.no_grad()
def beam_search(model, x: torch.Tensor, x_len: torch.Tensor, beam_size: int, max_len: int,
                length_penalty: float = 0.0) -> list[list[Hypothesis]]:
    """Beam search for every sentence of the batch ``x`` (B, T) with lengths ``x_len`` (B,).

    Each step extends every live hypothesis by every token and keeps, per sentence, the
    ``2 * beam_size`` best extensions by total log-probability: those ending in <eos> among
    the first ``beam_size`` are finished, the best ``beam_size`` others stay live. A sentence
    is done once ``beam_size`` hypotheses have finished; after ``max_len`` steps its live ones
    are added as unfinished. Finished hypotheses are ranked by
    ``log_prob / length_normalizer(len(tokens), length_penalty)``.

    Returns, per sentence, up to ``beam_size`` hypotheses, best score first. With
    ``beam_size=1`` this is greedy decoding (``seq2seq.translate``) stopped at <eos>.
    The model's train/eval mode is restored.
    """
    _check_args(model, x, x_len, beam_size, max_len, length_penalty)
    was_training = model.training
    model.eval()
    B, k, device = len(x), beam_size, x.device
    memory, s = model.encode(x, x_len)
    memory = _map(lambda t: t.repeat_interleave(k, dim=0), memory)  # rows b * k + j: beam j of sentence b
    s = _map(lambda t: t.repeat_interleave(k, dim=0), s)
    cum = torch.full((B, k), float("-inf"), device=device)
    cum[:, 0] = 0.0  # at the start only one hypothesis per sentence: <sos>
    y = torch.full((B * k,), model.sos, dtype=torch.long, device=device)
    history = torch.zeros(B * k, 0, dtype=torch.long, device=device)  # tokens so far
    weights = None  # (B * k, t, T) attention rows so far
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(max_len):
        logits, s, a = model.step(y, s, memory)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B * k, V)
        V = logp.shape[-1]
        total = (cum.unsqueeze(-1) + logp.view(B, k, V)).view(B, k * V)
        cand, idx = total.topk(min(2 * k, k * V), dim=-1)  # (B, 2k), best first
        beam, tok = idx // V, idx % V
        rows = (torch.arange(B, device=device).unsqueeze(1) * k + beam)  # (B, 2k) flat row of each candidate
        if a is not None:
            steps = a.unsqueeze(1) if weights is None else torch.cat([weights, a.unsqueeze(1)], dim=1)
        is_eos = (tok == model.eos) & torch.isfinite(cand)
        is_eos[:, k:] = False  # only <eos> among the first k candidates finishes a hypothesis
        for b, r in is_eos.nonzero().tolist():
            if done[b] or len(finished[b]) >= k:
                continue
            row = rows[b, r].item()
            tokens = history[row].tolist() + [model.eos]
            lp = cand[b, r].item()
            finished[b].append(Hypothesis(tokens, lp, lp / length_normalizer(len(tokens), length_penalty),
                                          None if a is None else steps[row].cpu(), True))
        done |= torch.tensor([len(f) >= k for f in finished])
        if done.all():
            break
        live = ~(tok == model.eos)  # the best k candidates not ending in <eos> stay live
        keep = live & (live.cumsum(dim=1) <= k)
        order = torch.sort((~keep).float(), dim=1, stable=True).indices[:, :k]  # positions of the kept ones
        cum = cand.gather(1, order)
        chosen = rows.gather(1, order).flatten()  # (B * k,)
        y = tok.gather(1, order).flatten()
        history = torch.cat([history[chosen], y.unsqueeze(1)], dim=1)
        s = _map(lambda z: z.index_select(0, chosen), s)
        if a is not None:
            weights = steps[chosen]
    for b in range(B):
        if len(finished[b]) < k:  # out of steps: the live hypotheses, unfinished
            for j in range(k):
                lp = cum[b, j].item()
                if len(finished[b]) >= k or not math.isfinite(lp):
                    continue
                row = b * k + j
                tokens = history[row].tolist()
                finished[b].append(Hypothesis(tokens, lp, lp / length_normalizer(len(tokens), length_penalty),
                                              None if weights is None else weights[row].cpu(), False))
        finished[b].sort(key=lambda h: -h.score)
    model.train(was_training)
    return finished


def decode_sentences(model, x: torch.Tensor, x_len: torch.Tensor, *, beam_size: int = 1, max_len: int = 10,
                     length_penalty: float = 0.0, batch_size: int = 256) -> list[Hypothesis]:
    """The best hypothesis of every sentence, decoded ``batch_size`` sentences at a time."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    best = []
    for start in range(0, len(x), batch_size):
        xb, lb = x[start:start + batch_size], x_len[start:start + batch_size]
        xb = xb[:, :int(lb.max())]
        best += [h[0] for h in beam_search(model, xb, lb, beam_size, max_len, length_penalty)]
    return best


@dataclass
class Bleu:
    """Corpus BLEU (0-100), sacrebleu's signature of how it was computed, and its full report."""

    score: float
    signature: str
    report: str


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                tokenize: str = "none") -> Bleu:
    """Corpus BLEU of token lists against one or more reference token lists per sentence.

    ``references[i]`` holds all references of sentence i (at least one; their number may
    vary). sacrebleu takes reference *streams*: stream r holds every sentence's r-th
    reference, and a sentence with fewer references gets ``None``, which sacrebleu skips
    (an empty string would count as a reference of length 0). Tokens are joined with spaces;
    ``tokenize="none"`` keeps that split, the same for hypotheses and references (``force=True``
    silences sacrebleu's warning about tokenized input, which is deliberate here).
    """
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses but references for {len(references)} sentences: "
                         "one list of references per hypothesis")
    if len(hypotheses) == 0:
        raise ValueError("corpus_bleu needs at least one sentence")
    for name, items in [("hypothesis", hypotheses)] + [("reference", r) for r in references]:
        for item in items:
            if isinstance(item, str):
                raise ValueError(f"each {name} must be a list of tokens, not a string: got {item!r} "
                                 "(split it with dlcourse.data.tatoeba.tokenize)")
    if min(len(r) for r in references) == 0:
        raise ValueError("every sentence needs at least one reference")
    n_refs = max(len(r) for r in references)
    streams = [[" ".join(r[j]) if j < len(r) else None for r in references] for j in range(n_refs)]
    metric = BLEU(tokenize=tokenize, force=True)  # force: our input is tokenized on purpose
    result = metric.corpus_score([" ".join(h) for h in hypotheses], streams)
    return Bleu(result.score, str(metric.get_signature()), str(result))


def to_alignment(source: Sequence[str], output: Sequence[str], weights, title: str = "") -> Alignment:
    """An ``attention_maps.Alignment`` from tokens and a weight matrix at least (len(output), len(source))."""
    if weights is None:
        raise ValueError("this hypothesis has no attention weights (a model without attention)")
    if weights.shape[0] < len(output) or weights.shape[1] < len(source):
        raise ValueError(f"weights of shape {tuple(weights.shape)} are too small for {len(output)} output and "
                         f"{len(source)} source tokens")
    return Alignment(list(source), list(output), weights[:len(output), :len(source)], title)


def hypothesis_alignment(source: Sequence[str], hypothesis: Hypothesis, tgt_itos: Sequence[str],
                         title: str | None = None) -> Alignment:
    """The alignment of a decoded hypothesis: one row per output token (<eos> included), one column per source token."""
    output = [tgt_itos[i] for i in hypothesis.tokens]
    if title is None:
        title = " ".join(source) + " → " + " ".join(w for w in output if w != "<eos>")
    return to_alignment(source, output, hypothesis.weights, title)


def _sentence_stats(metric, hypotheses, references):
    # Per-sentence n-gram statistics through the two methods sacrebleu's own significance
    # tests (sacrebleu.significance, since 2.0) use; they are not public API, so fail clearly.
    import numpy as np

    if not hasattr(metric, "_extract_corpus_statistics") or not hasattr(metric, "_compute_score_from_stats"):
        raise RuntimeError("paired_bootstrap needs sacrebleu 2.x's per-sentence statistics "
                           "(BLEU._extract_corpus_statistics); install sacrebleu 2.x (2.6.0 is pinned)")

    n_refs = max(len(r) for r in references)
    streams = [[" ".join(r[j]) if j < len(r) else None for r in references] for j in range(n_refs)]
    return np.array(metric._extract_corpus_statistics([" ".join(h) for h in hypotheses], streams))


def paired_bootstrap(hypotheses_a: Sequence[Sequence[str]], hypotheses_b: Sequence[Sequence[str]],
                     references: Sequence[Sequence[Sequence[str]]], draws: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """BLEU(a) - BLEU(b) and its 95 % paired bootstrap interval over the sentences.

    Each draw resamples the sentences with replacement (the same ones for a and b), sums
    their n-gram statistics and recomputes both corpus scores (Koehn, 2004).
    """
    import numpy as np
    from sacrebleu.metrics import BLEU

    if not len(hypotheses_a) == len(hypotheses_b) == len(references):
        raise ValueError(f"need as many hypotheses of a ({len(hypotheses_a)}) and b ({len(hypotheses_b)}) "
                         f"as sentences with references ({len(references)})")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive int, got {draws!r}")
    corpus_bleu(hypotheses_a, references)  # argument checks
    metric = BLEU(tokenize="none", force=True)
    a, b = (_sentence_stats(metric, h, references) for h in (hypotheses_a, hypotheses_b))

    def score(stats):
        return metric._compute_score_from_stats(stats.sum(0).tolist()).score

    idx = np.random.default_rng(seed).integers(len(a), size=(draws, len(a)))
    diffs = np.array([score(a[i]) - score(b[i]) for i in idx])
    low, high = np.quantile(diffs, [0.025, 0.975])
    return score(a) - score(b), float(low), float(high)

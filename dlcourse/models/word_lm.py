"""A feed-forward neural language model (Bengio et al., 2003) and its training and scoring (chapter 7).

``MLPLanguageModel`` reads the ``context_size`` words before a position, looks each up in a
shared embedding table, concatenates the embeddings and passes them through one tanh
hidden layer; ``features`` returns that hidden vector h and ``out`` maps it to one score per
word of the vocabulary (the full softmax of section 7.2). Section 7.3 keeps ``features`` and
replaces ``out`` with cheaper output layers, training them through ``compute_loss``.

``token_log_probs`` scores every word of a text from its own history (the natural-log
probabilities that ``ngrams.perplexity`` and ``ngrams.interpolate_log_probs`` take), so a
neural model and an n-gram model can be compared and mixed word by word.
``train_language_model`` trains with Adam through ``dlcourse.train.fit``, and
``nearest_words`` lists the closest words in embedding space by cosine similarity.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.words import context_windows
from ..device import synchronize
from ..train import History, TensorBatches, fit

EVAL_START = 5  # the chapter scores the words at positions t >= 5 of a split


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class MLPLanguageModel(nn.Module):
    """P(w_t | w_{t-n+1}, ..., w_{t-1}) from the embeddings of the ``context_size`` previous words.

    ``features(X)``: X (B, context_size) word ids -> h = tanh(W [e(x_1); ...; e(x_n)] + b),
    shape (B, hidden_dim). ``out`` = ``nn.Linear(hidden_dim, vocab_size)``; ``forward(X)`` =
    ``out(features(X))``, the logits (B, vocab_size). With ``dropout > 0`` dropout acts on
    the concatenated embeddings and on h during training. The embeddings start as
    N(0, ``embed_std``^2) (small, as in Bengio et al.; PyTorch's default N(0, 1) leaves the
    random start dominant in the embeddings of rare words); the linear layers keep
    PyTorch's default initialisation.
    """

    def __init__(self, vocab_size: int, context_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 dropout: float = 0.0, embed_std: float = 0.1):
        super().__init__()
        _positive_int("vocab_size", vocab_size)
        for name, value in (("context_size", context_size), ("embed_dim", embed_dim), ("hidden_dim", hidden_dim)):
            _positive_int(name, value)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not embed_std > 0:
            raise ValueError(f"embed_std must be positive, got {embed_std!r}")
        self.vocab_size, self.context_size = vocab_size, context_size
        self.embed_dim, self.hidden_dim = embed_dim, hidden_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        nn.init.normal_(self.embedding.weight, std=embed_std)
        self.hidden = nn.Linear(context_size * embed_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def extra_repr(self) -> str:
        return f"context_size={self.context_size}"

    def _check(self, X: torch.Tensor) -> None:
        if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[1] != self.context_size:
            shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
            raise ValueError(f"expected word ids of shape (B, context_size={self.context_size}), got {shape}; "
                             f"build contexts with dlcourse.data.words.context_windows(ids, {self.context_size})")
        if X.dtype != torch.long:
            raise ValueError(f"word ids must be a LongTensor (torch.long), got {X.dtype}; use X.long()")

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """Hidden representation h (B, hidden_dim) of the contexts X (B, context_size)."""
        self._check(X)
        e = self.dropout(self.embedding(X).flatten(1))  # (B, context_size * embed_dim)
        return self.dropout(torch.tanh(self.hidden(e)))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (B, vocab_size) of the next word after each context."""
        return self.out(self.features(X))


def _windows(model: nn.Module, ids: torch.Tensor, start: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    context_size = getattr(model, "context_size", None)
    if context_size is None:
        raise ValueError("the model needs a context_size attribute (an MLPLanguageModel has one)")
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1:
        raise ValueError("ids must be a 1-D LongTensor of word ids (a split of word_corpus())")
    if start is not None and start < context_size:
        raise ValueError(f"start = {start} is shorter than the model's context of {context_size} words: "
                         f"score from start >= {context_size} (the chapter uses start=5 with contexts up to 5)")
    return context_windows(ids.long(), context_size, start)


@torch.no_grad()
def token_log_probs(model: nn.Module, ids: torch.Tensor, start: int | None = EVAL_START,
                    batch_size: int = 4096, device: torch.device | str = "cpu") -> np.ndarray:
    """Natural-log probabilities (N - start,) of ``ids[start:]``, each word given its own history in ``ids``.

    ``model(X)`` must return logits over the vocabulary (full softmax). The model is put in
    eval mode (no dropout) and its previous mode is restored afterwards. ``start=None``
    means ``model.context_size``.
    """
    _positive_int("batch_size", batch_size)
    X, y = _windows(model, ids, start)
    was_training = model.training
    model.eval()
    try:
        chunks = []
        for Xb, yb in zip(X.split(batch_size), y.split(batch_size)):
            Xb, yb = Xb.to(device), yb.to(device)
            logp = F.log_softmax(model(Xb).float(), dim=1)
            chunks.append(logp.gather(1, yb[:, None]).squeeze(1).double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(chunks).numpy()


def cross_entropy_loss(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean full-softmax cross-entropy of a ``(X, y)`` batch: the default training loss."""
    X, y = batch
    return F.cross_entropy(model(X), y)


def train_language_model(model: nn.Module, ids: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
                         device: torch.device | str = "cpu", generator: torch.Generator | None = None,
                         compute_loss: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor] | None = None,
                         val_ids: torch.Tensor | None = None, weight_decay: float = 0.0,
                         val_log_probs: Callable[[nn.Module, torch.Tensor], np.ndarray] | None = None,
                         keep_best: bool = False, progress: bool = True) -> History:
    """Train ``model`` with Adam on the (context, next word) windows of ``ids``; return the ``History``.

    Every epoch visits each window of ``context_windows(ids, model.context_size)`` once, in
    an order drawn from ``generator`` (``TensorBatches``). The loss of a batch ``(X, y)`` is
    ``compute_loss(model, batch)`` if given, else the full-softmax cross-entropy.
    Besides ``fit``'s keys the history holds ``epoch_seconds`` (training time of each
    epoch, without the evaluation) and, with ``val_ids``, ``val_loss`` (mean negative
    log-probability in nats) and ``val_ppl`` per epoch, both scored on the validation words
    at positions t >= 5 by ``val_log_probs(model, val_ids)`` (default ``token_log_probs``).
    With ``keep_best`` (needs ``val_ids``) the model ends with the parameters of its epoch of
    lowest validation perplexity (early stopping), and ``history.best_epoch`` (from 0) says which.
    """
    _positive_int("epochs", epochs)
    _positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if keep_best and val_ids is None:
        raise ValueError("keep_best chooses the epoch on the validation words: pass val_ids too")
    X, y = _windows(model, ids, None)
    if val_ids is not None:
        _windows(model, val_ids, max(EVAL_START, model.context_size))
    model.to(device)
    batches = TensorBatches(X.to(device), y.to(device), batch_size=batch_size, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    score = val_log_probs or (lambda m, v: token_log_probs(m, v, start=max(EVAL_START, m.context_size),
                                                           device=device))
    clock, best = {}, {"ppl": math.inf}

    def on_epoch_start(epoch: int, optimizer: torch.optim.Optimizer) -> None:
        synchronize(device)
        clock["start"] = time.perf_counter()

    def on_epoch_end(epoch: int, history: History) -> None:
        synchronize(device)
        history.log(epoch_seconds=time.perf_counter() - clock["start"])
        if val_ids is not None:
            nll = -float(np.mean(score(model, val_ids)))
            history.log(val_loss=nll, val_ppl=math.exp(nll))
            if keep_best and math.exp(nll) < best["ppl"]:
                best.update(ppl=math.exp(nll), epoch=epoch,
                            state={k: v.detach().clone() for k, v in model.state_dict().items()})

    history = fit(model, batches, optimizer=optimizer, num_epochs=epochs,
                  compute_loss=compute_loss or cross_entropy_loss, device=device,
                  on_epoch_start=on_epoch_start, on_epoch_end=on_epoch_end, progress=progress)
    if keep_best and "state" in best:
        model.load_state_dict(best["state"])
        history.best_epoch = best["epoch"]
    return history


def _embedding_matrix(model_or_embedding) -> torch.Tensor:
    if isinstance(model_or_embedding, nn.Embedding):
        return model_or_embedding.weight
    if isinstance(model_or_embedding, nn.Module) and isinstance(getattr(model_or_embedding, "embedding", None),
                                                                nn.Embedding):
        return model_or_embedding.embedding.weight
    if isinstance(model_or_embedding, torch.Tensor) and model_or_embedding.ndim == 2:
        return model_or_embedding
    raise ValueError("nearest_words takes a model with an .embedding (nn.Embedding), an nn.Embedding, "
                     f"or a (V, D) tensor; got {type(model_or_embedding).__name__}")


@torch.no_grad()
def nearest_words(model_or_embedding, vocab, words: Sequence[str], k: int = 5,
                  exclude_unk: bool = True) -> dict[str, list[tuple[str, float]]]:
    """For each of ``words``, its ``k`` nearest words by cosine similarity of embeddings, best first.

    Returns ``{word: [(neighbour, cosine), ...]}``; the word itself, and ``<unk>`` (id 0)
    when ``exclude_unk``, are never listed. A word outside ``vocab`` is a ValueError.
    """
    _positive_int("k", k)
    if isinstance(words, str):
        raise ValueError("words must be a list of words, e.g. ['king', 'love']")
    E = _embedding_matrix(model_or_embedding).detach().float().cpu()
    if E.shape[0] != len(vocab):
        raise ValueError(f"the embedding has {E.shape[0]} rows but the vocabulary {len(vocab)} words")
    missing = [w for w in words if w not in vocab.stoi]
    if missing:
        raise ValueError(f"{missing[0]!r} is not in the vocabulary (a rare word is <unk>; choose a frequent one)")
    unit = F.normalize(E, dim=1)
    result = {}
    for word in words:
        i = vocab.stoi[word]
        sims = unit @ unit[i]
        sims[i] = -math.inf
        if exclude_unk:
            sims[0] = -math.inf
        top = sims.topk(min(k, len(vocab) - 1 - int(exclude_unk and i != 0)))
        result[word] = [(vocab.itos[j], float(s)) for s, j in zip(top.values.tolist(), top.indices.tolist())]
    return result

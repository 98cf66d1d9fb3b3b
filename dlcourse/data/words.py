"""Word-level text for language models: Tiny Shakespeare and The Time Machine (chapter 7).

``tokenize`` lower-cases a text and keeps its words (apostrophes inside a word stay, so
"o'er" and "i'll" are single words; punctuation and digits go). ``WordVocab`` numbers the
words of a training text by falling frequency, with ``<unk>`` = 0 for every word below the
count threshold, so that id ``i`` is the i-th most frequent word: a short list is
``ids < L + 1``, and frequency classes and ``nn.AdaptiveLogSoftmaxWithLoss`` need that
order. ``word_corpus`` cuts a text into training, validation and test parts in reading
order and builds the vocabulary from the training part only, so a word first seen in the
test part is ``<unk>`` like any other unknown word. ``context_windows`` turns ids into the
(fixed context, next word) examples of a feed-forward language model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import torch

UNK = "<unk>"
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
CORPORA = ("tinyshakespeare", "timemachine")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of ``text``; punctuation, digits and line breaks are dropped."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize takes a string, got {type(text).__name__}")
    return WORD.findall(text.lower())


def time_machine() -> str:
    """H. G. Wells, *The Time Machine* (Project Gutenberg text), fetched once."""
    from . import fetch

    return fetch("timemachine/timemachine.txt").read_text(encoding="utf-8")


def corpus_text(name: str) -> str:
    """The raw text of one of ``CORPORA``."""
    if name == "tinyshakespeare":
        from .text import tiny_shakespeare

        return tiny_shakespeare()
    if name == "timemachine":
        return time_machine()
    raise ValueError(f"unknown corpus {name!r}: choose one of {', '.join(CORPORA)}")


class WordVocab:
    """Words of a training text by falling count; id 0 is ``<unk>``.

    A word enters when it occurs at least ``min_count`` times (and, with ``max_size``, only
    the ``max_size - 1`` most frequent do); ties in count are broken alphabetically, so the
    numbering is the same on every machine. ``counts[i]`` is the training count of word
    ``i`` (for ``<unk>``: the total count of the words it stands for).
    """

    def __init__(self, tokens: Sequence[str], min_count: int = 1, max_size: int | None = None):
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be a positive int, got {min_count!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2):
            raise ValueError(f"max_size must be an int >= 2 (<unk> and one word) or None, got {max_size!r}")
        if isinstance(tokens, str) or not len(tokens):
            raise ValueError("a word vocabulary needs a non-empty list of words (use tokenize(text) first)")
        counted = Counter(tokens)
        kept = sorted((w for w, c in counted.items() if c >= min_count), key=lambda w: (-counted[w], w))
        if max_size is not None:
            kept = kept[: max_size - 1]
        self.itos = [UNK] + kept
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        unk_count = sum(counted.values()) - sum(counted[w] for w in kept)
        self.counts = torch.tensor([unk_count] + [counted[w] for w in kept], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words incl. {UNK})"

    def encode(self, words: Iterable[str]) -> list[int]:
        """Ids of ``words`` (a list of words, not a string: tokenize first); unknown words -> 0."""
        if isinstance(words, str):
            raise TypeError("encode takes a list of words; split a text with tokenize(text) first")
        return [self.stoi.get(w, 0) for w in words]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of ``ids`` (a list or a tensor)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.flatten().tolist()
        ids = list(ids)
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"id {bad[0]} is outside the vocabulary of {len(self)} words")
        return [self.itos[i] for i in ids]


class WordCorpus(NamedTuple):
    """Ids (N,) of the training, validation and test parts of a text, and their vocabulary."""

    name: str
    vocab: WordVocab
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


def word_corpus(name: str = "tinyshakespeare", *, min_count: int = 2, max_size: int | None = None,
                fractions: tuple[float, float] = (0.8, 0.1), text: str | None = None) -> WordCorpus:
    """Words of a corpus in reading order: the first ``fractions[0]`` train, the next ``fractions[1]`` validate, the rest test.

    The vocabulary comes from the training words alone (``min_count``, ``max_size`` as in
    ``WordVocab``). ``text`` replaces the stored corpus (for tests and small examples).
    """
    if len(fractions) != 2 or not all(0.0 < f < 1.0 for f in fractions) or sum(fractions) >= 1.0:
        raise ValueError(f"fractions must be (train, validation), each in (0, 1) and summing to less "
                         f"than 1 (the rest is the test part), got {fractions!r}")
    words = tokenize(corpus_text(name) if text is None else text)
    n_train, n_val = int(fractions[0] * len(words)), int(fractions[1] * len(words))
    if min(n_train, n_val, len(words) - n_train - n_val) < 1:
        raise ValueError(f"the text has {len(words)} words: too few to split into three non-empty parts")
    vocab = WordVocab(words[:n_train], min_count=min_count, max_size=max_size)
    ids = torch.tensor(vocab.encode(words), dtype=torch.long)
    return WordCorpus(name, vocab, ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:])


def context_windows(ids: torch.Tensor, context_size: int, start: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) ids -> contexts X (M, context_size) and next words y (M,) for positions ``start .. N-1``.

    Row ``m`` of ``X`` holds the ``context_size`` words before position ``t = start + m``
    and ``y[m] = ids[t]``. ``start`` defaults to ``context_size`` (the first position with a
    full context); models of different context sizes score the same words when they are
    given the same ``start``.
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1:
        raise ValueError(f"context_windows expects a 1-D tensor of word ids (N,), got "
                         f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    if isinstance(context_size, bool) or not isinstance(context_size, int) or context_size < 1:
        raise ValueError(f"context_size must be a positive int, got {context_size!r}")
    start = context_size if start is None else start
    if not context_size <= start < len(ids):
        raise ValueError(f"start must be between context_size = {context_size} and len(ids) - 1 = "
                         f"{len(ids) - 1}, got {start}")
    X = ids.unfold(0, context_size, 1)[start - context_size: len(ids) - context_size]  # (M, context_size)
    return X.contiguous(), ids[start:].clone()

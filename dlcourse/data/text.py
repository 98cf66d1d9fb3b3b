"""Character-level text for language models: Tiny Shakespeare, its vocabulary and chunks (chapter 2).

``char_corpus`` loads a text, builds its character vocabulary and returns the ids of the
training and validation parts; ``streams`` cuts ids into parallel rows and ``chunks`` walks
along them for truncated backpropagation through time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import torch


class CharVocab:
    """Every character of a text, sorted: ``chars[i]`` has id ``i``, ``stoi`` maps back."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError("a character vocabulary needs a non-empty string")
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a string, got {type(text).__name__}")
        missing = sorted(set(text) - set(self.stoi))
        if missing:
            raise ValueError(f"characters {''.join(missing)!r} are not in the vocabulary of {len(self)}")
        return [self.stoi[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` (a list or a tensor)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.flatten().tolist()
        ids = list(ids)
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"id {bad[0]} is outside the vocabulary of {len(self)} characters")
        return "".join(self.chars[i] for i in ids)


class CharCorpus(NamedTuple):
    """A text, its vocabulary and the ids (N,) of its training and validation parts."""

    text: str
    vocab: CharVocab
    train: torch.Tensor
    val: torch.Tensor


def tiny_shakespeare() -> str:
    """Tiny Shakespeare (Karpathy, 2015): about a million characters of plays, fetched once."""
    from . import fetch

    return fetch("tinyshakespeare/input.txt").read_text(encoding="utf-8")


def char_corpus(text: str | None = None, train_fraction: float = 0.9,
                device: torch.device | str | None = None) -> CharCorpus:
    """Ids of ``text`` (default: Tiny Shakespeare): the first ``train_fraction`` for training, the rest for validation."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be a fraction in (0, 1), got {train_fraction!r}")
    text = tiny_shakespeare() if text is None else text
    vocab = CharVocab(text)
    data = torch.tensor(vocab.encode(text), device=device)  # (N,) character ids
    n_train = int(train_fraction * len(data))
    return CharCorpus(text, vocab, data[:n_train], data[n_train:])


def streams(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) -> (batch_size, N // batch_size): consecutive pieces of the text, one per row."""
    if data.ndim != 1:
        raise ValueError(f"streams expects a 1-D tensor of ids (N,), got shape {tuple(data.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= len(data):
        raise ValueError(f"batch_size must be an int between 1 and len(data) = {len(data)}, got {batch_size!r}")
    n = len(data) // batch_size
    return data[: n * batch_size].view(batch_size, n)


def chunks(rows: torch.Tensor, seq_len: int, num_steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """``num_steps`` consecutive chunks ``(x, y, restart)`` of ``rows`` (B, N) for truncated BPTT.

    ``x`` (B, seq_len) are columns ``start .. start + seq_len`` and ``y`` the next characters;
    when the next chunk would run past the end, the walk starts again at column 0 and
    ``restart`` is True (a model's hidden state should then start from zero), as it is for
    the very first chunk.
    """
    if rows.ndim != 2:
        raise ValueError(f"chunks expects streams of shape (B, N), got {tuple(rows.shape)}")
    if not 1 <= seq_len < rows.shape[1]:
        raise ValueError(f"seq_len must be between 1 and {rows.shape[1] - 1} (the stream length - 1), got {seq_len}")
    start = 0
    for step in range(num_steps):
        restart = step == 0
        if start + seq_len + 1 > rows.shape[1]:
            start, restart = 0, True  # end of the text: start over
        yield rows[:, start:start + seq_len], rows[:, start + 1:start + seq_len + 1], restart
        start += seq_len

"""Recurrent models that more than one notebook trains, and truncated BPTT (introduced in chapter 2)."""

from __future__ import annotations

import torch
from torch import nn


class AddingRNN(nn.Module):
    """A vanilla tanh RNN for the adding problem: reads (value, marker) pairs, predicts a number."""

    def __init__(self, hidden_size: int = 32):
        super().__init__()
        self.rnn = nn.RNN(2, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, 1)
        with torch.no_grad():  # an orthogonal recurrent matrix keeps the hidden state at the edge of exploding
            nn.init.orthogonal_(self.rnn.weight_hh_l0)

    def forward(self, X):  # X (B, T, 2) -> (B,)
        H, _ = self.rnn(X)  # (B, T, hidden)
        return self.out(H[:, -1]).squeeze(-1)


class CharRNN(nn.Module):
    """Character-level language model: embedding -> vanilla RNN -> linear read-out of next-character logits.

    With ``num_layers > 1`` the RNN is stacked: the hidden states of layer l are the inputs of
    layer l + 1, every layer has its own weights, and the read-out sees the top layer only.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int = 1):
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int (1 for a single recurrent layer), got {num_layers!r}")
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.RNN(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)  # W_hy (plus a bias)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T) ids, h (L, B, H) or None -> logits (B, T, V) and the last states (L, B, H), L layers."""
        if x.ndim != 2 or x.dtype != torch.long:
            raise ValueError(f"CharRNN expects character ids of shape (B, T) and dtype long, "
                             f"got {tuple(x.shape)} {x.dtype}")
        hs, h = self.rnn(self.embed(x), h)  # (B, T, H) of the top layer, (L, B, H)
        return self.out(hs), h


class TruncatedBPTT:
    """``compute_loss`` for ``train.fit`` on chunks ``(x, y, restart)``: the state travels, the gradient does not.

    The hidden state a chunk ends with is the next chunk's initial state, detached so that the
    backward pass stops at the chunk boundary; ``restart`` resets it to zero. The loss is the
    mean cross-entropy over the B * T next characters. Works for any model called as
    ``model(x, h) -> (logits (B, T, V), h)``.
    """

    def __init__(self):
        self.h = None

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        x, y, restart = batch
        if restart or self.h is None:
            h = None
        else:  # an LSTM's state is a pair (h, c): detach both
            h = tuple(t.detach() for t in self.h) if isinstance(self.h, tuple) else self.h.detach()
        logits, self.h = model(x, h)
        return nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())

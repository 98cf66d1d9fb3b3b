"""Recurrent models that more than one notebook trains (introduced in chapter 2)."""

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

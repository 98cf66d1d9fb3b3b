"""Listen, attend and spell: an attention decoder that writes the digits it hears (chapter 6, section 5).

The model of Chan et al. (2016) at the scale of spoken digit strings:

* the **listener** is ``speech.ConvEncoder`` (strided 1-D convolutions over log-mel frames,
  per-utterance CMVN), optionally followed by a bidirectional GRU so that every encoder
  frame knows its neighbourhood; strides (2, 2) turn 10 ms frames into 40 ms frames;
* the **speller** is a GRU cell that, before every output token, scores every encoder
  frame with ``seq2seq.AdditiveAttention``, reads the context vector, and emits a token.
  With ``location_kernel > 0`` the score also sees the previous step's weights, convolved
  with learned filters (location-aware attention, Chorowski et al. 2015); 0 keeps Chan et
  al.'s purely content-based score.

Output vocabulary: digits 0-9 are ids 0-9, then ``PAD`` = 10, ``SOS`` = 11, ``EOS`` = 12.
The model has the decoding interface of ``dlcourse.models.seq2seq`` (``encode(x, x_len) ->
(memory, s_0)``, ``step(y_prev, s, memory) -> (logits, s, weights)``, ``sos``, ``eos``), so
``seq2seq.translate`` decodes it greedily and returns its attention weights; the decoder
state it passes along is the pair (s_t, a_t). ``las_loss``
is its ``compute_loss`` for ``train.fit``: ``seq2seq_loss`` expects token ids as input, and
here the input is a float feature tensor (B, F, T).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .seq2seq import AdditiveAttention
from .speech import NUM_DIGITS, ConvEncoder, frame_mask

PAD, SOS, EOS = NUM_DIGITS, NUM_DIGITS + 1, NUM_DIGITS + 2
VOCAB_SIZE = NUM_DIGITS + 3
TOKENS = tuple(str(d) for d in range(NUM_DIGITS)) + ("<pad>", "<sos>", "<eos>")


class ListenAttendSpell(nn.Module):
    """Listener (``ConvEncoder`` [+ BiGRU]) and speller (GRU cell with additive attention)."""

    def __init__(self, in_features: int = 40, channels: Sequence[int] = (96, 96, 96), kernel_size: int = 5,
                 strides: Sequence[int] = (1, 2, 2), rnn_dim: int = 64, hidden_dim: int = 128,
                 embed_dim: int = 32, attn_dim: int = 64, dropout: float = 0.1, location_kernel: int = 0,
                 hop: int = 80):
        super().__init__()
        for name, value in [("rnn_dim", rnn_dim), ("hidden_dim", hidden_dim), ("embed_dim", embed_dim),
                            ("attn_dim", attn_dim)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "rnn_dim" else 1):
                raise ValueError(f"{name} must be a positive int (rnn_dim may be 0: no GRU), got {value!r}")
        self.sos, self.eos, self.tgt_pad = SOS, EOS, PAD
        self.listener = ConvEncoder(in_features, channels, kernel_size, strides, dropout)
        self.rnn = nn.GRU(self.listener.out_channels, rnn_dim, batch_first=True, bidirectional=True) \
            if rnn_dim else None
        key_dim = 2 * rnn_dim if rnn_dim else self.listener.out_channels
        self.init = nn.Linear(key_dim, hidden_dim)  # s_0 from the mean encoder frame
        self.attention = AdditiveAttention(hidden_dim, attn_dim, key_dim)
        self.embed = nn.Embedding(VOCAB_SIZE, embed_dim)
        self.cell = nn.GRUCell(embed_dim + key_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim + key_dim, VOCAB_SIZE)
        if isinstance(location_kernel, bool) or not isinstance(location_kernel, int) or location_kernel < 0 \
                or (location_kernel and location_kernel % 2 == 0):
            raise ValueError("location_kernel must be 0 (content-based attention) or an odd positive int, "
                             f"got {location_kernel!r}")
        if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
            raise ValueError(f"hop must be the features' hop in samples (a positive int, e.g. 80), got {hop!r}")
        self.hop = hop
        self.location = nn.Sequential(  # F * a_{t-1}, then a linear map into the score's hidden layer
            nn.Conv1d(1, 8, location_kernel, padding=location_kernel // 2, bias=False),
            nn.Conv1d(8, attn_dim, 1, bias=False)) if location_kernel else None

    @property
    def frame_samples(self) -> int:
        """Audio samples per encoder frame: the feature hop (``hop``, 80 samples = 10 ms) times the strides."""
        return self.hop * math.prod(self.listener.strides)

    def listen(self, x: torch.Tensor, x_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, F, T), frames (B,) -> encoder frames h (B, T', K) and their real counts (B,)."""
        h, h_len = self.listener(x, x_len)  # (B, T', C)
        if self.rnn is not None:
            packed = nn.utils.rnn.pack_padded_sequence(h, h_len.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=h.shape[1])
        return h, h_len.to(h.device)

    def encode(self, x: torch.Tensor, x_len: torch.Tensor):
        """x (B, F, T), x_len (B,) -> memory (h (B, T', K), U h (B, T', A), mask (B, T')), state (s_0, a_0).

        s_0 (B, H) comes from the mean encoder frame; a_0 (B, T') is uniform over the real frames.
        """
        h, h_len = self.listen(x, x_len)
        mask = frame_mask(h_len, h.shape[1])
        mean = (h * mask.unsqueeze(-1)).sum(1) / h_len.unsqueeze(-1).to(h.dtype)
        a0 = mask.to(h.dtype) / h_len.unsqueeze(-1).to(h.dtype)  # "previous" weights of step 1: uniform
        return (h, self.attention.U(h), mask), (torch.tanh(self.init(mean)), a0)

    def step(self, y_prev: torch.Tensor, state, memory):
        """y_{t-1} (B,), state (s_{t-1} (B, H), a_{t-1} (B, T')) -> logits (B, V), state, weights a_t (B, T').

        With ``location_kernel`` the scores also see the previous step's weights, convolved
        (location-aware attention): e_tj = v^T tanh(W s_{t-1} + U h_j + V (F * a_{t-1})_j).
        """
        s, a_prev = state
        h, Uh, mask = memory
        if self.location is not None:
            Uh = Uh + self.location(a_prev.unsqueeze(1)).transpose(1, 2)  # (B, T', A)
        c, a = self.attention(s, h, Uh, mask)
        s = self.cell(torch.cat([self.embed(y_prev), c], dim=-1), s)
        return self.out(torch.cat([s, c], dim=-1)), (s, a), a

    def forward(self, x: torch.Tensor, x_len: torch.Tensor, y_prev: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T_out, V) for the true previous tokens y_prev (B, T_out)."""
        if y_prev.ndim != 2 or y_prev.dtype != torch.long or len(y_prev) != len(x):
            raise ValueError(f"y_prev must be token ids (B, T_out) with B = {len(x)}, got "
                             f"{tuple(y_prev.shape)} {y_prev.dtype}")
        memory, state = self.encode(x, x_len)
        logits = []
        for y in y_prev.unbind(dim=1):
            step_logits, state, _ = self.step(y, state, memory)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


def frame_targets(digit_strings: Sequence[Sequence[int]]) -> torch.Tensor:
    """Digit strings -> framed targets ``<sos> d_1 ... d_n <eos>``, padded with ``PAD``: (B, max n + 2) long."""
    if len(digit_strings) == 0:
        raise ValueError("frame_targets needs at least one digit string")
    for s in digit_strings:
        if len(s) == 0 or any(not 0 <= int(d) < NUM_DIGITS for d in s):
            raise ValueError(f"every target must be a non-empty sequence of digits 0-9, got {list(s)}")
    y = torch.full((len(digit_strings), max(len(s) for s in digit_strings) + 2), PAD, dtype=torch.long)
    for i, s in enumerate(digit_strings):
        y[i, :len(s) + 2] = torch.tensor([SOS, *[int(d) for d in s], EOS])
    return y


def las_loss(model: ListenAttendSpell, batch) -> torch.Tensor:
    """``compute_loss`` for ``train.fit``: teacher-forced cross-entropy of a batch ``(x, x_len, y)``.

    ``x`` (B, F, T) features, ``x_len`` (B,) real frames, ``y`` framed targets from
    ``frame_targets``. Frames and target columns beyond the batch's longest are dropped first;
    ``PAD`` positions do not count.
    """
    x, x_len, y = batch
    if x.ndim != 3 or y.ndim != 2 or y.dtype != torch.long:
        raise ValueError(f"las_loss expects a batch (features (B, F, T), lengths (B,), targets (B, T_out) long), "
                         f"got {tuple(x.shape)}, {tuple(x_len.shape)}, {tuple(y.shape)} {y.dtype}")
    x, y = x[:, :, :int(x_len.max())], y[:, :int((y != PAD).sum(1).max())]
    logits = model(x, x_len, y[:, :-1])  # (B, T_out - 1, V)
    return nn.functional.cross_entropy(logits.flatten(0, 1), y[:, 1:].flatten(), ignore_index=PAD)


def digits_of(ids: torch.Tensor) -> list[list[int]]:
    """Decoded ids (B, T) -> the digits of each line up to its first ``EOS`` (other specials dropped)."""
    out = []
    for row in ids.tolist():
        row = row[:row.index(EOS)] if EOS in row else row
        out.append([t for t in row if t < NUM_DIGITS])
    return out


def decoded_length(ids: torch.Tensor) -> torch.Tensor:
    """Decoding steps up to and including the first ``EOS`` per line (all steps if none): (B,)."""
    is_eos = ids == EOS
    first = is_eos.float().argmax(1) + 1
    return torch.where(is_eos.any(1), first, torch.full_like(first, ids.shape[1]))


def peak_monotonicity(weights, steps: int | None = None) -> tuple[int, int]:
    """How many decoder steps move the attention peak forward: (forward steps, steps compared).

    ``weights`` (T_out, T_in) is one alignment. Step t >= 1 counts as forward when the argmax over
    frames of row t is >= that of row t - 1. Only the first ``steps`` rows are used (default: all).
    """
    w = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be one alignment (T_out, T_in), got shape {w.shape}")
    peaks = w[:w.shape[0] if steps is None else steps].argmax(1)
    return int((np.diff(peaks) >= 0).sum()), max(len(peaks) - 1, 0)


def sample_to_frame(samples, frame_samples: int) -> np.ndarray:
    """Sample indices -> the encoder frame they fall in (``frame_samples`` samples per frame)."""
    if frame_samples < 1:
        raise ValueError(f"frame_samples must be a positive int, got {frame_samples}")
    return np.asarray(samples) // frame_samples

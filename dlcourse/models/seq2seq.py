"""Encoder-decoders of two GRUs, without and with additive attention, and greedy decoding (chapter 2, sections 4-5).

Both models read padded source ids ``x`` (B, T) with their lengths ``x_len`` (B,) and are
trained with teacher forcing on targets framed as ``<sos> y_1 ... y_T' <eos>`` and padded.
They share one decoding interface, ``encode(x, x_len) -> (memory, s_0)`` and
``step(y_prev, s, memory) -> (logits, s, weights or None)``, so that ``translate`` and
``seq2seq_loss`` serve both. Vocabulary sizes, special ids and sizes are arguments: nothing
here knows about dates, so speech (chapter 6) and translation (chapter 7) reuse it.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_ids(name: str, x: torch.Tensor, x_len: torch.Tensor | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.dtype != torch.long:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be token ids of shape (B, T) and dtype long, got {got}")
    if x_len is not None:
        if x_len.shape != (x.shape[0],):
            raise ValueError(f"x_len must have shape (B,) = ({x.shape[0]},), got {tuple(x_len.shape)}")
        if len(x_len) and (x_len.min() < 1 or x_len.max() > x.shape[1]):
            raise ValueError(f"every length in x_len must be between 1 and T = {x.shape[1]}")


class _Encoder:
    """What both models share: the special token ids and the GRU encoder with its s_0 layer."""

    def _build_encoder(self, src_vocab_size, tgt_vocab_size, embed_dim, hidden_dim, src_pad, tgt_pad, sos, eos):
        for name, value, size in [("src_pad", src_pad, src_vocab_size), ("tgt_pad", tgt_pad, tgt_vocab_size),
                                  ("sos", sos, tgt_vocab_size), ("eos", eos, tgt_vocab_size)]:
            if not 0 <= value < size:
                raise ValueError(f"{name} = {value} is not an id of a vocabulary of {size} tokens")
        self.src_pad, self.tgt_pad, self.sos, self.eos = src_pad, tgt_pad, sos, eos
        self.src_embed = nn.Embedding(src_vocab_size, embed_dim, padding_idx=src_pad)
        self.encoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.init = nn.Linear(hidden_dim, hidden_dim)  # s_0 from h_T

    def _read(self, x, x_len):
        """x (B, T) padded, x_len (B,) -> encoder states h (B, T, H) and h_T (B, H), each line's last real one."""
        _check_ids("x", x, x_len)
        h, _ = self.encoder(self.src_embed(x))  # (B, T, H)
        return h, h[torch.arange(len(x), device=x.device), x_len - 1]


class Seq2Seq(nn.Module, _Encoder):
    """Encoder-decoder whose decoder sees the source only through c = h_T (section 2.4)."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int, hidden_dim: int, *,
                 src_pad: int = 0, tgt_pad: int = 0, sos: int = 1, eos: int = 2):
        super().__init__()
        self._build_encoder(src_vocab_size, tgt_vocab_size, embed_dim, hidden_dim, src_pad, tgt_pad, sos, eos)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim)
        self.decoder = nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(2 * hidden_dim, tgt_vocab_size)

    def encode(self, x, x_len):
        """x (B, T) padded, x_len (B,) -> context c = h_T (B, H) and s_0 (B, H)."""
        _, c = self._read(x, x_len)  # c = h_T (B, H)
        return c, torch.tanh(self.init(c))

    def decode(self, y_prev, s, c):
        """Previous tokens y_prev (B, T'), state s (B, H), c (B, H) -> logits (B, T', V), last state."""
        c_seq = c.unsqueeze(1).expand(-1, y_prev.shape[1], -1)  # (B, T', H): the same c at every step
        out, s = self.decoder(torch.cat([self.tgt_embed(y_prev), c_seq], dim=-1), s.unsqueeze(0))
        return self.out(torch.cat([out, c_seq], dim=-1)), s.squeeze(0)

    def step(self, y_prev, s, c):
        """One decoder step: y_prev (B,) -> logits (B, V), s (B, H), None (no attention weights)."""
        logits, s = self.decode(y_prev.unsqueeze(1), s, c)
        return logits.squeeze(1), s, None

    def forward(self, x, x_len, y_prev):
        """Teacher forcing: logits (B, T', V) for the true previous tokens y_prev (B, T')."""
        _check_ids("y_prev", y_prev)
        c, s0 = self.encode(x, x_len)
        return self.decode(y_prev, s0, c)[0]


class AdditiveAttention(nn.Module):
    """e_tj = v^T tanh(W s_{t-1} + U h_j), a_tj = softmax_j(e_tj) over real positions, c_t = sum_j a_tj h_j."""

    def __init__(self, query_dim: int, attn_dim: int, key_dim: int | None = None):
        super().__init__()
        key_dim = query_dim if key_dim is None else key_dim
        self.W = nn.Linear(query_dim, attn_dim, bias=False)
        self.U = nn.Linear(key_dim, attn_dim)  # its bias is the hidden layer's bias
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, s_prev, h, Uh, mask):
        """s_prev (B, H), h (B, T, K), Uh = U(h) (B, T, A), mask (B, T) -> c_t (B, K), a_t (B, T)."""
        if h.ndim != 3 or s_prev.ndim != 2 or Uh.shape[:2] != h.shape[:2] or mask.shape != h.shape[:2] \
                or s_prev.shape[0] != h.shape[0]:
            raise ValueError(f"AdditiveAttention expects s_prev (B, H), h (B, T, K), Uh (B, T, A) and mask (B, T), "
                             f"got {tuple(s_prev.shape)}, {tuple(h.shape)}, {tuple(Uh.shape)}, {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be boolean (True at real positions), got {mask.dtype}")
        e = self.v(torch.tanh(self.W(s_prev).unsqueeze(1) + Uh)).squeeze(-1)  # (B, T): scores e_tj
        e = e.masked_fill(~mask, float("-inf"))  # pad positions: exp(-inf) = 0
        a = torch.softmax(e, dim=-1)  # (B, T): weights a_tj
        c = torch.bmm(a.unsqueeze(1), h).squeeze(1)  # (B, 1, T) @ (B, T, K) -> (B, K)
        return c, a


class AttentionSeq2Seq(nn.Module, _Encoder):
    """Encoder-decoder with additive attention: a new context vector c_t at every decoder step (section 2.5)."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int, hidden_dim: int, attn_dim: int, *,
                 src_pad: int = 0, tgt_pad: int = 0, sos: int = 1, eos: int = 2):
        super().__init__()
        self._build_encoder(src_vocab_size, tgt_vocab_size, embed_dim, hidden_dim, src_pad, tgt_pad, sos, eos)
        self.attention = AdditiveAttention(hidden_dim, attn_dim)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim)
        self.cell = nn.GRUCell(embed_dim + hidden_dim, hidden_dim)
        self.out = nn.Linear(2 * hidden_dim, tgt_vocab_size)

    def encode(self, x, x_len):
        """x (B, T), x_len (B,) -> memory (h (B, T, H), U h_j (B, T, A), mask (B, T)) and s_0 (B, H)."""
        h, h_last = self._read(x, x_len)  # (B, T, H), (B, H)
        return (h, self.attention.U(h), x != self.src_pad), torch.tanh(self.init(h_last))

    def step(self, y_prev, s, memory):
        """y_{t-1} (B,), s_{t-1} (B, H) -> logits (B, V), s_t (B, H), a_t (B, T)."""
        c, a = self.attention(s, *memory)
        s = self.cell(torch.cat([self.tgt_embed(y_prev), c], dim=-1), s)
        return self.out(torch.cat([s, c], dim=-1)), s, a

    def forward(self, x, x_len, y_prev):
        """Teacher forcing, one step at a time: logits (B, T', V) for the true previous tokens y_prev (B, T')."""
        _check_ids("y_prev", y_prev)
        memory, s = self.encode(x, x_len)
        logits = []
        for y in y_prev.unbind(dim=1):
            step_logits, s, _ = self.step(y, s, memory)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)  # (B, T', V)


def seq2seq_loss(model: nn.Module, batch, pad: int | None = None) -> torch.Tensor:
    """``compute_loss`` for ``train.fit``: teacher-forced cross-entropy of a batch ``(x, x_len, y)``.

    ``y`` (B, T'+2) holds the framed targets; columns that are padding in every line are
    dropped first, and padded positions (``pad``, by default ``model.tgt_pad``) do not count.
    """
    x, x_len, y = batch
    pad = getattr(model, "tgt_pad", None) if pad is None else pad
    if pad is None:
        raise ValueError("seq2seq_loss needs the target <pad> id: pass pad=... or use a model with tgt_pad")
    _check_ids("y", y)
    x, y = x[:, :x_len.max()], y[:, :(y != pad).sum(1).max()]  # drop all-pad columns
    logits = model(x, x_len, y[:, :-1])  # (B, T', V): teacher forcing
    return nn.functional.cross_entropy(logits.flatten(0, 1), y[:, 1:].flatten(), ignore_index=pad)


@torch.no_grad()
def translate(model: nn.Module, x: torch.Tensor, x_len: torch.Tensor, max_len: int):
    """Greedy decoding of ``max_len`` steps from ``model.sos``: each step's argmax is the next input.

    Returns the output ids (B, max_len) and, for a model with attention, its weights
    (B, max_len, T) on the CPU (``weights[i, :len(out), :len(src)]`` is an
    ``attention_maps.Alignment`` matrix), else None. The model's train/eval mode is restored.
    """
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive int, got {max_len!r}")
    was_training = model.training
    model.eval()
    memory, s = model.encode(x, x_len)
    y = torch.full((len(x),), model.sos, device=x.device)  # (B,)
    outputs, weights = [], []
    for _ in range(max_len):
        logits, s, a = model.step(y, s, memory)
        y = logits.argmax(dim=-1)  # (B,): the decoder's own guess is its next input
        outputs.append(y)
        weights.append(a)
    model.train(was_training)
    return torch.stack(outputs, dim=1), None if weights[0] is None else torch.stack(weights, dim=1).cpu()

"""Convolutional acoustic models over speech features (chapter 6).

Input: padded features ``x`` of shape (B, F, T) (F log-mel bands or MFCCs, T frames) and
the number of real frames per line ``lengths`` (B,). Padding frames never influence a real
frame's statistics: normalisation uses real frames only, and pooling averages real frames only.

* ``normalise_utterance``: cepstral mean and variance normalisation (CMVN), per utterance and
  per feature; it removes a constant channel or loudness offset and part of the speaker.
* ``ConvEncoder``: 1-D convolutions over time, each followed by ReLU (optional batch norm and dropout);
  a stride > 1 shortens the sequence. Returns frame features (B, T', C) and T' per line.
* ``DigitClassifier``: encoder + mean over real frames + linear layer: isolated digits.
* ``CTCRecogniser``: encoder + linear layer to 11 classes per frame (0 = CTC blank, digit d
  = class d + 1) and log-softmax, ready for ``nn.CTCLoss``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

BLANK = 0
NUM_DIGITS = 10


def _check_features(x: torch.Tensor, lengths: torch.Tensor, in_features: int | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"features must be a float tensor (B, F, T), got {got}")
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(f"expected {in_features} features per frame (axis 1 of (B, F, T)), got {x.shape[1]}")
    if not isinstance(lengths, torch.Tensor) or lengths.shape != (x.shape[0],):
        raise ValueError(f"lengths must be a tensor of shape (B,) = ({x.shape[0]},) holding the real frame counts")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[2]):
        raise ValueError(f"every length must be between 1 and T = {x.shape[2]}, got {lengths.tolist()}")


def frame_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) boolean mask, True at the real frames of each line."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def normalise_utterance(x: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mean 0 and variance 1 per utterance and feature over the real frames (CMVN); padding set to 0."""
    _check_features(x, lengths)
    mask = frame_mask(lengths.to(x.device), x.shape[2])[:, None, :].to(x.dtype)  # (B, 1, T)
    n = mask.sum(-1, keepdim=True)
    mean = (x * mask).sum(-1, keepdim=True) / n
    var = (((x - mean) * mask) ** 2).sum(-1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + eps) * mask


class ConvEncoder(nn.Module):
    """Conv1d(-BatchNorm)-ReLU(-dropout) blocks over time; the block's stride divides the frame rate.

    After every block the padding frames are set to 0 again, so a real frame's output does not
    depend on how much padding its batch has (without batch norm; in training mode the batch
    statistics still count the zeros).

    ``batch_norm=True`` puts a ``BatchNorm1d`` after every convolution; CTC training leaves
    its all-blank plateau much sooner with it (the batch statistics include padding frames).
    """

    def __init__(self, in_features: int = 40, channels: Sequence[int] = (96, 96, 96), kernel_size: int = 5,
                 strides: Sequence[int] | None = None, dropout: float = 0.0, normalise: bool = True,
                 batch_norm: bool = False):
        super().__init__()
        channels = list(channels)
        strides = [1] * len(channels) if strides is None else list(strides)
        if not channels or len(strides) != len(channels) or min(channels) < 1 or min(strides) < 1:
            raise ValueError(f"channels and strides must be equally long lists of positive ints, got {channels} "
                             f"and {strides}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (padding k // 2 keeps the length), got {kernel_size}")
        self.in_features, self.kernel_size, self.strides = in_features, kernel_size, strides
        self.out_channels, self.normalise = channels[-1], normalise
        blocks, c_in = [], in_features
        for c, s in zip(channels, strides):
            layers = [nn.Conv1d(c_in, c, kernel_size, stride=s, padding=kernel_size // 2)]
            layers += [nn.BatchNorm1d(c), nn.ReLU()] if batch_norm else [nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
            c_in = c
        self.blocks = nn.ModuleList(blocks)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Real frames after the encoder: each stride-s layer maps L to floor((L - 1) / s) + 1."""
        for s in self.strides:
            lengths = torch.div(lengths - 1, s, rounding_mode="floor") + 1
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, T), (B,) -> frame features (B, T', C) and real frames per line (B,)."""
        _check_features(x, lengths, self.in_features)
        lengths = lengths.to(x.device)
        if self.normalise:
            x = normalise_utterance(x, lengths)  # padding frames set to 0
        else:
            x = x * frame_mask(lengths, x.shape[2])[:, None, :].to(x.dtype)
        for block, s in zip(self.blocks, self.strides):
            lengths = torch.div(lengths - 1, s, rounding_mode="floor") + 1
            x = block(x)
            x = x * frame_mask(lengths, x.shape[2])[:, None, :].to(x.dtype)  # padding stays 0 for the next layer
        return x.transpose(1, 2), lengths


class DigitClassifier(nn.Module):
    """One digit per recording: encoder, mean over the real frames, linear layer to 10 logits."""

    def __init__(self, in_features: int = 40, channels: Sequence[int] = (96, 96, 96), kernel_size: int = 5,
                 strides: Sequence[int] | None = (1, 2, 2), dropout: float = 0.1, num_classes: int = NUM_DIGITS):
        super().__init__()
        self.encoder = ConvEncoder(in_features, channels, kernel_size, strides, dropout)
        self.out = nn.Linear(self.encoder.out_channels, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h, out_len = self.encoder(x, lengths)  # (B, T', C)
        mask = frame_mask(out_len, h.shape[1]).unsqueeze(-1).to(h.dtype)
        return self.out((h * mask).sum(1) / out_len[:, None].to(h.dtype))  # (B, num_classes)


class CTCRecogniser(nn.Module):
    """Per-frame log-probabilities over blank + 10 digits, shape (T', B, 11) as ``nn.CTCLoss`` wants."""

    def __init__(self, in_features: int = 40, channels: Sequence[int] = (128, 128, 128, 128), kernel_size: int = 5,
                 strides: Sequence[int] | None = (1, 2, 1, 1), dropout: float = 0.1, batch_norm: bool = True):
        super().__init__()
        self.encoder = ConvEncoder(in_features, channels, kernel_size, strides, dropout, batch_norm=batch_norm)
        self.out = nn.Linear(self.encoder.out_channels, NUM_DIGITS + 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, T), (B,) -> log-probabilities (T', B, 11) and output lengths (B,)."""
        h, out_len = self.encoder(x, lengths)
        return torch.log_softmax(self.out(h), dim=-1).transpose(0, 1), out_len


def ctc_targets(digit_strings: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit strings -> concatenated CTC labels (digit d -> d + 1; 0 is the blank) and target lengths."""
    flat, lengths = [], []
    for s in digit_strings:
        if len(s) == 0 or any(not 0 <= int(d) <= 9 for d in s):
            raise ValueError(f"every target must be a non-empty sequence of digits 0-9, got {list(s)}")
        flat += [int(d) + 1 for d in s]
        lengths.append(len(s))
    return torch.tensor(flat, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


def ctc_loss(model: CTCRecogniser, batch) -> torch.Tensor:
    """``compute_loss`` for ``train.fit``: mean CTC loss of a batch ``(x, lengths, targets, target_lengths)``."""
    x, lengths, targets, target_lengths = batch
    log_probs, out_len = model(x, lengths)
    if bool((out_len < target_lengths).any()):
        raise ValueError("an utterance has fewer encoder frames than target digits: lower the encoder's strides")
    return nn.functional.ctc_loss(log_probs.float(), targets, out_len, target_lengths, blank=BLANK,
                                  zero_infinity=True)

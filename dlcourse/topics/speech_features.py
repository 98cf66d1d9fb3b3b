"""Speech features from their definitions, on ``torch``: STFT power, mel filterbank, log-mel, MFCC (chapter 6).

All functions work on a waveform (n_samples,) or a batch (B, n_samples) on any device and
return frequency along the second-to-last axis and frames along the last.

* Short-time Fourier transform: frames of ``n_fft`` samples every ``hop`` samples, a Hann
  window, ``torch.stft``; the power spectrum is |X[k, t]|^2 for k = 0..n_fft/2.
* Mel scale (the HTK formula): m = 2595 log10(1 + f / 700). A mel filterbank has
  ``n_mels`` triangular filters whose peaks are equally spaced in mel between ``f_min`` and
  ``f_max``; filter i rises from the peak of filter i-1 to its own peak and falls to the
  peak of filter i+1, with height 1 (``norm=None``) or area-normalised ("slaney").
* Log-mel: log(M P + eps), with M the filterbank and P the power spectrum.
* MFCC: the first ``n_mfcc`` coefficients of the orthonormal DCT-II of the log-mel frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

SAMPLE_RATE = 8000
N_FFT = 256  # 32 ms at 8 kHz
HOP = 80  # 10 ms
N_MELS = 40


def _check_wave(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim not in (1, 2) or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a float waveform (n_samples,) or a batch (B, n_samples), got {got}")
    return x


def _one_wave(w: torch.Tensor, i: int) -> torch.Tensor:
    """Waveform ``i`` of a list as (n_samples,); a (1, n_samples) tensor is flattened."""
    if isinstance(w, torch.Tensor) and w.ndim == 2 and w.shape[0] == 1:
        w = w[0]
    if not isinstance(w, torch.Tensor) or w.ndim != 1:
        got = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"waveform {i} must be a 1-D tensor (n_samples,), got {got}; pass a list of single recordings")
    return _check_wave(w)


def hz_to_mel(f: float | torch.Tensor) -> torch.Tensor:
    """HTK mel scale: 2595 log10(1 + f / 700) (a float or a tensor)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: float | torch.Tensor) -> torch.Tensor:
    """The inverse of ``hz_to_mel``: 700 (10^(m / 2595) - 1)."""
    return 700.0 * (10.0 ** (torch.as_tensor(m, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   f_min: float = 0.0, f_max: float | None = None, norm: str | None = None) -> torch.Tensor:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), float32.

    ``norm=None`` gives every triangle height 1; ``norm="slaney"`` divides filter i by half
    its width in Hz, 2 / (f_{i+2} - f_i), so each has the same area.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if n_mels < 1 or n_fft < 2:
        raise ValueError(f"need n_mels >= 1 and n_fft >= 2, got {n_mels} and {n_fft}")
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2}, got {f_min}, {f_max}")
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None (height 1) or 'slaney' (equal area), got {norm!r}")
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)  # centre of every FFT bin
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2,
                                     dtype=torch.float64))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (upper - lower))
    return weights.float()


def stft_power(x: torch.Tensor, n_fft: int = N_FFT, hop: int = HOP, center: bool = True) -> torch.Tensor:
    """|STFT|^2 with a Hann window: (n_fft // 2 + 1, T) or (B, n_fft // 2 + 1, T)."""
    x = _check_wave(x)
    if n_fft < 2 or hop < 1:
        raise ValueError(f"need n_fft >= 2 and hop >= 1 (in samples), got n_fft={n_fft}, hop={hop}")
    if x.shape[-1] < (1 if center else n_fft):
        raise ValueError(f"the waveform has {x.shape[-1]} samples, fewer than one frame of {n_fft}")
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=hop, window=window, center=center, pad_mode="constant",
                      return_complex=True)
    return spec.real ** 2 + spec.imag ** 2


def log_mel(x: torch.Tensor, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, hop: int = HOP,
            n_mels: int = N_MELS, eps: float = 1e-6, filterbank: torch.Tensor | None = None) -> torch.Tensor:
    """log(mel filterbank @ power spectrum + eps): (n_mels, T) or (B, n_mels, T)."""
    fb = mel_filterbank(n_mels, n_fft, sample_rate) if filterbank is None else filterbank
    if not isinstance(fb, torch.Tensor) or fb.ndim != 2 or fb.shape[1] != n_fft // 2 + 1:
        raise ValueError(f"filterbank must have shape (n_mels, n_fft // 2 + 1 = {n_fft // 2 + 1}), "
                         f"got {tuple(getattr(fb, 'shape', ()))}")
    power = stft_power(x, n_fft, hop)
    return torch.log(torch.matmul(fb.to(power), power) + eps)


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """Orthonormal DCT-II as a matrix (n_out, n_in): row k is sqrt(2/N) cos(pi k (2n + 1) / 2N), row 0 scaled by 1/sqrt(2)."""
    if not 1 <= n_out <= n_in:
        raise ValueError(f"need 1 <= n_out <= n_in (keep at most as many coefficients as there are inputs, "
                         f"e.g. n_mfcc <= n_mels), got n_out={n_out} and n_in={n_in}")
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    basis = math.sqrt(2.0 / n_in) * torch.cos(math.pi * k * (2 * n + 1) / (2 * n_in))
    basis[0] /= math.sqrt(2.0)
    return basis.float()


def mfcc(x: torch.Tensor, n_mfcc: int = 13, **log_mel_kwargs) -> torch.Tensor:
    """Mel-frequency cepstral coefficients: DCT-II of the log-mel frames, (n_mfcc, T) or (B, n_mfcc, T)."""
    lm = log_mel(x, **log_mel_kwargs)
    return torch.matmul(dct_matrix(n_mfcc, lm.shape[-2]).to(lm), lm)


def num_frames(n_samples: int, hop: int = HOP, n_fft: int = N_FFT) -> int:
    """Frames ``torch.stft(center=True)`` makes from ``n_samples`` samples: 1 + n_samples // hop.

    ``center=True`` pads n_fft // 2 zeros at each end, so for an even ``n_fft`` the count does
    not depend on it; for an odd one it is 1 + (n_samples - 1) // hop.
    """
    if n_samples < 1 or hop < 1:
        raise ValueError(f"need n_samples >= 1 and hop >= 1, got {n_samples} and {hop}")
    return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop


def feature_batch(waves: Sequence[torch.Tensor], kind: str = "log_mel", pad_value: float | None = None,
                  chunk: int = 256, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of waveforms of different lengths, padded: (B, n_features, T_max) and frame counts (B,).

    ``kind`` is "log_mel" or "mfcc"; ``kwargs`` go to ``log_mel`` or ``mfcc``. Padding frames
    hold ``pad_value`` (default: the smallest feature value of the batch, i.e. silence for
    log-mel). The waveforms are sorted by length, zero-padded and transformed ``chunk`` at a
    time; since ``torch.stft(center=True)`` pads with zeros anyway, every real frame equals the
    one computed from that waveform alone.
    """
    if kind not in ("log_mel", "mfcc"):
        raise ValueError(f"kind must be 'log_mel' or 'mfcc', got {kind!r}")
    if len(waves) == 0:
        raise ValueError("feature_batch needs at least one waveform")
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of waveforms, got {chunk}")
    fn = log_mel if kind == "log_mel" else mfcc
    waves = [_one_wave(w, i) for i, w in enumerate(waves)]
    hop, n_fft = kwargs.get("hop", HOP), kwargs.get("n_fft", N_FFT)
    lengths = torch.tensor([num_frames(len(w), hop, n_fft) for w in waves])
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))  # similar lengths share a chunk
    parts = []
    for start in range(0, len(order), chunk):
        group = [waves[i] for i in order[start:start + chunk]]
        n = max(len(w) for w in group)
        feats = fn(torch.stack([F.pad(w, (0, n - len(w))) for w in group]), **kwargs)  # (b, n_features, T)
        parts.append(F.pad(feats, (0, int(lengths.max()) - feats.shape[-1])))
    out = parts[0].new_empty((len(waves), *parts[0].shape[1:]))
    out[torch.tensor(order, device=out.device)] = torch.cat(parts)
    real = torch.arange(out.shape[-1], device=out.device) < lengths.to(out.device)[:, None]  # (B, T_max)
    fill = float(out.masked_select(real[:, None, :]).min()) if pad_value is None else pad_value
    return out.masked_fill(~real[:, None, :], fill), lengths

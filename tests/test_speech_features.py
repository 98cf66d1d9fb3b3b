"""Speech features (dlcourse.topics.speech_features) against their definitions, numpy and scipy."""

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.fft  # noqa: E402
import torch  # noqa: E402

from dlcourse.topics import speech_features as sf  # noqa: E402
from dlcourse.topics import speech_plots as sp  # noqa: E402


def direct_stft_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|DFT|^2 of periodic-Hann-windowed frames, centred like torch.stft(center=True, pad_mode='constant')."""
    padded = np.pad(x, (n_fft // 2, n_fft // 2))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    starts = range(0, len(padded) - n_fft + 1, hop)
    frames = np.stack([padded[s:s + n_fft] * window for s in starts], axis=1)  # (n_fft, T)
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    dft = np.exp(-2j * np.pi * k * n / n_fft) @ frames  # the sum over n, written out
    return np.abs(dft) ** 2


@pytest.mark.parametrize("n_fft,hop,n_samples", [(256, 80, 1000), (64, 16, 333), (512, 128, 4000)])
def test_stft_power_matches_a_direct_dft_of_hann_windowed_frames(n_fft, hop, n_samples):
    x = torch.randn(n_samples, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    power = sf.stft_power(x, n_fft, hop).numpy()
    expected = direct_stft_power(x.numpy(), n_fft, hop)
    assert power.shape == expected.shape == (n_fft // 2 + 1, sf.num_frames(n_samples, hop))
    assert np.abs(power - expected).max() <= 1e-10 * expected.max()


def test_stft_power_of_a_batch_equals_each_line_and_a_pure_tone_peaks_at_its_bin():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 800, generator=g)
    batch = sf.stft_power(x)
    assert batch.shape == (3, sf.N_FFT // 2 + 1, sf.num_frames(800))
    for i in range(3):
        torch.testing.assert_close(batch[i], sf.stft_power(x[i]))
    k = 20  # 20 * 8000 / 256 = 625 Hz, exactly on a bin
    tone = torch.sin(2 * math.pi * k * sf.SAMPLE_RATE / sf.N_FFT * torch.arange(4000) / sf.SAMPLE_RATE)
    assert (sf.stft_power(tone)[:, 10:-10].argmax(0) == k).all()


def test_dct_matrix_matches_scipy_orthonormal_dct_ii_and_is_orthonormal():
    x = np.random.default_rng(0).normal(size=(40, 7))
    ours = sf.dct_matrix(13, 40).double().numpy() @ x
    np.testing.assert_allclose(ours, scipy.fft.dct(x, type=2, norm="ortho", axis=0)[:13], atol=1e-6)
    full = sf.dct_matrix(40, 40).double()
    torch.testing.assert_close(full @ full.T, torch.eye(40, dtype=torch.float64), atol=1e-6, rtol=0)


def test_mfcc_is_the_dct_of_log_mel():
    x = torch.randn(2000, generator=torch.Generator().manual_seed(2))
    lm = sf.log_mel(x).double().numpy()
    np.testing.assert_allclose(sf.mfcc(x, 13).numpy(), scipy.fft.dct(lm, norm="ortho", axis=0)[:13],
                               atol=1e-4, rtol=1e-5)


def test_mel_scale_inverts_and_puts_1000_hz_near_1000_mel():
    f = torch.tensor([0.0, 100.0, 700.0, 1000.0, 4000.0, 8000.0])
    torch.testing.assert_close(sf.mel_to_hz(sf.hz_to_mel(f)), f.double())
    assert float(sf.hz_to_mel(0.0)) == 0.0
    assert abs(float(sf.hz_to_mel(1000.0)) - 1000.0) < 0.1
    assert float(sf.hz_to_mel(1400.0)) - float(sf.hz_to_mel(1000.0)) < 400  # compressive above 1 kHz


def mel_edges(n_mels, sample_rate, f_min=0.0, f_max=None):
    f_max = sample_rate / 2 if f_max is None else f_max
    mels = np.linspace(float(sf.hz_to_mel(f_min)), float(sf.hz_to_mel(f_max)), n_mels + 2)
    return sf.mel_to_hz(torch.from_numpy(mels)).numpy()


def test_mel_filters_peak_at_mel_spaced_centres_and_vanish_outside_their_neighbours():
    n_mels, n_fft, sr = 20, 8192, 8000  # fine bins (0.98 Hz): each triangle is sampled densely
    fb = sf.mel_filterbank(n_mels, n_fft, sr).numpy()
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_edges(n_mels, sr)
    spacing = np.diff(sf.hz_to_mel(torch.from_numpy(edges)).numpy())
    np.testing.assert_allclose(spacing, spacing[0], rtol=1e-9)  # equally spaced in mel
    for i in range(n_mels):
        lower, centre, upper = edges[i], edges[i + 1], edges[i + 2]
        assert abs(freqs[fb[i].argmax()] - centre) <= sr / n_fft
        assert fb[i].max() > 0.99 and fb[i].max() <= 1.0 + 1e-6
        assert (fb[i][(freqs <= lower) | (freqs >= upper)] == 0).all()
        assert (fb[i][(freqs > lower + 1) & (freqs < upper - 1)] > 0).all()
    inside = (freqs >= edges[1]) & (freqs <= edges[-2])  # neighbouring triangles sum to 1 there
    np.testing.assert_allclose(fb.sum(0)[inside], 1.0, atol=1e-5)


def test_mel_filterbank_honours_f_min_and_f_max():
    fb = sf.mel_filterbank(10, 512, 8000, f_min=300.0, f_max=3400.0).numpy()
    freqs = np.linspace(0, 4000, 257)
    assert (fb[:, (freqs <= 300.0) | (freqs >= 3400.0)] == 0).all()
    assert fb.shape == (10, 257) and fb.dtype == np.float32


def test_slaney_norm_gives_every_filter_the_same_area():
    n_fft, sr = 8192, 8000
    fb = sf.mel_filterbank(20, n_fft, sr, norm="slaney").numpy()
    areas = fb.sum(1) * (sr / n_fft)  # Riemann sum over frequency in Hz
    np.testing.assert_allclose(areas, 1.0, rtol=2e-3)
    heights = sf.mel_filterbank(20, n_fft, sr).numpy().sum(1) * (sr / n_fft)
    assert heights[-1] / heights[0] > 5  # without the norm, high filters (wider in Hz) have more area


def test_log_mel_shapes_and_a_gain_adds_a_constant():
    x = torch.randn(2, 1600, generator=torch.Generator().manual_seed(3))
    lm = sf.log_mel(x)
    assert lm.shape == (2, sf.N_MELS, sf.num_frames(1600))
    shift = sf.log_mel(0.5 * x) - lm
    torch.testing.assert_close(shift, torch.full_like(shift, math.log(0.25)), atol=1e-3, rtol=0)
    c = sf.mfcc(0.5 * x) - sf.mfcc(x)  # only c0 (the mean of the log-mel bands) moves
    torch.testing.assert_close(c[:, 0], torch.full_like(c[:, 0], math.sqrt(sf.N_MELS) * math.log(0.25)),
                               atol=1e-2, rtol=0)
    assert c[:, 1:].abs().max() < 1e-2


def test_feature_batch_pads_and_equals_each_recording_alone():
    g = torch.Generator().manual_seed(4)
    waves = [torch.randn(n, generator=g) for n in (900, 2500, 400, 1234)]
    for kind, fn in (("log_mel", sf.log_mel), ("mfcc", sf.mfcc)):
        out, lengths = sf.feature_batch(waves, kind=kind, chunk=2)
        assert lengths.tolist() == [sf.num_frames(len(w)) for w in waves]
        assert out.shape[-1] == int(lengths.max())
        for i, w in enumerate(waves):
            alone = fn(w)
            torch.testing.assert_close(out[i, :, : lengths[i]], alone, atol=1e-4, rtol=1e-5)
            if lengths[i] < out.shape[-1]:
                assert (out[i, :, lengths[i]:] == out.min()).all()
    out, lengths = sf.feature_batch(waves, kind="mfcc", n_fft=201, hop=50, n_mels=20, n_mfcc=8)  # odd n_fft
    for i, w in enumerate(waves):
        alone = sf.mfcc(w, 8, n_fft=201, hop=50, n_mels=20)
        assert alone.shape[-1] == lengths[i] == sf.num_frames(len(w), 50, 201)
        torch.testing.assert_close(out[i, :, : lengths[i]], alone, atol=1e-4, rtol=1e-5)
    out, _ = sf.feature_batch([w[None] for w in waves], pad_value=0.0)
    assert (out[2, :, sf.num_frames(400):] == 0).all()


@pytest.mark.parametrize("call,match", [
    (lambda: sf.stft_power(torch.zeros(2, 3, 100)), r"\(n_samples,\) or a batch"),
    (lambda: sf.stft_power(torch.zeros(100, dtype=torch.int16)), "float waveform"),
    (lambda: sf.stft_power(torch.zeros(100), hop=0), "hop >= 1"),
    (lambda: sf.stft_power(torch.zeros(100), n_fft=256, center=False), "fewer than one frame"),
    (lambda: sf.mel_filterbank(0), "n_mels >= 1"),
    (lambda: sf.mel_filterbank(f_max=5000.0), "f_max <= sample_rate / 2"),
    (lambda: sf.mel_filterbank(f_min=500.0, f_max=400.0), "f_min < f_max"),
    (lambda: sf.mel_filterbank(norm="area"), "norm must be None"),
    (lambda: sf.log_mel(torch.zeros(800), filterbank=torch.zeros(40, 100)), "n_fft // 2 \\+ 1 = 129"),
    (lambda: sf.mfcc(torch.zeros(800), n_mfcc=41), "n_mfcc <= n_mels"),
    (lambda: sf.dct_matrix(0, 5), "1 <= n_out <= n_in"),
    (lambda: sf.feature_batch([torch.zeros(800)], kind="spectrogram"), "'log_mel' or 'mfcc'"),
    (lambda: sf.feature_batch([]), "at least one waveform"),
    (lambda: sf.feature_batch([torch.zeros(2, 800)]), "waveform 0 must be a 1-D tensor"),
    (lambda: sf.feature_batch([np.zeros(800)]), "waveform 0 must be a 1-D tensor"),
    (lambda: sf.num_frames(0), "n_samples >= 1"),
])
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_plot_helpers_draw_and_reject_bad_input():
    g = torch.Generator().manual_seed(5)
    recs = [SimpleNamespace(audio=0.1 * torch.randn(n, generator=g), digit=d, speaker="theo", take=0)
            for d, n in ((3, 2400), (7, 3000))]
    assert len(sp.plot_waveforms(recs).axes) == 2
    assert len(sp.plot_feature_grid(recs).axes) >= 6
    assert len(sp.plot_filterbank(sf.mel_filterbank()).axes) == 1
    with pytest.raises(ValueError, match="2-D tensor"):
        sp.plot_filterbank(torch.zeros(3))
    with pytest.raises(ValueError, match="at least one recording"):
        sp.plot_waveforms([])
    plt.close("all")


def test_librosa_agrees_when_installed():
    librosa = pytest.importorskip("librosa")
    fb = librosa.filters.mel(sr=8000, n_fft=256, n_mels=40, htk=True, norm=None)
    np.testing.assert_allclose(sf.mel_filterbank(40, 256, 8000).numpy(), fb, atol=1e-5)
    fb = librosa.filters.mel(sr=8000, n_fft=256, n_mels=40, htk=True, norm="slaney")
    np.testing.assert_allclose(sf.mel_filterbank(40, 256, 8000, norm="slaney").numpy(), fb, atol=1e-6)
    x = np.random.default_rng(0).normal(size=4000).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=x, sr=8000, n_fft=256, hop_length=80, window="hann", center=True,
                                         pad_mode="constant", power=2.0, n_mels=40, htk=True, norm=None)
    ours = torch.exp(sf.log_mel(torch.from_numpy(x), eps=0.0)).numpy()
    np.testing.assert_allclose(ours, mel, rtol=1e-3, atol=1e-3 * mel.max())

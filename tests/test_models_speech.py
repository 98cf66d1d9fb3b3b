import pytest
import torch

from dlcourse.models.speech import (CTCRecogniser, ConvEncoder, DigitClassifier, ctc_loss, ctc_targets, frame_mask,
                                    normalise_utterance)


def _batch(lengths, F=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    x = torch.randn(len(lengths), F, T, generator=g) * 3 + 5
    return x, torch.tensor(lengths)


def test_cmvn_uses_real_frames_only():
    x, lengths = _batch([7, 4])
    y = normalise_utterance(x, lengths)
    real = y[1, :, :4]
    assert torch.allclose(real.mean(-1), torch.zeros(40), atol=1e-5)
    assert torch.allclose(real.var(-1, unbiased=False), torch.ones(40), atol=1e-3)
    assert (y[1, :, 4:] == 0).all()
    x2 = x.clone()
    x2[1, :, 4:] = 1e6  # padding values must not matter
    assert torch.allclose(normalise_utterance(x2, lengths)[1, :, :4], real)


def test_encoder_lengths_follow_the_strides_and_padding_does_not_leak():
    enc = ConvEncoder(40, (16, 16), kernel_size=3, strides=(2, 2))
    x, lengths = _batch([17, 9])
    h, out_len = enc(x, lengths)
    assert h.shape == (2, 5, 16) and out_len.tolist() == [5, 3]
    for normalise in (True, False):
        clf = DigitClassifier(channels=(8, 8, 8), strides=(1, 2, 2), dropout=0.0).eval()
        clf.encoder.normalise = normalise
        x3 = x.clone()
        x3[1, :, 9:] = 1e6  # padding frames are zeroed before and after every block: their values cannot matter
        short = clf(x[1:, :, :9], lengths[1:])  # the same utterance without any padding
        assert torch.allclose(clf(x3[1:], lengths[1:]), short, atol=1e-5)
        assert torch.allclose(clf(x[1:], lengths[1:]), short, atol=1e-5)


def test_ctc_targets_and_loss():
    targets, tl = ctc_targets([[0, 9], [3]])
    assert targets.tolist() == [1, 10, 4] and tl.tolist() == [2, 1]
    with pytest.raises(ValueError, match="digits 0-9"):
        ctc_targets([[]])
    with pytest.raises(ValueError, match="digits 0-9"):
        ctc_targets([[10]])
    torch.manual_seed(0)
    model = CTCRecogniser(channels=(16, 16), strides=(1, 2))
    x, lengths = _batch([20, 12])
    log_probs, out_len = model(x, lengths)
    assert log_probs.shape == (10, 2, 11) and out_len.tolist() == [10, 6]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(10, 2), atol=1e-5)
    loss = ctc_loss(model, (x, lengths, targets, tl))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0


def test_bad_inputs_say_what_is_expected():
    enc = ConvEncoder(40)
    x, lengths = _batch([5, 5])
    with pytest.raises(ValueError, match=r"\(B, F, T\)"):
        enc(x[0], lengths)
    with pytest.raises(ValueError, match="expected 40 features"):
        enc(x[:, :13], lengths)
    with pytest.raises(ValueError, match="lengths"):
        enc(x, torch.tensor([5]))
    with pytest.raises(ValueError, match="between 1 and T"):
        enc(x, torch.tensor([6, 5]))
    with pytest.raises(ValueError, match="odd"):
        ConvEncoder(40, kernel_size=4)
    with pytest.raises(ValueError, match="equally long"):
        ConvEncoder(40, channels=(8, 8), strides=(1,))
    assert frame_mask(torch.tensor([2, 3]), 3).tolist() == [[True, True, False], [True, True, True]]

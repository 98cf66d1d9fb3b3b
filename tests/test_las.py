"""Listen, attend and spell (dlcourse.models.las): shapes, masking, decoding interface, loss and helpers."""

import numpy as np
import pytest
import torch

from dlcourse.models import las
from dlcourse.models.las import EOS, PAD, SOS, ListenAttendSpell, las_loss
from dlcourse.models.seq2seq import translate
from dlcourse.train import fit


def _batch(lengths=(60, 45, 30), features=40):
    torch.manual_seed(0)
    x = torch.randn(len(lengths), features, max(lengths))
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("location_kernel", [0, 5])
def test_encode_step_and_forward_shapes(location_kernel):
    model = ListenAttendSpell(channels=(16, 16), strides=(1, 2), rnn_dim=8, hidden_dim=24, embed_dim=8,
                              attn_dim=12, location_kernel=location_kernel)
    x, x_len = _batch()
    (h, Uh, mask), (s, a0) = model.encode(x, x_len)
    assert h.shape == (3, 30, 16) and Uh.shape == (3, 30, 12) and s.shape == (3, 24)
    assert mask.sum(1).tolist() == [30, 23, 15]  # frames after a stride-2 layer: floor((L - 1) / 2) + 1
    assert torch.allclose(a0.sum(1), torch.ones(3))
    logits, (s1, a1), weights = model.step(torch.full((3,), SOS), (s, a0), (h, Uh, mask))
    assert logits.shape == (3, las.VOCAB_SIZE) and weights.shape == (3, 30)
    assert torch.allclose(weights.sum(1), torch.ones(3), atol=1e-5)
    assert (weights[~mask] == 0).all()  # no weight on padding frames
    y = las.frame_targets([[1, 2], [3], [4, 5, 6]])
    assert model(x, x_len, y[:, :-1]).shape == (3, 4, las.VOCAB_SIZE)


def test_padding_frames_do_not_change_a_line():
    # one convolution: ConvEncoder zeroes padding frames at its input only, so deeper layers see
    # a little of the padding at the last real frames; the GRU, attention and loss must not
    model = ListenAttendSpell(channels=(16,), strides=(2,), rnn_dim=8, hidden_dim=24, location_kernel=5).eval()
    x, x_len = _batch((40, 40))
    longer = torch.cat([x, torch.randn(2, 40, 20)], dim=2)  # 20 extra padding frames
    y = las.frame_targets([[1, 2], [3, 4]])[:, :-1]
    assert torch.allclose(model(x, x_len, y), model(longer, x_len, y), atol=1e-5)


def test_translate_decodes_and_returns_weights():
    model = ListenAttendSpell(channels=(16,), strides=(2,), rnn_dim=0, hidden_dim=16)
    x, x_len = _batch()
    ids, weights = translate(model, x, x_len, max_len=4)
    assert ids.shape == (3, 4) and weights.shape == (3, 4, 30)
    assert model.training  # translate restores the mode


def test_loss_trains_with_fit_and_rejects_token_inputs():
    torch.manual_seed(0)
    model = ListenAttendSpell(channels=(16,), strides=(2,), rnn_dim=8, hidden_dim=16, location_kernel=3)
    x, x_len = _batch((30, 30, 30, 30))
    y = las.frame_targets([[1], [2, 3], [4], [5, 6, 7]])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = fit(model, [(x, x_len, y)] * 30, optimizer=opt, compute_loss=las_loss, progress=False)
    assert history["step_loss"][-1] < 0.5 * history["step_loss"][0]
    with pytest.raises(ValueError, match="features"):
        las_loss(model, (torch.zeros(4, 30, dtype=torch.long), x_len, y))


def test_targets_and_decoded_digits():
    y = las.frame_targets([[1, 2], [0]])
    assert y.tolist() == [[SOS, 1, 2, EOS], [SOS, 0, EOS, PAD]]
    ids = torch.tensor([[3, 4, EOS, 5], [7, 7, 7, 7], [EOS, 1, 1, 1]])
    assert las.digits_of(ids) == [[3, 4], [7, 7, 7, 7], []]
    assert las.decoded_length(ids).tolist() == [3, 4, 1]
    for bad in ([[]], [[10]], []):
        with pytest.raises(ValueError):
            las.frame_targets(bad)


def test_peak_monotonicity_and_frames():
    w = np.zeros((4, 6))
    w[[0, 1, 2, 3], [0, 2, 1, 5]] = 1.0  # peaks 0, 2, 1, 5: one step moves back
    assert las.peak_monotonicity(w) == (2, 3)
    assert las.peak_monotonicity(torch.tensor(w), steps=2) == (1, 1)
    assert las.peak_monotonicity(w[:1]) == (0, 0)
    with pytest.raises(ValueError, match="one alignment"):
        las.peak_monotonicity(np.zeros(3))
    assert las.sample_to_frame([0, 319, 320, 1000], 320).tolist() == [0, 0, 1, 3]


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="location_kernel"):
        ListenAttendSpell(location_kernel=4)
    with pytest.raises(ValueError, match="hidden_dim"):
        ListenAttendSpell(hidden_dim=0)
    model = ListenAttendSpell(channels=(8,), strides=(1,), rnn_dim=0, hidden_dim=8)
    x, x_len = _batch((10,))
    with pytest.raises(ValueError, match="y_prev"):
        model(x, x_len, torch.zeros(1, 3))

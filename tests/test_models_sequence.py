"""Sequence models of chapter 2: CharRNN and TruncatedBPTT (models.rnn), the encoder-decoders (models.seq2seq)."""

import pytest
import torch
from torch import nn

from dlcourse.models.rnn import CharRNN, TruncatedBPTT
from dlcourse.models.seq2seq import AdditiveAttention, AttentionSeq2Seq, Seq2Seq, seq2seq_loss, translate
from dlcourse.topics.attention_maps import Alignment
from dlcourse.train import RandomBatches, fit

V_SRC, V_TGT, E, H, A = 12, 9, 5, 8, 4
SPECIALS = dict(src_pad=0, tgt_pad=0, sos=1, eos=2)


def batch(B=3, T=6, T_out=4, seed=0):
    """Padded sources x (B, T) with lengths (B,), framed targets y (B, T_out + 2): <sos> ... <eos>."""
    g = torch.Generator().manual_seed(seed)
    x_len = torch.tensor([T] + [max(1, T - 2 - i) for i in range(B - 1)])
    x = torch.randint(3, V_SRC, (B, T), generator=g)
    x[torch.arange(T) >= x_len[:, None]] = 0
    y = torch.cat([torch.ones(B, 1, dtype=torch.long), torch.randint(3, V_TGT, (B, T_out), generator=g),
                   torch.full((B, 1), 2)], dim=1)
    return x, x_len, y


# --- CharRNN and truncated BPTT ---

def test_char_rnn_shapes_and_state():
    model = CharRNN(vocab_size=7, embed_dim=4, hidden_size=6)
    logits, h = model(torch.randint(7, (2, 5)))
    assert logits.shape == (2, 5, 7) and h.shape == (1, 2, 6)
    whole, _ = model(torch.arange(6).view(1, 6))
    first, h = model(torch.arange(3).view(1, 3))
    second, _ = model(torch.arange(3, 6).view(1, 3), h)  # the state carries the first half
    assert torch.allclose(whole, torch.cat([first, second], dim=1), atol=1e-6)


def test_char_rnn_rejects_one_hot_input():
    with pytest.raises(ValueError, match=r"\(B, T\) and dtype long"):
        CharRNN(7, 4, 6)(torch.zeros(2, 5, 7))


def test_stacked_char_rnn_feeds_each_layer_the_states_of_the_one_below():
    torch.manual_seed(0)
    model = CharRNN(vocab_size=7, embed_dim=4, hidden_size=6, num_layers=2)
    x = torch.randint(7, (3, 5))
    logits, h = model(x)
    assert logits.shape == (3, 5, 7) and h.shape == (2, 3, 6)
    r = model.rnn
    layer1 = nn.RNN(4, 6, batch_first=True)  # two separate one-layer RNNs with the stacked weights
    layer2 = nn.RNN(6, 6, batch_first=True)
    with torch.no_grad():
        for layer, k in ((layer1, 0), (layer2, 1)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer, f"{name}_l0").copy_(getattr(r, f"{name}_l{k}"))
        hs1, h1 = layer1(model.embed(x))
        hs2, h2 = layer2(hs1)
        assert torch.allclose(logits, model.out(hs2), atol=1e-6)
        assert torch.allclose(h, torch.cat([h1, h2]), atol=1e-6)
    assert r.weight_ih_l1.shape == (6, 6)  # layer 2 reads layer 1's states, with weights of its own


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_char_rnn_rejects_a_bad_number_of_layers(bad):
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        CharRNN(7, 4, 6, num_layers=bad)


def test_truncated_bptt_detaches_and_restarts():
    torch.manual_seed(0)
    model, loss_fn = CharRNN(7, 4, 6), TruncatedBPTT()
    x = torch.randint(7, (2, 4))
    loss_fn(model, (x, x, True))
    h_after_first = loss_fn.h
    loss = loss_fn(model, (x, x, False))
    loss.backward()  # would fail if the first chunk's graph were still attached and freed
    assert torch.isfinite(loss) and not torch.equal(loss_fn.h, h_after_first)
    restarted = TruncatedBPTT()(model, (x, x, True))
    assert torch.equal(restarted.detach(), loss_fn(model, (x, x, True)).detach())  # restart = zero state


def test_truncated_bptt_handles_an_lstm_state():
    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.lstm, self.out = nn.Embedding(7, 4), nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 7)

        def forward(self, x, h=None):
            hs, h = self.lstm(self.embed(x), h)
            return self.out(hs), h

    model, loss_fn, x = CharLSTM(), TruncatedBPTT(), torch.randint(7, (2, 4))
    loss_fn(model, (x, x, True))
    loss_fn(model, (x, x, False)).backward()
    assert isinstance(loss_fn.h, tuple)


# --- encoder-decoders ---

@pytest.mark.parametrize("attention", [False, True])
def test_seq2seq_shapes_and_teacher_forcing_equals_stepping(attention):
    torch.manual_seed(0)
    model = AttentionSeq2Seq(V_SRC, V_TGT, E, H, A, **SPECIALS) if attention else Seq2Seq(V_SRC, V_TGT, E, H, **SPECIALS)
    x, x_len, y = batch()
    with torch.no_grad():
        logits = model(x, x_len, y[:, :-1])
        memory, s = model.encode(x, x_len)
        stepped = []
        for t in range(y.shape[1] - 1):
            step_logits, s, a = model.step(y[:, t], s, memory)
            stepped.append(step_logits)
    assert logits.shape == (3, y.shape[1] - 1, V_TGT)
    assert torch.allclose(logits, torch.stack(stepped, dim=1), atol=1e-5)
    assert (a is None) != attention


def test_seq2seq_context_is_the_state_at_each_lines_last_token():
    torch.manual_seed(0)
    model = Seq2Seq(V_SRC, V_TGT, E, H, **SPECIALS)
    x, x_len, _ = batch()
    with torch.no_grad():
        c, _ = model.encode(x, x_len)
        packed = nn.utils.rnn.pack_padded_sequence(model.src_embed(x), x_len, batch_first=True, enforce_sorted=False)
        _, h_n = model.encoder(packed)
    assert torch.allclose(c, h_n[0], atol=1e-5)


def test_additive_attention_masks_padding_and_sums_to_one():
    torch.manual_seed(0)
    attention = AdditiveAttention(H, A, key_dim=6)  # keys of another size than the query
    h, s = torch.randn(2, 5, 6), torch.randn(2, H)
    mask = torch.arange(5) < torch.tensor([[5], [3]])
    c, a = attention(s, h, attention.U(h), mask)
    assert c.shape == (2, 6) and a.shape == (2, 5)
    assert torch.allclose(a.sum(-1), torch.ones(2)) and (a[~mask] == 0).all()
    c_alone, _ = attention(s[1:], h[1:, :3], attention.U(h[1:, :3]), mask[1:, :3])
    assert torch.allclose(c[1], c_alone[0], atol=1e-6)


def test_additive_attention_rejects_bad_shapes():
    attention = AdditiveAttention(H, A)
    h = torch.randn(2, 5, H)
    with pytest.raises(ValueError, match=r"mask \(B, T\)"):
        attention(torch.randn(2, H), h, attention.U(h), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="boolean"):
        attention(torch.randn(2, H), h, attention.U(h), torch.ones(2, 5))


def test_models_reject_bad_ids_and_specials():
    model = Seq2Seq(V_SRC, V_TGT, E, H, **SPECIALS)
    x, x_len, y = batch()
    with pytest.raises(ValueError, match=r"\(B, T\) and dtype long"):
        model(x.float(), x_len, y[:, :-1])
    with pytest.raises(ValueError, match=r"x_len must have shape"):
        model.encode(x, x_len[:2])
    with pytest.raises(ValueError, match="between 1 and T"):
        model.encode(x, torch.tensor([7, 1, 1]))
    with pytest.raises(ValueError, match="eos = 9"):
        Seq2Seq(V_SRC, V_TGT, E, H, eos=V_TGT)


def test_seq2seq_loss_ignores_padding_and_needs_a_pad_id():
    torch.manual_seed(0)
    model = Seq2Seq(V_SRC, V_TGT, E, H, **SPECIALS)
    x, x_len, y = batch()
    y_padded = torch.cat([y, torch.zeros(3, 4, dtype=torch.long)], dim=1)  # extra all-pad columns
    x_padded = torch.cat([x, torch.zeros(3, 2, dtype=torch.long)], dim=1)
    with torch.no_grad():
        assert torch.allclose(seq2seq_loss(model, (x, x_len, y)), seq2seq_loss(model, (x_padded, x_len, y_padded)))
    with pytest.raises(ValueError, match="pad"):
        seq2seq_loss(nn.Identity(), (x, x_len, y))


def test_fit_with_seq2seq_loss_learns_to_copy():
    torch.manual_seed(0)
    model = AttentionSeq2Seq(V_SRC, V_SRC, 16, 32, 16, **SPECIALS)
    x = torch.randint(3, V_SRC, (256, 4))
    y = torch.cat([torch.ones(256, 1, dtype=torch.long), x, torch.full((256, 1), 2)], dim=1)
    batches = RandomBatches(x, torch.full((256,), 4), y, batch_size=32, num_batches=150,
                            generator=torch.Generator().manual_seed(0))
    history = fit(model, batches, optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
                  compute_loss=seq2seq_loss, max_grad_norm=1.0, progress=False)
    assert history["step_loss"][-1] < 0.2 * history["step_loss"][0]
    ids, _ = translate(model, x[:32], torch.full((32,), 4), max_len=5)
    assert (ids[:, :4] == x[:32]).float().mean() > 0.9


def test_translate_returns_ids_and_alignments_and_restores_the_mode():
    torch.manual_seed(0)
    model = AttentionSeq2Seq(V_SRC, V_TGT, E, H, A, **SPECIALS).train()
    x, x_len, _ = batch()
    ids, weights = translate(model, x, x_len, max_len=5)
    assert ids.shape == (3, 5) and weights.shape == (3, 5, x.shape[1]) and model.training
    Alignment([str(t) for t in x[1, :x_len[1]].tolist()], [str(t) for t in ids[1].tolist()],
              weights[1, :, :x_len[1]])  # cut to the real source: a valid alignment
    assert torch.allclose(weights[1, :, :x_len[1]].sum(-1), torch.ones(5))
    ids, weights = translate(Seq2Seq(V_SRC, V_TGT, E, H, **SPECIALS).eval(), x, x_len, max_len=5)
    assert weights is None and ids.shape == (3, 5)
    with pytest.raises(ValueError, match="max_len"):
        translate(model, x, x_len, max_len=0)

"""Tests for the feed-forward neural language model of chapter 7 (dlcourse.models.word_lm)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlcourse.data.words import WordVocab, context_windows, tokenize
from dlcourse.models.word_lm import (MLPLanguageModel, nearest_words, token_log_probs,
                                     train_language_model)

TEXT = ("the cat sat on the mat . the dog sat on the rug . the cat saw the dog . "
        "a dog ran to the cat and the cat ran to the mat . ") * 8


def tiny_ids():
    vocab = WordVocab(tokenize(TEXT))
    return vocab, torch.tensor(vocab.encode(tokenize(TEXT)), dtype=torch.long)


def test_shapes_and_parts():
    torch.manual_seed(0)
    model = MLPLanguageModel(50, 3, embed_dim=8, hidden_dim=16)
    X = torch.randint(50, (7, 3))
    assert model.features(X).shape == (7, 16)
    assert isinstance(model.out, nn.Linear) and model.out.out_features == 50
    assert model(X).shape == (7, 50)
    assert model.context_size == 3
    h = model.features(X)
    assert torch.all(h.abs() <= 1)  # tanh
    assert 0.05 < model.embedding.weight.std().item() < 0.2  # small initial embeddings (embed_std=0.1)


@pytest.mark.parametrize("bad", [torch.randint(50, (7, 4)), torch.randint(50, (7,)), torch.rand(7, 3)])
def test_bad_inputs(bad):
    model = MLPLanguageModel(50, 3)
    with pytest.raises(ValueError):
        model(bad)


@pytest.mark.parametrize("kwargs", [dict(vocab_size=0, context_size=2), dict(vocab_size=5, context_size=0),
                                    dict(vocab_size=5, context_size=2, dropout=1.0),
                                    dict(vocab_size=5, context_size=2, embed_dim=2.5),
                                    dict(vocab_size=5, context_size=2, embed_std=0.0)])
def test_bad_constructor(kwargs):
    with pytest.raises(ValueError):
        MLPLanguageModel(**kwargs)


def test_token_log_probs_normalised_and_aligned():
    torch.manual_seed(0)
    vocab, ids = tiny_ids()
    model = MLPLanguageModel(len(vocab), 2, embed_dim=4, hidden_dim=8, dropout=0.5)
    model.train()
    lp = token_log_probs(model, ids, start=5, batch_size=7)
    assert lp.shape == (len(ids) - 5,) and lp.dtype == np.float64
    assert np.all(lp <= 0)
    assert model.training  # mode restored
    # the same values by hand, in eval mode (no dropout)
    X, y = context_windows(ids, 2, start=5)
    model.eval()
    full = torch.log_softmax(model(X), dim=1)
    assert np.allclose(lp, full[torch.arange(len(y)), y].detach().numpy(), atol=1e-5)
    assert torch.allclose(full.exp().sum(1), torch.ones(len(y)), atol=1e-5)
    with pytest.raises(ValueError, match="start"):
        token_log_probs(MLPLanguageModel(len(vocab), 6), ids, start=5)


def train(seed, epochs=4, val=True):
    vocab, ids = tiny_ids()
    torch.manual_seed(seed)
    model = MLPLanguageModel(len(vocab), 2, embed_dim=8, hidden_dim=32)
    gen = torch.Generator().manual_seed(seed)
    history = train_language_model(model, ids, epochs=epochs, batch_size=16, lr=1e-2, generator=gen,
                                   val_ids=ids[:60] if val else None, progress=False)
    return model, history


def test_training_reduces_loss_and_logs_val_ppl():
    model, history = train(0)
    assert len(history["train_loss"]) == 4 and len(history["val_ppl"]) == 4
    assert len(history["epoch_seconds"]) == 4
    assert history["train_loss"][-1] < 0.6 * history["train_loss"][0]
    assert history["val_ppl"][-1] < history["val_ppl"][0]
    assert math.isclose(history["val_ppl"][-1], math.exp(history["val_loss"][-1]))
    vocab_size = model.vocab_size
    assert history["val_ppl"][-1] < vocab_size  # better than uniform


def test_determinism_under_seeded_generator():
    m1, h1 = train(3, epochs=2, val=False)
    m2, h2 = train(3, epochs=2, val=False)
    assert h1["step_loss"] == h2["step_loss"]
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)


def test_compute_loss_override_is_used():
    vocab, ids = tiny_ids()
    model = MLPLanguageModel(len(vocab), 2, embed_dim=4, hidden_dim=8)
    calls = []

    def loss(model, batch):
        calls.append(len(batch[0]))
        X, y = batch
        return nn.functional.cross_entropy(model.out(model.features(X)), y)

    train_language_model(model, ids, epochs=1, batch_size=32, lr=1e-3, compute_loss=loss, progress=False)
    assert sum(calls) == len(ids) - 2


def test_training_errors():
    vocab, ids = tiny_ids()
    model = MLPLanguageModel(len(vocab), 2)
    with pytest.raises(ValueError):
        train_language_model(model, ids, epochs=0, batch_size=8, lr=1e-3)
    with pytest.raises(ValueError):
        train_language_model(model, ids, epochs=1, batch_size=8, lr=0.0)
    with pytest.raises(ValueError):
        train_language_model(model, ids.view(2, -1) if len(ids) % 2 == 0 else ids[None], epochs=1,
                             batch_size=8, lr=1e-3)


def test_nearest_words():
    vocab = WordVocab(["a", "b", "c", "d"])
    E = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [0.0, 1.0]])[: len(vocab)]
    got = nearest_words(E, vocab, ["a"], k=2)
    assert [w for w, _ in got["a"]] == ["b", "d"]  # <unk> (row 0) is never a neighbour
    # with the <unk> row identical to "a", <unk> is still excluded
    E = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    got = nearest_words(E, vocab, ["a"], k=3)
    names = [w for w, _ in got["a"]]
    assert names == ["b", "c", "d"] and "<unk>" not in names and "a" not in names
    sims = [s for _, s in got["a"]]
    assert sims == sorted(sims, reverse=True) and math.isclose(sims[0], 0.9 / math.hypot(0.9, 0.1), rel_tol=1e-6)
    model = MLPLanguageModel(len(vocab), 1, embed_dim=3)
    assert len(nearest_words(model, vocab, ["a", "b"], k=2)["b"]) == 2
    with pytest.raises(ValueError, match="not in the vocabulary"):
        nearest_words(model, vocab, ["zebra"])
    with pytest.raises(ValueError):
        nearest_words(torch.zeros(3, 2), vocab, ["a"])


def test_keep_best_restores_the_best_epoch():
    vocab, ids = tiny_ids()
    torch.manual_seed(0)
    model = MLPLanguageModel(len(vocab), 2, embed_dim=8, hidden_dim=32)
    val = ids[:60]
    history = train_language_model(model, ids, epochs=3, batch_size=16, lr=5e-2, val_ids=val,
                                   generator=torch.Generator().manual_seed(0), keep_best=True, progress=False)
    best = int(np.argmin(history["val_ppl"]))
    assert history.best_epoch == best
    assert math.isclose(math.exp(-token_log_probs(model, val).mean()), history["val_ppl"][best], rel_tol=1e-6)
    with pytest.raises(ValueError, match="val_ids"):
        train_language_model(model, ids, epochs=1, batch_size=16, lr=1e-3, keep_best=True)

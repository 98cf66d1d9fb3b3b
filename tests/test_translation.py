"""dlcourse.topics.translation: beam search over the chapter-2 seq2seq interface, corpus BLEU, alignments (chapter 7)."""

import pytest
import torch

from dlcourse.models.seq2seq import AttentionSeq2Seq, Seq2Seq, translate
from dlcourse.topics.attention_maps import Alignment
from dlcourse.topics.translation import (beam_search, corpus_bleu, decode_sentences, hypothesis_alignment, paired_bootstrap,
                                         length_normalizer, to_alignment)


def model_and_batch(seed=0, vocab=12, attention=True):
    torch.manual_seed(seed)
    model = AttentionSeq2Seq(vocab, vocab, 8, 16, 8) if attention else Seq2Seq(vocab, vocab, 8, 16)
    x = torch.randint(3, vocab, (6, 5))
    x_len = torch.tensor([5, 3, 4, 1, 5, 2])
    x[torch.arange(5) >= x_len.unsqueeze(1)] = 0
    return model, x, x_len


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_size_one_is_greedy_translate(seed):
    model, x, x_len = model_and_batch(seed)
    ids, weights = translate(model, x, x_len, max_len=7)
    for i, hyps in enumerate(beam_search(model, x, x_len, beam_size=1, max_len=7)):
        (h,) = hyps
        assert h.tokens == ids[i, :len(h.tokens)].tolist()
        assert h.finished == (h.tokens[-1] == model.eos) and (not h.finished or model.eos not in h.tokens[:-1])
        torch.testing.assert_close(h.weights, weights[i, :len(h.tokens)])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beams_are_sorted_and_beat_greedy_in_log_probability(alpha):
    model, x, x_len = model_and_batch(3)
    greedy = beam_search(model, x, x_len, beam_size=1, max_len=6)
    beams = beam_search(model, x, x_len, beam_size=4, max_len=6, length_penalty=alpha)
    for g, hyps in zip(greedy, beams):
        assert 1 <= len(hyps) <= 4
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        for h in hyps:
            assert h.score == pytest.approx(h.log_prob / length_normalizer(len(h.tokens), alpha))
            assert h.weights.shape == (len(h.tokens), x.shape[1])
            torch.testing.assert_close(h.weights.sum(-1), torch.ones(len(h.tokens)))
        if alpha == 0.0 and g[0].finished:
            assert hyps[0].score >= g[0].score - 1e-5  # the beam never ranks below greedy's hypothesis


def test_log_prob_is_the_sum_of_the_step_log_probabilities():
    model, x, x_len = model_and_batch(4)
    h = beam_search(model, x[:1], x_len[:1], beam_size=3, max_len=5)[0][0]
    memory, s = model.encode(x[:1], x_len[:1])
    y, total = torch.tensor([model.sos]), 0.0
    with torch.no_grad():
        for token in h.tokens:
            logits, s, _ = model.step(y, s, memory)
            total += torch.log_softmax(logits, -1)[0, token].item()
            y = torch.tensor([token])
    assert h.log_prob == pytest.approx(total, abs=1e-4)


def test_models_without_attention_and_batches_of_sentences():
    model, x, x_len = model_and_batch(5, attention=False)
    best = decode_sentences(model, x, x_len, beam_size=3, max_len=5, batch_size=4)
    assert len(best) == 6 and all(h.weights is None for h in best)
    with pytest.raises(ValueError, match="no attention"):
        hypothesis_alignment(["a"], best[0], [str(i) for i in range(12)])


def test_bad_arguments_raise_value_errors():
    model, x, x_len = model_and_batch()
    for kwargs, match in [(dict(beam_size=0, max_len=3), "beam_size"), (dict(beam_size=2, max_len=1.5), "max_len"),
                          (dict(beam_size=2, max_len=3, length_penalty=-1), "length_penalty")]:
        with pytest.raises(ValueError, match=match):
            beam_search(model, x, x_len, **kwargs)
    with pytest.raises(ValueError, match="shape"):
        beam_search(model, x[0], x_len, beam_size=2, max_len=3)
    with pytest.raises(ValueError, match="interface"):
        beam_search(torch.nn.Linear(2, 2), x, x_len, beam_size=2, max_len=3)


def test_bleu_of_references_against_themselves_is_100_with_a_variable_number_of_references():
    refs = [[["le", "chat", "dort", "."], ["le", "chat", "sommeille", "."]], [["il", "pleut", "fort", "."]]]
    result = corpus_bleu([r[0] for r in refs], refs)
    assert result.score == pytest.approx(100.0)
    assert "nrefs:var" in result.signature and "tok:none" in result.signature
    assert corpus_bleu([r[1] if len(r) > 1 else r[0] for r in refs], refs).score == pytest.approx(100.0)
    assert corpus_bleu([["un", "chien", "."], ["il", "neige", "."]], refs).score < 20


def test_bleu_errors():
    with pytest.raises(ValueError, match="one list of references per hypothesis"):
        corpus_bleu([["a"]], [])
    with pytest.raises(ValueError, match="list of tokens"):
        corpus_bleu(["le chat"], [[["le", "chat"]]])
    with pytest.raises(ValueError, match="at least one reference"):
        corpus_bleu([["a"]], [[]])


def test_alignments_from_hypotheses():
    model, x, x_len = model_and_batch(6)
    h = beam_search(model, x[:1], x_len[:1], beam_size=2, max_len=4)[0][0]
    itos = [f"w{i}" for i in range(12)]
    a = hypothesis_alignment([f"s{j}" for j in range(5)], h, itos)
    assert isinstance(a, Alignment) and a.weights.shape == (len(h.tokens), 5) and a.output[0] == itos[h.tokens[0]]
    with pytest.raises(ValueError, match="too small"):
        to_alignment(["a"] * 9, ["b"], torch.ones(1, 5))


def test_paired_bootstrap_agrees_with_corpus_bleu():
    refs = [[["le", "chat", "dort", "."]], [["il", "pleut", "fort", "."], ["il", "pleut", "beaucoup", "."]],
            [["je", "suis", "là", "."]]] * 5
    a = [r[0] for r in refs]
    b = [["le", "chat", "."], ["il", "pleut", "."], ["je", "suis", "là", "."]] * 5
    diff, low, high = paired_bootstrap(a, b, refs, draws=200)
    assert diff == pytest.approx(corpus_bleu(a, refs).score - corpus_bleu(b, refs).score)
    assert 0 < low <= diff <= high
    with pytest.raises(ValueError, match="as many"):
        paired_bootstrap(a[:2], b, refs)

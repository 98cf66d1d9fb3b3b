"""Lab 6's checks pass the references and name the typical mistakes (tests/test_labs.py runs the solution)."""

import math

import pytest
import torch

from dlcourse.course.checks import speech_recognition as checks
from dlcourse.data.fsdd import split
from dlcourse.topics import ctc
from labtest import feedback


def filters(**kw):
    def mel_filterbank(n_mels, n_fft, sample_rate, f_min=0.0, f_max=None):
        top = sample_rate / 2 if f_max is None else f_max
        if n_mels < 1 or not 0 <= f_min < top <= sample_rate / 2:
            raise ValueError("bad arguments")
        return checks.reference_filters(n_mels, n_fft, sample_rate, f_min, f_max, **kw)
    return mel_filterbank


def test_filterbank_reference_passes_and_matches_the_package(capsys):
    from dlcourse.topics.speech_features import mel_filterbank

    checks.check_mel_filterbank(filters())
    assert "✔" in capsys.readouterr().out
    assert torch.allclose(checks.reference_filters(40, 256, 8000).float(), mel_filterbank(40, 256, 8000), atol=1e-6)


@pytest.mark.parametrize("mistake", checks.FILTER_MISTAKES, ids=lambda m: next(iter(m.variant)))
def test_filterbank_feedback(mistake):
    assert mistake.message in feedback(checks.check_mel_filterbank, filters(**mistake.variant))


def test_filterbank_must_refuse_bad_arguments():
    assert "raising ValueError" in feedback(checks.check_mel_filterbank,
                                            lambda n, k, sr, lo=0.0, hi=None: checks.reference_filters(n, k, sr, lo, hi))


def _decoder(rule):
    def greedy_ctc_decode(log_probs, blank=0):
        if log_probs.ndim != 2:
            raise ValueError("(T, C)")
        path = log_probs.argmax(1).tolist()
        if rule == "right":
            return ctc.collapse(path, blank)
        if rule == "no merge":
            return [c for c in path if c != blank]
        if rule == "blanks first":
            return ctc.collapse([c for c in path if c != blank], blank)
        return [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]  # blanks kept
    return greedy_ctc_decode


def test_greedy_decoding(capsys):
    checks.check_greedy_ctc_decode(_decoder("right"))
    assert "✔" in capsys.readouterr().out
    assert "did not merge" in feedback(checks.check_greedy_ctc_decode, _decoder("no merge"))
    assert "before merging" in feedback(checks.check_greedy_ctc_decode, _decoder("blanks first"))
    assert "still contains the blank" in feedback(checks.check_greedy_ctc_decode, _decoder("blanks kept"))


def _rate(dist, pooled=True):
    def error_rate(refs, hyps):
        if len(refs) != len(hyps):
            raise ValueError("lengths")
        if pooled:
            return sum(dist(r, h) for r, h in zip(refs, hyps)) / sum(map(len, refs))
        return sum(dist(r, h) / len(r) for r, h in zip(refs, hyps)) / len(refs)
    return error_rate


def test_edit_distance_and_error_rate(capsys):
    checks.check_edit_distance(ctc.edit_distance, _rate(ctc.edit_distance))
    assert "✔" in capsys.readouterr().out
    hamming = lambda r, h: sum(a != b for a, b in zip(r, h)) + abs(len(r) - len(h))  # noqa: E731
    assert "position by position" in feedback(checks.check_edit_distance, hamming, _rate(hamming))
    no_sub = lambda r, h: len(r) + len(h) - 2 * checks._common(r, h)  # noqa: E731
    assert "not a deletion plus an insertion" in feedback(checks.check_edit_distance, no_sub, _rate(no_sub))
    assert "averaged the per-utterance" in feedback(checks.check_edit_distance, ctc.edit_distance,
                                                    _rate(ctc.edit_distance, pooled=False))
    by_hyp = lambda refs, hyps: sum(ctc.edit_distance(r, h) for r, h in zip(refs, hyps)) / sum(map(len, hyps))  # noqa: E731
    assert "length of the reference" in feedback(checks.check_edit_distance, ctc.edit_distance, by_hyp)


def test_split_by_speaker(capsys):
    checks.check_split_by_speaker(lambda recs, s: split(recs, held_out_speaker=s))
    assert "✔" in capsys.readouterr().out

    def leaky(recs, s):
        parts = split(recs)  # the usual split: every voice in training
        return {"train": parts["train"], "val": parts["val"], "test": [r for r in parts["test"] if r.speaker == s]}
    assert "must not be heard" in feedback(checks.check_split_by_speaker, leaky)


def test_speaker_accuracy(capsys):
    checks.check_speaker_accuracy(checks.reference_speaker_accuracy)
    assert "✔" in capsys.readouterr().out

    def train_mode(model, recs):
        from dlcourse.topics.speech_features import feature_batch
        x, lengths = feature_batch([r.audio for r in recs])
        with torch.no_grad():
            right = (model(x, lengths).argmax(1) == torch.tensor([r.digit for r in recs])).double()
        return {s: right[[i for i, r in enumerate(recs) if r.speaker == s]].mean().item() for s in {r.speaker for r in recs}}
    assert "model.eval()" in feedback(checks.check_speaker_accuracy, train_mode)

    def stays_in_eval(model, recs):
        out = checks.reference_speaker_accuracy(model, recs)
        model.eval()
        return out
    assert "left the model in evaluation mode" in feedback(checks.check_speaker_accuracy, stays_in_eval)


def test_speaker_gap():
    checks.check_speaker_gap(0.95, 0.8, "b")
    assert "not below" in feedback(checks.check_speaker_gap, 0.95, 0.97, "b")
    assert "above 0.9" in feedback(checks.check_speaker_gap, 0.5, 0.4, "b")
    assert "not the reason" in feedback(checks.check_speaker_gap, 0.95, 0.8, "a")
    assert "between 0 and 1" in feedback(checks.check_speaker_gap, 95, 80, "b")
    assert math.isclose(0.95 - 0.8, 0.15)

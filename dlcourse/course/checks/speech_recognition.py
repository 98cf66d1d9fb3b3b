"""Checks for lab 6: the mel filterbank, greedy CTC decoding, edit distance and error rate, held-out speakers."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...data.fsdd import SPEAKERS, Recording, split
from ...topics.ctc import collapse, edit_distance, error_rate
from ...topics.speech_features import feature_batch
from . import (CheckFailed, Exercise, Mistake, as_float, call, close, diagnose, expect_raises, expect_tensor,
               facing_students, fresh, passed)

# Exercise 1 -----------------------------------------------------------------------------


def reference_filters(n_mels, n_fft, sample_rate, f_min=0.0, f_max=None, *, spacing="mel", inverse_base=10.0,
                      equal_area=False):
    """Triangles on the FFT bins with peaks equally spaced in mel; keywords build the typical mistakes."""
    top = sample_rate / 2 if f_max is None else f_max
    to_mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f, dtype=float) / 700.0)  # noqa: E731
    if spacing == "mel":
        points = 700.0 * (inverse_base ** (np.linspace(to_mel(f_min), to_mel(top), n_mels + 2) / 2595.0) - 1.0)
    else:  # peaks equally spaced in Hz
        points = np.linspace(f_min, top, n_mels + 2)
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    out = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        left, peak, right = points[i], points[i + 1], points[i + 2]
        up, down = (freqs - left) / (peak - left), (right - freqs) / (right - peak)
        out[i] = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (right - left) if equal_area else 1.0)
    return torch.from_numpy(out)


FILTER_MISTAKES = [
    Mistake(dict(spacing="hz"), "your peaks are equally spaced in Hz; the mel filterbank spaces them equally in mel: "
                                "convert f_min and f_max to mel, take n_mels + 2 equally spaced points, convert back"),
    Mistake(dict(inverse_base=math.e), "mel -> Hz must invert 2595 log10(1 + f/700): f = 700 (10^(m/2595) - 1), "
                                       "with 10, not e"),
    Mistake(dict(equal_area=True), "your filters are area-normalised; this exercise asks for triangles of height 1"),
]


def check_mel_filterbank(mel_filterbank_fn) -> None:
    """Three settings against the reference; the typical mistakes named; bad arguments refused."""
    for n_mels, n_fft, sr, f_min, f_max in [(10, 64, 8000, 0.0, None), (40, 256, 8000, 0.0, None),
                                            (24, 512, 16000, 100.0, 7000.0)]:
        got = expect_tensor(call(mel_filterbank_fn, "mel_filterbank", n_mels, n_fft, sr, f_min, f_max),
                            (n_mels, n_fft // 2 + 1), f"mel_filterbank({n_mels}, {n_fft}, {sr}, {f_min}, {f_max}) "
                            "(one row per filter, one column per FFT bin 0 .. n_fft/2)")
        want = reference_filters(n_mels, n_fft, sr, f_min, f_max)
        if not close(got, want, 1e-5):
            diagnose(FILTER_MISTAKES, lambda **kw: close(got, reference_filters(n_mels, n_fft, sr, f_min, f_max, **kw),
                                                         1e-5),
                     otherwise=f"mel_filterbank({n_mels}, {n_fft}, {sr}, {f_min}, {f_max}) differs from the triangles "
                               f"by up to {(got.double() - want).abs().max().item():.3g}: filter i rises from point i "
                               "to point i+1 and falls to point i+2 (n_mels + 2 points equally spaced in mel), "
                               "evaluated at the bin frequencies k * sample_rate / n_fft")
    for args, why in [((0, 256, 8000, 0.0, None), "n_mels >= 1"),
                      ((40, 256, 8000, 0.0, 5000.0), "f_max at most sample_rate / 2"),
                      ((40, 256, 8000, 3000.0, 2000.0), "f_min below f_max")]:
        expect_raises(mel_filterbank_fn, "mel_filterbank", args, why)
    passed("mel_filterbank gives triangles of height 1 centred at points equally spaced in mel")


# Exercise 2 -----------------------------------------------------------------------------

def _one_hot_path(path, num_classes=4):
    """Log-probabilities (T, C) whose argmax per frame is ``path`` (clear margins, not one-hot)."""
    lp = torch.full((len(path), num_classes), -4.0, dtype=torch.float64)
    lp[torch.arange(len(path)), torch.tensor(path)] = -0.1
    return lp


def check_greedy_ctc_decode(greedy_ctc_decode) -> None:
    """Best path, then merge repeats, then drop blanks; any blank index; bad shapes refused."""
    cases = [([0, 3, 3, 0, 3, 1, 1, 0, 0, 2], 0, 4), ([0, 0, 0], 0, 4), ([2, 2, 2], 0, 4),
             ([3, 1, 1, 3, 0, 3], 3, 4), ([1, 2, 1, 2, 2, 0, 0, 1], 0, 4)]
    for path, blank, C in cases:
        lp = _one_hot_path(path, C)
        got = call(greedy_ctc_decode, "greedy_ctc_decode", lp.clone(), blank)
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (list, tuple)) or not all(isinstance(v, int) for v in got):
            raise CheckFailed(f"greedy_ctc_decode should return a list of class ids (ints), got {got!r}")
        want = collapse(path, blank)
        if list(got) != want:
            no_merge = [c for c in path if c != blank]
            blanks_first = collapse([c for c in path if c != blank], blank)
            kept = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]  # runs merged, blanks kept
            diagnose([
                Mistake(lambda: list(got) == no_merge and no_merge != want,
                        "you dropped the blanks but did not merge repeated labels: [3, 3] from two frames of the same "
                        "digit is one 3 (merge runs first)"),
                Mistake(lambda: list(got) == blanks_first and blanks_first != want,
                        "you dropped the blanks before merging repeats; a blank between two equal labels separates "
                        "them: best path [3, blank, 3] reads 3 3, so merge runs first, then drop blanks"),
                Mistake(lambda: list(got) == kept and kept != want,
                        f"your output still contains the blank ({blank}): drop it after merging runs"),
            ], otherwise=f"best path {path} with blank {blank} should decode to {want}, got {list(got)}")
    expect_raises(greedy_ctc_decode, "greedy_ctc_decode", (torch.zeros(2, 3, 4), 0),
                  "log-probabilities of one utterance, shape (T, C)")
    passed("greedy_ctc_decode takes the best path, merges repeats, then drops blanks")


# Exercise 3 -----------------------------------------------------------------------------

def _common(a, b) -> int:
    """Length of the longest common subsequence (an edit distance without substitutions is |a| + |b| - 2 of it)."""
    row = [0] * (len(b) + 1)
    for x in a:
        prev, row = row, [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
    return row[-1]


def check_edit_distance(edit_distance_fn, error_rate_fn) -> None:
    """Levenshtein distance on hand-made cases; the error rate pools edits over utterances."""
    cases = [([], []), ([1, 2, 3], [1, 2, 3]), ([1, 2, 3, 4], [2, 3, 4]), ([1, 2], [1, 3]), ([], [5, 5]),
             ([7, 7, 7], []), ([1, 2, 3, 4, 5], [2, 1, 3, 5, 4, 6]), (list("kitten"), list("sitting"))]
    for ref, hyp in cases:
        got = call(edit_distance_fn, "edit_distance", list(ref), list(hyp))
        want = edit_distance(ref, hyp)
        if got != want:
            hamming = sum(a != b for a, b in zip(ref, hyp)) + abs(len(ref) - len(hyp))
            diagnose([
                Mistake(lambda: got == hamming, "you compared position by position; after an insertion or a deletion "
                                                "every later position shifts. Use the dynamic programme "
                                                "d[i][j] = min(d[i-1][j] + 1, d[i][j-1] + 1, d[i-1][j-1] + (r_i != h_j))"),
                Mistake(lambda: got == len(ref) + len(hyp) - 2 * _common(ref, hyp),
                        "a substitution costs 1, not a deletion plus an insertion (2)"),
            ], otherwise=f"edit_distance({list(ref)}, {list(hyp)}) should be {want}, got {got!r}")
    refs, hyps = [[1], [1, 2, 3, 4]], [[2], [1, 2, 3, 4]]
    got = as_float(call(error_rate_fn, "error_rate", refs, hyps), "error_rate(refs, hyps)")
    if not math.isclose(got, error_rate(refs, hyps), rel_tol=1e-9):
        if math.isclose(got, 0.5):
            raise CheckFailed("you averaged the per-utterance rates; the error rate pools them: the sum of the edit "
                              "distances divided by the total number of reference digits (1 / 5 here)")
        raise CheckFailed(f"error_rate({refs}, {hyps}) should be 1 / 5 = 0.2, got {got}")
    got = as_float(call(error_rate_fn, "error_rate", [[1, 2, 3, 4]], [[1]]), "error_rate")
    if not math.isclose(got, 0.75):
        raise CheckFailed(f"error_rate([[1, 2, 3, 4]], [[1]]) should be 3 deletions / 4 reference digits = 0.75, got "
                          f"{got}: divide by the length of the reference, not of the hypothesis")
    expect_raises(error_rate_fn, "error_rate", ([[1]], [[1], [2]]), "as many hypotheses as references")
    passed("edit_distance is the Levenshtein distance and error_rate pools edits over all reference digits")


# Exercises 4 and 5 ----------------------------------------------------------------------

def fake_recordings(takes=12, samples=800, seed=0) -> list[Recording]:
    """Small random recordings for every speaker and digit (for checks that must not read data)."""
    g = torch.Generator().manual_seed(fresh(seed))
    return [Recording(f"{d}_{s}_{t}.wav", d, s, t, 0.1 * torch.randn(samples + 40 * t, generator=g))
            for s in SPEAKERS for d in range(10) for t in range(takes)]


def check_split_by_speaker(split_by_speaker) -> None:
    """Every recording of the speaker in test and nowhere else; takes 5-9 of the others validate."""
    recs = fake_recordings()
    for speaker in ("theo", "george"):
        got = call(split_by_speaker, "split_by_speaker", list(recs), speaker)
        if not isinstance(got, dict) or set(got) != {"train", "val", "test"}:
            raise CheckFailed("split_by_speaker should return a dict with the keys 'train', 'val' and 'test'")
        want = split(recs, held_out_speaker=speaker)
        names = {k: sorted(r.name for r in v) for k, v in got.items()}
        if any(r.speaker == speaker for r in got["train"] + got["val"]):
            raise CheckFailed(f"recordings of {speaker} are in the training or validation set: a held-out speaker's "
                              "voice must not be heard before the test")
        if {r.speaker for r in got["test"]} != {speaker} or len(got["test"]) != len(want["test"]):
            raise CheckFailed(f"the test set should hold all {len(want['test'])} recordings of {speaker} (every take), "
                              "and no other speaker's")
        for part in ("train", "val"):
            if names[part] != sorted(r.name for r in want[part]):
                raise CheckFailed(f"the {part} set is wrong: validation takes are 5-9 of the other speakers, training "
                                  "takes are all their other takes")
    expect_raises(split_by_speaker, "split_by_speaker", (recs, "alice"), f"a speaker from {SPEAKERS}")
    passed("split_by_speaker holds one voice out entirely")


def reference_speaker_accuracy(model, recordings) -> dict[str, float]:
    was = model.training
    model.eval()
    with torch.no_grad():
        x, lengths = feature_batch([r.audio for r in recordings])
        right = model(x, lengths).argmax(1).cpu() == torch.tensor([r.digit for r in recordings])
    model.train(was)
    speakers = [r.speaker for r in recordings]
    return {s: right[[i for i, t in enumerate(speakers) if t == s]].double().mean().item()
            for s in sorted(set(speakers))}


def check_speaker_accuracy(speaker_accuracy) -> None:
    """Per-speaker accuracy of a fixed model, computed in evaluation mode and leaving the model's mode alone."""
    from ...models.speech import DigitClassifier

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DigitClassifier(channels=(16, 16), strides=(1, 2), dropout=0.5)
    recs = [r for r in fake_recordings(takes=3) if r.speaker in ("theo", "lucas", "jackson")]
    want = reference_speaker_accuracy(model, recs)
    model.train()
    got = call(speaker_accuracy, "speaker_accuracy", model, recs)
    if not isinstance(got, dict) or sorted(got) != sorted(want):
        raise CheckFailed(f"speaker_accuracy should return a dict speaker -> accuracy for {sorted(want)}, got {got!r}")
    if not model.training:
        raise CheckFailed("speaker_accuracy left the model in evaluation mode: put it back in the mode it was given in")
    values = {s: as_float(v, f"the accuracy of {s}") for s, v in got.items()}
    if any(not math.isclose(values[s], want[s], abs_tol=1e-9) for s in want):
        raise CheckFailed(f"expected {want}, got {values}: switch to model.eval() (dropout off) before predicting, "
                          "pass the frame counts from feature_batch to the model, and average per speaker")
    passed("speaker_accuracy measures each speaker in evaluation mode")


# Exercise 6 -----------------------------------------------------------------------------

GAP_REASONS = {
    "a": "the held-out speaker's test set is smaller, so its accuracy is noisier",
    "b": "the usual split tests on voices heard in training; a new voice is outside the training distribution",
    "c": "the speaker-dependent model overfits its test set",
    "d": "per-utterance normalisation removes the speaker, so both figures should be equal",
}


def check_speaker_gap(dependent, independent, reason) -> None:
    """The two accuracies as measured in the lab, and the reason for their gap."""
    dep, ind = as_float(dependent, "dependent"), as_float(independent, "independent")
    if not (0 <= dep <= 1 and 0 <= ind <= 1):
        raise CheckFailed("dependent and independent are accuracies, between 0 and 1")
    if dep < 0.9:
        raise CheckFailed(f"dependent = {dep:.3f}: the lab's model reaches above 0.9 on the usual split; use the test "
                          "accuracy of the model trained on split(recordings), averaged over all six speakers")
    if not ind < dep:
        raise CheckFailed(f"independent = {ind:.3f} is not below dependent = {dep:.3f}: use the accuracy on the "
                          "held-out speaker of the model trained without that speaker")
    if reason not in GAP_REASONS:
        raise CheckFailed(f"reason should be one of {sorted(GAP_REASONS)}")
    if reason != "b":
        raise CheckFailed(f"({reason}) {GAP_REASONS[reason]}: not the reason. Which test voices did each model hear "
                          "during training?")
    passed(f"a {dep - ind:.1%} gap between a voice heard in training and a new voice")


CHECKS = {
    "Exercise 1": Exercise("mel_filterbank", check_mel_filterbank),
    "Exercise 2": Exercise("greedy_ctc_decode", check_greedy_ctc_decode),
    "Exercise 3": Exercise(("edit_distance", "error_rate"), check_edit_distance),
    "Exercise 4": Exercise("split_by_speaker", check_split_by_speaker),
    "Exercise 5": Exercise("speaker_accuracy", check_speaker_accuracy),
    "Exercise 6": Exercise(("dependent", "independent", "reason"), check_speaker_gap),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone

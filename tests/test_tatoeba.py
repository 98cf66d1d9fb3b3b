"""dlcourse.data.tatoeba: normalising, tokenizing, vocabularies and the split by English source (chapter 7)."""

import io
import os
import zipfile

import pytest
import torch

from dlcourse.data import DataError, tatoeba
from dlcourse.data.tatoeba import EOS, PAD, SOS, UNK, Vocab, normalize, pad_ids, split_by_source, tokenize

needs_data = pytest.mark.skipif(not os.environ.get("DLCOURSE_DATA"), reason="needs the data mirror (DLCOURSE_DATA)")


def test_normalize_lowercases_and_unifies_spaces_and_apostrophes():
    assert normalize("Ça\u00a0va\u202f? L\u2019AMI") == "ça va ? l'ami"
    assert normalize("e\u0301te\u0301") == "été"  # NFC: e + combining accent -> é
    with pytest.raises(ValueError, match="string"):
        normalize(3)


def test_tokenize_splits_punctuation_and_french_elisions_only():
    assert tokenize("I don't know, Tom!", "en") == ["i", "don't", "know", ",", "tom", "!"]
    assert tokenize("J'ai vu qu'il est là.", "fr") == ["j'", "ai", "vu", "qu'", "il", "est", "là", "."]
    assert tokenize("Aujourd'hui, est-ce l'été ?", "fr") == ["aujourd'hui", ",", "est-ce", "l'", "été", "?"]
    with pytest.raises(ValueError, match="language"):
        tokenize("hello", "de")


def test_vocab_special_ids_match_the_seq2seq_defaults():
    vocab = Vocab([["b", "a", "a"], ["c", "a", "b"]], min_count=2)
    assert (PAD, SOS, EOS, UNK) == (0, 1, 2, 3)
    assert vocab.itos == ["<pad>", "<sos>", "<eos>", "<unk>", "a", "b"]
    assert vocab.encode(["a", "zzz"], frame=True) == [SOS, 4, UNK, EOS]
    assert vocab.decode([SOS, 4, 5, EOS, 4, PAD]) == ["a", "b"]
    with pytest.raises(ValueError, match="min_count"):
        Vocab([["a"]], min_count=0)


def test_pad_ids_pads_and_counts_lengths():
    vocab = Vocab([["a", "b"]])
    ids, lengths = pad_ids([["a"], ["a", "b"]], vocab, frame=True)
    assert ids.tolist() == [[SOS, 4, EOS, PAD], [SOS, 4, 5, EOS]] and lengths.tolist() == [3, 4]
    with pytest.raises(ValueError, match="empty"):
        pad_ids([["a"], []], vocab)


def test_split_by_source_keeps_every_source_in_one_split_and_is_deterministic():
    pairs = [((f"s{i % 50}",), (f"t{i}",)) for i in range(200)]  # 50 sources, 4 translations each
    train, val, test = split_by_source(pairs, (0.6, 0.2), seed=1)
    sets = [{p[0] for p in part} for part in (train, val, test)]
    assert [len(s) for s in sets] == [30, 10, 10]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(train) + len(val) + len(test) == 200
    assert split_by_source(pairs, (0.6, 0.2), seed=1) == (train, val, test)
    with pytest.raises(ValueError, match="fractions"):
        split_by_source(pairs, (0.9, 0.2))


def test_bad_options_raise_value_errors():
    for kwargs, match in [({"max_len": 0}, "max_len"), ({"fractions": (0.5,)}, "fractions"),
                          ({"min_count": 0}, "min_count"), ({"seed": "a"}, "seed")]:
        with pytest.raises(ValueError, match=match):
            tatoeba.load(**kwargs)


def test_a_missing_file_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path))
    tatoeba.read_pairs.cache_clear()
    try:
        with pytest.raises(DataError, match="fra-eng.zip"):
            tatoeba.read_pairs()
    finally:
        tatoeba.read_pairs.cache_clear()


@needs_data
def test_the_real_pairs_and_the_subset():
    pairs = tatoeba.read_pairs()
    assert len(pairs) == 142_787 and pairs[0] == ("Go.", "Va !")
    data = tatoeba.load(max_len=5)
    sources = [{s for s, _ in split.pairs} for split in (data.train, data.val, data.test)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    for split in (data.train, data.val, data.test):
        assert max(len(s) for s, _ in split.pairs) <= 5 and max(len(t) for _, t in split.pairs) <= 5
        assert split.x.shape == (len(split.pairs), int(split.x_len.max())) and split.x.dtype == torch.long
        assert (split.y[:, 0] == SOS).all() and len(split.sources) == len(split.references)
        assert sum(len(r) for r in split.references) == len(split.pairs)
    assert data.train.pairs[0] == (("go", "."), ("va", "!"))
    assert data.src_vocab.itos[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"]
    assert tatoeba.load(max_len=5) is data  # cached

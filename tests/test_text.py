"""dlcourse.data.text (character corpora, streams, chunks) and digits_images_split (chapter 2)."""

import os

import numpy as np
import pytest
import torch

from dlcourse.data import digits
from dlcourse.data.text import CharVocab, char_corpus, chunks, streams


def test_vocab_round_trip_and_sorted_ids():
    vocab = CharVocab("hello world")
    assert vocab.chars == sorted(set("hello world")) and len(vocab) == 8
    ids = vocab.encode("low")
    assert ids == [vocab.stoi[c] for c in "low"]
    assert vocab.decode(ids) == "low" and vocab.decode(torch.tensor(ids)) == "low"


def test_vocab_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        CharVocab("")
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match="'z'"):
        vocab.encode("abz")
    with pytest.raises(TypeError, match="string"):
        vocab.encode([1, 2])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([0, 3])


def test_char_corpus_splits_a_given_text():
    corpus = char_corpus("abcdefghij" * 10, train_fraction=0.9)
    assert len(corpus.train) == 90 and len(corpus.val) == 10
    assert corpus.vocab.decode(torch.cat([corpus.train, corpus.val])) == corpus.text
    with pytest.raises(ValueError, match="train_fraction"):
        char_corpus("abc", train_fraction=1.0)


@pytest.mark.skipif(not os.environ.get("DLCOURSE_DATA"), reason="needs the data mirror (DLCOURSE_DATA)")
def test_tiny_shakespeare_as_the_notebooks_load_it():
    corpus = char_corpus()
    assert len(corpus.text) == 1_115_394 and len(corpus.vocab) == 65  # the figures section 2.1 prints
    assert len(corpus.train) == int(0.9 * len(corpus.text))


def test_streams_cut_consecutive_rows():
    rows = streams(torch.arange(10), 3)
    assert rows.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError, match="1-D"):
        streams(torch.zeros(2, 5), 2)
    with pytest.raises(ValueError, match="batch_size"):
        streams(torch.arange(4), 5)


def test_chunks_walk_wrap_and_flag_restarts():
    rows = torch.arange(22).view(2, 11)  # streams of 11 ids: one pass holds 3 chunks of 3 (+1 target)
    got = list(chunks(rows, 3, 5))
    assert [restart for _, _, restart in got] == [True, False, False, True, False]
    x, y, _ = got[1]
    assert x.tolist() == [[3, 4, 5], [14, 15, 16]] and y.tolist() == [[4, 5, 6], [15, 16, 17]]
    assert torch.equal(got[3][0], got[0][0])  # after the wrap the walk starts at column 0 again
    with pytest.raises(ValueError, match="seq_len"):
        list(chunks(rows, 11, 1))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        list(chunks(torch.arange(5), 2, 1))


def test_digits_images_split_matches_digits_split():
    im_train, im_test, y_train, y_test = digits.digits_images_split()
    _, _, y_train_ref, y_test_ref = digits.digits_split()
    assert im_train.shape == (1437, 8, 8) and im_test.shape == (360, 8, 8)
    assert im_train.dtype == torch.float32 and 0 <= im_train.min() and im_train.max() <= 1
    assert torch.equal(y_train, y_train_ref) and torch.equal(y_test, y_test_ref)  # the same rows
    images, _ = digits.digits_images()
    first = np.where((images == im_test[0].numpy() * 16).all(axis=(1, 2)))[0]
    assert len(first) >= 1  # a held-out image is one of the raw images, unscaled by * 16
    with pytest.raises(ValueError, match="test_size"):
        digits.digits_images_split(test_size=1.5)

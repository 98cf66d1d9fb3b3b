"""dlcourse.data.words: tokenising, the frequency-ordered vocabulary, corpus splits and context windows (chapter 7)."""

import os

import pytest
import torch

from dlcourse.data.words import UNK, WordVocab, context_windows, tokenize, word_corpus

needs_data = pytest.mark.skipif(not os.environ.get("DLCOURSE_DATA"), reason="needs the data mirror (DLCOURSE_DATA)")


def test_tokenize_keeps_words_and_inner_apostrophes():
    assert tokenize("O'er the hills, I'll go -- 'tis 1898!\nThe END.") == \
        ["o'er", "the", "hills", "i'll", "go", "tis", "the", "end"]
    with pytest.raises(TypeError, match="string"):
        tokenize(["a", "b"])


def test_vocab_orders_by_count_then_alphabet_and_counts_unknowns():
    words = "b a c a b a d".split()
    vocab = WordVocab(words, min_count=2)
    assert vocab.itos == [UNK, "a", "b"]  # a: 3, b: 2; c and d (1 each) fall below min_count
    assert vocab.counts.tolist() == [2, 3, 2] and int(vocab.counts.sum()) == len(words)
    assert vocab.encode(["a", "zebra", "b"]) == [1, 0, 2]
    assert vocab.decode(torch.tensor([2, 0])) == ["b", UNK]
    assert WordVocab("y x y x z".split()).itos == [UNK, "x", "y", "z"]  # ties: alphabetical
    assert WordVocab(words, max_size=2).itos == [UNK, "a"]


def test_vocab_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        WordVocab([])
    with pytest.raises(ValueError, match="non-empty"):
        WordVocab("a text, not a list")
    with pytest.raises(ValueError, match="min_count"):
        WordVocab(["a"], min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        WordVocab(["a"], max_size=1)
    vocab = WordVocab(["a"])
    with pytest.raises(TypeError, match="tokenize"):
        vocab.encode("a a")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([2])


def test_word_corpus_splits_in_reading_order_with_a_training_vocabulary():
    text = " ".join(["alpha beta"] * 40 + ["gamma delta"] * 5 + ["omega"] * 10)  # 100 words
    corpus = word_corpus(text=text, fractions=(0.8, 0.1), min_count=1)
    assert len(corpus.train) == 80 and len(corpus.val) == 10 and len(corpus.test) == 10
    assert corpus.vocab.itos == [UNK, "alpha", "beta"]  # words after the training part are unknown
    assert corpus.train[:4].tolist() == [1, 2, 1, 2] and corpus.val.sum() == 0 and corpus.test.sum() == 0
    for bad in [(0.9, 0.1), (0.0, 0.5), (0.8,)]:
        with pytest.raises(ValueError, match="fractions"):
            word_corpus(text=text, fractions=bad)
    with pytest.raises(ValueError, match="too few"):
        word_corpus(text="one two")
    with pytest.raises(ValueError, match="unknown corpus"):
        word_corpus("wikipedia")


def test_context_windows_line_up_contexts_and_next_words():
    X, y = context_windows(torch.arange(10), 3)
    assert X.shape == (7, 3) and X[0].tolist() == [0, 1, 2] and y[0] == 3 and y[-1] == 9
    X5, y5 = context_windows(torch.arange(10), 3, start=5)
    assert X5[0].tolist() == [2, 3, 4] and y5.tolist() == [5, 6, 7, 8, 9]
    X2, y2 = context_windows(torch.arange(10), 2, start=5)
    assert torch.equal(y2, y5) and torch.equal(X2, X5[:, 1:])  # same scored words, shorter context
    with pytest.raises(ValueError, match="1-D"):
        context_windows(torch.zeros(2, 5, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="start"):
        context_windows(torch.arange(10), 3, start=2)
    with pytest.raises(ValueError, match="context_size"):
        context_windows(torch.arange(10), 0)


@needs_data
def test_tiny_shakespeare_as_chapter_7_loads_it():
    corpus = word_corpus()
    assert len(corpus.vocab) == 5938 and corpus.vocab.itos[1:4] == ["the", "and", "to"]
    assert (len(corpus.train), len(corpus.val), len(corpus.test)) == (163_068, 20_383, 20_385)
    counts = corpus.vocab.counts
    assert bool((counts[1:-1] >= counts[2:]).all())  # ids follow falling training counts
    assert int(counts.sum()) == len(corpus.train)
    assert len(word_corpus("timemachine").vocab) == 1871

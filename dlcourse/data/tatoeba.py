"""English-French sentence pairs from Tatoeba, for neural machine translation (chapter 7, section 5).

The file is ``fra-eng.zip`` of manythings.org (release of 2017-09-29): ``fra.txt`` holds
142,787 lines ``English<TAB>French``, sentences of the Tatoeba project (tatoeba.org),
licensed CC BY 2.0 FR. It is read through ``dlcourse.data.fetch`` (so from
``$DLCOURSE_DATA`` when set, otherwise downloaded once and verified) and unpacked in memory.

Text is normalised (Unicode NFC, lower case, non-breaking and thin spaces to spaces, curly
apostrophes to ``'``) and split into tokens: words, and every punctuation mark on its own.
Apostrophes and hyphens inside a word keep it whole (``don't``, ``aujourd'hui``,
``est-ce``), except French elisions: ``j'ai`` becomes ``j'`` ``ai`` and ``qu'il``
becomes ``qu'`` ``il``, so that ``ai`` and ``il`` are the same tokens as without elision.

Tatoeba often gives several French translations of one English sentence. The split into
train, validation and test is therefore made by *English source*: each distinct source
sentence, with all its translations, goes to exactly one split, chosen by a seeded
permutation, so that no test source was seen in training. The French translations of a
source are the references for BLEU.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from . import DataError, fetch

KEY = "tatoeba-fra-eng/fra-eng.zip"
ATTRIBUTION = ("English-French sentence pairs of the Tatoeba project (tatoeba.org), via manythings.org/anki, "
               "release of 2017-09-29, CC BY 2.0 FR")
PAD, SOS, EOS, UNK = 0, 1, 2, 3  # the defaults of dlcourse.models.seq2seq (pad 0, sos 1, eos 2), then <unk>
SPECIALS = ("<pad>", "<sos>", "<eos>", "<unk>")
LANGUAGES = ("en", "fr")

_SPACES = {"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2019": "'", "\u2018": "'", "\u200b": "", "\u00ad": ""}
_ELISION = r"\b(?:c|d|j|l|m|n|s|t|qu|jusqu|lorsqu|puisqu|quoiqu)'(?=\w)"
_WORD = r"\w+(?:['-]\w+)*"
_TOKEN = {"en": re.compile(rf"{_WORD}|[^\w\s]"), "fr": re.compile(rf"{_ELISION}|{_WORD}|[^\w\s]")}


def normalize(text: str) -> str:
    """NFC, lower case, non-breaking/thin spaces to spaces, curly quotes to ', runs of spaces to one."""
    if not isinstance(text, str):
        raise ValueError(f"normalize expects a string, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text).lower()
    for old, new in _SPACES.items():
        text = text.replace(old, new)
    return " ".join(text.split())


def tokenize(text: str, lang: str) -> list[str]:
    """Tokens of a normalised sentence: words and punctuation marks (French elisions split off)."""
    if lang not in _TOKEN:
        raise ValueError(f"unknown language {lang!r}: expected one of {LANGUAGES}")
    return _TOKEN[lang].findall(normalize(text))


@lru_cache(maxsize=1)
def read_pairs() -> tuple[tuple[str, str], ...]:
    """All 142,787 (English, French) pairs as raw strings, read from the zip in memory."""
    path = fetch(KEY)  # DataError if missing or corrupt
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("fra.txt").decode("utf-8")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not the expected zip holding fra.txt ({type(err).__name__}: {err})") from err
    pairs = []
    for number, line in enumerate(io.StringIO(text), start=1):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 2:
            raise DataError(f"{path}: line {number} of fra.txt is not 'English<TAB>French': {line[:60]!r}")
        pairs.append((parts[0], parts[1]))
    return tuple(pairs)


class Vocab:
    """Token <-> id. Ids 0-3 are <pad>, <sos>, <eos>, <unk>; then tokens by falling count (ties by spelling)."""

    def __init__(self, sentences: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None):
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be a positive int, got {min_count!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size <= len(SPECIALS)):
            raise ValueError(f"max_size must be None or an int > {len(SPECIALS)} (the special tokens), got {max_size!r}")
        counts = Counter(token for sentence in sentences for token in sentence)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        self.itos = list(SPECIALS) + words[:None if max_size is None else max_size - len(SPECIALS)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.counts = counts

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], frame: bool = False) -> list[int]:
        """Ids of tokens (unknown -> UNK); ``frame`` adds <sos> ... <eos>."""
        ids = [self.stoi.get(t, UNK) for t in tokens]
        return [SOS, *ids, EOS] if frame else ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ids up to the first <eos>, without <pad> and <sos>."""
        out = []
        for i in (int(i) for i in ids):
            if i == EOS:
                break
            if i not in (PAD, SOS):
                out.append(self.itos[i])
        return out


def pad_ids(sentences: Sequence[Sequence[str]], vocab: Vocab, frame: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> padded ids (N, T) long and lengths (N,) (framed with <sos>/<eos> if ``frame``)."""
    if len(sentences) == 0:
        raise ValueError("pad_ids needs at least one sentence")
    rows = [vocab.encode(s, frame=frame) for s in sentences]
    lengths = torch.tensor([len(r) for r in rows])
    if lengths.min() == 0:
        raise ValueError("pad_ids got an empty sentence: every sentence needs at least one token")
    ids = torch.full((len(rows), int(lengths.max())), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return ids, lengths


@dataclass
class TranslationSplit:
    """One split: its (English tokens, French tokens) pairs and, per distinct source, its references.

    ``x``/``x_len`` are the padded source ids of the pairs, ``y`` the framed, padded targets
    (the batch layout of ``seq2seq_loss``). ``sources`` lists each distinct English sentence
    once (sorted) and ``references[i]`` all French translations of ``sources[i]`` in the subset.
    """

    pairs: list[tuple[tuple[str, ...], tuple[str, ...]]]
    sources: list[tuple[str, ...]] = field(default_factory=list)
    references: list[list[tuple[str, ...]]] = field(default_factory=list)
    x: torch.Tensor | None = None
    x_len: torch.Tensor | None = None
    y: torch.Tensor | None = None


@dataclass
class TranslationData:
    """The subset: vocabularies (from training pairs only) and three splits."""

    src_vocab: Vocab
    tgt_vocab: Vocab
    train: TranslationSplit
    val: TranslationSplit
    test: TranslationSplit
    max_len: int
    attribution: str = ATTRIBUTION

    def sizes(self) -> dict[str, tuple[int, int]]:
        """{split: (pairs, distinct sources)}."""
        return {name: (len(s.pairs), len(s.sources)) for name, s in
                [("train", self.train), ("val", self.val), ("test", self.test)]}


def _check(max_len, fractions, min_count, seed) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive int (tokens per sentence), got {max_len!r}")
    if len(fractions) != 2 or min(fractions) <= 0 or sum(fractions) >= 1:
        raise ValueError(f"fractions must be (train, val), both > 0 with a sum < 1 (the rest is test), got {fractions!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")


def split_by_source(pairs: Sequence[tuple[Sequence[str], Sequence[str]]], fractions=(0.8, 0.1),
                    seed: int = 0) -> tuple[list, list, list]:
    """Split pairs so that each distinct source (first element) lies in one split only.

    The distinct sources are sorted, permuted with ``numpy.random.default_rng(seed)``, and
    the first ``fractions[0]`` of them go to train, the next ``fractions[1]`` to validation,
    the rest to test. Returns three lists of pairs, in their original order.
    """
    _check(1, fractions, 1, seed)
    sources = sorted({tuple(s) for s, _ in pairs})
    order = np.random.default_rng(seed).permutation(len(sources))
    n_train, n_val = int(fractions[0] * len(sources)), int(fractions[1] * len(sources))
    part = {}
    for rank, k in enumerate(order):
        part[sources[k]] = 0 if rank < n_train else 1 if rank < n_train + n_val else 2
    splits = ([], [], [])
    for pair in pairs:
        splits[part[tuple(pair[0])]].append(pair)
    return splits


def _make_split(pairs, src_vocab, tgt_vocab) -> TranslationSplit:
    refs: dict[tuple, list] = {}
    for s, t in pairs:
        refs.setdefault(s, []).append(t)
    sources = sorted(refs)
    x, x_len = pad_ids([s for s, _ in pairs], src_vocab)
    y, _ = pad_ids([t for _, t in pairs], tgt_vocab, frame=True)
    return TranslationSplit(list(pairs), sources, [refs[s] for s in sources], x, x_len, y)


def load(max_len: int = 5, fractions: Sequence[float] = (0.8, 0.1), min_count: int = 2,
         seed: int = 0) -> TranslationData:
    """The subset of pairs whose English and French both have at most ``max_len`` tokens.

    Split by English source (``split_by_source``); vocabularies hold the tokens seen at
    least ``min_count`` times in the training pairs (others become <unk> in the model's
    inputs and outputs; the references for BLEU keep the real words).
    """
    _check(max_len, tuple(fractions), min_count, seed)
    return _load(max_len, tuple(float(f) for f in fractions), min_count, seed)


@lru_cache(maxsize=4)
def _load(max_len: int, fractions: tuple[float, float], min_count: int, seed: int) -> TranslationData:
    pairs = []
    for en, fr in read_pairs():
        s, t = tuple(tokenize(en, "en")), tuple(tokenize(fr, "fr"))
        if 0 < len(s) <= max_len and 0 < len(t) <= max_len:
            pairs.append((s, t))
    train, val, test = split_by_source(pairs, tuple(fractions), seed)
    src_vocab = Vocab((s for s, _ in train), min_count=min_count)
    tgt_vocab = Vocab((t for _, t in train), min_count=min_count)
    return TranslationData(src_vocab, tgt_vocab, *(_make_split(p, src_vocab, tgt_vocab) for p in (train, val, test)),
                           max_len=max_len)

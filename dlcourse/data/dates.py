"""Dates written in many formats, to be translated into ISO dates (introduced in chapter 2, section 4).

A small translation task with reordering: the source is a date as people write it
("3 March 2021", "March 3, 2021", "03/03/21", "Wednesday, the 3rd of March 2021", ...),
the target is the same date as ``YYYY-MM-DD`` ("2021-03-03"). Characters are the tokens.
Dates are drawn uniformly from 1970-01-01 to 2049-12-31, so a two-digit year is never
ambiguous: 70-99 mean 1970-1999 and 00-49 mean 2000-2049. Slash dates put the day first
(``dd/mm/yy``). A line may also hold several dates ("3 March 2021; 12/05/99" ->
"2021-03-03 1999-05-12"), so that longer inputs carry more to remember.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence

import torch

START, END = dt.date(1970, 1, 1), dt.date(2049, 12, 31)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# name -> (formatter, whether the text has words whose case may vary)
_FORMATS: dict[str, tuple[Callable[[dt.date], str], bool]] = {
    "slash": (lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}", False),
    "dots": (lambda d: f"{d.day}.{d.month}.{d.year}", False),
    "short": (lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}", True),
    "day_month": (lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}", True),
    "month_day": (lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}", True),
    "short_weekday": (lambda d: f"{WEEKDAYS[d.weekday()][:3]}, {d.day} {MONTHS[d.month - 1][:3]} {d.year}", True),
    "weekday": (lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}", True),
    "ordinal": (lambda d: f"{WEEKDAYS[d.weekday()]}, the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
                True),
}
FORMATS: tuple[str, ...] = tuple(_FORMATS)
"""Format names, shortest first; ``format_date(dt.date(2021, 3, 3), name)`` shows each."""

_CASES = ("title", "lower", "upper")  # for formats with words: "March", "march", "MARCH"

SPECIALS = ("<pad>", "<sos>", "<eos>")
_WORDS = "".join(MONTHS + WEEKDAYS) + "thestndrd"  # every letter any format writes
SEPARATOR = "; "  # between the dates of a line with several
SOURCE_CHARS = " ,./0123456789;" + "".join(sorted(set(_WORDS.lower() + _WORDS.upper())))
TARGET_CHARS = " -0123456789"


def format_date(date: dt.date, name: str, case: str = "title") -> str:
    """Write ``date`` in format ``name`` (one of ``FORMATS``).

    ``case`` "title" writes names capitalised ("March"), "lower" and "upper" change the
    case of the whole text ("march", "MARCH").
    """
    _check_format(name)
    if case not in _CASES:
        raise ValueError(f"case must be 'title', 'lower' or 'upper', got {case!r}")
    formatter, has_words = _FORMATS[name]
    text = formatter(date)
    if has_words and case != "title":
        text = text.lower() if case == "lower" else text.upper()
    return text


def iso(date: dt.date) -> str:
    """The target: ``YYYY-MM-DD``."""
    return date.isoformat()


def _check_format(name) -> None:
    if name not in _FORMATS:
        raise ValueError(f"unknown date format {name!r}; the formats are {', '.join(FORMATS)}")


def _num_dates_range(num_dates) -> tuple[int, int]:
    if isinstance(num_dates, (tuple, list)) and len(num_dates) == 2:
        lo, hi = num_dates
    else:
        lo = hi = num_dates
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in (lo, hi)) or not 1 <= lo <= hi:
        raise ValueError(f"num_dates must be a positive int or a pair (lo, hi) with 1 <= lo <= hi, got {num_dates!r}")
    return lo, hi


def make_dates(n: int, generator: torch.Generator, *, formats: Sequence[str] | None = None,
               max_source_len: int | None = None, num_dates: int | tuple[int, int] = 1) -> list[tuple[str, str]]:
    """``n`` (source, target) pairs such as ("March 3, 2021", "2021-03-03").

    Dates are uniform over ``START``..``END``, the format uniform over ``formats`` (default:
    all of ``FORMATS``), and the case of month and weekday names uniform over title, lower
    and upper. With ``num_dates=(lo, hi)`` a line holds lo to hi dates (uniformly many),
    each in its own format, joined by ``SEPARATOR`` ("3 March 2021; 12/05/99"); the target
    lists their ISO forms in order, separated by spaces ("2021-03-03 1999-05-12"). All
    randomness comes from ``generator``, so the same seed gives the same pairs. With
    ``max_source_len``, longer sources are rejected and redrawn.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (number of pairs), got {n!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    formats = list(FORMATS if formats is None else formats)
    if isinstance(formats, str) or not formats:
        raise ValueError("formats must be a non-empty sequence of format names")
    for name in formats:
        _check_format(name)
    lo, hi = _num_dates_range(num_dates)
    if max_source_len is not None:
        shortest = min(len(format_date(d, f, c)) for f in formats for c in ("title", "lower")
                       for d in (dt.date(2001, 1, 1), dt.date(2001, 5, 1)))
        shortest = lo * shortest + (lo - 1) * len(SEPARATOR)
        if isinstance(max_source_len, bool) or not isinstance(max_source_len, int) or max_source_len < shortest:
            raise ValueError(f"max_source_len must be an int of at least {shortest} (the shortest source "
                             f"these formats write), got {max_source_len!r}")
    num_days = (END - START).days + 1
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        ks = torch.randint(lo, hi + 1, (n - len(pairs),), generator=generator).tolist()
        days = torch.randint(num_days, (sum(ks),), generator=generator).tolist()
        which = torch.randint(len(formats), (sum(ks),), generator=generator).tolist()
        cases = torch.randint(len(_CASES), (sum(ks),), generator=generator).tolist()
        draws = iter(zip(days, which, cases))
        for k in ks:
            line = [(START + dt.timedelta(days=day), formats[f], _CASES[c]) for day, f, c in
                    (next(draws) for _ in range(k))]
            source = SEPARATOR.join(format_date(*d) for d in line)
            if max_source_len is None or len(source) <= max_source_len:
                pairs.append((source, " ".join(iso(d[0]) for d in line)))
    return pairs


_STRPTIME = {"slash": "%d/%m/%y", "dots": "%d.%m.%Y", "short": "%b %d %Y", "day_month": "%d %B %Y",
              "month_day": "%B %d, %Y", "short_weekday": "%a, %d %b %Y", "weekday": "%A, %B %d, %Y",
              "ordinal": "%A, the %d of %B %Y"}


def read_dates(text: str) -> list[dt.date] | None:
    """The dates of a source line exactly as ``make_dates`` writes them, or None.

    None means the line is not something the translator saw in training: another format,
    a date outside ``START``..``END``, a wrong weekday, unpadded slash numbers, and so on.
    (Month and weekday names are read with the C locale's English names.)
    """
    if not isinstance(text, str) or not text:
        return None
    found = []
    for part in text.split(SEPARATOR):
        plain = re.sub(r"(?<=\d)(st|nd|rd|th) of", " of", part, flags=re.IGNORECASE)
        date = None
        for name, pattern in _STRPTIME.items():
            try:
                candidate = dt.datetime.strptime(plain, pattern).date()
            except ValueError:
                continue
            if START <= candidate <= END and any(format_date(candidate, name, c) == part for c in _CASES):
                date = candidate
                break
        if date is None:
            return None
        found.append(date)
    return found


def bucket_by_length(pairs: Iterable[tuple[str, str]], edges: Sequence[int]) -> dict[str, list[int]]:
    """Indices of ``pairs`` grouped by source length.

    ``edges`` are increasing lengths e_0 < e_1 < ... < e_k; bucket i holds the sources with
    e_i <= length < e_{i+1} and is named "e_i-(e_{i+1}-1)". Sources outside raise an error.
    """
    edges = list(edges)
    if len(edges) < 2 or any(not isinstance(e, int) for e in edges) or any(a >= b for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least two increasing ints, got {edges!r}")
    buckets = {f"{lo}-{hi - 1}": [] for lo, hi in zip(edges, edges[1:])}
    names = list(buckets)
    for i, (source, _) in enumerate(pairs):
        k = next((k for k in range(len(names)) if edges[k] <= len(source) < edges[k + 1]), None)
        if k is None:
            raise ValueError(f"source {source!r} has length {len(source)}, outside the edges {edges[0]}..{edges[-1] - 1}")
        buckets[names[k]].append(i)
    return buckets


class Vocab:
    """Characters <-> indices, with <pad> = 0, <sos> = 1 and <eos> = 2 first."""

    def __init__(self, chars: str):
        if not isinstance(chars, str) or not chars:
            raise ValueError("a vocabulary needs a non-empty string of characters")
        if len(set(chars)) != len(chars):
            raise ValueError(f"the characters of a vocabulary must be distinct, got {chars!r}")
        self.itos = list(SPECIALS) + list(chars)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.pad, self.sos, self.eos = 0, 1, 2

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {''.join(self.itos[3:])!r} and {', '.join(SPECIALS)})"

    def encode(self, text: str, *, sos: bool = False, eos: bool = False) -> list[int]:
        """Indices of the characters of ``text``, optionally framed by <sos> and <eos>."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a string, got {type(text).__name__}")
        bad = [(i, ch) for i, ch in enumerate(text) if ch not in self.stoi or ch in SPECIALS]
        if bad:
            i, ch = bad[0]
            raise ValueError(f"character {ch!r} at position {i} of {text!r} is not in the vocabulary "
                             f"({''.join(self.itos[3:])!r})")
        return [self.sos] * sos + [self.stoi[ch] for ch in text] + [self.eos] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: stops at the first <eos>, skips <pad> and <sos>."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        chars = []
        for i in ids:
            if not 0 <= i < len(self):
                raise ValueError(f"index {i} is outside the vocabulary of {len(self)} tokens")
            if i == self.eos:
                break
            if i not in (self.pad, self.sos):
                chars.append(self.itos[i])
        return "".join(chars)


SOURCE_VOCAB = Vocab(SOURCE_CHARS)
TARGET_VOCAB = Vocab(TARGET_CHARS)


def pad_batch(texts: Sequence[str], vocab: Vocab, *, sos: bool = False, eos: bool = False,
              device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and right-pad ``texts``: returns ids (B, T) and lengths (B,), both int64.

    The padding mask is ``ids != vocab.pad``; ``lengths`` count <sos>/<eos> when added.
    """
    if isinstance(texts, str) or not len(texts):
        raise ValueError("pad_batch takes a non-empty sequence of strings (not one string)")
    encoded = [vocab.encode(t, sos=sos, eos=eos) for t in texts]
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    ids = torch.full((len(encoded), max(int(lengths.max()), 1)), vocab.pad, dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, :len(e)] = torch.tensor(e, dtype=torch.long)
    return ids.to(device), lengths.to(device)

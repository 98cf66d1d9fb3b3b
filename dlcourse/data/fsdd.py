"""The Free Spoken Digit Dataset (FSDD v1.0.10): real recordings of spoken digits (chapter 6).

3,000 recordings, 8 kHz mono, 16-bit: 6 speakers each say every digit 0-9 fifty times.
A file is named ``{digit}_{speaker}_{take}.wav``. Jackson, Nicolas, Theo, Yweweler, George
and Lucas recorded it; the dataset is published under CC BY-SA 4.0 at
https://github.com/Jakobovski/free-spoken-digit-dataset.

Every recording is checksummed in the course's registry and read through
``dlcourse.data.fetch`` (so from ``$DLCOURSE_DATA`` when set, otherwise downloaded once,
verified, into the cache). ``scipy.io.wavfile`` reads the files.

Two ways to split, and they measure different things:

* ``split(recordings)``: FSDD's own convention, takes 0-4 of every speaker for test. Every
  speaker is in training and test, so this measures **speaker-dependent** accuracy.
  Takes 5-9 are the validation set here; takes 10-49 train.
* ``split(recordings, held_out_speaker="theo")``: all of one speaker's recordings are the
  test set, so this measures **speaker-independent** accuracy on a voice never heard in
  training. Takes 5-9 of the other speakers validate, the rest train.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import DataError, fetch, registry

SAMPLE_RATE = 8000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DIGITS = tuple(range(10))
TAKES = 50
TEST_TAKES = range(0, 5)  # FSDD's convention: takes 0-4 of every speaker are the test set
VAL_TAKES = range(5, 10)  # the course's validation takes
ATTRIBUTION = ("Free Spoken Digit Dataset v1.0.10 (Jackson, Souza et al.), CC BY-SA 4.0, "
               "https://github.com/Jakobovski/free-spoken-digit-dataset")


@dataclass(frozen=True)
class Recording:
    """One recording: its file name, the digit spoken, the speaker, the take, and the audio.

    ``audio`` is a float32 tensor of shape (n_samples,) in [-1, 1] at 8 kHz.
    """

    name: str
    digit: int
    speaker: str
    take: int
    audio: torch.Tensor

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def parse_name(name: str) -> tuple[int, str, int]:
    """``'7_theo_12.wav'`` -> (7, 'theo', 12); a clear error for any other name."""
    stem = Path(name).name
    parts = stem[:-4].split("_") if stem.endswith(".wav") else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit() or parts[1] not in SPEAKERS:
        raise ValueError(f"{name!r} is not an FSDD file name: expected '{{digit}}_{{speaker}}_{{take}}.wav' "
                         f"with a speaker from {SPEAKERS}, e.g. '7_theo_12.wav'")
    return int(parts[0]), parts[1], int(parts[2])


def read_wav(path: str | Path) -> torch.Tensor:
    """Read one FSDD wav file: float32 (n_samples,) in [-1, 1].

    Raises ``DataError`` naming the file when it is missing, is not a readable wav file, or is
    not 8 kHz, mono, 16-bit.
    """
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such wav file")
    try:
        rate, samples = wavfile.read(path)
    except Exception as err:  # scipy raises ValueError or struct errors on a damaged header
        raise DataError(f"{path} is not a readable wav file ({type(err).__name__}: {err}); "
                        "replace it with a fresh copy") from err
    if rate != SAMPLE_RATE or samples.ndim != 1 or samples.dtype != np.int16:
        raise DataError(f"{path}: expected 8000 Hz mono 16-bit audio, got {rate} Hz, "
                        f"{samples.ndim} dimension(s), {samples.dtype}")
    if len(samples) == 0:
        raise DataError(f"{path} holds no samples")
    return torch.from_numpy(samples.astype(np.float32) / 32768.0)


def file_names() -> list[str]:
    """The 3,000 registered recording names, sorted."""
    return sorted(key.rsplit("/", 1)[1] for key in registry() if key.startswith("fsdd/recordings/"))


def _choose(name: str, values, allowed) -> tuple:
    if values is None:
        return tuple(allowed)
    values = (values,) if isinstance(values, (str, int)) else tuple(values)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise ValueError(f"unknown {name} {unknown or values!r}: choose from {tuple(allowed)}")
    return values


@lru_cache(maxsize=4)
def _load(speakers: tuple, digits: tuple) -> tuple[Recording, ...]:
    names = [n for n in file_names() if parse_name(n)[1] in speakers and parse_name(n)[0] in digits]

    def one(name: str) -> Recording:
        path = fetch(f"fsdd/recordings/{name}")  # verified against its sha256 (names the file if not)
        digit, speaker, take = parse_name(name)
        return Recording(name, digit, speaker, take, read_wav(path))

    with ThreadPoolExecutor(max_workers=8) as pool:  # parallel only matters for a first download
        return tuple(pool.map(one, names))


def load_recordings(speakers: str | Iterable[str] | None = None,
                    digits: int | Iterable[int] | None = None) -> list[Recording]:
    """The recordings of the given speakers and digits (default: all 3,000), sorted by name.

    The first call reads (and, without ``$DLCOURSE_DATA``, downloads) the files; later calls
    return the cached recordings. The audio tensors are shared: do not modify them in place.
    """
    return list(_load(_choose("speaker", speakers, SPEAKERS), _choose("digit", digits, DIGITS)))


def split(recordings: Sequence[Recording], held_out_speaker: str | None = None) -> dict[str, list[Recording]]:
    """Split into ``{'train', 'val', 'test'}`` lists (see the module docstring for the two schemes)."""
    if held_out_speaker is not None and held_out_speaker not in SPEAKERS:
        raise ValueError(f"unknown speaker {held_out_speaker!r}: choose one of {SPEAKERS}, or None for "
                         "FSDD's speaker-dependent split")
    parts: dict[str, list[Recording]] = {"train": [], "val": [], "test": []}
    for rec in recordings:
        if held_out_speaker is not None and rec.speaker == held_out_speaker:
            parts["test"].append(rec)
        elif held_out_speaker is None and rec.take in TEST_TAKES:
            parts["test"].append(rec)
        elif rec.take in VAL_TAKES:
            parts["val"].append(rec)
        else:
            parts["train"].append(rec)
    return parts


@dataclass(frozen=True)
class Utterance:
    """Several recordings of one speaker joined end to end: audio, the digits, and where each starts."""

    audio: torch.Tensor
    digits: tuple[int, ...]
    starts: tuple[int, ...]  # sample index where each recording begins
    speaker: str


def concatenate(recordings: Sequence[Recording], count: int, *, min_digits: int = 1, max_digits: int = 5,
                max_gap: float = 0.1, generator: torch.Generator | None = None) -> list[Utterance]:
    """``count`` digit strings, each 1-5 recordings of one speaker joined in random order.

    Each recording keeps its own leading and trailing silence (the pauses the speaker
    recorded); between two recordings a further gap of 0 to ``max_gap`` seconds of silence is
    inserted. Recordings are drawn with replacement from ``recordings`` only, so utterances
    built from a test split contain test recordings only.
    """
    if not recordings:
        raise ValueError("concatenate needs at least one recording to draw from")
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"need 1 <= min_digits <= max_digits, got {min_digits} and {max_digits}")
    if count < 0 or max_gap < 0:
        raise ValueError(f"count and max_gap must be non-negative, got {count} and {max_gap}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    by_speaker: dict[str, list[Recording]] = {}
    for rec in recordings:
        by_speaker.setdefault(rec.speaker, []).append(rec)
    speakers = sorted(by_speaker)
    out = []
    for _ in range(count):
        speaker = speakers[int(torch.randint(len(speakers), (1,), generator=g))]
        pool = by_speaker[speaker]
        n = int(torch.randint(min_digits, max_digits + 1, (1,), generator=g))
        picks = [pool[i] for i in torch.randint(len(pool), (n,), generator=g).tolist()]
        pieces, starts, pos = [], [], 0
        for k, rec in enumerate(picks):
            if k:
                gap = torch.zeros(int(torch.rand(1, generator=g) * max_gap * SAMPLE_RATE))
                pieces.append(gap)
                pos += len(gap)
            starts.append(pos)
            pieces.append(rec.audio)
            pos += len(rec.audio)
        out.append(Utterance(torch.cat(pieces), tuple(r.digit for r in picks), tuple(starts), speaker))
    return out

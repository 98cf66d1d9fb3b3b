"""Datasets: a checksummed registry, a download cache and a local-mirror variable (chapter 1).

One module per dataset or task sits beside this one (``digits``, ``dates``, ...); this one
only finds files.

Every file the course downloads is listed in ``registry.txt`` with its sha256. ``fetch``
returns a verified local path:

* If the environment variable ``DLCOURSE_DATA`` names a folder (tests and CI point it at
  a read-only mirror laid out as ``<dataset>/<file>``), the file is read from there and
  nothing is downloaded.
* Otherwise the file is downloaded once with pooch into the cache folder
  (``DLCOURSE_CACHE``, default: the platform's user cache). pooch writes to a temporary
  file and renames it only after the checksum matches, so an interrupted or corrupted
  download never leaves a file that passes as valid.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pooch

DATA_ENV = "DLCOURSE_DATA"
CACHE_ENV = "DLCOURSE_CACHE"

# Where each dataset folder is published (pinned to a tag or commit).
SOURCES = {
    "tinyshakespeare": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",
    "timemachine": "http://d2l-data.s3-accelerate.amazonaws.com/",
    "tatoeba-fra-eng": "https://raw.githubusercontent.com/genimind/seq2seq/4f3f8eb0adde54fcc8b89394336b002e7961244c/",
    "movietweetings": "https://raw.githubusercontent.com/sidooms/MovieTweetings/4d8280a3f1ea83e3e23f13d1710d19f43564274f/",
    "kg-conve": "https://github.com/TimDettmers/ConvE/raw/f3c0eb286025410fa5b4c04696c918264163d0ca/",
    "fsdd": "https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/v1.0.10/",
}


class DataError(RuntimeError):
    """A dataset file could not be found, downloaded or verified."""


@dataclass(frozen=True)
class Entry:
    key: str
    sha256: str
    url: str


@lru_cache(maxsize=1)
def registry() -> dict[str, Entry]:
    """All registered files: key (``<dataset>/<path>``) -> Entry."""
    entries = {}
    text = (Path(__file__).with_name("registry.txt")).read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sha = line.split()
        dataset, rest = key.split("/", 1)
        entries[key] = Entry(key, sha, SOURCES[dataset] + rest)
    return entries


def cache_dir() -> Path:
    """The download cache: ``$DLCOURSE_CACHE`` or the platform's user cache folder."""
    return Path(os.environ.get(CACHE_ENV) or pooch.os_cache("dlcourse"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lookup(key: str) -> Entry:
    entries = registry()
    if key not in entries:
        raise KeyError(
            f"unknown data file {key!r}; registered files are: {', '.join(sorted(entries))}"
        )
    return entries[key]


def fetch(key: str, *, downloader=None) -> Path:
    """Return a verified local path for the registered file ``key``.

    Raises ``DataError`` naming the file, its URL and ``DLCOURSE_DATA`` when the file is
    neither in the local mirror nor downloadable, or when its checksum does not match.
    """
    entry = _lookup(key)
    mirror = os.environ.get(DATA_ENV)
    if mirror:
        path = Path(mirror) / key
        if not path.is_file():
            raise DataError(
                f"{key} is not in the local data folder {mirror} (set by ${DATA_ENV}). "
                f"Copy it there from {entry.url}, or unset {DATA_ENV} to download it into "
                f"{cache_dir()}."
            )
        actual = sha256_of(path)
        if actual != entry.sha256:
            raise DataError(
                f"{path} has sha256 {actual}, expected {entry.sha256}: the file is corrupt "
                f"or a different version. Replace it with the file from {entry.url}."
            )
        return path
    target = cache_dir() / entry.key
    try:
        fetched = pooch.retrieve(
            entry.url, known_hash=f"sha256:{entry.sha256}", fname=target.name,
            path=target.parent, downloader=downloader, progressbar=False,
        )
    except ValueError as err:  # pooch's checksum mismatch
        raise DataError(
            f"the download of {key} from {entry.url} did not match its sha256 "
            f"{entry.sha256}; nothing was kept. Try again, or place a verified copy in a "
            f"folder named by ${DATA_ENV}. ({err})"
        ) from err
    except Exception as err:  # network down, HTTP error, interrupted transfer
        raise DataError(
            f"could not download {key} from {entry.url} ({type(err).__name__}: {err}). "
            f"Without a network, copy the file to <folder>/{key} and set ${DATA_ENV}=<folder>."
        ) from err
    return Path(fetched)

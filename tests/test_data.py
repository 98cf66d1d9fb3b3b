import hashlib
import os
from pathlib import Path

import pytest
import torch

from dlcourse import data
from dlcourse.data import digits

KEY = "timemachine/timemachine.txt"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """No local mirror, an empty cache folder."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_registry_lists_checksums_and_pinned_urls():
    entries = data.registry()
    assert {"tinyshakespeare/input.txt", KEY, "tatoeba-fra-eng/fra-eng.zip", "kg-conve/umls.tar.gz"} <= set(entries)
    for entry in entries.values():
        assert len(entry.sha256) == 64 and entry.url.startswith(("https://", "http://"))


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the shared data mirror beside the checkout")
def test_every_registry_entry_matches_the_shared_mirror(monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(SHARED))
    for key in data.registry():
        assert data.fetch(key) == SHARED / key


def test_mirror_file_is_verified(tmp_path, monkeypatch):
    (tmp_path / "timemachine").mkdir()
    (tmp_path / KEY).write_text("not the time machine")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataError, match="corrupt or a different version"):
        data.fetch(KEY)


def test_missing_mirror_file_names_file_url_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataError) as err:
        data.fetch(KEY)
    message = str(err.value)
    assert KEY in message and data.registry()[KEY].url in message and data.DATA_ENV in message


def test_no_network_error_names_file_url_and_variable(offline_cache):
    def no_network(url, output_file, pooch_):
        raise ConnectionError("network is unreachable")

    with pytest.raises(data.DataError) as err:
        data.fetch(KEY, downloader=no_network)
    message = str(err.value)
    assert KEY in message and data.registry()[KEY].url in message and data.DATA_ENV in message
    assert not (offline_cache / KEY).exists()


def test_interrupted_download_leaves_no_file(offline_cache):
    def interrupted(url, output_file, pooch_):
        with open(output_file, "wb") as f:
            f.write(b"partial content")
        raise ConnectionResetError("connection reset mid-transfer")

    with pytest.raises(data.DataError):
        data.fetch(KEY, downloader=interrupted)
    leftovers = list(offline_cache.rglob("*")) if offline_cache.exists() else []
    assert [p for p in leftovers if p.is_file()] == []


def test_corrupt_download_is_rejected_and_not_kept(offline_cache):
    def corrupt(url, output_file, pooch_):
        with open(output_file, "wb") as f:
            f.write(b"the wrong bytes")

    with pytest.raises(data.DataError, match="did not match its sha256"):
        data.fetch(KEY, downloader=corrupt)
    assert not (offline_cache / KEY).exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the shared data mirror beside the checkout")
def test_good_download_is_verified_then_cached(offline_cache):
    source = SHARED / KEY
    calls = []

    def local_copy(url, output_file, pooch_):
        calls.append(url)
        with open(output_file, "wb") as f:
            f.write(source.read_bytes())

    path = data.fetch(KEY, downloader=local_copy)
    assert path == offline_cache / KEY and hashlib.sha256(path.read_bytes()).hexdigest() == data.registry()[KEY].sha256
    assert data.fetch(KEY, downloader=local_copy) == path and len(calls) == 1  # second call: from cache


def test_unknown_key_lists_the_registered_files():
    with pytest.raises(KeyError, match="registered files are"):
        data.fetch("mnist/train.csv")


def test_cache_dir_honours_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    assert data.cache_dir() == tmp_path


def test_digits_split_is_standardised_and_stratified():
    X_train, X_test, y_train, y_test = digits.digits_split()
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64) and y_train.dtype == torch.long
    assert X_train.mean().abs() < 1e-3 and torch.bincount(y_test).min() >= 35
    assert X_test.abs().max() < 100, "a pixel constant in training must not blow up on test images"
    again = digits.digits_split()
    assert torch.equal(again[0], X_train)
    with pytest.raises(ValueError, match="fraction"):
        digits.digits_split(test_size=1.5)


def test_conftest_points_tests_at_the_local_mirror():
    assert os.environ.get(data.DATA_ENV) or not SHARED.is_dir()

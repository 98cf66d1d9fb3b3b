import shutil
from pathlib import Path

import pytest
import torch

from dlcourse import data
from dlcourse.data import fsdd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not (SHARED / "fsdd").is_dir(), reason="needs the shared data mirror")


def test_registry_holds_every_recording_with_a_pinned_url():
    names = fsdd.file_names()
    assert len(names) == 3000 and names[0] == "0_george_0.wav"
    url = data.registry()["fsdd/recordings/7_theo_12.wav"].url
    assert url.endswith("/v1.0.10/recordings/7_theo_12.wav")
    assert {fsdd.parse_name(n)[1] for n in names} == set(fsdd.SPEAKERS)


@pytest.mark.parametrize("name", ["7_theo.wav", "x_theo_1.wav", "7_alice_1.wav", "7_theo_1.mp3"])
def test_bad_names_are_rejected(name):
    with pytest.raises(ValueError, match="FSDD file name"):
        fsdd.parse_name(name)


@needs_data
def test_load_and_splits(monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(SHARED))
    recs = fsdd.load_recordings(speakers=["theo", "lucas"], digits=[3])
    assert len(recs) == 100 and all(r.digit == 3 and r.speaker in ("theo", "lucas") for r in recs)
    a = recs[0].audio
    assert a.dtype == torch.float32 and a.ndim == 1 and a.abs().max() <= 1 and 0.1 < recs[0].seconds < 2.5
    dep = fsdd.split(recs)
    assert [len(dep[k]) for k in ("train", "val", "test")] == [80, 10, 10]
    assert {r.take for r in dep["test"]} == set(range(5)) and {r.speaker for r in dep["test"]} == {"theo", "lucas"}
    ind = fsdd.split(recs, held_out_speaker="theo")
    assert {r.speaker for r in ind["test"]} == {"theo"} and len(ind["test"]) == 50
    assert all(r.speaker == "lucas" for r in ind["train"] + ind["val"])
    with pytest.raises(ValueError, match="unknown speaker"):
        fsdd.split(recs, held_out_speaker="alice")
    with pytest.raises(ValueError, match="unknown digit"):
        fsdd.load_recordings(digits=[11])


@needs_data
def test_concatenate_keeps_one_speaker_and_marks_starts(monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(SHARED))
    recs = fsdd.load_recordings(speakers=["jackson", "nicolas"], digits=[1, 2])
    utts = fsdd.concatenate(recs, 20, generator=torch.Generator().manual_seed(0))
    again = fsdd.concatenate(recs, 20, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(u.audio, v.audio) and u.digits == v.digits for u, v in zip(utts, again))
    for u in utts:
        assert 1 <= len(u.digits) <= 5 and len(u.starts) == len(u.digits) and u.starts[0] == 0
        pool = {r.name: r for r in recs if r.speaker == u.speaker}
        first = [r for r in pool.values() if r.digit == u.digits[0]]
        assert any(torch.equal(u.audio[:len(r.audio)], r.audio) for r in first)
    with pytest.raises(ValueError):
        fsdd.concatenate([], 3)


def test_corrupt_and_missing_files_are_named(tmp_path, monkeypatch):
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    bad = tmp_path / "fsdd" / "recordings" / "0_george_0.wav"
    bad.write_bytes(b"RIFF0000WAVEnot audio")
    with pytest.raises(data.DataError, match="not a readable wav file") as err:
        fsdd.read_wav(bad)
    assert "0_george_0.wav" in str(err.value)
    with pytest.raises(data.DataError, match="no such wav file"):
        fsdd.read_wav(tmp_path / "missing.wav")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    fsdd._load.cache_clear()
    with pytest.raises(data.DataError, match="0_george_0.wav"):  # the checksum names the corrupt file
        fsdd.load_recordings(speakers="george", digits=0)
    fsdd._load.cache_clear()


@needs_data
def test_wrong_sample_rate_is_reported(tmp_path):
    from scipy.io import wavfile

    path = tmp_path / "1_theo_0.wav"
    wavfile.write(path, 16000, (torch.randn(800) * 1000).short().numpy())
    with pytest.raises(data.DataError, match="expected 8000 Hz mono 16-bit"):
        fsdd.read_wav(path)

"""Progress bars: live with tqdm (notebook or console), one final line when a notebook is rendered for the site."""

import io

import pytest

from dlcourse import progress as progress_module
from dlcourse.progress import FinalLine, progress


def test_static_output_prints_only_the_final_state(monkeypatch, capsys):
    monkeypatch.setenv(progress_module.STATIC_ENV, "1")
    bar = progress(range(5), desc="steps")
    assert isinstance(bar, FinalLine)
    assert list(bar) == [0, 1, 2, 3, 4]
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "steps: 100%|██████████| 5/5" in out and " 0%|" not in out


def test_a_bar_that_does_not_stay_or_is_disabled_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv(progress_module.STATIC_ENV, "1")
    list(progress(range(3), leave=False))
    list(progress(range(3), disable=True))
    assert capsys.readouterr().out == ""


def test_live_bars_are_plain_tqdm_outside_a_notebook(monkeypatch):
    from tqdm.std import tqdm

    monkeypatch.delenv(progress_module.STATIC_ENV, raising=False)
    bar = progress(range(2))
    assert isinstance(bar, tqdm) and not isinstance(bar, FinalLine)
    bar.close()


def test_a_live_bar_leaves_a_seeded_shuffle_alone(monkeypatch):
    """The same generator gives the same batch order with and without a bar (tqdm.auto breaks this)."""
    import torch

    monkeypatch.delenv(progress_module.STATIC_ENV, raising=False)

    def order(wrap):
        loader = torch.utils.data.DataLoader(list(range(10)), batch_size=2, shuffle=True,
                                             generator=torch.Generator().manual_seed(0))
        return [b.tolist() for b in wrap(loader)]

    assert order(lambda x: progress(x, disable=True)) == order(lambda x: x)
    assert order(lambda x: progress(x, file=io.StringIO())) == order(lambda x: x)


@pytest.mark.parametrize("value, static", [("1", True), ("0", False), ("", False)])
def test_the_variable_decides(monkeypatch, value, static):
    monkeypatch.setenv(progress_module.STATIC_ENV, value)
    assert progress_module.static_output() is static

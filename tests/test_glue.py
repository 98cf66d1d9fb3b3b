"""glue records a value's display form for {glue:text}; numpy scalars arrive as plain numbers."""

import numpy as np
import pytest

from dlcourse import glue


@pytest.fixture
def shown(monkeypatch):
    import IPython.display

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, metadata: calls.append((data, metadata)))
    return calls


@pytest.mark.parametrize("value, text", [(0.25, "0.25"), (np.float64(0.25), "0.25"), (np.int64(7), "7"),
                                         (np.float32(0.5), "0.5"), ("AVX512", "'AVX512'")])
def test_values_reach_the_page_as_plain_numbers(shown, value, text):
    glue("x", value)
    (data, metadata), = shown
    assert data["application/papermill.record/text/plain"] == text
    assert metadata["scrapbook"] == {"name": "x", "mime_prefix": "application/papermill.record/"}


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="identifier-like"):
        glue("not a name", 1.0)

"""Progress bars: live in a running notebook, a final line on the static site (introduced in chapter 1).

In Jupyter or Colab ``progress`` is ``tqdm.auto.tqdm``: a live bar. A notebook executed for
the site (``dlcourse execute`` sets ``DLCOURSE_STATIC_OUTPUT=1`` for its kernel) gets a bar
that draws nothing while it runs and prints its final state when it closes
("steps: 100%|██████████| 800/800 [00:38<00:00, 21.0it/s]"). A widget bar saved in a
notebook would show its first state, 0 %, on the static page for ever.
"""

from __future__ import annotations

import io
import os
import sys

from tqdm.std import tqdm as _text_tqdm

STATIC_ENV = "DLCOURSE_STATIC_OUTPUT"


def static_output() -> bool:
    """Whether this process renders outputs for the static site (``DLCOURSE_STATIC_OUTPUT`` set)."""
    return os.environ.get(STATIC_ENV, "") not in ("", "0")


class FinalLine(_text_tqdm):
    """A tqdm bar that draws nothing until it closes, then prints its final state on stdout."""

    def __init__(self, *args, **kwargs):
        kwargs["file"] = io.StringIO()  # the live drawing goes nowhere
        kwargs.setdefault("ascii", False)  # the block characters, as the live bar draws them
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        if not self.disable and self.leave and not getattr(self, "_reported", False):
            self._reported = True
            print(self.format_meter(**self.format_dict), file=sys.stdout, flush=True)
        super().close()


def _in_notebook_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress(iterable=None, **kwargs):
    """``tqdm(iterable, **kwargs)``: live in a notebook, one final line when rendered for the site.

    The live bar is ``tqdm.notebook.tqdm`` in a Jupyter kernel and ``tqdm.std.tqdm`` elsewhere,
    never ``tqdm.auto``: its asyncio mix-in calls ``iter()`` on the iterable when the bar is
    built, so a shuffling ``DataLoader`` would draw its order twice from its generator and a
    seeded run would give other numbers live than on the site.
    """
    if static_output():
        return FinalLine(iterable, **kwargs)
    if _in_notebook_kernel():
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(iterable, **kwargs)

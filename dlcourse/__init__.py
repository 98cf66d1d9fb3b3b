"""Course package for Deep Learning Applications.

A notebook starts with ``generator, device = dlcourse.setup(seed=0)``. The package holds
what more than one notebook needs: ``data`` (one loader per dataset), ``models`` (models a
second notebook reuses), ``topics`` (one idea per module with its plots and widget),
``train`` (the one training loop), ``plot`` and ``widgets``. ``course`` is the tooling
around the notebooks (execution, labs, checks, grading); chapters never import it.
"""

from __future__ import annotations

import torch

from .device import Timer, get_device, synchronize
from .glue import glue
from .seed import seed_everything

__version__ = "0.1.0"
__all__ = ["setup", "glue", "get_device", "synchronize", "Timer", "seed_everything", "__version__"]


def setup(seed: int = 0, *, device: str | None = None,
          cpu_threads: int | None = 1) -> tuple[torch.Generator, torch.device]:
    """Seed everything, choose the device, set the CPU-thread policy and the figure style.

    Returns ``(generator, device)``: a ``torch.Generator`` seeded with ``seed`` for the
    notebook's own samplers, and the device (CUDA, then MPS, then CPU; ``device`` forces one).

    The thread policy lives here and nowhere else. The course's models are small: on a CPU,
    a second thread costs more in synchronisation than it saves, and on a shared machine it
    competes with the other processes. So on the CPU PyTorch and the BLAS under NumPy and
    scikit-learn get ``cpu_threads`` threads (default 1); pass ``cpu_threads=None`` for a
    notebook whose models are large enough to use them all. On a GPU the policy does not
    apply: the work is on the device, and data loading wants the CPU's threads.
    """
    from .plot import use_style

    if cpu_threads is not None and (isinstance(cpu_threads, bool) or not isinstance(cpu_threads, int)
                                    or cpu_threads < 1):
        raise ValueError(f"cpu_threads must be a positive int or None (PyTorch's default), got {cpu_threads!r}")
    generator = seed_everything(seed)
    device = get_device(device)
    if device.type == "cpu" and cpu_threads is not None:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(cpu_threads)
        threadpool_limits(cpu_threads)
    use_style()
    threads = f", {torch.get_num_threads()} CPU thread{'s' * (torch.get_num_threads() > 1)}" \
        if device.type == "cpu" else ""
    print(f"device: {device}{threads}")
    return generator, device

"""Course package for Deep Learning Applications: device, seeding, training, plots, widgets, data, labs."""

from .device import get_device, synchronize, Timer
from .glue import glue
from .seed import seed_everything

__version__ = "0.1.0"
__all__ = ["glue", "get_device", "synchronize", "Timer", "seed_everything", "__version__"]

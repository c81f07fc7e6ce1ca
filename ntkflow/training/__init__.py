"""Training: the run settings, a frozen dataclass per concern (``settings``), the one host
loop for every net (``fit``), K models as a group (``batched``), the paper's front door
``train`` (``two_layer``), and the one predicate that picks the closed-form Sec. 3.4 epoch on
the paper's net (``fastpath``).

The modules keep their functions' names apart (``training.fit.fit``, ``training.two_layer.train``):
the package exports the modules, never a function under a module's name.
"""

from . import batched, fastpath, fit, settings, steps, two_layer
from .settings import OPTIMIZERS, EpsSchedule, FitSettings, OptimSettings, RecordSettings, ScheduleSettings, StopRule

__all__ = ["batched", "fastpath", "fit", "settings", "steps", "two_layer", "OPTIMIZERS", "EpsSchedule",
           "FitSettings", "OptimSettings", "RecordSettings", "ScheduleSettings", "StopRule"]

"""Theorem 1 and Lemmas 1–7: the formulas, printed and derived (``formulas``), and their check
against real data and trajectories (``checker``: ``check`` -> ``Report``). ``ntkflow.theory.X``
is ``ntkflow.theory.formulas.X`` for every formula, and the necessary conditions any path obeys
(``necessary``: path length and loss-decay lower bounds) are here too."""

from .checker import STATUSES, Report, Row, check
from .necessary import *  # noqa: F401,F403
from .necessary import __all__ as _necessary
from .formulas import *  # noqa: F401,F403 (the formulas are this package's public face)
from .formulas import __all__ as _formulas

__all__ = [*_formulas, *_necessary, "check", "Report", "Row", "STATUSES"]

"""Theorem 1 and Lemmas 1–7: the formulas, printed and derived (``formulas``), and their check
against real data and trajectories (``checker``: ``check`` -> ``Report``). ``ntkflow.theory.X``
is ``ntkflow.theory.formulas.X`` for every formula."""

from .checker import STATUSES, Report, Row, check
from .formulas import *  # noqa: F401,F403 (the formulas are this package's public face)
from .formulas import __all__ as _formulas

__all__ = [*_formulas, "check", "Report", "Row", "STATUSES"]

"""The experimental protocol of a cell: a learning-rate grid, a selection rule that reads
training quantities only, and the summary of each grid run kept in the cell's record.

A cell trains once per learning rate of ``train.lr`` (a number or a list) and keeps the
run that ``train.select`` prefers. The rules see only the training summary of each run
(``train_summary``): they are never given test data, so the choice cannot leak it.
"""

from __future__ import annotations

import math

import numpy as np
from .._core.errors import NtkflowError

__all__ = ["SELECT_RULES", "train_summary", "select_run", "lr_grid"]

#: name → (the training quantity compared, lower is better).
SELECT_RULES = {
    "final_train_loss": "final_loss",           # the robust loss L̄ the run minimized, at its end
    "final_train_error": "final_objective_error",  # the method's own training error (IBP: certified)
}


def lr_grid(lr) -> list[float]:
    """``train.lr`` as a sorted list of learning rates."""
    return sorted(float(v) for v in (lr if isinstance(lr, list) else [lr]))


def train_summary(traj, lr: float, method) -> dict:
    """What a selection rule may look at: final training loss and errors, divergence and
    convergence of one run. No test quantity is in it."""
    s = traj.series
    finite = not traj.meta.get("diverged", False) and math.isfinite(float(s["loss"][-1]))
    nan = float("nan")
    clean, cert = float(s["train_error"][-1]), float(s["certified_error"][-1])
    return {
        "lr": float(lr),
        "diverged": not finite,
        "converged": bool(traj.meta.get("converged", False)),
        "epochs_run": int(traj.meta.get("epochs_run", len(traj.ts) - 1)),
        "final_loss": float(s["loss"][-1]) if finite else nan,
        "final_train_error": clean if finite else nan,
        "final_certified_error": cert if finite else nan,
        "final_objective_error": _objective_error(s, method) if finite else nan,
        "dead_fraction": float(s["dead_fraction"][-1]) if "dead_fraction" in s else nan,  # two-layer only
        "zero_output_fraction": float(s["zero_output_fraction"][-1]) if "zero_output_fraction" in s else nan,
    }


def _objective_error(s, method) -> float:
    """The training error a method aims at (its objective's ``judged_errors``: clean for
    standard, PGD for adversarial training when recorded, else the certified error)."""
    from ..objectives import judged_error, objective

    return judged_error(objective(method) if isinstance(method, str) else method, s)


def select_run(summaries: list[dict], rule: str) -> int:
    """Index of the run ``rule`` keeps: the lowest value of its training quantity among the
    runs that did not diverge; ties go to the smaller lr (the more conservative step).
    When every run diverged, the smallest lr (index of the minimum lr)."""
    if rule not in SELECT_RULES:
        raise NtkflowError(f"select: unknown rule {rule!r}; choose one of {', '.join(SELECT_RULES)}")
    key = SELECT_RULES[rule]
    ok = [i for i, s in enumerate(summaries) if not s["diverged"] and np.isfinite(s[key])]
    if not ok:
        return min(range(len(summaries)), key=lambda i: summaries[i]["lr"])
    return min(ok, key=lambda i: (summaries[i][key], summaries[i]["lr"]))

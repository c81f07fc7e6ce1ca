"""Training methods as objectives (``init``/``step`` pairs), registered by name.

``objective(name, **options)`` builds one: "standard", the certified methods (every key of
``ntkflow.bounds.METHODS``: "ibp", "crown_ibp" (with the β mix), "crown", "cap", ...),
"pgd" / "fgsm" (adversarial training) and "advibp" / "advibp_fixed" (fan2021). See
``ntkflow.objectives.base`` for the protocol and ``schedules`` for ε / β schedules.
"""

from __future__ import annotations

from ..bounds import METHODS as _BOUNDS
from .advibp import AdvIBP
from .base import Context, Step, as_columns, margin_loss
from .methods import Adversarial, Certified, Standard
from .schedules import BetaFromEps, Constant, FanWarmup, Ramp, schedule

__all__ = ["Context", "Step", "margin_loss", "as_columns", "objective", "OBJECTIVES", "Standard", "Certified",
           "Adversarial", "AdvIBP", "Ramp", "Constant", "FanWarmup", "BetaFromEps", "schedule", "own_bound",
           "ATTACK_KEYS", "ADVIBP_KEYS"]

ATTACK_KEYS = ("steps", "step_size", "restarts", "alpha")
ADVIBP_KEYS = ("t_nat", "t_adv", "ramp", "decay", "c_max", "beta1", "beta2", "alpha", "kappa_adv", "kappa_ibp")


def _certified(bound):
    def make(clip=None, regularize=False, tau=0.5, **_):
        return Certified(bound, mix=bound == "crown_ibp", clip=clip, regularize=regularize, tau=tau)
    return make


def _adversarial(attack):
    def make(clip=None, steps=10, step_size=None, restarts=1, alpha=1.25, **_):
        return Adversarial(attack, steps=steps, step_size=step_size, restarts=restarts, alpha=alpha, clip=clip)
    return make


def _advibp(fixed):
    def make(clip=None, **kw):
        return AdvIBP(fixed=fixed, clip=clip, **{k: v for k, v in kw.items() if k in ADVIBP_KEYS})
    return make


#: name → builder(**options). Options a method does not use are ignored.
OBJECTIVES = {
    "standard": lambda **_: Standard(),
    **{b: _certified(b) for b in _BOUNDS},
    "pgd": _adversarial("pgd"),
    "fgsm": _adversarial("fgsm"),
    "advibp": _advibp(False),
    "advibp_fixed": _advibp(True),
}


def objective(name, **options):
    """The objective registered as ``name`` (an objective instance passes through)."""
    if not isinstance(name, str):
        if hasattr(name, "step") and hasattr(name, "init"):
            return name
        raise ValueError(f"objective: expected a name or an objective, got {type(name).__name__}")
    if name not in OBJECTIVES:
        raise ValueError(f"objective: unknown {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](**options)


def own_bound(obj) -> str:
    """The bound whose certified error a method is judged by: its own for certified methods,
    IBP for the rest (standard, adversarial, AdvIBP — which certifies with IBP)."""
    return obj.bound if isinstance(obj, Certified) else "ibp"

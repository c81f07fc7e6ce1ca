"""Training methods as objectives (``init``/``step`` pairs), registered by name.

``objective(name, **options)`` builds one: "standard", the certified methods (every key of
``ntkflow.bounds.METHODS``: "ibp", "crown_ibp" (with the β mix), "crown", "cap", ...),
"pgd" / "fgsm" (adversarial training) and "advibp" / "advibp_fixed" (fan2021). See
``ntkflow.objectives.base`` for the step protocol, ``registry`` for ``register`` and what else
the trainer and the sweep ask of an objective, ``schedules`` for ε / β schedules.
"""

from __future__ import annotations

from ..bounds import METHODS as _BOUNDS
from .advibp import AdvIBP
from .base import Context, Step, as_columns, margin_loss
from .methods import Adversarial, Certified, Standard
from .registry import (REGISTRY, MethodSpec, attack_fn, judged_error, judged_loss, method_name, names, objective, own_bound,
                       phases_by_epoch, register, spec, summarize, unregister)
from .schedules import BetaFromEps, Constant, FanWarmup, Ramp, schedule

__all__ = ["Context", "Step", "margin_loss", "as_columns", "objective", "OBJECTIVES", "Standard", "Certified",
           "Adversarial", "AdvIBP", "Ramp", "Constant", "FanWarmup", "BetaFromEps", "schedule", "own_bound",
           "ATTACK_KEYS", "ADVIBP_KEYS", "register", "unregister", "names", "spec", "MethodSpec",
           "judged_loss", "attack_fn", "summarize", "judged_error", "method_name", "phases_by_epoch", "certified"]

ATTACK_KEYS = ("steps", "step_size", "restarts", "alpha")
ADVIBP_KEYS = ("t_nat", "t_adv", "ramp", "decay", "c_max", "beta1", "beta2", "alpha", "kappa_adv", "kappa_ibp")


def certified(bound):
    """The builder of the certified-training method on ``bound`` (a key of ``ntkflow.bounds.METHODS``)."""
    def make(clip=None, regularize=False, tau=0.5, loss_fusion=False):
        return Certified(bound, mix=bound == "crown_ibp", clip=clip, regularize=regularize, tau=tau,
                         loss_fusion=loss_fusion)
    return make


def _adversarial(attack):
    def make(clip=None, steps=10, step_size=None, restarts=1, alpha=1.25):
        return Adversarial(attack, steps=steps, step_size=step_size, restarts=restarts, alpha=alpha, clip=clip)
    return make


def _advibp(fixed):
    d = AdvIBP()

    def make(clip=None, t_nat=d.t_nat, t_adv=d.t_adv, ramp=d.ramp, decay=d.decay, c_max=d.c_max, beta1=d.beta1,
             beta2=d.beta2, alpha=d.alpha, kappa_adv=d.kappa_adv, kappa_ibp=d.kappa_ibp):
        return AdvIBP(fixed=fixed, clip=clip, t_nat=t_nat, t_adv=t_adv, ramp=ramp, decay=decay, c_max=c_max,
                      beta1=beta1, beta2=beta2, alpha=alpha, kappa_adv=kappa_adv, kappa_ibp=kappa_ibp)
    return make


register("standard", lambda: Standard())
for _b in _BOUNDS:
    register(_b, certified(_b))
register("pgd", _adversarial("pgd"))
register("fgsm", _adversarial("fgsm"))
register("advibp", _advibp(False))
register("advibp_fixed", _advibp(True))

#: The registry itself (name → ``MethodSpec``); ``register`` adds to it.
OBJECTIVES = REGISTRY

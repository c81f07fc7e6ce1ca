"""The policy every training run shares: optimizers, ε schedules, the stop rule, validated run settings.

The loss is a sum over samples and the minibatch gradient is scaled by n/B, so ``lr`` is a
time step of the gradient flow of the summed loss for every net and method (full-batch GD
for k steps approaches the flow at t = k·lr; a "mean loss" learning rate η is lr = η/n).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import optax

from .. import _validate as V
from .._core.errors import NtkflowError
from ..objectives.schedules import SCHEDULES, Ramp, schedule as make_schedule
from ..paper.tracker import TIE_RULES

__all__ = ["OPTIMIZERS", "optimizer", "EpsSchedule", "StopRule", "Plateau", "armed_from", "stop_rule", "schedule_fn",
           "check_optimizer", "check_lr", "FitSettings", "fit_settings"]

#: Optimizers at unit learning rate: every one of them is linear in lr, so an epoch scales
#: the update by a traced lr and a learning-rate grid shares one compilation.
OPTIMIZERS = {
    "sgd": lambda momentum: optax.sgd(1.0, momentum=momentum or None),
    "gd": lambda momentum: optax.sgd(1.0, momentum=momentum or None),
    "momentum": lambda momentum: optax.sgd(1.0, momentum=momentum or 0.9),
    "adam": lambda momentum: optax.adam(1.0),
}


@lru_cache(maxsize=None)
def optimizer(name: str, momentum: float | None):
    """``OPTIMIZERS[name](momentum)``, one object per setting: the optimizer is a static
    argument of the jitted epochs, and a fresh object per run would recompile the epoch for
    every run."""
    return OPTIMIZERS[name](momentum)


#: ε = 0 for ``warmup`` epochs, then a linear ramp over ``ramp`` epochs to the target (Gowal et
#: al. 2018; Shi et al. 2021), updated every step: the ``Ramp`` of ``objectives.schedules`` with
#: start 0 — one schedule family, so ``EpsSchedule(warmup=2, ramp=8)`` is ``Ramp(2, 8)``.
EpsSchedule = Ramp


@dataclass(frozen=True)
class StopRule:
    """Stop on a plateau of the training loss: when the epoch's training loss has not fallen
    below (1 − ``rel_tol``)·(best so far) for ``patience`` epochs, or when the mean loss
    L̄/n is below ``abs_tol`` (logistic loss on separable data decays only like 1/t, so a
    relative rule alone would never stop a run that has fit its data).

    ``kappa`` > 0 adds the paper's target: stop at the first epoch after which the method's
    loss on the full training set at the target ε, evaluated at the weights the epoch ends
    with, is below ``kappa`` (for IBP the summed certified loss L̄(W) of Eq. 2);
    ``meta["reached_kappa"]`` says whether it did. 0 disables it. Set ``patience`` to the
    budget (and the tolerances to 0) for the κ rule alone.

    The epoch's training loss is the sum of its minibatch losses scaled to n samples
    (free: the gradient computes it). The rule is armed once ε has reached its target,
    so a warm-up or ramp, during which the loss rises, is never taken for a plateau.
    """

    patience: int = 10
    rel_tol: float = 1e-3
    abs_tol: float = 1e-4
    kappa: float = 0.0

    def __post_init__(self):
        V.positive_int("stop.patience", self.patience)
        V.positive_float("stop.rel_tol", self.rel_tol, allow_zero=True)
        V.positive_float("stop.abs_tol", self.abs_tol, allow_zero=True)
        V.positive_float("stop.kappa", self.kappa, allow_zero=True)


class Plateau:
    """The state of a ``StopRule`` along one run."""

    def __init__(self, rule: StopRule, n: int):
        self.rule, self.n, self.best, self.wait = rule, n, np.inf, 0

    def __call__(self, loss: float) -> bool:
        if loss / self.n < self.rule.abs_tol:
            return True
        if loss < (1.0 - self.rule.rel_tol) * self.best:
            self.best, self.wait = loss, 0
        else:
            self.wait += 1
        return self.wait >= self.rule.patience


def armed_from(sched, target: float, epochs: int) -> int:
    """The first epoch from which ε = ``sched(epoch)`` stays at its target to the end of the budget: the stop rule
    is armed there. A schedule that visits the target and leaves it (fan2021's FGSM warm-up at
    ε_train, then a ramp from 0) is armed only after its last departure; ``epochs`` when the
    last epoch is off target (never armed)."""
    e = int(epochs)
    while e > 0 and sched(float(e - 1)) == target:
        e -= 1
    return e


def stop_rule(stop) -> StopRule | None:
    """A ``StopRule`` from None, a rule or its dict (one-line error naming the bad keys)."""
    if stop is None or isinstance(stop, StopRule):
        return stop
    if isinstance(stop, dict):
        try:
            return StopRule(**stop)
        except TypeError:
            raise NtkflowError(f"stop: unknown keys {sorted(stop)}; use patience, rel_tol, abs_tol, kappa") from None
    raise NtkflowError("stop: must be None, a StopRule or a dict(patience=, rel_tol=, abs_tol=)")


def schedule_fn(schedule, target) -> Callable[[float], float]:
    """epoch → ε from None (ε fixed at ``target``), a schedule, its dict or a callable."""
    if schedule is None:
        return lambda e: target
    if isinstance(schedule, tuple(SCHEDULES.values())):
        return lambda e: schedule(e, target)
    if isinstance(schedule, dict) and "kind" in schedule:
        sch2 = make_schedule(schedule)
        return lambda e: sch2(e, target)
    if isinstance(schedule, dict):
        try:
            sch = EpsSchedule(**schedule)
        except TypeError:
            raise NtkflowError(f"eps_schedule: unknown keys {sorted(schedule)}; use warmup, ramp") from None
        return lambda e: sch(e, target)
    if callable(schedule):
        return lambda e: float(V.eps_value(schedule(e)))
    raise NtkflowError("eps_schedule: must be None, an EpsSchedule, a dict(warmup=, ramp=) or a callable")


def check_optimizer(optimizer: str, batch_size, n: int, momentum, dtype: str, tie: str):
    """Validate the optimizer settings of a run on n samples; (B, momentum)."""
    if optimizer not in OPTIMIZERS:
        raise NtkflowError(f"optimizer: unknown {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    B = n if (batch_size is None or optimizer == "gd") else V.positive_int("batch_size", batch_size)
    if B > n:
        raise NtkflowError(f"batch_size: must be in [1, n={n}], got {B}")
    if momentum is not None:
        momentum = V.positive_float("momentum", momentum, allow_zero=True)
        if not momentum < 1:
            raise NtkflowError(f"momentum: must be in [0, 1), got {momentum}")
    if dtype not in ("float32", "float64"):
        raise NtkflowError(f"dtype: must be 'float32' or 'float64', got {dtype!r}")
    if tie not in TIE_RULES:
        raise NtkflowError(f"tie: unknown {tie!r}; choose one of {', '.join(TIE_RULES)}")
    return B, momentum


def check_lr(lr, dtype: str) -> float:
    """``lr`` > 0, and representable in float32 when the run trains in float32."""
    lr = V.positive_float("lr", lr)
    with np.errstate(over="ignore", under="ignore"):
        lr32 = np.float32(lr)
    if dtype == "float32" and not (np.isfinite(lr32) and lr32 > 0):
        raise NtkflowError(f"lr: {lr} is not representable in float32 (dtype='float32'); use dtype='float64'")
    return lr


@dataclass(frozen=True)
class FitSettings:
    """Validated settings of one ``fit`` run (see ``training.fit.fit`` for the meaning of each).

    ``keep_W``: keep the paper's W at every record (``Trajectory.W_saved``; two-layer net only).
    ``fast_path``: let ``training.fastpath`` pick a closed-form epoch where one applies; False
    forces the generic engine step (what the fast path is tested equal to).
    """

    optimizer: str
    lr: float
    epochs: int
    B: int
    seed: int
    momentum: float | None
    record_every: int
    attack_every: int
    reg_weight: float
    tie: str
    track_gram: bool
    dtype: str
    progress: bool
    keep_W: bool = False
    fast_path: bool = True


def fit_settings(n: int, *, optimizer: str, lr, epochs, batch_size, seed, momentum, record_every, attack_every,
                 reg_weight, tie: str, track_gram, dtype: str, progress, keep_W=False,
                 fast_path=True) -> FitSettings:
    """Validated ``FitSettings`` of a run on n samples (one-line ``NtkflowError`` naming a bad argument)."""
    B, momentum = check_optimizer(optimizer, batch_size, n, momentum, dtype, tie)
    return FitSettings(optimizer=optimizer, lr=check_lr(lr, dtype), epochs=V.positive_int("epochs", epochs), B=B,
                       seed=V.positive_int("seed", seed, minimum=0), momentum=momentum,
                       record_every=V.positive_int("record_every", record_every),
                       attack_every=0 if attack_every is None else V.positive_int("attack_every", attack_every),
                       reg_weight=V.positive_float("reg_weight", reg_weight, allow_zero=True), tie=tie,
                       track_gram=V.flag("track_gram", track_gram), dtype=dtype,
                       progress=V.flag("progress", progress), keep_W=V.flag("keep_W", keep_W),
                       fast_path=V.flag("fast_path", fast_path))

"""The policy every training run shares: optimizers, ε schedules, the stop rule, and the run's
settings as one frozen dataclass per concern — ``OptimSettings`` (how the params move),
``ScheduleSettings`` (ε, β and the regularizer weight along the run), ``RecordSettings`` (what
is recorded and when), ``StopRule``, ``metrics.AttackSettings`` (the evaluation attack) —
bundled in ``FitSettings`` and passed whole. Each validates its own fields (one-line
``NtkflowError`` naming the field); ``fit_settings`` is the one place flat keywords become them.

The loss is a sum over samples and the minibatch gradient is scaled by n/B, so ``lr`` is a
time step of the gradient flow of the summed loss for every net and method (full-batch GD
for k steps approaches the flow at t = k·lr; a "mean loss" learning rate η is lr = η/n).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Callable

import numpy as np
import optax

from .. import _validate as V
from .._core.errors import NtkflowError
from ..metrics import AttackSettings
from ..objectives.schedules import SCHEDULES, Ramp, schedule as make_schedule
from ..paper.tracker import TIE_RULES

__all__ = ["OPTIMIZERS", "optimizer", "EpsSchedule", "StopRule", "Plateau", "armed_from", "stop_rule", "schedule_fn",
           "eps_schedule_of", "check_lr", "OptimSettings", "ScheduleSettings", "RecordSettings", "AttackSettings",
           "FitSettings", "fit_settings"]

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


def eps_schedule_of(schedule):
    """An ε schedule as ``ScheduleSettings`` holds it: None (ε fixed), a schedule of
    ``objectives.schedules`` (its dict ``{"kind": ...}`` or ``EpsSchedule``'s dict(warmup=, ramp=)
    built into one) or a callable epoch → ε."""
    if schedule is None or isinstance(schedule, tuple(SCHEDULES.values())):
        return schedule
    if isinstance(schedule, dict) and "kind" in schedule:
        return make_schedule(schedule)
    if isinstance(schedule, dict):
        try:
            return EpsSchedule(**schedule)
        except TypeError:
            raise NtkflowError(f"eps_schedule: unknown keys {sorted(schedule)}; use warmup, ramp") from None
    if callable(schedule):
        return schedule
    raise NtkflowError("eps_schedule: must be None, an EpsSchedule, a dict(warmup=, ramp=) or a callable")


def schedule_fn(schedule, target) -> Callable[[float], float]:
    """epoch → ε from None (ε fixed at ``target``), a schedule, its dict or a callable."""
    schedule = eps_schedule_of(schedule)
    if schedule is None:
        return lambda e: target
    if isinstance(schedule, tuple(SCHEDULES.values())):
        return lambda e: schedule(e, target)
    return lambda e: float(V.eps_value(schedule(e)))


def check_lr(lr, dtype: str) -> float:
    """``lr`` > 0, and representable in float32 when the run trains in float32."""
    lr = V.positive_float("lr", lr)
    with np.errstate(over="ignore", under="ignore"):
        lr32 = np.float32(lr)
    if dtype == "float32" and not (np.isfinite(lr32) and lr32 > 0):
        raise NtkflowError(f"lr: {lr} is not representable in float32 (dtype='float32'); use dtype='float64'")
    return lr


def _set(obj, **values):
    """Store validated (normalized) values on a frozen dataclass from its ``__post_init__``."""
    for k, v in values.items():
        object.__setattr__(obj, k, v)


@dataclass(frozen=True, kw_only=True)
class OptimSettings:
    """How the params move: the optax optimizer at learning rate ``lr`` over ``epochs`` epochs
    of minibatches of ``batch_size`` (None: the whole set; "gd" is always full batch), its
    ``momentum``, the ``seed`` of the permutations and step keys, and the training ``dtype``
    ("float32" trains in float32; what is recorded is recomputed in float64).

    ``lr`` is a time step of the gradient flow of the summed loss (module docstring); None
    only where the caller supplies it per run (``fit_group``'s ``lrs``). ``batch_size`` ≤ n is
    checked against the data by ``batch``.
    """

    optimizer: str = "sgd"
    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    momentum: float | None = None
    seed: int = 0
    dtype: str = "float64"

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise NtkflowError(f"optimizer: unknown {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.dtype not in ("float32", "float64"):
            raise NtkflowError(f"dtype: must be 'float32' or 'float64', got {self.dtype!r}")
        momentum = self.momentum
        if momentum is not None:
            momentum = V.positive_float("momentum", momentum, allow_zero=True)
            if not momentum < 1:
                raise NtkflowError(f"momentum: must be in [0, 1), got {momentum}")
        _set(self, lr=None if self.lr is None else check_lr(self.lr, self.dtype),
             epochs=V.positive_int("epochs", self.epochs), momentum=momentum,
             batch_size=None if self.batch_size is None else V.positive_int("batch_size", self.batch_size),
             seed=V.seed(self.seed))

    def batch(self, n: int) -> int:
        """The minibatch size B on n samples (n for full-batch GD or no ``batch_size``)."""
        B = n if (self.batch_size is None or self.optimizer == "gd") else self.batch_size
        if B > n:
            raise NtkflowError(f"batch_size: must be in [1, n={n}], got {B}")
        return B


@dataclass(frozen=True, kw_only=True)
class ScheduleSettings:
    """What changes along the run: ``eps_schedule`` (epoch → ε, relative to the run's target:
    None, a schedule of ``objectives.schedules``, its dict or a callable; see
    ``eps_schedule_of``), ``beta_schedule`` (CROWN-IBP's β(ε, ε_target); None: β from 1 to 0
    along the ε ramp, ``objectives.BetaFromEps``) and ``reg_weight``, the weight of the
    thesis's warm-up regularizers, λ = reg_weight·(1 − ε/ε_target) (Sec. 3.2.4)."""

    eps_schedule: object = None
    beta_schedule: Callable | None = None
    reg_weight: float = 0.0

    def __post_init__(self):
        if self.beta_schedule is not None and not callable(self.beta_schedule):
            raise NtkflowError(f"beta_schedule: must be None or a callable (eps, eps_target) -> beta, "
                               f"got {self.beta_schedule!r}")
        _set(self, eps_schedule=eps_schedule_of(self.eps_schedule),
             reg_weight=V.positive_float("reg_weight", self.reg_weight, allow_zero=True))


@dataclass(frozen=True, kw_only=True)
class RecordSettings:
    """What is recorded: every ``record_every``-th epoch (and always the last); the costly
    metrics (PGD, CROWN, the loss variation) at every ``attack_every``-th record (None or 0:
    at t = 0 and at the end only); ``track_gram``: λmin and ‖H − H(0)‖ of the method's own Gram
    (O(n²P) per record); ``metrics``: names of ``ntkflow.metrics.METRICS`` (None: all that
    apply); ``tie``: how the recorded errors count a tie (``paper.tracker.TIE_RULES``);
    ``progress``: a progress bar; ``keep_W``: the paper's W at every record
    (``Trajectory.W_saved``; two-layer net only)."""

    record_every: int = 1
    attack_every: int | None = None
    track_gram: bool = False
    metrics: tuple | None = None
    tie: str = "wrong"
    progress: bool = False
    keep_W: bool = False

    def __post_init__(self):
        if self.tie not in TIE_RULES:
            raise NtkflowError(f"tie: unknown {self.tie!r}; choose one of {', '.join(TIE_RULES)}")
        _set(self, record_every=V.positive_int("record_every", self.record_every),
             attack_every=0 if not self.attack_every else V.positive_int("attack_every", self.attack_every),
             track_gram=V.flag("track_gram", self.track_gram), progress=V.flag("progress", self.progress),
             keep_W=V.flag("keep_W", self.keep_W),
             metrics=None if self.metrics is None else
             (self.metrics,) if isinstance(self.metrics, str) else tuple(self.metrics))


@dataclass(frozen=True)
class FitSettings:
    """Every setting of one ``fit`` run, one object per concern, each validated on its own:
    ``optim`` (``OptimSettings``), ``schedule`` (``ScheduleSettings``), ``record``
    (``RecordSettings``), ``stop`` (a ``StopRule`` or None: the whole budget), ``attack`` (the
    evaluation attack, ``metrics.AttackSettings``), and ``fast_path``: let ``training.fastpath``
    pick a closed-form epoch where one applies (False forces the generic engine step, what the
    fast path is tested equal to)."""

    optim: OptimSettings
    schedule: ScheduleSettings = ScheduleSettings()
    record: RecordSettings = RecordSettings()
    stop: StopRule | None = None
    attack: AttackSettings = AttackSettings()
    fast_path: bool = True

    def for_run(self, lr: float, seed: int) -> "FitSettings":
        """These settings with the learning rate and seed of one run (validated)."""
        return replace(self, optim=replace(self.optim, lr=lr, seed=seed))

    def parts(self) -> dict:
        """The settings objects as ``fit``'s keywords (``fit(..., **settings.parts())``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: The settings objects ``fit_settings`` builds from flat keywords: keyword of the object → its class.
_CONCERNS = {"optim": OptimSettings, "schedule": ScheduleSettings, "record": RecordSettings}


def fit_settings(*, optim: OptimSettings | None = None, schedule: ScheduleSettings | None = None,
                 record: RecordSettings | None = None, stop=None, attack: AttackSettings | None = None,
                 fast_path: bool = True, **keywords) -> FitSettings:
    """The ``FitSettings`` of a run from its settings objects and/or flat keywords — the one place
    flat keywords (``lr=``, ``epochs=``, ``record_every=``, …: the field names of
    ``OptimSettings``, ``ScheduleSettings``, ``RecordSettings``) become objects.

    A concern given as an object is taken whole; one not given is built from its fields among
    ``keywords`` (defaults for the rest). A keyword of a concern also given as an object, a
    keyword no concern has, or an object of the wrong class is a one-line ``NtkflowError``
    naming it. ``stop`` may be a ``StopRule`` or its dict.
    """
    given = {"optim": optim, "schedule": schedule, "record": record}
    parts = {}
    for arg, cls in _CONCERNS.items():
        own = {f.name: keywords.pop(f.name) for f in fields(cls) if f.name in keywords}
        obj = given[arg]
        if obj is None:
            parts[arg] = cls(**own)
        elif not isinstance(obj, cls):
            raise NtkflowError(f"{arg}: expected a {cls.__name__}, got {type(obj).__name__}")
        elif own:
            raise NtkflowError(f"{next(iter(own))}: set both as a keyword and by {arg}=; pass one")
        else:
            parts[arg] = obj
    if keywords:
        known = [f.name for cls in _CONCERNS.values() for f in fields(cls)]
        raise NtkflowError(f"{next(iter(keywords))}: unknown setting; use one of {', '.join(known)}")
    attack = AttackSettings() if attack is None else attack
    if not isinstance(attack, AttackSettings):
        raise NtkflowError(f"attack: expected an AttackSettings, got {type(attack).__name__}")
    return FitSettings(**parts, stop=stop_rule(stop), attack=attack, fast_path=V.flag("fast_path", fast_path))

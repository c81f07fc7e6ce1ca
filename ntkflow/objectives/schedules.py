"""Schedules of ε (and β, λ) over training, as frozen dataclasses ``value(epoch, target)``.

- ``Constant``: the target throughout.
- ``Ramp(warmup, ramp, start)``: ``start``·target for ``warmup`` epochs, then linear to the
  target over ``ramp`` epochs (Gowal et al. 2018). With start = 0 this is the thesis's
  short three-phase schedule (Table 3.2: ε = 0, increasing ε, final ε; Sec. 3.2.4).
- ``FanWarmup(t_nat, t_adv, ramp)``: fan2021 Alg. 2 — ε = 0 for t_nat epochs (clean), the
  target for t_adv epochs (FGSM warm-up at ε_train), then a linear ramp from 0 over
  ``ramp`` epochs for the joint phase.
- ``BetaFromEps(start, end)``: CROWN-IBP's β, from ``start`` (1) to ``end`` (0) as ε goes from
  0 to its target: β = start + (end − start)·ε/ε_target (Zhang et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import _validate as V
from .._core.errors import NtkflowError

__all__ = ["Constant", "Ramp", "FanWarmup", "BetaFromEps", "schedule", "SCHEDULES"]


@dataclass(frozen=True)
class Constant:
    def __call__(self, epoch: float, target: float) -> float:
        return target


@dataclass(frozen=True)
class Ramp:
    """ε = start·target for ``warmup`` epochs, then a linear ramp to the target over ``ramp``."""

    warmup: float = 0.0
    ramp: float = 0.0
    start: float = 0.0

    def __post_init__(self):
        for name in ("warmup", "ramp", "start"):
            V.positive_float(f"schedule.{name}", getattr(self, name), allow_zero=True)
        if self.start > 1:
            raise NtkflowError(f"schedule.start: a fraction of the target in [0, 1], got {self.start}")

    def __call__(self, epoch: float, target: float) -> float:
        if epoch < self.warmup:
            return self.start * target
        if self.ramp <= 0:
            return target
        f = min(1.0, (epoch - self.warmup) / self.ramp)
        return target * (self.start + (1 - self.start) * f)


@dataclass(frozen=True)
class FanWarmup:
    """fan2021 Alg. 2: clean for ``t_nat``, FGSM at the target for ``t_adv``, then ramp from 0."""

    t_nat: float = 0.0
    t_adv: float = 0.0
    ramp: float = 0.0

    def __post_init__(self):
        for name in ("t_nat", "t_adv", "ramp"):
            V.positive_float(f"schedule.{name}", getattr(self, name), allow_zero=True)

    def __call__(self, epoch: float, target: float) -> float:
        if epoch < self.t_nat:
            return 0.0
        if epoch < self.t_nat + self.t_adv:
            return target
        return Ramp(0.0, self.ramp)(epoch - self.t_nat - self.t_adv, target)


@dataclass(frozen=True)
class BetaFromEps:
    start: float = 1.0
    end: float = 0.0

    def __call__(self, eps: float, eps_target: float) -> float:
        f = 1.0 if eps_target <= 0 else min(1.0, eps / eps_target)
        return self.start + (self.end - self.start) * f


SCHEDULES = {"constant": Constant, "ramp": Ramp, "fan_warmup": FanWarmup}


def schedule(spec):
    """A schedule from None (constant), an instance, a callable, or a dict
    ``{"kind": "ramp"|"fan_warmup"|"constant", ...fields}`` (``kind`` defaults to "ramp")."""
    if spec is None:
        return Constant()
    if isinstance(spec, dict):
        spec = dict(spec)
        kind = spec.pop("kind", "ramp")
        if kind not in SCHEDULES:
            raise NtkflowError(f"schedule: unknown kind {kind!r}; choose one of {', '.join(SCHEDULES)}")
        try:
            return SCHEDULES[kind](**spec)
        except TypeError:
            raise NtkflowError(f"schedule: unknown keys {sorted(spec)} for kind {kind!r}") from None
    if callable(spec):
        return spec
    raise NtkflowError("schedule: must be None, a dict, a schedule object or a callable (epoch, target) -> value")

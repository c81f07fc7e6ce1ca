"""The registry of training methods, and what the trainer and the sweep ask of an objective.

``register(name, builder)`` adds a method: ``builder(**options)`` returns an objective (the
``init``/``step`` protocol of ``base``). The builder's keyword parameters ARE the method's
options: ``objective(name, **options)`` refuses any other key with a one-line error (never a
silently dropped setting), and the sweep passes a method exactly the config values whose
names its builder declares (``[attack]``, ``[advibp]``, ``[train]`` and the method's own
``[objective.NAME]`` table).

Besides ``init``/``step`` an objective may define (each has a default, so a new method is
one class plus one ``register``):

* ``own_bound`` — the bound its certified error is judged by (default ``"ibp"``);
* ``judged_loss(net, params, X, y, ctx)`` — the loss it is judged by on a whole set, a
  differentiable scalar (default: its own ``step``'s loss from a fresh state);
* ``attack_points(net, params, X, y, ctx)`` — the inputs its Gram is taken at, for a method
  that trains on attack points (default: none, the Gram of its certified margins);
* ``summarize(aux)`` — epoch summaries of its per-step ``aux`` arrays (default: means);
* ``judged_errors`` — the training-error series it aims at, in order of preference (the lr
  protocol's ``final_train_error`` rule; default ``("certified_error",)``);
* ``phases_by_epoch`` — True for a method whose phases switch by epoch (fan2021's AdvIBP):
  the sweep then gives it fan2021's warm-up ε schedule (default False).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np
from .._core.errors import NtkflowError

__all__ = ["register", "unregister", "objective", "names", "spec", "MethodSpec", "own_bound", "judged_loss",
           "attack_fn", "summarize", "judged_error", "method_name", "mean_summary", "phases_by_epoch", "REGISTRY"]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, its builder and the options the builder takes."""

    name: str
    build: Callable
    options: tuple[str, ...]


#: name → MethodSpec, in registration order (the built-in methods first).
REGISTRY: dict[str, MethodSpec] = {}


def _options_of(name: str, builder) -> tuple[str, ...]:
    try:
        params = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):
        raise NtkflowError(f"register: the builder of {name!r} has no inspectable signature") from None
    if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params):
        raise NtkflowError(f"register: the builder of {name!r} takes **kwargs/*args; name its options "
                         "(a setting it does not know must be an error, not dropped)")
    if any(p.default is p.empty for p in params):
        raise NtkflowError(f"register: every option of {name!r} needs a default (the sweep builds it from a config)")
    return tuple(p.name for p in params)


def register(name: str, builder: Callable, *, replace: bool = False) -> MethodSpec:
    """Add the training method ``name``: ``builder(**options)`` returns its objective."""
    if not isinstance(name, str) or not name.isidentifier():
        raise NtkflowError(f"register: name must be an identifier string, got {name!r}")
    if name in REGISTRY and not replace:
        raise NtkflowError(f"register: {name!r} is already registered (pass replace=True to redefine it)")
    if not callable(builder):
        raise NtkflowError(f"register: builder of {name!r} must be callable")
    REGISTRY[name] = s = MethodSpec(name, builder, _options_of(name, builder))
    return s


def unregister(name: str) -> None:
    """Remove a method (a test's toy objective)."""
    spec(name)
    del REGISTRY[name]


def names() -> tuple[str, ...]:
    """Every registered method's name (the sweep's ``grid.method`` choices)."""
    return tuple(REGISTRY)


def spec(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise NtkflowError(f"objective: unknown {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def objective(name, **options):
    """The objective registered as ``name`` built with ``options`` (an objective passes through)."""
    if not isinstance(name, str):
        if hasattr(name, "step") and hasattr(name, "init"):
            if options:
                raise NtkflowError("objective: options given with an objective instance (set them on the instance)")
            return name
        raise NtkflowError(f"objective: expected a name or an objective, got {type(name).__name__}")
    s = spec(name)
    unknown = sorted(set(options) - set(s.options))
    if unknown:
        raise NtkflowError(f"objective: {name!r} has no option {', '.join(map(repr, unknown))} "
                         f"(its options: {', '.join(s.options) or 'none'})")
    return s.build(**options)


# ---------------------------------------------------------------- the protocol's defaults
def method_name(obj) -> str:
    """``obj.name``, else its class name (labels, trajectory metadata)."""
    return getattr(obj, "name", type(obj).__name__)


def own_bound(obj) -> str:
    """The bound whose certified error a method is judged by (default IBP)."""
    return getattr(obj, "own_bound", "ibp")


def judged_loss(obj, net, params, X, y, ctx):
    """The loss ``obj`` is judged by on (X, y): its ``judged_loss``, else its step's loss."""
    f = getattr(obj, "judged_loss", None)
    if f is not None:
        return f(net, params, X, y, ctx)
    return obj.step(net, params, obj.init(params), X, y, ctx).loss


def phases_by_epoch(obj) -> bool:
    """Whether ``obj`` (an objective or a registered name, built with its default options)
    switches phase by epoch and so needs fan2021's warm-up ε schedule."""
    return bool(getattr(objective(obj) if isinstance(obj, str) else obj, "phases_by_epoch", False))


def attack_fn(obj):
    """``obj.attack_points`` (a method that trains on attack points) or None."""
    return getattr(obj, "attack_points", None)


def summarize(obj, aux: dict) -> dict:
    """Epoch summaries of per-step aux arrays: ``obj.summarize`` or the NaN-ignoring means."""
    f = getattr(obj, "summarize", None)
    if f is not None:
        return f(aux)
    return mean_summary(aux)


def mean_summary(aux: dict) -> dict:
    """Each aux key's mean over the epoch's steps (NaN where every step was NaN)."""
    out = {}
    for k, v in aux.items():
        v = np.asarray(v, float)
        out[k] = float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan")
    return out


def judged_error(obj, series: dict) -> float:
    """The last value of the first of ``obj.judged_errors`` that ``series`` records."""
    for key in getattr(obj, "judged_errors", ("certified_error",)):
        if key in series:
            return float(series[key][-1])
    raise NtkflowError(f"objective: none of {getattr(obj, 'judged_errors', ())} is recorded")

"""Discrete IBP training: GD/SGD (any optax optimizer) on the robust loss, ε schedules.

The minibatch gradient is (n/B)·Σ_{i∈batch} ∇l(u̲_i), an unbiased estimate of ∇L̄ (L̄ is a
sum over samples, Eq. 2). So ``lr`` is a time step of the gradient flow: full-batch GD
for k steps approaches the flow at t = k·lr. (A "mean loss" learning rate η corresponds
to lr = η/n.) Each epoch draws a fresh permutation and drops the last partial batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _validate as V
from ._jax import x64
from .loss import _robust_loss_and_grad
from ._progress import progress as progress_bar
from .tracker import Trajectory, stack_rows, tracker

__all__ = ["train", "EpsSchedule", "OPTIMIZERS"]

OPTIMIZERS = {
    "sgd": lambda lr, momentum: optax.sgd(lr, momentum=momentum or None),
    "gd": lambda lr, momentum: optax.sgd(lr, momentum=momentum or None),
    "momentum": lambda lr, momentum: optax.sgd(lr, momentum=momentum or 0.9),
    "adam": lambda lr, momentum: optax.adam(lr),
}


@dataclass(frozen=True)
class EpsSchedule:
    """ε = 0 for ``warmup`` epochs, then a linear ramp over ``ramp`` epochs to the target.

    The usual IBP practice (Gowal et al. 2018; Shi et al. 2021); ε is updated every step.
    """

    warmup: float = 0.0
    ramp: float = 0.0

    def __post_init__(self):
        for name in ("warmup", "ramp"):
            V.positive_float(f"eps_schedule.{name}", getattr(self, name), allow_zero=True)

    def __call__(self, epoch: float, target: float) -> float:
        if epoch < self.warmup:
            return 0.0
        if self.ramp <= 0:
            return target
        return target * min(1.0, (epoch - self.warmup) / self.ramp)


def _schedule_fn(schedule, target) -> Callable[[float], float]:
    if schedule is None:
        return lambda e: target
    if isinstance(schedule, EpsSchedule):
        return lambda e: schedule(e, target)
    if isinstance(schedule, dict):
        try:
            sch = EpsSchedule(**schedule)
        except TypeError:
            raise ValueError(f"eps_schedule: unknown keys {sorted(schedule)}; use warmup, ramp") from None
        return lambda e: sch(e, target)
    if callable(schedule):
        return lambda e: float(V.eps_value(schedule(e)))
    raise ValueError("eps_schedule: must be None, an EpsSchedule, a dict(warmup=, ramp=) or a callable")


@partial(jax.jit, static_argnames=("opt",))
def _epoch(W, opt_state, a, X, y, idx, eps_steps, scale, opt):
    """One epoch: idx (steps, B) sample indices, eps_steps (steps,) ε per step."""

    def step(carry, batch):
        W, s, l1 = carry
        rows, e = batch
        g = _robust_loss_and_grad(W, a, X[rows], y[rows], e, l1)[1] * scale
        upd, s = opt.update(g, s, W)
        W = optax.apply_updates(W, upd)
        return (W, s, jnp.sum(jnp.abs(W), axis=1)), None  # ‖w_r‖₁ rides on the update pass

    (W, opt_state, _), _ = jax.lax.scan(step, (W, opt_state, jnp.sum(jnp.abs(W), axis=1)), (idx, eps_steps))
    return W, opt_state


def train(W0, a, X, y, eps, *, optimizer: str = "sgd", lr: float, epochs: int, batch_size: int | None = None,
          eps_schedule=None, seed: int = 0, momentum: float | None = None, track_gram: bool = False,
          keep_W: bool = False, record_every: int = 1, dtype: str = "float64", progress: bool = False) -> Trajectory:
    """Train the first layer with ``optimizer`` on L̄; return a ``Trajectory`` recorded per epoch.

    ``optimizer``: sgd (``batch_size`` < n) / gd (full batch) / momentum / adam (optax).
    ``eps`` is the target radius; ``eps_schedule`` (``EpsSchedule``, dict or callable
    epoch → ε) ramps it. ``ts`` counts epochs (0 = initialization). Standard training
    is ``eps=0``. ``track_gram`` adds λmin(H) and ‖H − H(0)‖₂ (O(n²m) per record).
    ``record_every`` records every k-th epoch (and always the last). ``dtype="float32"``
    trains in float32 (full-precision products, no TF32) for speed; what is recorded —
    loss, errors, certified error — is always recomputed in float64 from W.
    The same inputs and seed give identical trajectories on CPU.
    """
    W0, a, X, y, eps = V.problem(W0, a, X, y, eps)
    n = X.shape[0]
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    lr = V.positive_float("lr", lr)
    epochs = V.positive_int("epochs", epochs)
    B = n if (batch_size is None or optimizer == "gd") else V.positive_int("batch_size", batch_size)
    if B > n:
        raise ValueError(f"batch_size: must be in [1, n={n}], got {B}")
    if momentum is not None:
        momentum = V.positive_float("momentum", momentum, allow_zero=True)
        if not momentum < 1:
            raise ValueError(f"momentum: must be in [0, 1), got {momentum}")
    sched = _schedule_fn(eps_schedule, eps)
    seed = V.positive_int("seed", seed, minimum=0)
    record_every = V.positive_int("record_every", record_every)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: must be 'float32' or 'float64', got {dtype!r}")
    with np.errstate(over="ignore", under="ignore"):
        lr32 = np.float32(lr)
    if dtype == "float32" and not (np.isfinite(lr32) and lr32 > 0):
        raise ValueError(f"lr: {lr} is not representable in float32 (dtype='float32'); use dtype='float64'")
    return _train(W0, a, X, y, eps, optimizer, lr, epochs, B, sched, seed, momentum, track_gram, keep_W,
                  record_every, dtype, progress)


@x64
def _train(W0, a, X, y, eps, optimizer, lr, epochs, B, sched, seed, momentum, track_gram, keep_W, record_every,
           dtype, progress):
    n = X.shape[0]
    W0, a, X, y = (jnp.asarray(v) for v in (W0, a, X, y))
    opt = OPTIMIZERS[optimizer](lr, momentum)
    record = tracker(W0, a, X, y, sched(0.0), gram=track_gram)
    cast = (lambda v: v.astype(jnp.float32)) if dtype == "float32" else (lambda v: v)  # noqa: E731
    Xc, yc, ac = cast(X), cast(y), cast(a)
    steps = n // B
    rng = np.random.default_rng(seed)
    W = cast(W0)
    state = opt.init(W)
    rows, saved, ts = [record(W0)], [np.asarray(W0)] if keep_W else [], [0.0]
    for ep in progress_bar(range(epochs), progress, f"train ({optimizer}, ε={eps})"):
        idx = np.arange(n) if B == n else rng.permutation(n)
        idx = idx[: steps * B].reshape(steps, B)
        eps_steps = np.array([sched(ep + k / steps) for k in range(steps)])
        W, state = _epoch(W, state, ac, Xc, yc, jnp.asarray(idx), jnp.asarray(eps_steps, W.dtype), n / B, opt)
        diverged = not bool(jnp.all(jnp.isfinite(W)))
        if diverged or (ep + 1) % record_every == 0 or ep + 1 == epochs:
            Wr = W.astype(jnp.float64)
            rows.append(record(Wr, sched(ep + 1.0)))
            ts.append(ep + 1.0)
            if keep_W:
                saved.append(np.asarray(Wr))
            diverged = diverged or not np.isfinite(rows[-1]["loss"])
        if diverged:  # NaN/inf weights or loss: stop; the run is recorded as diverged, never as a result
            break
    series = stack_rows(rows)
    meta = {"kind": "train", "optimizer": optimizer, "lr": lr, "epochs": epochs, "batch_size": B, "eps": eps,
            "diverged": diverged, "epochs_run": int(ts[-1]), "seed": seed, "momentum": momentum, "m": int(W0.shape[0]), "n": n, "d": int(X.shape[1]), "dtype": dtype}
    return Trajectory(ts=np.array(ts), series=series, W=np.asarray(W, np.float64), a=np.asarray(a),
                      meta=meta, W_saved=np.stack(saved) if keep_W else None)

"""Discrete IBP training: GD/SGD (any optax optimizer) on the robust loss, ε schedules.

The minibatch gradient is (n/B)·Σ_{i∈batch} ∇l(u̲_i), an unbiased estimate of ∇L̄ (L̄ is a
sum over samples, Eq. 2). So ``lr`` is a time step of the gradient flow: full-batch GD
for k steps approaches the flow at t = k·lr. (A "mean loss" learning rate η corresponds
to lr = η/n.) Each epoch draws a fresh permutation and drops the last partial batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _validate as V
from ._core.errors import NtkflowError
from ._jax import tree_distance, x64
from .paper.loss import _robust_loss_and_grad, robust_loss
from .objectives.schedules import SCHEDULES, Ramp, schedule as make_schedule
from ._progress import progress as progress_bar
from .paper.tracker import TIE_RULES, Trajectory, stack_rows, tracker

__all__ = ["train", "EpsSchedule", "StopRule", "OPTIMIZERS", "optimizer", "Plateau", "armed_from", "stop_rule", "check_lr", "schedule_fn", "check_optimizer"]

#: Optimizers at unit learning rate: every one of them is linear in lr, so ``_epoch`` scales
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
    argument of the jitted epochs (here and in ``ntkflow.fit``), and a fresh object per run
    would recompile the epoch for every run."""
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

    ``kappa`` > 0 adds the paper's target: stop at the first epoch after which the summed
    certified loss L̄(W) (Eq. 2, full training set, at the target ε, evaluated at the weights
    the epoch ends with) is below ``kappa``; ``meta["reached_kappa"]`` says whether it did.
    0 disables it. Set ``patience`` to the budget (and the tolerances to 0) for the κ rule alone.

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
    if stop is None or isinstance(stop, StopRule):
        return stop
    if isinstance(stop, dict):
        try:
            return StopRule(**stop)
        except TypeError:
            raise NtkflowError(f"stop: unknown keys {sorted(stop)}; use patience, rel_tol, abs_tol, kappa") from None
    raise NtkflowError("stop: must be None, a StopRule or a dict(patience=, rel_tol=, abs_tol=)")


def schedule_fn(schedule, target) -> Callable[[float], float]:
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


@partial(jax.jit, static_argnames=("opt",))
def _epoch(W, opt_state, g_prev, a, X, y, idx, eps_steps, scale, lr, opt):
    """One epoch: idx (steps, B) sample indices, eps_steps (steps,) ε per step; ``lr`` traced.

    Returns (W, opt_state, last scaled gradient, the sum of the minibatch losses — the
    epoch's running estimate of L̄ / scale —, per-step (‖g − g_prev‖₂, 1 − cos(g, g_prev)),
    lee2021's gradient smoothness, as ``ntkflow.fit`` records it).
    """

    def step(carry, batch):
        W, s, l1, gp, total = carry
        rows, e = batch
        loss, g, _ = _robust_loss_and_grad(W, a, X[rows], y[rows], e, l1)
        g = g * scale
        upd, s = opt.update(g, s, W)
        W = optax.apply_updates(W, jax.tree_util.tree_map(lambda u: lr * u, upd))
        # ‖w_r‖₁ rides on the update pass
        return (W, s, jnp.sum(jnp.abs(W), axis=1), g, total + loss), tree_distance(gp, g)

    init = (W, opt_state, jnp.sum(jnp.abs(W), axis=1), g_prev, jnp.zeros((), W.dtype))
    (W, opt_state, _, g_last, total), (l2, cos) = jax.lax.scan(step, init, (idx, eps_steps))
    return W, opt_state, g_last, total, l2, cos


def train(W0, a, X, y, eps, *, optimizer: str = "sgd", lr: float, epochs: int, batch_size: int | None = None,
          eps_schedule=None, seed: int = 0, momentum: float | None = None, stop=None, tie: str = "wrong",
          track_gram: bool = False, keep_W: bool = False, record_every: int = 1, dtype: str = "float64",
          progress: bool = False, objective="ibp", options: dict | None = None,
          fit_options: dict | None = None) -> Trajectory:
    """Train the first layer with ``optimizer`` on L̄; return a ``Trajectory`` recorded per epoch.

    Args:
      W0, a, X, y, eps: the problem, shapes (m, d), (m,), (n, d), (n,); ``eps`` is the target radius.
      optimizer: sgd (``batch_size`` < n) / gd (full batch) / momentum / adam (optax).
      lr: the learning rate, a time step of the gradient flow of the summed loss L̄.
      epochs: the epoch budget.
      eps_schedule: ``EpsSchedule``, dict or callable epoch → ε (default: ε fixed).
      stop: a ``StopRule`` (or its dict) that ends training on a loss plateau; None runs
        the whole budget. ``meta["converged"]`` says whether the rule fired.
      tie: how the recorded errors count a tie f(x) = 0 (``tracker.TIE_RULES``).
      track_gram: add λmin(H) and ‖H − H(0)‖₂ (O(n²m) per record).
      record_every: record every k-th epoch (and always the last).
      dtype: "float32" trains in float32 (full-precision products, no TF32) for speed; what is
        recorded — loss, errors, certified error — is always recomputed in float64 from W.

      objective, options: the training method (``ntkflow.objectives``). "ibp", and
        "standard" at ε = 0, run this module's closed-form loop (the paper's Sec. 3.4
        gradient); every other method runs ``ntkflow.fit`` on ``nets.two_layer(W0, a)``
        (which then takes ``eps_schedule``, ``stop``... alike; ``keep_W`` is not supported there),
        with ``fit_options`` (``beta_schedule``, ``reg_weight``, ``attack``, ``attack_every``, ``metrics``).

    Returns:
      A ``Trajectory`` over epochs (``ts`` 0 = initialization). Standard training is ``eps=0``.
      A run whose weights or loss become non-finite stops there with ``meta["diverged"]``
      and NaN errors. The same inputs and seed give identical trajectories on CPU.
    """
    W0, a, X, y, eps = V.problem(W0, a, X, y, eps)
    if not (objective == "ibp" or (objective == "standard" and eps == 0)):
        if keep_W:
            raise NtkflowError(f"keep_W: not supported with objective={objective!r} (ntkflow.fit)")
        return _fit_two_layer(W0, a, X, y, eps, objective=objective, options=options, optimizer=optimizer, lr=lr,
                              epochs=epochs, batch_size=batch_size, eps_schedule=eps_schedule, seed=seed,
                              momentum=momentum, stop=stop, tie=tie, track_gram=track_gram, record_every=record_every,
                              dtype=dtype, progress=progress, **(fit_options or {}))
    n = X.shape[0]
    B, momentum = check_optimizer(optimizer, batch_size, n, momentum, dtype, tie)
    run = _Run(optimizer=optimizer, lr=check_lr(lr, dtype), epochs=V.positive_int("epochs", epochs), B=B,
               sched=schedule_fn(eps_schedule, eps), seed=V.positive_int("seed", seed, minimum=0),
               momentum=momentum, stop=stop_rule(stop), tie=tie, track_gram=track_gram, keep_W=keep_W,
               record_every=V.positive_int("record_every", record_every), dtype=dtype, progress=progress)
    return _train(W0, a, X, y, eps, run)


@x64
def _fit_two_layer(W0, a, X, y, eps, **kw) -> Trajectory:
    """``ntkflow.fit`` on the paper's net (built inside x64, so W stays float64)."""
    from .fit import fit
    from .nets import two_layer

    net, p0 = two_layer(W0, a)
    return fit(net, p0, X, y, eps, **kw)


def check_optimizer(optimizer: str, batch_size, n: int, momentum, dtype: str, tie: str):
    """Validate the optimizer settings shared by ``train`` and ``ntkflow.fit``; (B, momentum)."""
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
    lr = V.positive_float("lr", lr)
    with np.errstate(over="ignore", under="ignore"):
        lr32 = np.float32(lr)
    if dtype == "float32" and not (np.isfinite(lr32) and lr32 > 0):
        raise NtkflowError(f"lr: {lr} is not representable in float32 (dtype='float32'); use dtype='float64'")
    return lr


@dataclass(frozen=True)
class _Run:
    """The validated settings of one training run."""

    optimizer: str
    lr: float
    epochs: int
    B: int
    sched: Callable[[float], float]
    seed: int
    momentum: float | None
    stop: StopRule | None
    tie: str
    track_gram: bool
    keep_W: bool
    record_every: int
    dtype: str
    progress: bool


def _nanmean(v) -> float:
    v = np.asarray(v, float)
    return float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan")


@x64
def _train(W0, a, X, y, eps, run: _Run) -> Trajectory:
    n = X.shape[0]
    W0, a, X, y = (jnp.asarray(v) for v in (W0, a, X, y))
    opt = optimizer(run.optimizer, run.momentum)
    record = tracker(W0, a, X, y, run.sched(0.0), gram=run.track_gram, tie=run.tie)
    cast = (lambda v: v.astype(jnp.float32)) if run.dtype == "float32" else (lambda v: v)  # noqa: E731
    Xc, yc, ac = cast(X), cast(y), cast(a)
    steps = n // run.B
    rng = np.random.default_rng(run.seed)
    plateau = Plateau(run.stop, n) if run.stop else None
    armed = armed_from(run.sched, eps, run.epochs)
    W = cast(W0)
    state = opt.init(W)
    g_prev = jnp.zeros_like(W)
    rows, saved, ts = [record(W0)], [np.asarray(W0)] if run.keep_W else [], [0.0]
    diverged = converged = reached = False
    kappa = run.stop.kappa if run.stop else 0.0
    # Σ_k ‖w_r(k+1) − w_r(k)‖ per neuron over epoch ends: the exact polyline length of full-batch GD's iterates
    # (one step an epoch), a lower bound on the step path of minibatch SGD
    path = np.zeros(W0.shape[0])
    rows[0]["mean_path_length"] = 0.0
    for ep in progress_bar(range(run.epochs), run.progress, f"train ({run.optimizer}, ε={eps})"):
        idx = np.arange(n) if run.B == n else rng.permutation(n)
        idx = idx[: steps * run.B].reshape(steps, run.B)
        eps_steps = np.array([run.sched(ep + k / steps) for k in range(steps)])
        W_prev = W
        W, state, g_prev, total, l2, cos = _epoch(W, state, g_prev, ac, Xc, yc, jnp.asarray(idx),
                                                  jnp.asarray(eps_steps, W.dtype), n / run.B,
                                                  jnp.asarray(run.lr, W.dtype), opt)
        epoch_loss = float(total) * n / (steps * run.B)
        path += np.linalg.norm(np.asarray(W, np.float64) - np.asarray(W_prev, np.float64), axis=1)
        diverged = not (np.isfinite(epoch_loss) and bool(jnp.all(jnp.isfinite(W))))
        # armed once ε stays at its target (a warm-up or ramp is no plateau)
        converged = not diverged and plateau is not None and ep >= armed and plateau(epoch_loss)
        # the κ target is checked on the full loss at the epoch's end weights (not the minibatch sum,
        # which is taken along the epoch), so the run ends at the first recorded W with L̄ < κ
        reached = (not diverged and kappa > 0 and ep >= armed
                   and robust_loss(np.asarray(W, np.float64), a, X, y, eps) < kappa)
        converged = converged or reached
        last = diverged or converged or ep + 1 == run.epochs
        if last or (ep + 1) % run.record_every == 0:
            Wr = W.astype(jnp.float64)
            rows.append(record(Wr, run.sched(ep + 1.0)))
            rows[-1].update(grad_l2_change=_nanmean(l2), grad_cos_distance=_nanmean(cos),
                            mean_path_length=float(path.mean()))
            ts.append(ep + 1.0)
            if run.keep_W:
                saved.append(np.asarray(Wr))
            diverged = diverged or not np.isfinite(rows[-1]["loss"])
        if last or diverged:  # NaN/inf weights or loss: recorded as diverged, never as a result
            break
    meta = {"kind": "train", "optimizer": run.optimizer, "lr": run.lr, "epochs": run.epochs, "batch_size": run.B,
            "eps": eps, "seed": run.seed, "momentum": run.momentum, "m": int(W0.shape[0]), "n": n,
            "d": int(X.shape[1]), "dtype": run.dtype, "tie": run.tie, "diverged": bool(diverged),
            "converged": bool(converged and not diverged),
            "reached_kappa": bool(reached and not diverged), "epochs_run": int(ts[-1]),
            "stop": None if run.stop is None else asdict(run.stop)}
    return Trajectory(ts=np.array(ts), series=stack_rows(rows), W=np.asarray(W, np.float64), a=np.asarray(a),
                      meta=meta, W_saved=np.stack(saved) if run.keep_W else None)

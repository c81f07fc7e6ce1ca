"""One trainer for every net and training method: optax steps on an objective, metrics recorded.

``fit(net, params0, X, y, eps, objective=...)`` trains the params of any ``ntkflow.nets.Net``
with any objective of ``ntkflow.objectives`` (standard, certified, adversarial, AdvIBP),
one jitted ``lax.scan`` per epoch. Conventions are those of ``ntkflow.train`` (the paper's
two-layer trainer, whose IBP/standard loop is the fast path of this one): the loss is a
sum over samples, the minibatch gradient is scaled by n/B, so ``lr`` is a time step of the
gradient flow for every method; each epoch draws a fresh permutation.

Per step the trainer also measures lee2021's gradient smoothness along training: the ℓ2
distance and cosine distance between consecutive (scaled) gradients, recorded as epoch
means ``grad_l2_change`` / ``grad_cos_distance``; objectives' per-step diagnostics
(``aux_keys``: AdvIBP's case and cosines) are recorded as epoch means too, and AdvIBP's
case as per-case fractions ``case_<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _validate as V
from ._jax import tree_distance, x64
from ._progress import progress as progress_bar
from .metrics import AttackSettings, recorder
from .objectives import BetaFromEps, Context, objective as make_objective, own_bound, schedule
from .objectives.advibp import CASES
from .objectives.methods import Adversarial
from .objectives.regularizers import warmup_lambda
from .tracker import Trajectory, stack_rows

__all__ = ["fit", "FitSettings", "tree_distance"]


@partial(jax.jit, static_argnames=("objective", "opt"))
def epoch(net, params, opt_state, obj_state, g_prev, X, y, idx, sched, keys, scale, lr, budget, objective, opt):
    """One epoch of ``objective`` steps: idx (steps, B) sample indices, sched (steps, 4) rows
    (ε, β, λ, epoch) per step, keys (steps, 2). Returns (params, opt_state, obj_state, last
    gradient, sum of minibatch losses, per-step aux dict)."""

    def step(carry, batch):
        params, s, os, gp, total = carry
        rows, (e, b, lam, ep), k = batch
        ctx = Context(e, b, lam, k, ep, ep / budget)
        out = objective.step(net, params, os, X[rows], y[rows], ctx)
        g = jax.tree_util.tree_map(lambda v: v * scale, out.grads)
        upd, s = opt.update(g, s, params)
        params = optax.apply_updates(params, jax.tree_util.tree_map(lambda u: lr * u, upd))
        l2, cos = tree_distance(gp, g)
        aux = {**out.aux, "grad_l2_change": l2, "grad_cos_distance": cos}
        return (params, s, out.state, g, total + out.loss), aux

    zero = jnp.zeros((), jax.tree_util.tree_leaves(params)[0].dtype)
    (params, opt_state, obj_state, g_last, total), aux = jax.lax.scan(
        step, (params, opt_state, obj_state, g_prev, zero), (idx, (sched[:, 0], sched[:, 1], sched[:, 2], sched[:, 3]),
                                                             keys))
    return params, opt_state, obj_state, g_last, total, aux


@dataclass(frozen=True)
class FitSettings:
    """Validated settings of one ``fit`` run (see ``fit`` for the meaning of each)."""

    optimizer: str
    lr: float
    epochs: int
    B: int
    seed: int
    momentum: float | None
    record_every: int
    attack_every: int
    lam0: float
    tie: str
    track_gram: bool
    dtype: str
    progress: bool


def method_loss(obj, net, params, X, y, eps, beta, key):
    """The method's loss on the whole (X, y), without regularizers, as a differentiable scalar:
    Σ_i l(margins) on its own margins (clean, certified with the mix β, or at attack points
    drawn with ``key`` — constants of the loss); AdvIBP's is its IBP loss."""
    from .bounds import margin_bounds
    from .objectives import Certified, Standard, margin_loss

    ctx = Context(jnp.asarray(eps), jnp.asarray(beta), jnp.asarray(0.0), key, jnp.asarray(0.0), jnp.asarray(0.0))
    if isinstance(obj, Standard):
        return obj.loss(net, params, X, y, ctx)
    if isinstance(obj, Certified):
        return jnp.sum(margin_loss(obj.margins(net, params, X, y, ctx)))
    if isinstance(obj, Adversarial):
        return obj.loss_at(net, params, obj.points(net, params, X, y, ctx), y)
    return jnp.sum(margin_loss(margin_bounds(net, params, X, y, eps, "ibp", clip=obj.clip)))


def fit(net, params0, X, y, eps, *, objective="ibp", options: dict | None = None, optimizer: str = "sgd",
        lr: float, epochs: int, batch_size: int | None = None, eps_schedule=None, beta_schedule=None,
        lam0: float = 0.0, seed: int = 0, momentum: float | None = None, stop=None, tie: str = "wrong",
        track_gram: bool = False, metrics=None, attack: AttackSettings = AttackSettings(), record_every: int = 1,
        attack_every: int | None = None, dtype: str = "float64", progress: bool = False) -> Trajectory:
    """Train ``params0`` of ``net`` on (X, y) with ``objective``; return a ``Trajectory``.

    Args:
      net, params0: an ``ntkflow.nets.Net`` and its initial params (``net.init(...)``).
      X, y: (n, *input_shape) inputs; (n,) labels (±1 for a single-output net, else classes).
      eps: the target radius ε.
      objective: a name of ``ntkflow.objectives.OBJECTIVES`` or an objective; ``options``
        its settings (attack ``steps``/``step_size``/``restarts``/``alpha``, AdvIBP's
        ``t_nat``/``t_adv``/``ramp``/``decay``/``c_max``..., ``regularize``/``tau``, ``clip``).
      optimizer, lr, epochs, batch_size, momentum, stop, tie, dtype: as ``ntkflow.train``.
      eps_schedule: a schedule (``ntkflow.objectives.schedules``), dict or callable epoch → ε.
      beta_schedule: CROWN-IBP's β as a function of (ε, ε_target); default β from 1 to 0
        along the ε ramp (``BetaFromEps``).
      lam0: weight λ0 of the thesis's warm-up regularizers, λ = λ0(1 − ε/ε_target)
        (Sec. 3.2.4; only for a certified objective with ``regularize``).
      track_gram: record λmin and ‖H − H(0)‖ of the method's own Gram (O(n²P) per record).
      metrics: names of ``ntkflow.metrics.METRICS`` to record (default: all that apply).
      attack: the evaluation attack of ``pgd_error``; costly metrics (PGD, CROWN) are
        recorded every ``attack_every`` records (default: at t = 0 and at the end only).

    Returns:
      A ``Trajectory`` with ``params`` (final) and, for the paper's two-layer net, ``W``/``a``;
      series per epoch record: ``loss`` (the method's own loss on the whole set), every
      metric, and the per-step diagnostics as epoch means. A non-finite loss or param stops
      the run with ``meta["diverged"]``.
    """
    from .train import check_lr, check_optimizer, schedule_fn, stop_rule

    obj = make_objective(objective, **(options or {}))
    X, y = np.asarray(X, np.float64), np.asarray(y)  # to jax inside x64 (``_fit``): records are float64
    if X.ndim < 2 or X.shape[0] == 0 or y.shape != (X.shape[0],):
        raise ValueError(f"X, y: expected (n, *input_shape) inputs and (n,) labels, got {X.shape} and {y.shape}")
    n = int(X.shape[0])
    B, momentum = check_optimizer(optimizer, batch_size, n, momentum, dtype, tie)
    run = FitSettings(optimizer=optimizer, lr=check_lr(lr, dtype), epochs=V.positive_int("epochs", epochs), B=B,
                      seed=V.positive_int("seed", seed, minimum=0), momentum=momentum,
                      record_every=V.positive_int("record_every", record_every),
                      attack_every=0 if attack_every is None else V.positive_int("attack_every", attack_every),
                      lam0=V.positive_float("lam0", lam0, allow_zero=True), tie=tie,
                      track_gram=V.flag("track_gram", track_gram), dtype=dtype, progress=V.flag("progress", progress))
    eps = V.eps_value(eps)
    sched = schedule_fn(eps_schedule, eps)
    beta = beta_schedule or BetaFromEps()
    return _fit(net, params0, X, y, eps, obj, sched, beta, stop_rule(stop), run, metrics, attack)


def _schedule_rows(run, sched, beta, eps, ep: int, steps: int) -> np.ndarray:
    """(steps, 4) rows (ε, β, λ, epoch) of the steps of epoch ``ep``."""
    rows = []
    for k in range(steps):
        t = ep + k / steps
        e = sched(t)
        lam = float(warmup_lambda(run.lam0, e, eps)) if eps > 0 else 0.0
        rows.append((e, beta(e, eps), lam, t))
    return np.array(rows)


def _aux_summary(aux: dict) -> dict:
    """Epoch means of the per-step diagnostics; AdvIBP's case as per-case fractions."""
    out = {}
    for k, v in aux.items():
        v = np.asarray(v, float)
        if k == "case":
            for i, name in enumerate(CASES):
                out[f"case_{name}"] = float(np.mean(v == i))
        else:
            out[k] = float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan")
    return out


@x64
def _fit(net, params0, X, y, eps, obj, sched, beta, stop, run: FitSettings, names, attack) -> Trajectory:
    from .nets import two_layer_weights
    from .tracker import tracker
    from .train import OPTIMIZERS, Plateau

    n = int(X.shape[0])
    X = jnp.asarray(X, jnp.float64)
    y = jnp.asarray(y, jnp.float64) if net.num_outputs == 1 else jnp.asarray(y, jnp.int32)
    cast = (lambda v: v.astype(jnp.float32)) if run.dtype == "float32" else (lambda v: v.astype(jnp.float64))  # noqa: E731
    params = jax.tree_util.tree_map(cast, params0)
    Xc, yc = cast(X), cast(y) if net.num_outputs == 1 else y
    theory = None
    if net.tag == "two_layer":
        W0, a = two_layer_weights(net, params0)
        theory = tracker(jnp.asarray(W0, jnp.float64), jnp.asarray(a, jnp.float64), X.astype(jnp.float64),
                         jnp.asarray(y, jnp.float64), sched(0.0), gram=run.track_gram, tie=run.tie)
    eval_key = jax.random.PRNGKey(run.seed + 1)
    adv_points = None
    if isinstance(obj, Adversarial):
        adv_points = lambda p: obj.points(net, p, X, y, Context(jnp.asarray(sched(0.0)), 1.0, 0.0, eval_key, 0.0, 0.0))  # noqa: E731
    record = recorder(net, jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), params0), X, y, eps, names=names,
                      own_bound=own_bound(obj), attack_points=adv_points, attack=attack, tie=run.tie,
                      gram=run.track_gram, theory=theory,
                      loss_fn=lambda p, e: method_loss(obj, net, p, X, y, e, beta(e, eps), eval_key), lr=run.lr)
    opt = OPTIMIZERS[run.optimizer](run.momentum)
    opt_state, obj_state = opt.init(params), obj.init(params)
    g_prev = jax.tree_util.tree_map(jnp.zeros_like, params)
    steps = n // run.B
    rng = np.random.default_rng(run.seed)
    key = jax.random.PRNGKey(run.seed)
    plateau = Plateau(stop, n) if stop else None

    def snapshot(p, t, full, aux=None):
        p64 = jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), p)
        e = sched(t)
        row = record(p64, e, float(method_loss(obj, net, p64, X, y, e, beta(e, eps), eval_key)), full=full)
        row.update(aux or {})
        return row

    rows, ts = [snapshot(params, 0.0, True)], [0.0]
    diverged = converged = False
    for ep in progress_bar(range(run.epochs), run.progress, f"fit ({obj.name}, ε={eps})"):
        idx = np.arange(n) if run.B == n else rng.permutation(n)
        idx = idx[: steps * run.B].reshape(steps, run.B)
        key, sub = jax.random.split(key)
        keys = jax.random.split(sub, steps)
        srows = jnp.asarray(_schedule_rows(run, sched, beta, eps, ep, steps), Xc.dtype)
        params, opt_state, obj_state, g_prev, total, aux = epoch(
            net, params, opt_state, obj_state, g_prev, Xc, yc, jnp.asarray(idx), srows, keys,
            jnp.asarray(n / run.B, Xc.dtype), jnp.asarray(run.lr, Xc.dtype), float(run.epochs), obj, opt)
        epoch_loss = float(total) * n / (steps * run.B)
        finite = all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree_util.tree_leaves(params))
        diverged = not (np.isfinite(epoch_loss) and finite)
        converged = not diverged and plateau is not None and sched(float(ep)) == eps and plateau(epoch_loss)
        last = diverged or converged or ep + 1 == run.epochs
        if last or (ep + 1) % run.record_every == 0:
            full = last or (run.attack_every > 0 and (len(rows) % run.attack_every == 0))
            rows.append(snapshot(params, ep + 1.0, full and not diverged, _aux_summary(aux)))
            ts.append(ep + 1.0)
            diverged = diverged or not np.isfinite(rows[-1]["loss"])
        if last or diverged:
            break
    return _trajectory(net, params, rows, ts, obj, run, eps, diverged, converged, X)


def _trajectory(net, params, rows, ts, obj, run, eps, diverged, converged, X) -> Trajectory:
    from .nets import two_layer_weights

    series = stack_rows(rows)
    params = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), params)
    W = a = None
    if net.tag == "two_layer":
        W, a = (np.asarray(v, np.float64) for v in two_layer_weights(net, params))
    meta = {"kind": "fit", "objective": obj.name, "optimizer": run.optimizer, "lr": run.lr, "epochs": run.epochs,
            "batch_size": run.B, "eps": eps, "seed": run.seed, "momentum": run.momentum, "n": int(X.shape[0]),
            "input_shape": list(X.shape[1:]), "dtype": run.dtype, "tie": run.tie, "diverged": bool(diverged),
            "converged": bool(converged and not diverged), "epochs_run": int(ts[-1])}
    return Trajectory(ts=np.array(ts), series=series, W=W, a=a, meta=meta, params=params)

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
from .objectives import BetaFromEps, Context, attack_fn, judged_loss, method_name, objective as make_objective, own_bound, summarize
from .objectives.regularizers import warmup_lambda
from .paper.tracker import Trajectory, stack_rows

__all__ = ["fit", "FitSettings", "FitRun", "fit_settings", "epoch", "method_loss", "tree_distance"]


@partial(jax.jit, static_argnames=("objective", "opt"))
def epoch(net, params, opt_state, obj_state, g_prev, X, y, idx, sched, keys, scale, lr, budget, objective, opt):
    """One epoch of ``objective`` steps: idx (steps, B) sample indices, sched (steps, 4) rows
    (ε, β, λ, epoch) per step, keys (steps, 2). Returns (params, opt_state, obj_state, last
    gradient, sum of minibatch losses, per-step aux dict). The net's frozen weights (the
    paper's a) are cast to the params' dtype: a float32 run stays float32 throughout."""
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    net = jax.tree_util.tree_map(lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, net)

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
    reg_weight: float
    tie: str
    track_gram: bool
    dtype: str
    progress: bool


def method_loss(obj, net, params, X, y, eps, beta, key):
    """The method's loss on the whole (X, y), without regularizers, as a differentiable scalar
    (``objectives.judged_loss``: clean, certified with the mix β, or at attack points drawn
    with ``key`` — constants of the loss; AdvIBP's is its IBP loss)."""
    ctx = Context(jnp.asarray(eps), jnp.asarray(beta), jnp.asarray(0.0), key, jnp.asarray(0.0), jnp.asarray(0.0))
    return judged_loss(obj, net, params, X, y, ctx)


@x64  # X, y become jax arrays inside x64: float64 data stays float64
def fit(net, params0, X, y, eps, *, objective="ibp", options: dict | None = None, optimizer: str = "sgd",
        lr: float, epochs: int, batch_size: int | None = None, eps_schedule=None, beta_schedule=None,
        reg_weight: float = 0.0, seed: int = 0, momentum: float | None = None, stop=None, tie: str = "wrong",
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
      reg_weight: weight λ0 of the thesis's warm-up regularizers, λ = λ0(1 − ε/ε_target)
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
    obj = make_objective(objective, **(options or {}))
    X, y = jnp.asarray(X, jnp.float64), jnp.asarray(y)  # inside x64: records are float64
    run = fit_settings(int(X.shape[0]), optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
                       momentum=momentum, record_every=record_every, attack_every=attack_every, reg_weight=reg_weight, tie=tie,
                       track_gram=track_gram, dtype=dtype, progress=progress)
    return _fit(net, params0, X, y, V.eps_value(eps), obj, eps_schedule, beta_schedule, stop, run, metrics, attack)


def fit_settings(n: int, *, optimizer: str, lr, epochs, batch_size, seed, momentum, record_every, attack_every,
                 reg_weight, tie: str, track_gram, dtype: str, progress) -> FitSettings:
    """Validated ``FitSettings`` of a run on n samples (one-line ``ValueError`` naming a bad argument)."""
    from .train import check_lr, check_optimizer

    B, momentum = check_optimizer(optimizer, batch_size, n, momentum, dtype, tie)
    return FitSettings(optimizer=optimizer, lr=check_lr(lr, dtype), epochs=V.positive_int("epochs", epochs), B=B,
                       seed=V.positive_int("seed", seed, minimum=0), momentum=momentum,
                       record_every=V.positive_int("record_every", record_every),
                       attack_every=0 if attack_every is None else V.positive_int("attack_every", attack_every),
                       reg_weight=V.positive_float("reg_weight", reg_weight, allow_zero=True), tie=tie,
                       track_gram=V.flag("track_gram", track_gram), dtype=dtype,
                       progress=V.flag("progress", progress))


def _schedule_rows(run, sched, beta, eps, ep: int, steps: int) -> np.ndarray:
    """(steps, 4) rows (ε, β, λ, epoch) of the steps of epoch ``ep``."""
    rows = []
    for k in range(steps):
        t = ep + k / steps
        e = sched(t)
        lam = float(warmup_lambda(run.reg_weight, e, eps)) if eps > 0 else 0.0
        rows.append((e, beta(e, eps), lam, t))
    return np.array(rows)


class FitRun:
    """The host side of one ``fit`` run, around the device-side ``epoch``: the initial
    (params, opt_state, obj_state, g_prev) ``carry``, each epoch's inputs (permutation from
    the run's own numpy rng, step keys, schedule rows), and after each epoch the records,
    the divergence check and the stop rule. ``ntkflow.batched`` drives several at once.

    Must be built and used inside ``jax.enable_x64`` (``fit`` and ``fit_group`` are).
    """

    def __init__(self, net, params0, X, y, eps: float, obj, eps_schedule, beta_schedule, stop, run: FitSettings,
                 names=None, attack: AttackSettings = AttackSettings()):
        from .nets import two_layer_weights
        from .paper.tracker import tracker
        from .train import Plateau, armed_from, optimizer, schedule_fn, stop_rule

        self.net, self.X, self.y, self.eps, self.obj, self.run = net, X, y, eps, obj, run
        self.sched, self.beta = schedule_fn(eps_schedule, eps), beta_schedule or BetaFromEps()
        stop = stop_rule(stop)
        self.n = n = int(X.shape[0])
        self.cast = cast = (lambda v: v.astype(jnp.float32)) if run.dtype == "float32" else (
            lambda v: v.astype(jnp.float64))
        params = jax.tree_util.tree_map(cast, params0)
        self.Xc, self.yc = cast(X), cast(y) if net.num_outputs == 1 else y
        theory = None
        if net.tag == "two_layer":
            W0, a = two_layer_weights(net, params0)
            theory = tracker(jnp.asarray(W0, jnp.float64), jnp.asarray(a, jnp.float64), X.astype(jnp.float64),
                             jnp.asarray(y, jnp.float64), self.sched(0.0), gram=run.track_gram, tie=run.tie)
        self.eval_key = jax.random.PRNGKey(run.seed + 1)
        adv_points, points = None, attack_fn(obj)
        if points is not None:
            ctx = Context(jnp.asarray(self.sched(0.0)), 1.0, 0.0, self.eval_key, 0.0, 0.0)
            adv_points = lambda p: points(net, p, X, y, ctx)  # noqa: E731
        self.record = recorder(net, jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), params0), X, y, eps,
                               names=names, own_bound=own_bound(obj), attack_points=adv_points, attack=attack,
                               tie=run.tie, gram=run.track_gram, theory=theory,
                               loss_fn=lambda p, e: method_loss(obj, net, p, X, y, e, self.beta(e, eps), self.eval_key),
                               lr=run.lr)
        self.opt = optimizer(run.optimizer, run.momentum)
        self.carry = (params, self.opt.init(params), obj.init(params), jax.tree_util.tree_map(jnp.zeros_like, params))
        self.steps = n // run.B
        self.scale = jnp.asarray(n / run.B, self.Xc.dtype)
        self.lr = jnp.asarray(run.lr, self.Xc.dtype)
        self.budget = float(run.epochs)
        self.rng = np.random.default_rng(run.seed)
        self.key = jax.random.PRNGKey(run.seed)
        self.plateau = Plateau(stop, n) if stop else None
        self.armed = armed_from(self.sched, eps, run.epochs)  # the stop rule watches epochs >= armed
        self.params = params
        self.rows, self.ts = [self.snapshot(params, 0.0, True)], [0.0]
        self.diverged = self.converged = self.done = False

    def snapshot(self, p, t: float, full: bool, aux: dict | None = None) -> dict:
        """The record of params ``p`` at epoch ``t`` (metrics in float64, the method's full loss)."""
        p64 = jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), p)
        e = self.sched(t)
        row = self.record(p64, e, float(method_loss(self.obj, self.net, p64, self.X, self.y, e, self.beta(e, self.eps),
                                                    self.eval_key)), full=full)
        row.update(aux or {})
        return row

    def epoch_inputs(self, ep: int):
        """(idx (steps, B), keys (steps, 2), schedule rows (steps, 4)) of epoch ``ep``; advances the rngs."""
        n, B, steps = self.n, self.run.B, self.steps
        idx = np.arange(n) if B == n else self.rng.permutation(n)
        idx = idx[: steps * B].reshape(steps, B)
        self.key, sub = jax.random.split(self.key)
        keys = jax.random.split(sub, steps)
        srows = jnp.asarray(_schedule_rows(self.run, self.sched, self.beta, self.eps, ep, steps), self.Xc.dtype)
        return jnp.asarray(idx), keys, srows

    def end_epoch(self, ep: int, params, total, aux) -> bool:
        """Book epoch ``ep`` (its final params, summed minibatch loss, per-step aux): record
        when due, check divergence and the stop rule. True when the run is over (then
        ``params`` is its final params and nothing more is recorded)."""
        run = self.run
        epoch_loss = float(total) * self.n / (self.steps * run.B)
        finite = all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree_util.tree_leaves(params))
        diverged = not (np.isfinite(epoch_loss) and finite)
        converged = not diverged and self.plateau is not None and ep >= self.armed and self.plateau(epoch_loss)
        last = diverged or converged or ep + 1 == run.epochs
        if last or (ep + 1) % run.record_every == 0:
            full = last or (run.attack_every > 0 and (len(self.rows) % run.attack_every == 0))
            self.rows.append(self.snapshot(params, ep + 1.0, full and not diverged, summarize(self.obj, aux)))
            self.ts.append(ep + 1.0)
            diverged = diverged or not np.isfinite(self.rows[-1]["loss"])
        self.params, self.diverged, self.converged = params, diverged, converged
        self.done = last or diverged
        return self.done

    def trajectory(self) -> Trajectory:
        return _trajectory(self.net, self.params, self.rows, self.ts, self.obj, self.run, self.eps, self.diverged,
                           self.converged, self.X)


@x64
def _fit(net, params0, X, y, eps, obj, eps_schedule, beta_schedule, stop, run: FitSettings, names,
         attack) -> Trajectory:
    r = FitRun(net, params0, X, y, eps, obj, eps_schedule, beta_schedule, stop, run, names, attack)
    params, opt_state, obj_state, g_prev = r.carry
    for ep in progress_bar(range(run.epochs), run.progress, f"fit ({method_name(obj)}, ε={eps})"):
        idx, keys, srows = r.epoch_inputs(ep)
        params, opt_state, obj_state, g_prev, total, aux = epoch(
            net, params, opt_state, obj_state, g_prev, r.Xc, r.yc, idx, srows, keys, r.scale, r.lr, r.budget,
            obj, r.opt)
        if r.end_epoch(ep, params, total, aux):
            break
    return r.trajectory()


def _trajectory(net, params, rows, ts, obj, run, eps, diverged, converged, X) -> Trajectory:
    from .nets import two_layer_weights

    series = stack_rows(rows)
    params = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), params)
    W = a = None
    if net.tag == "two_layer":
        W, a = (np.asarray(v, np.float64) for v in two_layer_weights(net, params))
    meta = {"kind": "fit", "objective": method_name(obj), "optimizer": run.optimizer, "lr": run.lr, "epochs": run.epochs,
            "batch_size": run.B, "eps": eps, "seed": run.seed, "momentum": run.momentum, "n": int(X.shape[0]),
            "input_shape": list(X.shape[1:]), "dtype": run.dtype, "tie": run.tie, "diverged": bool(diverged),
            "converged": bool(converged and not diverged), "epochs_run": int(ts[-1])}
    return Trajectory(ts=np.array(ts), series=series, W=W, a=a, meta=meta, params=params)

"""The one host loop: every net, every training method, optax steps on an objective, metrics recorded.

``fit(net, params0, X, y, eps, objective=...)`` trains the params of any ``ntkflow.nets.Net``
with any objective of ``ntkflow.objectives`` (standard, certified, adversarial, AdvIBP),
one jitted ``lax.scan`` per epoch. On the paper's two-layer net with the plain IBP (or, at
ε = 0, the clean) loss the epoch is the closed form of Sec. 3.4 (``training.fastpath``);
the host side — permutations, schedules, records, the stop rule — is this module's for both.
The loss is a sum over samples and the minibatch gradient is scaled by n/B, so ``lr`` is a
time step of the gradient flow for every method; each epoch draws a fresh permutation and
drops the last partial batch.

Per step the trainer also measures lee2021's gradient smoothness along training: the ℓ2
distance and cosine distance between consecutive (scaled) gradients, recorded as epoch
means ``grad_l2_change`` / ``grad_cos_distance``; objectives' per-step diagnostics
(``aux_keys``: AdvIBP's case and cosines) are recorded as epoch means too, and AdvIBP's
case as per-case fractions ``case_<name>``. Every record runs the metric registry
(``metrics.recorder``); on the paper's net it is fed the closed-form tracker block, and the
trainer adds ``mean_path_length`` (the polyline of W over epoch ends).
"""

from __future__ import annotations

from dataclasses import asdict

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._core.errors import NtkflowError
from .._jax import x64
from .._progress import progress as progress_bar
from ..metrics import AttackSettings, recorder
from ..nets import two_layer_weights
from ..objectives import BetaFromEps, Context, attack_fn, judged_loss, method_name, objective as make_objective, own_bound, summarize
from ..objectives.regularizers import warmup_lambda
from ..paper.tracker import Trajectory, stack_rows, tracker
from .fastpath import path_for
from .settings import (FitSettings, OptimSettings, Plateau, RecordSettings, ScheduleSettings, armed_from, fit_settings,
                       optimizer, schedule_fn)

__all__ = ["fit", "FitRun", "method_loss"]


def method_loss(obj, net, params, X, y, eps, beta, key):
    """The method's loss on the whole (X, y), without regularizers, as a differentiable scalar
    (``objectives.judged_loss``: clean, certified with the mix β, or at attack points drawn
    with ``key`` — constants of the loss; AdvIBP's is its IBP loss)."""
    ctx = Context(jnp.asarray(eps), jnp.asarray(beta), jnp.asarray(0.0), key, jnp.asarray(0.0), jnp.asarray(0.0))
    return judged_loss(obj, net, params, X, y, ctx)


@x64  # X, y become jax arrays inside x64: float64 data stays float64
def fit(net, params0, X, y, eps, *, objective="ibp", options: dict | None = None, optim: OptimSettings | None = None,
        schedule: ScheduleSettings | None = None, record: RecordSettings | None = None, stop=None,
        attack: AttackSettings | None = None, fast_path: bool = True, **keywords) -> Trajectory:
    """Train ``params0`` of ``net`` on (X, y) with ``objective``; return a ``Trajectory``.

    Args:
      net, params0: an ``ntkflow.nets.Net`` and its initial params (``net.init(...)``).
      X, y: (n, *input_shape) inputs; (n,) labels (±1 for a single-output net, else classes).
      eps: the target radius ε.
      objective: a name of ``ntkflow.objectives.OBJECTIVES`` or an objective; ``options``
        its settings (attack ``steps``/``step_size``/``restarts``/``alpha``, AdvIBP's
        ``t_nat``/``t_adv``/``ramp``/``decay``/``c_max``..., ``regularize``/``tau``, ``clip``).
      optim: an ``OptimSettings`` — optimizer (sgd with ``batch_size`` < n / gd full batch /
        momentum / adam, optax), ``lr`` (required: a time step of the gradient flow of the
        summed loss), ``epochs`` (required), ``batch_size`` (default n), ``momentum``,
        ``seed``, ``dtype`` ("float32" trains in float32; what is recorded is recomputed in float64).
      schedule: a ``ScheduleSettings`` — ``eps_schedule`` (a schedule of
        ``ntkflow.objectives.schedules``, its dict or a callable epoch → ε; default ε fixed),
        ``beta_schedule`` (CROWN-IBP's β(ε, ε_target); default β from 1 to 0 along the ε ramp,
        ``BetaFromEps``), ``reg_weight`` (the thesis's warm-up regularizers,
        λ = reg_weight·(1 − ε/ε_target), Sec. 3.2.4; only for a certified objective with ``regularize``).
      record: a ``RecordSettings`` — ``record_every`` (every k-th epoch and always the last),
        ``attack_every`` (costly metrics — PGD, CROWN, the loss variation — every k-th record;
        default at t = 0 and at the end only), ``track_gram`` (λmin and ‖H − H(0)‖ of the
        method's own Gram, O(n²P) per record), ``metrics`` (names of ``ntkflow.metrics.METRICS``;
        default all that apply), ``tie`` (``paper.tracker.TIE_RULES``), ``progress``,
        ``keep_W`` (W at every record, ``W_saved``; the paper's two-layer net only).
      stop: a ``StopRule`` (or its dict) ending training on a loss plateau or below κ; None
        runs the whole budget. ``meta["converged"]`` / ``meta["reached_kappa"]`` say whether it fired.
      attack: the evaluation attack of ``pgd_error`` (``metrics.AttackSettings``).
      fast_path: False forces the generic step where ``training.fastpath`` would take the
        closed form (the equality tests compare the two).
      **keywords: the fields of ``optim``, ``schedule`` and ``record`` given flat instead
        (``fit(..., lr=0.1, epochs=5, batch_size=4)``), for a concern not given as an object
        (``settings.fit_settings``: mixing the two for one concern is an error).

    Returns:
      A ``Trajectory`` with ``params`` (final) and, for the paper's two-layer net, ``W``/``a``;
      series per epoch record: ``loss`` (the method's own loss on the whole set), every
      metric, and the per-step diagnostics as epoch means. A non-finite loss or param stops
      the run with ``meta["diverged"]``. The same inputs and seed give identical trajectories on CPU.
    """
    obj = make_objective(objective, **(options or {}))
    X, y = jnp.asarray(X, jnp.float64), jnp.asarray(y)  # inside x64: records are float64
    run = fit_settings(optim=optim, schedule=schedule, record=record, stop=stop, attack=attack, fast_path=fast_path,
                       **keywords)
    return _fit(net, params0, X, y, V.eps_value(eps), obj, run)


def _schedule_rows(reg_weight: float, sched, beta, eps, ep: int, steps: int) -> np.ndarray:
    """(steps, 4) rows (ε, β, λ, epoch) of the steps of epoch ``ep``."""
    rows = []
    for k in range(steps):
        t = ep + k / steps
        e = sched(t)
        lam = float(warmup_lambda(reg_weight, e, eps)) if eps > 0 else 0.0
        rows.append((e, beta(e, eps), lam, t))
    return np.array(rows)


class FitRun:
    """The host side of one ``fit`` run, around the device-side epoch that
    ``training.fastpath`` picks (``self.path``): the initial (state, opt_state, obj_state,
    g_prev) ``carry`` (the state is the params, or W on the closed-form path), each epoch's
    inputs (permutation from the run's own numpy rng, step keys, schedule rows), and after
    each epoch the records, the divergence check and the stop rule. ``step(ep)`` runs one
    epoch; ``ntkflow.training.batched`` drives several runs at once.

    ``run`` is the whole ``FitSettings``; its learning rate must be set and its batch size fit
    the n samples of X (one-line ``NtkflowError`` otherwise). Must be built and used inside
    ``jax.enable_x64`` (``fit`` and ``fit_group`` are).
    """

    def __init__(self, net, params0, X, y, eps: float, obj, run: FitSettings):
        opt, rec = run.optim, run.record
        if opt.lr is None:
            raise NtkflowError("lr: required (the learning rate, a time step of the gradient flow)")
        self.n = n = int(X.shape[0])
        self.B = opt.batch(n)
        self.two_layer = net.tag == "two_layer"
        if rec.keep_W and not self.two_layer:
            raise NtkflowError("keep_W: only for the paper's two-layer net (nets.two_layer)")
        self.net, self.X, self.y, self.eps, self.obj, self.run = net, X, y, eps, obj, run
        self.sched, self.beta = schedule_fn(run.schedule.eps_schedule, eps), run.schedule.beta_schedule or BetaFromEps()
        self.stop = stop = run.stop
        self.path = path_for(net, obj, eps, run.fast_path)
        self.cast = cast = (lambda v: v.astype(jnp.float32)) if opt.dtype == "float32" else (
            lambda v: v.astype(jnp.float64))
        params = jax.tree_util.tree_map(cast, params0)
        self.Xc, self.yc = cast(X), cast(y) if net.num_outputs == 1 else y
        theory = None
        if self.two_layer:
            W0, a = two_layer_weights(net, params0)
            self.a64 = jnp.asarray(a, jnp.float64)
            self.y64 = jnp.asarray(y, jnp.float64)
            theory = tracker(jnp.asarray(W0, jnp.float64), self.a64, X.astype(jnp.float64), self.y64,
                             self.sched(0.0), gram=rec.track_gram, tie=rec.tie)
            # Σ_k ‖w_r(k+1) − w_r(k)‖ per neuron over epoch ends: the exact polyline length of full-batch
            # GD's iterates (one step an epoch), a lower bound on the step path of minibatch SGD
            self.path_len = np.zeros(W0.shape[0])
            self.W_last = np.asarray(params[0]["weight"], np.float64)  # the first step starts from W0 in the run's dtype
            self.saved = [np.asarray(W0, np.float64)] if rec.keep_W else []
        self.eval_key = jax.random.PRNGKey(opt.seed + 1)
        adv_points, points = None, attack_fn(obj)
        if points is not None:
            ctx = Context(jnp.asarray(self.sched(0.0)), 1.0, 0.0, self.eval_key, 0.0, 0.0)
            adv_points = lambda p: points(net, p, X, y, ctx)  # noqa: E731
        self.record = recorder(net, jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), params0), X, y, eps,
                               names=rec.metrics, own_bound=own_bound(obj), attack_points=adv_points,
                               attack=run.attack, tie=rec.tie, gram=rec.track_gram, theory=theory,
                               loss_fn=lambda p, e: method_loss(obj, net, p, X, y, e, self.beta(e, eps), self.eval_key),
                               lr=opt.lr)
        self.opt = optimizer(opt.optimizer, opt.momentum)
        state = self.path.state(params)
        self.carry = (state, self.opt.init(state), obj.init(params), jax.tree_util.tree_map(jnp.zeros_like, state))
        self.steps = n // self.B
        self.scale = jnp.asarray(n / self.B, self.Xc.dtype)
        self.lr = jnp.asarray(opt.lr, self.Xc.dtype)
        self.budget = float(opt.epochs)
        self.rng = np.random.default_rng(opt.seed)
        self.key = jax.random.PRNGKey(opt.seed)
        self.plateau = Plateau(stop, n) if stop else None
        self.kappa = stop.kappa if stop else 0.0
        self.armed = armed_from(self.sched, eps, opt.epochs)  # the stop rule watches epochs >= armed
        self.params = params
        # t = 0 is the initialization as given (not its float32 rounding)
        self.rows, self.ts = [self.snapshot(jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), params0),
                                            0.0, True)], [0.0]
        self.diverged = self.converged = self.reached = self.done = False

    def loss(self, p64, e: float) -> float:
        """The method's loss on the whole training set at ε ``e`` (closed form on the fast path)."""
        if self.path.closed:
            return self.path.loss(np.asarray(p64[0]["weight"]), self.a64, self.X, self.y64, e)
        return float(method_loss(self.obj, self.net, p64, self.X, self.y, e, self.beta(e, self.eps), self.eval_key))

    def snapshot(self, p, t: float, full: bool, aux: dict | None = None, target_loss: float | None = None) -> dict:
        """The record of params ``p`` at epoch ``t`` (metrics in float64, the method's full loss;
        ``target_loss``: that loss at the target ε when the caller already has it)."""
        p64 = jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), p)
        e = self.sched(t)
        # the closed-form tracker's loss is Eq. 2 at the record's ε: the method's own on the fast path
        closed = self.path.closed and self.path.judged_eps(e) == e
        loss = None if closed else (target_loss if target_loss is not None and e == self.eps else self.loss(p64, e))
        row = self.record(p64, e, loss, full=full)
        row.update(aux or {})
        if self.two_layer:
            row["mean_path_length"] = float(self.path_len.mean())
        return row

    def epoch_inputs(self, ep: int):
        """(idx (steps, B), keys (steps, 2), schedule rows (steps, 4)) of epoch ``ep``; advances
        the rngs. The closed-form epoch reads ε alone: no keys, and its rows are the (steps,) ε
        of its steps (0 for clean training)."""
        n, B, steps = self.n, self.B, self.steps
        idx = np.arange(n) if B == n else self.rng.permutation(n)
        idx = idx[: steps * B].reshape(steps, B)
        if self.path.closed:
            eps = np.array([0.0 if self.path.clean else self.sched(ep + k / steps) for k in range(steps)])
            return jnp.asarray(idx), None, jnp.asarray(eps, self.Xc.dtype)
        self.key, sub = jax.random.split(self.key)
        keys = jax.random.split(sub, steps)
        srows = jnp.asarray(_schedule_rows(self.run.schedule.reg_weight, self.sched, self.beta, self.eps, ep, steps), self.Xc.dtype)
        return jnp.asarray(idx), keys, srows

    def step(self, ep: int) -> bool:
        """Run epoch ``ep`` and book it (``end_epoch``); True when the run is over."""
        idx, keys, srows = self.epoch_inputs(ep)
        *carry, total, aux = self.path.epoch(self.net, self.carry, self.Xc, self.yc, idx, srows, keys, self.scale,
                                             self.lr, self.budget, self.obj, self.opt)
        self.carry = tuple(carry)
        return self.end_epoch(ep, carry[0], total, aux)

    def end_epoch(self, ep: int, state, total, aux) -> bool:
        """Book epoch ``ep`` (its final state, summed minibatch loss, per-step aux): record
        when due, check divergence and the stop rule. True when the run is over (then
        ``params`` is its final params and nothing more is recorded)."""
        rec = self.run.record
        params = self.path.params(state)
        epoch_loss = float(total) * self.n / (self.steps * self.B)
        finite = all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree_util.tree_leaves(params))
        if self.two_layer:
            W = np.asarray(params[0]["weight"], np.float64)
            self.path_len += np.linalg.norm(W - self.W_last, axis=1)
            self.W_last = W
        diverged = not (np.isfinite(epoch_loss) and finite)
        converged = not diverged and self.plateau is not None and ep >= self.armed and self.plateau(epoch_loss)
        # the κ target is checked on the full loss at the epoch's end weights (not the minibatch sum,
        # which is taken along the epoch), so the run ends at the first recorded params below κ
        target_loss = (self.loss(jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), params), self.eps)
                       if not diverged and self.kappa > 0 and ep >= self.armed else None)
        reached = target_loss is not None and target_loss < self.kappa
        converged = converged or reached
        last = diverged or converged or ep + 1 == self.run.optim.epochs
        if last or (ep + 1) % rec.record_every == 0:
            full = last or (rec.attack_every > 0 and (len(self.rows) % rec.attack_every == 0))
            # the κ test's loss is the record's loss at the target ε: computed once
            self.rows.append(self.snapshot(params, ep + 1.0, full and not diverged, summarize(self.obj, aux),
                                           target_loss))
            self.ts.append(ep + 1.0)
            if rec.keep_W:
                self.saved.append(self.W_last)
            diverged = diverged or not np.isfinite(self.rows[-1]["loss"])
        self.params, self.diverged, self.converged, self.reached = params, diverged, converged, reached
        self.done = last or diverged
        return self.done

    def trajectory(self) -> Trajectory:
        """The run so far as a ``Trajectory``."""
        opt, net = self.run.optim, self.net
        params = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), self.params)
        W = a = None
        if self.two_layer:
            W, a = (np.asarray(v, np.float64) for v in two_layer_weights(net, params))
        ok = not self.diverged
        meta = {"kind": "fit", "objective": method_name(self.obj), "optimizer": opt.optimizer, "lr": opt.lr,
                "epochs": opt.epochs, "batch_size": self.B, "eps": self.eps, "seed": opt.seed, "momentum": opt.momentum,
                "n": self.n, "input_shape": list(self.X.shape[1:]), "dtype": opt.dtype, "tie": self.run.record.tie,
                "diverged": bool(self.diverged), "converged": bool(self.converged and ok),
                "reached_kappa": bool(self.reached and ok), "epochs_run": int(self.ts[-1]),
                "stop": None if self.stop is None else asdict(self.stop), "fast_path": bool(self.path.closed)}
        return Trajectory(ts=np.array(self.ts), series=stack_rows(self.rows), W=W, a=a, meta=meta, params=params,
                          W_saved=np.stack(self.saved) if self.run.record.keep_W else None)


@x64
def _fit(net, params0, X, y, eps, obj, run: FitSettings) -> Trajectory:
    r = FitRun(net, params0, X, y, eps, obj, run)
    for ep in progress_bar(range(run.optim.epochs), run.record.progress, f"fit ({method_name(obj)}, ε={eps})"):
        if r.step(ep):
            break
    return r.trajectory()

"""The generic epoch: ``objective.step`` + an optax update per minibatch, one jitted ``lax.scan``."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._jax import tree_distance
from ..nets.batchnorm import has_batchnorm, update_running_stats
from ..nets.layers import Conv2d
from ..objectives import Context

__all__ = ["epoch", "loop_epoch", "prefers_host_loop"]


def _cast_net(net, params):
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    return jax.tree_util.tree_map(lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, net)


def _step_fn(net, X, y, scale, lr, budget, objective, opt, beta_branch: str = "cond"):
    """One minibatch step as a ``lax.scan`` body: (carry, (rows, (ε, β, λ, epoch), key)) →
    (carry, aux), carry = (params, optimizer state, objective state, last gradient, loss sum).
    ``beta_branch``: what is known of β at trace time (``Context``)."""
    bn = has_batchnorm(net)

    def step(carry, batch):
        params, s, os, gp, total = carry
        rows, (e, b, lam, ep), k = batch
        ctx = Context(e, b, lam, k, ep, ep / budget, beta_branch)
        out = objective.step(net, params, os, X[rows], y[rows], ctx)
        g = jax.tree_util.tree_map(lambda v: v * scale, out.grads)
        upd, s = opt.update(g, s, params)
        new = optax.apply_updates(params, jax.tree_util.tree_map(lambda u: lr * u, upd))
        # BatchNorm's running statistics follow PyTorch: the pre-step forward's batch statistics
        # (a trace-time no-op for nets without BatchNorm)
        params = update_running_stats(net, params, X[rows], into=new) if bn else new
        l2, cos = tree_distance(gp, g)
        aux = {**out.aux, "grad_l2_change": l2, "grad_cos_distance": cos}
        return (params, s, out.state, g, total + out.loss), aux

    return step


@partial(jax.jit, static_argnames=("objective", "opt"))
def epoch(net, params, opt_state, obj_state, g_prev, X, y, idx, sched, keys, scale, lr, budget, objective, opt):
    """One epoch of ``objective`` steps: idx (steps, B) sample indices, sched (steps, 4) rows
    (ε, β, λ, epoch) per step, keys (steps, 2). Returns (params, opt_state, obj_state, last
    gradient, sum of minibatch losses, per-step aux dict with lee2021's gradient smoothness
    ``grad_l2_change`` / ``grad_cos_distance``). The net's frozen weights (the paper's a) are
    cast to the params' dtype: a float32 run stays float32 throughout."""
    net = _cast_net(net, params)
    step = _step_fn(net, X, y, scale, lr, budget, objective, opt)
    zero = jnp.zeros((), jax.tree_util.tree_leaves(params)[0].dtype)
    (params, opt_state, obj_state, g_last, total), aux = jax.lax.scan(
        step, (params, opt_state, obj_state, g_prev, zero), (idx, (sched[:, 0], sched[:, 1], sched[:, 2], sched[:, 3]),
                                                             keys))
    return params, opt_state, obj_state, g_last, total, aux


@partial(jax.jit, static_argnames=("objective", "opt", "beta_branch"))
def _one_step(net, carry, X, y, rows, srow, key, scale, lr, budget, objective, opt, beta_branch="cond"):
    net = _cast_net(net, carry[0])
    return _step_fn(net, X, y, scale, lr, budget, objective, opt, beta_branch)(carry, (rows, tuple(srow), key))


def loop_epoch(net, params, opt_state, obj_state, g_prev, X, y, idx, sched, keys, scale, lr, budget, objective, opt):
    """``epoch`` as a host loop over one jitted step (same arguments, same results): XLA:CPU runs
    convolutions (and their weight gradients) 5–10× slower inside a while loop than at top level
    (benchmarks/RESULTS.md 12d), so a conv net on the CPU trains faster step by step. For an
    objective that mixes by β (CROWN-IBP) β is read on the host: one compiled step for β = 0
    (no backward pass: 1.17× an IBP step, against 2.46× behind a traced ``lax.cond``, RESULTS
    12e) and one for β > 0. Traced (a vmapped group of models), the loop unrolls with the cond."""
    zero = jnp.zeros((), jax.tree_util.tree_leaves(params)[0].dtype)
    carry, auxes = (params, opt_state, obj_state, g_prev, zero), []
    known = getattr(objective, "mix", False) and not isinstance(sched, jax.core.Tracer)
    betas = np.asarray(sched)[:, 1] if known else None
    for i in range(idx.shape[0]):
        branch = "cond" if betas is None else ("zero" if betas[i] == 0 else "mix")
        carry, aux = _one_step(net, carry, X, y, idx[i], sched[i], keys[i], scale, lr, budget, objective, opt,
                               branch)
        auxes.append(aux)
    aux = jax.tree_util.tree_map(lambda *v: jnp.stack(v), *auxes) if auxes else {}
    return (*carry, aux)


def prefers_host_loop(net) -> bool:
    """Whether ``net``'s epoch runs as ``loop_epoch``: a net with a Conv2d on the CPU backend (where
    the rolled scan costs 5–10× per step, RESULTS 12d); everything else keeps the one scan."""
    return jax.default_backend() == "cpu" and any(isinstance(layer, Conv2d) for layer in net.layers)

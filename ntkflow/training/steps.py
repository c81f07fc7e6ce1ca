"""The generic epoch: ``objective.step`` + an optax update per minibatch, one jitted ``lax.scan``."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from .._jax import tree_distance
from ..nets.batchnorm import has_batchnorm, update_running_stats
from ..objectives import Context

__all__ = ["epoch"]


@partial(jax.jit, static_argnames=("objective", "opt"))
def epoch(net, params, opt_state, obj_state, g_prev, X, y, idx, sched, keys, scale, lr, budget, objective, opt):
    """One epoch of ``objective`` steps: idx (steps, B) sample indices, sched (steps, 4) rows
    (ε, β, λ, epoch) per step, keys (steps, 2). Returns (params, opt_state, obj_state, last
    gradient, sum of minibatch losses, per-step aux dict with lee2021's gradient smoothness
    ``grad_l2_change`` / ``grad_cos_distance``). The net's frozen weights (the paper's a) are
    cast to the params' dtype: a float32 run stays float32 throughout."""
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    net = jax.tree_util.tree_map(lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, net)

    bn = has_batchnorm(net)

    def step(carry, batch):
        params, s, os, gp, total = carry
        rows, (e, b, lam, ep), k = batch
        ctx = Context(e, b, lam, k, ep, ep / budget)
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

    zero = jnp.zeros((), jax.tree_util.tree_leaves(params)[0].dtype)
    (params, opt_state, obj_state, g_last, total), aux = jax.lax.scan(
        step, (params, opt_state, obj_state, g_prev, zero), (idx, (sched[:, 0], sched[:, 1], sched[:, 2], sched[:, 3]),
                                                             keys))
    return params, opt_state, obj_state, g_last, total, aux

"""One SGD epoch of the paper's net on the robust loss, by the closed-form gradient of Sec. 3.4.

The minibatch gradient (n/B)·Σ_{i∈batch} ∇l(u̲_i) is an unbiased estimate of ∇L̄ (L̄ is a sum
over samples, Eq. 2), so ``lr`` is a time step of the gradient flow (Eq. 4). This is the fast
path of the engine's trainer (``ntkflow.training.fastpath``) on the two-layer net: the same
update as autodiff of the engine's IBP bound, without building the bound.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from .._jax import tree_distance
from .loss import _robust_loss_and_grad

__all__ = ["sgd_epoch"]


@partial(jax.jit, static_argnames=("opt",))
def sgd_epoch(W, opt_state, g_prev, a, X, y, idx, eps_steps, scale, lr, opt):
    """One epoch: idx (steps, B) sample indices, eps_steps (steps,) ε per step; ``lr`` traced;
    ``opt`` an optax optimizer at unit rate (the update is scaled by lr).

    Returns (W, opt_state, last scaled gradient, the sum of the minibatch losses — the
    epoch's running estimate of L̄ / scale —, per-step (‖g − g_prev‖₂, 1 − cos(g, g_prev)),
    lee2021's gradient smoothness).

    ‖w_r‖₁ is carried through the scan (computed in the update pass): XLA on CPU fuses a
    row reduction over W into the epilogue of the product X Wᵀ and runs it ~3× slower.
    """

    def step(carry, batch):
        W, s, l1, gp, total = carry
        rows, e = batch
        loss, g, _ = _robust_loss_and_grad(W, a, X[rows], y[rows], e, l1)
        g = g * scale
        upd, s = opt.update(g, s, W)
        W = optax.apply_updates(W, jax.tree_util.tree_map(lambda u: lr * u, upd))
        return (W, s, jnp.sum(jnp.abs(W), axis=1), g, total + loss), tree_distance(gp, g)

    init = (W, opt_state, jnp.sum(jnp.abs(W), axis=1), g_prev, jnp.zeros((), W.dtype))
    (W, opt_state, _, g_last, total), (l2, cos) = jax.lax.scan(step, init, (idx, eps_steps))
    return W, opt_state, g_last, total, l2, cos

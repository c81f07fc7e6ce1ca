"""The objective protocol: a training method as an ``init``/``step`` pair over a net's params.

An objective is a frozen dataclass (hashable: it is a static argument of the jitted
training step) with

    init(params) -> state                      # a pytree; () for stateless methods
    step(net, params, state, X, y, ctx) -> Step(loss, grads, state, aux)

``X, y`` is one minibatch, ``ctx`` a ``Context`` of traced scalars (the radius ε of this
step, the CROWN-IBP mix β, the regularizer weight λ, the step's PRNG key). ``loss`` is
the SUM over the batch of the per-sample loss (Eq. 2's L̄ is a sum, so ``lr`` keeps its
meaning as a time step of the gradient flow for every method; the trainer scales the
minibatch gradient by n/B). ``aux`` is a dict of scalars with the fixed keys
``aux_keys`` — per-step diagnostics the trainer records (AdvIBP's case, cosines). An
objective whose loss depends on β has a true ``mix`` attribute: a host loop then compiles
one step for β = 0 and one for β > 0 (``Context.beta_branch``) instead of a traced branch.

The per-sample loss of every method is one formula, ``margin_loss``: the cross-entropy of
the worst-case logits built from (lower bounds of) the margins m_j = f_y − f_j,
log(1 + Σ_j exp(−m_j)) — for a single-output net (one margin y·f) the logistic loss
log(1 + exp(−u)) of the paper. For exact margins it is the clean cross-entropy; for
certified lower margins it upper-bounds the worst-case loss in the ball (Wong & Kolter
2018, Gowal et al. 2018; fan2021 Eq. 4's right-hand side).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Context", "Step", "margin_loss", "log1p_scaled", "as_columns"]


class Context(NamedTuple):
    """Traced per-step settings. ``eps``: radius of this step (a schedule's value);
    ``beta``: mix (1 − β)·IBP + β·method for ``crown_ibp``; ``lam``: weight of the optional
    regularizers; ``key``: the step's PRNG key (attacks' random starts); ``epoch``: epochs
    done, fractional (phase changes: fan2021's warm-up); ``frac``: epoch / budget in [0, 1]
    (FOSC's linear decay). ``beta_branch`` is not traced: what the host knew of β when the
    step was compiled ("cond": nothing; "zero": β = 0; "mix": β > 0 —
    ``bounds.engine.skip_at_zero``), so that a host loop runs one compiled step per branch."""

    eps: jax.Array
    beta: jax.Array
    lam: jax.Array
    key: jax.Array
    epoch: jax.Array
    frac: jax.Array
    beta_branch: str = "cond"


class Step(NamedTuple):
    loss: jax.Array
    grads: object
    state: object
    aux: dict


def as_columns(u):
    """Margins as (n, S): a single-output net's (n,) margins become one column."""
    return u[:, None] if u.ndim == 1 else u


def margin_loss(u):
    """Per-sample log(1 + Σ_j exp(−u_j)) for margins u (n, S) or (n,); (n,). Finite for every u."""
    u = as_columns(u)
    # log(1 + s) with s = Σ exp(−u_j): log1p keeps relative accuracy when every margin is
    # large (a fitted sample's loss e^{−u}, which a plain logsumexp rounds to 0); shifted by
    # M = max(0, −u_j) otherwise, so nothing overflows. For one margin this is logaddexp(0, −u).
    M = jnp.maximum(0.0, jnp.max(-u, axis=1))
    return log1p_scaled(M, jnp.sum(jnp.exp(-u - M[:, None]), axis=1))


def log1p_scaled(M, s):
    """log(1 + e^M·s) for a shift M ≥ 0 and s ≥ 0 (a sum Σ_j exp(−u_j) in units of e^M): log1p
    where M = 0 (relative accuracy for a small sum), M + log(e^{−M} + s) otherwise (no overflow)."""
    return jnp.where(M > 0, M + jnp.log(jnp.exp(-M) + s), jnp.log1p(s))

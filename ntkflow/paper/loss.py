"""Robust loss L̄ (Eq. 2) and its closed-form gradient (Sec. 3.4)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._jax import mm, x64
from .model import _ibp_lower_margin, _ibp_preact, _signed_relu_sum

__all__ = ["robust_loss", "robust_loss_grad", "loss_derivative"]


def logistic(u):
    """l(u) = log(1 + exp(−u)), finite for every u."""
    return jnp.logaddexp(0.0, -u)


def loss_derivative(u):
    """l'(u) = −1 / (1 + exp(u)) ∈ (−1, 0)."""
    return -jax.nn.sigmoid(-u)


@jax.jit
def _robust_loss(W, a, X, y, eps, l1=None):
    return jnp.sum(logistic(_ibp_lower_margin(W, a, X, y, eps, l1)))


def _grad_from(W, X, z, s, lprime, eps):
    """dL̄/dW = m^-1/2 Σ_i l'_i s_ir A_ir (x_i − s_ir ε sign(w_r)), as two products."""
    act = (z > 0).astype(W.dtype)
    gs = (lprime[:, None] * s) * act  # l'_i s_ir A_ir, (n, m)
    cs = mm(lprime, act)  # Σ_i l'_i A_ir as a product: a reduction here would be fused into the slow path
    out = mm(gs.T, X) - eps * jnp.sign(W) * cs[:, None]
    return out / jnp.sqrt(W.shape[0])


@jax.jit
def _robust_loss_and_grad(W, a, X, y, eps, l1=None):
    """(L̄, dL̄/dW, u̲) with one pass over the pre-activations (``l1``: ‖w_r‖₁ if known)."""
    z, s = _ibp_preact(W, a, X, y, eps, l1)
    u = _signed_relu_sum(z, s) / jnp.sqrt(W.shape[0])
    return jnp.sum(logistic(u)), _grad_from(W, X, z, s, loss_derivative(u), eps), u


@x64
def robust_loss(W, a, X, y, eps):
    """L̄ = Σ_i log(1 + exp(−u̲_i)) of Eq. 2 (a sum over samples, not a mean). Scalar."""
    W, a, X, y, eps, l1 = V.device_problem(W, a, X, y, eps)
    return float(_robust_loss(W, a, X, y, eps, l1))


@x64
def robust_loss_grad(W, a, X, y, eps):
    """dL̄/dW, shape (m, d), from the closed form of Sec. 3.4.

    ∂u̲_i/∂w_r = m^-1/2 y_i a_r (A⁺_ri (x_i − ε sign(w_r)) + A⁻_ri (x_i + ε sign(w_r))),
    dL̄/dw_r = Σ_i l'(u̲_i) ∂u̲_i/∂w_r. Computed as X Wᵀ and one (m×n)(n×d) product;
    never through the (n, m, d) Jacobian. At ties (a pre-activation exactly 0, or a
    weight exactly 0) this is the subgradient with relu'(0) = 0 and sign(0) = 0.

    Speed (benchmarks/bench_grad.py): the row norms ‖w_r‖₁ come from the validation
    pass, so the product X Wᵀ runs unfused, and the call costs about its two GEMMs when W
    is in jax (64-byte aligned) memory. A numpy W is first copied once into aligned
    memory (``_jax.to_device``): for repeated calls on a large W, pass a jax array.
    """
    W, a, X, y, eps, l1 = V.device_problem(W, a, X, y, eps)
    return np.asarray(_robust_loss_and_grad(W, a, X, y, eps, l1)[1])

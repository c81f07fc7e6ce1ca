"""The thesis's warm-up regularizers (wang2022_thesis Sec. 3.2.3, Eqs. 3.5, 3.6 and 3.8).

Both are pure JAX functions of ``(net, params, lo, hi, tau)`` on a batch of input boxes
lo/hi (n, *input_shape), differentiable in params, jit-able (``tau`` may be traced), and
computed from IBP bounds (``ntkflow.bounds.ibp``), as in the thesis ("we use IBP to compute
the bounds in L_rob and the regularizers"). Their dtype follows the inputs.

Reading of the text (where the print leaves a choice):
- The layers i = 1..m are the hidden ReLU layers: h_i is the input of the i-th ReLU (the
  logits are not regularized), m the number of ReLUs; the same m divides both terms.
- Ê(·) pools the batch: means over all samples and units of a layer (the thesis's "mean
  value of Δ_i in the current batch"); the sums in α_i, β_i likewise run over all samples
  and units, and "at least one active and one inactive neuron" is counted over the batch.
- Δ_0 is the width of the input box, hi − lo (Eq. 3.2 with i = 0: the box around x).
- Active / inactive as in α_i, β_i: h̲ > 0 / h̄ < 0 (strict; the prose says ≥ / ≤).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from ..bounds.ibp import ibp_intervals

__all__ = ["tightness", "relu_balance", "relu_input_bounds", "warmup_lambda"]


def relu_input_bounds(net, params, lo, hi) -> list:
    """IBP bounds [(l, u)] of the input of every ReLU layer of ``net``, each (n, *unit_shape),
    for the boxes [lo, hi] (n, *input_shape)."""
    relus = [k for k, layer in enumerate(net.layers) if layer.kind == "relu"]
    if not relus:
        raise NtkflowError("net: has no ReLU layer (the regularizers sum over hidden ReLU layers)")
    ivals = jax.vmap(lambda l, u: ibp_intervals(net, params, l, u, stop=relus[-1]))(lo, hi)
    return [ivals[k] for k in relus]


def _check_tau(tau):
    if not isinstance(tau, jax.core.Tracer):
        t = float(tau)
        if not 0.0 < t <= 1.0:  # also rejects NaN
            raise NtkflowError(f"tau: must be in (0, 1], got {t}")


def tightness(net, params, lo, hi, tau):
    """L_tightness = 1/(τm) Σ_i ReLU(τ − Ê(Δ_0)/Ê(Δ_i))  (Eq. 3.5), a scalar.

    Args:
        net, params: an ``ntkflow.nets.Net`` and its params.
        lo, hi: (n, *input_shape) input boxes. tau: the tolerance τ ∈ (0, 1].

    A layer with Ê(Δ_i) = 0 (a zero-width box, ε = 0) contributes 0: its bounds cannot be
    tighter (Eq. 3.5's ratio is ∞ or 0/0 there; the branch is chosen with a double
    ``where`` so the gradient stays finite).
    """
    _check_tau(tau)
    d0 = jnp.mean(hi - lo)
    terms = []
    for l, u in relu_input_bounds(net, params, lo, hi):
        di = jnp.mean(u - l)
        pos = di > 0
        terms.append(jnp.where(pos, jax.nn.relu(tau - d0 / jnp.where(pos, di, 1.0)), 0.0))
    return jnp.sum(jnp.stack(terms)) / (tau * len(terms))


def _balanced_ratio(a, b, ok):
    """min(a/b, b/a) = min(a, b)/max(a, b) for a, b ≥ 0 not both 0 (no division by 0); 0 where not ``ok``."""
    top = jnp.maximum(a, b)
    return jnp.where(ok, jnp.minimum(a, b) / jnp.where(ok, top, 1.0), 0.0)


def relu_balance(net, params, lo, hi, tau):
    """L_relu = 1/(τm) Σ_i [ReLU(τ − min(α_i, 1/α_i)) + ReLU(τ − min(β_i, 1/β_i))]  (Eq. 3.6).

    With c = (h̲ + h̄)/2 of layer i's ReLU input over the batch,
    α_i = Σ_{h̲>0} c / (−Σ_{h̄<0} c) and β_i = Σ_{h̲>0} (c − Ê c)² / Σ_{h̄<0} (c − Ê c)².

    A layer enters only when it has at least one active and one inactive neuron in the
    batch (the thesis's condition); otherwise its term is 0 — but it still counts in m
    (the thesis's 1/(τm), as its code). Jit-friendly: the condition is a traced boolean
    and the term a ``where``; min(α, 1/α) is computed as min(num, den)/max(num, den), which
    is finite whenever the condition holds (active c > 0 > inactive c, so the α sums are
    positive and the β sums are not both 0), so no value or gradient is ever inf or NaN.
    """
    _check_tau(tau)
    terms = []
    for l, u in relu_input_bounds(net, params, lo, hi):
        c = (l + u) / 2
        act, inact = l > 0, u < 0
        ok = jnp.any(act) & jnp.any(inact)
        alpha = _balanced_ratio(jnp.sum(jnp.where(act, c, 0.0)), -jnp.sum(jnp.where(inact, c, 0.0)), ok)
        dev2 = (c - jnp.mean(c)) ** 2
        beta = _balanced_ratio(jnp.sum(jnp.where(act, dev2, 0.0)), jnp.sum(jnp.where(inact, dev2, 0.0)), ok)
        terms.append(jnp.where(ok, jax.nn.relu(tau - alpha) + jax.nn.relu(tau - beta), 0.0))
    return jnp.sum(jnp.stack(terms)) / (tau * len(terms))


def warmup_lambda(reg_weight, eps, eps_target):
    """λ = λ0 (1 − ε/ε_target) during the ε warm-up (Sec. 3.2.4, after Eq. 3.8), and 0 once
    ε ≥ ε_target (the thesis drops the regularizers after the warm-up; the formula alone
    would turn negative). ``eps`` may be traced; ``eps_target`` must be > 0.

    The thesis's λ0 is ``reg_weight`` here, not to be read as the paper's λ0 = λmin(H∞); the
    sweep config keeps the stored key ``train.lam0``, so cell keys stay stable."""
    if not isinstance(eps_target, jax.core.Tracer):
        t = float(eps_target)
        if not (np.isfinite(t) and t > 0):
            raise NtkflowError(f"eps_target: must be a positive number, got {eps_target!r}")
    return reg_weight * jnp.maximum(1.0 - eps / eps_target, 0.0)

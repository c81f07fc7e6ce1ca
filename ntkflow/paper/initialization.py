"""What the IBP loss looks like at the random initialization of Sec. 3.1 (w_r ~ N(0, I_d),
a_r ~ unif{±1}), before any training.

* L̄(0), the robust loss of Eq. 2 at initialization, which Lemma 7 bounds and Eq. 10's time
  to κ grows with (``initial_loss``). To first order in ε‖w‖₁/‖x‖ each neuron lowers the IBP
  margin by ε‖w_r‖₁/2 on average (relu(z + c) − relu(z − c) has mean ≈ c for z ~ N(0, ‖x‖²)
  and small c), so E[−u̲_i] ≈ √m·ε·E‖w‖₁/2 with E‖w‖₁ = d·√(2/π) (``margin_shift``): the
  loss at initialization grows like √m·ε.
* Which neurons can help. A neuron with y_i a_r = +1 enters u̲_i as +relu(w_rᵀx_i − ε‖w_r‖₁)
  (Eq. 3): it can raise the margin only where w_rᵀx_i > ε‖w_r‖₁ (``helpful_fraction``). A
  neuron with y_i a_r = −1 enters as −relu(w_rᵀx_i + ε‖w_r‖₁) and lowers the margin wherever
  w_rᵀx_i > −ε‖w_r‖₁ (``hurting_fraction``). Over the initialization w → −w leaves ‖w‖₁
  unchanged, so P(wᵀx > −ε‖w‖₁) = 1 − P(wᵀx > ε‖w‖₁): as ε grows the helping neurons vanish
  while nearly every hurting one stays active, and the gradient of L̄ pushes towards
  switching neurons off (``helpful_probability``, ``hurting_probability``).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import NtkflowError
from .._core.stats import Interval, mean_interval
from .._jax import mmt, x64
from .. import _validate as V
from .loss import robust_loss
from .model import init_params, sample_neurons

__all__ = ["l1_norm_mean", "margin_shift", "initial_loss", "helpful_fraction", "hurting_fraction",
           "helpful_probability", "hurting_probability"]


def l1_norm_mean(d: int) -> float:
    """E‖w‖₁ = d·√(2/π) for w ~ N(0, I_d) (E|w_k| = √(2/π))."""
    return V.positive_int("d", d) * math.sqrt(2 / math.pi)


def margin_shift(m: int, d: int, eps: float) -> float:
    """√m·ε·E‖w‖₁/2: the first-order mean of −u̲_i at initialization (module docstring); valid
    while ε·E‖w‖₁ ≪ ‖x_i‖. L̄(0)/n exceeds it by the spread of u̲ (about ‖x‖/√2)."""
    m = V.positive_int("m", m)
    return math.sqrt(m) * V.eps_value(eps) * l1_norm_mean(d) / 2


def initial_loss(X, y, eps, m: int, seeds) -> Interval:
    """L̄(0)/n (Eq. 2 over n at initialization) over the given initialization seeds (the
    seeds of ``init_params``, the ones a sweep's cells use): mean with its t interval."""
    X = np.asarray(X, float)
    seeds = list(seeds)
    if not seeds:
        raise NtkflowError("seeds: give at least one initialization seed")
    vals = []
    for s in seeds:
        W, a = init_params(s, m, X.shape[1])
        vals.append(robust_loss(W, a, X, y, eps) / X.shape[0])
    return mean_interval(vals)


def _pair_fraction(W, a, X, y, eps, sign: int) -> float:
    W, a, X, y = (np.asarray(v, float) for v in (W, a, X, y))
    eps = V.eps_value(eps)
    s = y[:, None] * a[None, :]  # (n, m)
    z = X @ W.T + sign * eps * np.abs(W).sum(axis=1)[None, :]
    pick = s == (1 if sign < 0 else -1)
    return float((z > 0)[pick].mean()) if pick.any() else math.nan


def helpful_fraction(W, a, X, y, eps) -> float:
    """Of the (sample, neuron) pairs with y_i a_r = +1, the fraction with w_rᵀx_i − ε‖w_r‖₁ > 0:
    the neurons whose IBP lower bound can raise u̲_i (NaN when no pair has y_i a_r = +1)."""
    return _pair_fraction(W, a, X, y, eps, -1)


def hurting_fraction(W, a, X, y, eps) -> float:
    """Of the pairs with y_i a_r = −1, the fraction with w_rᵀx_i + ε‖w_r‖₁ > 0: the neurons
    whose IBP upper bound lowers u̲_i."""
    return _pair_fraction(W, a, X, y, eps, +1)


@partial(jax.jit, static_argnames=("c",))
def _per_neuron(key, X, eps, c):
    W, _ = sample_neurons(*jax.random.split(key), c, X.shape[1])
    z = mmt(X, W) - eps * jnp.sum(jnp.abs(W), axis=1)[None, :]
    return jnp.mean(z > 0, axis=0)


@x64
def helpful_probability(X, eps, *, samples: int = 20_000, seed: int = 0, chunk: int = 2_000) -> Interval:
    """P(wᵀx_i > ε‖w‖₁) over w ~ N(0, I_d) and i uniform over the rows of X: the expected
    ``helpful_fraction`` at initialization (it does not depend on a or y). Monte Carlo over
    ``samples`` neurons; each neuron's fraction of samples is one i.i.d. draw, so the 95%
    interval is the t interval over neurons."""
    X = jnp.asarray(np.asarray(X, float))
    samples, chunk = V.positive_int("samples", samples), V.positive_int("chunk", chunk)
    eps = V.eps_value(eps)
    key, out = jax.random.PRNGKey(V.seed(seed)), []
    for _ in range(math.ceil(samples / chunk)):
        key, sub = jax.random.split(key)
        out.append(np.asarray(_per_neuron(sub, X, eps, chunk)))
    return mean_interval(np.concatenate(out)[:samples])


def hurting_probability(X, eps, **kw) -> Interval:
    """P(wᵀx_i > −ε‖w‖₁) = 1 − P(wᵀx_i > ε‖w‖₁) (w → −w; ties have probability 0): the
    expected ``hurting_fraction`` at initialization, from ``helpful_probability``."""
    h = helpful_probability(X, eps, **kw)
    return Interval(1 - h.value, 1 - h.hi, 1 - h.lo, h.n)

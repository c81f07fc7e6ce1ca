"""Attacks: points in the ℓ∞ ball (∩ ``clip``) with small margins — upper bounds of the robust margin.

The attacked quantity is the smallest margin min_j (f_y − f_j)(x') (y·f for a
single-output net), the quantity ``ntkflow.bounds`` lower-bounds; its gradient is the
gradient of the currently smallest margin (Carlini–Wagner's margin loss).

- ``pgd``/``pgd_margin``: projected sign-gradient descent (Madry et al. 2018) from uniform
  random starts, step 2.5ε/steps; every iterate and the clean point are candidates, and
  the smallest margin seen is kept (gao2019 and fan2021 train on such points).
- ``fgsm``: one sign step of size α·ε from a uniform random start, projected (Wong et al.
  2020, "fast is better than free", α = 1.25), as in fan2021's adversarial training.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .nets import inputs as NI
from . import _validate as V

__all__ = ["pgd", "pgd_margin", "fgsm", "min_margin", "pgd_box", "fgsm_box"]


def min_margin(net, params, C, x):
    """min_s (C f(x))_s for one sample."""
    return jnp.min(jnp.matmul(C, net.apply_one(params, x), precision=jax.lax.Precision.HIGHEST))


@partial(jax.jit, static_argnames=("steps", "restarts"))
def pgd_box(net, params, C, X, lo, hi, key, step, steps: int, restarts: int):
    """``pgd`` on validated spec rows C (n, S, K) and boxes lo/hi with a PRNG ``key``: jit- and
    grad-friendly (the trainer's adversarial objectives call it inside their step)."""
    grad = jax.value_and_grad(lambda x, c: min_margin(net, params, c, x))

    def one(c, x, lo, hi, key):
        best_x, best = x, min_margin(net, params, c, x)

        def run(carry, k):
            def body(state, _):
                xc, bx, bv = state
                v, g = grad(xc, c)
                bx, bv = jnp.where(v < bv, xc, bx), jnp.minimum(v, bv)
                return (jnp.clip(xc - step * jnp.sign(g), lo, hi), bx, bv), None

            x0 = jax.random.uniform(k, x.shape, x.dtype, lo, hi)
            (xe, bx, bv), _ = jax.lax.scan(body, (x0, *carry), None, length=steps)
            ve = min_margin(net, params, c, xe)
            return (jnp.where(ve < bv, xe, bx), jnp.minimum(ve, bv)), None

        (bx, bv), _ = jax.lax.scan(run, (best_x, best), jax.random.split(key, restarts))
        return bx, bv

    keys = jax.random.split(key, X.shape[0])
    return jax.vmap(one)(C, X, lo, hi, keys)


def pgd(net, params, X, y, eps, *, steps: int = 40, restarts: int = 1, seed: int = 0, clip=None,
        step_size: float | None = None):
    """``(X_adv, margins)``: the point with the smallest margin found per sample and that margin.

    ``margins`` (n,) is an upper bound of the exact robust margin (the clean point is a
    candidate). ``step_size`` defaults to 2.5ε/steps.
    """
    pb = NI.problem(net, params, X, y, eps, clip)
    steps = V.positive_int("steps", steps)
    restarts = V.positive_int("restarts", restarts)
    seed = V.seed(seed)
    step = 2.5 * pb.eps / steps if step_size is None else V.positive_float("step_size", step_size)
    return pgd_box(net, params, pb.C, pb.X, pb.lo, pb.hi, jax.random.PRNGKey(seed), step, steps, restarts)


def pgd_margin(net, params, X, y, eps, *, steps: int = 40, restarts: int = 1, seed: int = 0, clip=None,
               step_size: float | None = None):
    """The smallest margin min_j (f_y − f_j) PGD finds in the ball, (n,): an upper bound of the
    exact robust margin (``ntkflow.bounds.exact_margin``)."""
    return pgd(net, params, X, y, eps, steps=steps, restarts=restarts, seed=seed, clip=clip,
               step_size=step_size)[1]


@jax.jit
def fgsm_box(net, params, C, start_lo, start_hi, lo, hi, key, step):
    """``fgsm`` on validated spec rows and boxes (random start drawn in [start_lo, start_hi])."""
    def one(c, s_lo, s_hi, lo, hi, k):
        x0 = jax.random.uniform(k, s_lo.shape, s_lo.dtype, s_lo, s_hi)
        g = jax.grad(lambda v: min_margin(net, params, c, v))(x0)
        return jnp.clip(x0 - step * jnp.sign(g), lo, hi)

    return jax.vmap(one)(C, start_lo, start_hi, lo, hi, jax.random.split(key, C.shape[0]))


def fgsm(net, params, X, y, eps, *, seed: int = 0, clip=None, alpha: float = 1.25, random_start: bool = True):
    """FGSM points (n, *input_shape): one step of α·ε down the margin's sign gradient, from a
    uniform random start in the ball (or from x with ``random_start=False``), projected
    onto the ball ∩ ``clip``."""
    pb = NI.problem(net, params, X, y, eps, clip)
    seed = V.seed(seed)
    alpha = V.positive_float("alpha", alpha)
    s_lo, s_hi = (pb.lo, pb.hi) if random_start else (pb.X, pb.X)
    return fgsm_box(net, params, pb.C, s_lo, s_hi, pb.lo, pb.hi, jax.random.PRNGKey(seed), alpha * pb.eps)

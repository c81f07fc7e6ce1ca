"""Gram matrix benchmarks (issue 3 / issue 7, items 1 and 2), printed as ratios.

1. structured ``gram_matrix`` vs the Jacobian J·Jᵀ (jax.jacrev + vmap), n=200, d=784, m=1000, ε=0.04, float64.
2. structured Gram's flop rate, (2ndm + 6n²m) / s, as a fraction of a bare float64 GEMM's rate
   in the same run, n=1000, d=784, m=5000.
Usage: python benchmarks/bench_gram.py [--quick]
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from _common import best_time, cli, machine
from ntkflow.paper.gram import _gram
from ntkflow.paper.model import _ibp_lower_margin


def problem(n, d, m, seed=0):
    rng = np.random.default_rng(seed)
    X = jnp.asarray(0.04 + 0.96 * rng.uniform(size=(n, d)))
    y = jnp.asarray(rng.choice([-1.0, 1.0], n))
    W = jnp.asarray(rng.standard_normal((m, d)))
    a = jnp.asarray(rng.choice([-1.0, 1.0], m))
    return W, a, X, y


def jacobian_gram(W, a, X, y, eps):
    """Reference: per-sample gradients by vmap(jacrev), then J·Jᵀ."""
    per = jax.vmap(lambda x, yi: jax.jacrev(lambda w: _ibp_lower_margin(w, a, x[None], yi[None], eps)[0])(W))
    J = per(X, y).reshape(X.shape[0], -1)
    return J @ J.T


def main(quick: bool = False):
    eps = 0.04
    print(f"# bench_gram — {machine()}")
    with jax.enable_x64(True):
        n, d, m = (50, 784, 300) if quick else (200, 784, 1000)
        W, a, X, y = problem(n, d, m)
        jac = jax.jit(jacobian_gram)
        t_jac = best_time(lambda: jac(W, a, X, y, eps), repeat=1 if not quick else 2)
        t_str = best_time(lambda: _gram(W, a, X, y, eps))
        err = float(jnp.max(jnp.abs(jac(W, a, X, y, eps) - _gram(W, a, X, y, eps))))
        print(f"1. structured vs jacobian J·Jᵀ  n={n} d={d} m={m}: {t_jac:.3f}s / {t_str:.4f}s "
              f"= {t_jac / t_str:.0f}x faster (target ≥ 150x); max |ΔH| = {err:.1e}")

        n, d, m = (200, 784, 1000) if quick else (1000, 784, 5000)
        W, a, X, y = problem(n, d, m)
        t_str = best_time(lambda: _gram(W, a, X, y, eps))
        flops = 2 * n * d * m + 6 * n * n * m
        A = jnp.asarray(np.random.default_rng(1).standard_normal((n, m)))
        gemm = jax.jit(lambda A: A @ A.T)
        t_gemm = best_time(lambda: gemm(A))
        rate, peak = flops / t_str, 2 * n * n * m / t_gemm
        print(f"2. structured Gram flop rate n={n} d={d} m={m}: {rate / 1e9:.1f} GFLOP/s vs bare f64 GEMM "
              f"{peak / 1e9:.1f} GFLOP/s = {100 * rate / peak:.0f}% (target ≥ 50%)")


if __name__ == "__main__":
    cli(main)

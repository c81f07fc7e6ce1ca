"""Public gradient and gradient-flow right-hand side vs their two GEMMs (issue 10), as ratios.

At n=128, d=784, m=80,000, float64 (what the public API and the flow compute in):
  baseline  the two GEMMs the closed-form gradient must do, jitted on device arrays:
            X Wᵀ (n×d·d×m) and the (m×n)(n×d) product Gᵀ X;
  public    ``robust_loss_grad(W, a, X, y, eps)`` as a user calls it, validation and
            transfers included: W from ``init_params`` and W a fresh numpy array;
  flow      the right-hand side as ``gradient_flow`` evaluates it: one fixed RK4 segment
            of k steps (4k evaluations, plus the stage updates) per evaluation, and Euler.
Target: each ≤ 1.3× the two GEMMs. The candidates are timed in interleaved rounds and
each keeps its best round, so that load from other processes hits them alike.
Usage: python benchmarks/bench_grad.py [--quick]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from _common import cli, machine
from ntkflow import init_params, robust_loss_grad
from ntkflow._jax import HIGHEST
from ntkflow.flow import _fixed_segment


def interleaved(fns: dict, rounds: int) -> dict:
    """Best wall time of each blocking call over ``rounds`` rounds that run every call once."""
    for f in fns.values():
        jax.block_until_ready(f())  # compile
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f())
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def main(quick: bool = False):
    n, d, m = (128, 784, 8000) if quick else (128, 784, 80_000)
    eps, k = 0.04, 2
    rng = np.random.default_rng(0)
    X = 0.04 + 0.96 * rng.uniform(size=(n, d))
    y = rng.choice([-1.0, 1.0], n)
    W_lib, a = init_params(0, m, d)
    W_np = rng.standard_normal((m, d))  # a plain numpy array (numpy aligns it to 16 bytes, not 64)
    with jax.enable_x64(True):
        Wd, ad, Xd, yd = (jnp.asarray(v) for v in (W_lib, a, X, y))
        G = jnp.asarray(rng.standard_normal((n, m)))

        @jax.jit
        def gemms(W, G):
            return jnp.matmul(Xd, W.T, precision=HIGHEST), jnp.matmul(G.T, Xd, precision=HIGHEST)

        t = interleaved({
            "gemm": lambda: gemms(Wd, G),
            "lib": lambda: robust_loss_grad(W_lib, a, X, y, eps),
            "np": lambda: robust_loss_grad(W_np, a, X, y, eps),
            "rk4": lambda: _fixed_segment(Wd, ad, Xd, yd, eps, 1e-4, k, "rk4"),
            "euler": lambda: _fixed_segment(Wd, ad, Xd, yd, eps, 1e-4, k, "euler"),
        }, rounds=2 if quick else 5)
    t_gemm, t_lib, t_np, t_rk4, t_euler = t["gemm"], t["lib"], t["np"], t["rk4"] / (4 * k), t["euler"] / k
    print(f"# bench_grad — {machine()}")
    print(f"public robust_loss_grad and the flow's right-hand side, n={n} d={d} m={m} float64, vs two GEMMs "
          f"{t_gemm * 1e3:.0f} ms (target ≤ 1.3x):")
    print(f"  robust_loss_grad, W from init_params: {t_lib * 1e3:.0f} ms = {t_lib / t_gemm:.2f}x")
    print(f"  robust_loss_grad, W a fresh numpy array: {t_np * 1e3:.0f} ms = {t_np / t_gemm:.2f}x")
    print(f"  gradient_flow RHS, per evaluation of a {k}-step RK4 segment: {t_rk4 * 1e3:.0f} ms = "
          f"{t_rk4 / t_gemm:.2f}x; Euler: {t_euler * 1e3:.0f} ms = {t_euler / t_gemm:.2f}x")


if __name__ == "__main__":
    cli(main)
